"""When the provider fails or the request cannot be served: an error event, then a meaningful close."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets
from conftest import OPERATOR_KEY
from support.gateway_process import GatewayProcess


async def error_then_close(url: str, timeout: float = 8.0, **connect: object) -> tuple[list[dict], int, str]:
    """Connect, collect every event until the gateway closes; return them and the close code/reason."""
    events: list[dict] = []
    async with websockets.connect(url, **connect) as socket:  # type: ignore[arg-type]
        try:
            while True:
                events.append(json.loads(await asyncio.wait_for(socket.recv(), timeout)))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "the gateway must close with a code, not drop the connection"
            return events, closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("connection did not close")


def assert_error_event(event: dict, code: str) -> None:
    assert event["type"] == "error"
    assert event["event_id"].startswith("event_")
    assert event["error"]["code"] == code, event
    assert event["error"]["type"] in {"invalid_request_error", "server_error"}
    assert event["error"]["message"]


@pytest.mark.parametrize(
    ("status", "code", "close_code"),
    [
        (401, "upstream_unauthorized", 1008),
        (403, "upstream_forbidden", 1008),
        (404, "upstream_not_found", 1008),
        (429, "upstream_rate_limited", 1013),
        (500, "upstream_error", 1014),
    ],
)
async def test_refused_handshake(gateway: GatewayProcess, status: int, code: str, close_code: int) -> None:
    events, close, reason = await error_then_close(gateway.url(model=f"reject-{status}"))
    assert len(events) == 1
    assert_error_event(events[0], code)
    assert f"HTTP {status}" in events[0]["error"]["message"]
    assert close == close_code
    assert reason


async def test_unreachable_provider(unreachable_gateway: GatewayProcess) -> None:
    url = unreachable_gateway.url()
    events, close, _ = await error_then_close(url, additional_headers={"Authorization": "Bearer sk-x"})
    assert_error_event(events[0], "upstream_unreachable")
    if unreachable_gateway.runtime == "standalone":  # workerd's fetch gives no reason to pass on
        assert "connection refused" in events[0]["error"]["message"].lower()
    assert close == 1014


async def test_provider_that_never_answers_the_handshake(gateway: GatewayProcess) -> None:
    started = time.monotonic()
    events, close, _ = await error_then_close(gateway.url(model="slow-10000"))
    assert_error_event(events[0], "upstream_timeout")
    assert close == 1014
    assert time.monotonic() - started < 5  # UPSTREAM_CONNECT_TIMEOUT_SECONDS=2 on the test gateway


async def test_provider_close_code_and_reason_reach_the_client(gateway: GatewayProcess) -> None:
    events, close, reason = await error_then_close(gateway.url(model="close-4000"))
    assert [event["type"] for event in events] == ["session.created"]
    assert (close, reason) == (4000, "scripted")


async def test_provider_connection_lost_midstream(gateway: GatewayProcess) -> None:
    events, close, _ = await error_then_close(gateway.url(model="drop"))
    assert events[0]["type"] == "session.created"
    assert_error_event(events[-1], "upstream_connection_lost")
    assert close == 1014


async def test_no_key_anywhere(unreachable_gateway: GatewayProcess) -> None:
    events, close, _ = await error_then_close(unreachable_gateway.url())
    assert_error_event(events[0], "missing_api_key")
    assert "provider=simulator" in events[0]["error"]["message"]
    assert close == 1008


async def test_unknown_provider(gateway: GatewayProcess) -> None:
    events, close, _ = await error_then_close(gateway.url(provider="nope"))
    assert_error_event(events[0], "unknown_provider")
    assert close == 1008


def test_plain_http_requests(gateway: GatewayProcess) -> None:
    base = f"http://127.0.0.1:{gateway.port}"
    with urllib.request.urlopen(f"{base}/healthz") as answer:
        assert json.load(answer)["status"] == "ok"
    for path, status in (("/v1/realtime", 426), ("/nowhere", 404)):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(base + path)
        assert raised.value.code == status
        assert json.load(raised.value)["error"]["message"]


def test_keys_never_logged(gateway: GatewayProcess, unreachable_gateway: GatewayProcess) -> None:
    """Runs after the other tests of this module, which sent keys every way a client can."""
    for process in (gateway, unreachable_gateway):
        log = process.log()
        assert "session start" in log  # the log is being written: the check below means something
        assert OPERATOR_KEY not in log
        assert "sk-client-key" not in log


def test_malformed_websocket_handshake_is_refused_before_the_upgrade(gateway: GatewayProcess) -> None:
    """An Upgrade request without the WebSocket key: HTTP 400 in the OpenAI error shape, no upgrade.
    (The Worker's runtime answers the WebSocket handshake itself, so this is the standalone's.)"""
    if gateway.runtime != "standalone":
        pytest.skip("workerd (and the local host) check the WebSocket handshake, not the entry")
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    connection.request("GET", "/v1/realtime?model=gpt-realtime", headers=headers)
    answer = connection.getresponse()
    body = json.loads(answer.read())
    connection.close()
    assert answer.status == 400, body
    assert body["error"]["code"] == "invalid_websocket_handshake", body
    assert "Sec-WebSocket-Key" in body["error"]["message"]
