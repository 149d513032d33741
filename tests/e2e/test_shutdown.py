"""Graceful shutdown of the standalone server on SIGTERM (a Worker has no such signal).

The server stops accepting connections, tells every client (an ``error`` event
``server_shutting_down`` and a close 1001), closes every provider connection (1001), and exits
within SHUTDOWN_TIMEOUT_SECONDS, dropping a client that does not complete its close by then. With
``--workers 2`` the supervisor stops listening and every worker does the same, within the same time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from conftest import OPERATOR_KEY
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess, start_gateway

SHUTDOWN_TIMEOUT = 3.0
EXIT_SLACK = 1.0  # interpreter teardown, and the test's own polling


@pytest.fixture
def gateway_to_stop(fake_upstream: FakeUpstream, tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "SIMULATOR_PACE": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT),
        "MAX_BUFFERED_BYTES": "16384",  # a client that stops reading blocks its session sooner
    }
    process = start_gateway("standalone", env, tmp_path / "gateway.log")
    yield process
    if process.process.poll() is None:
        process.stop()


async def open_session(gateway: GatewayProcess, **query: str) -> websockets.ClientConnection:
    client = await websockets.connect(gateway.url(**query), close_timeout=1)
    assert json.loads(await asyncio.wait_for(client.recv(), 5))["type"] == "session.created"
    return client


async def until_closed(client: websockets.ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(SHUTDOWN_TIMEOUT + 5):
            while True:
                events.append(json.loads(await client.recv()))
    except websockets.ConnectionClosed as closed:
        return events, closed.rcvd.code if closed.rcvd is not None else None
    raise AssertionError("unreachable")


async def exit_time(gateway: GatewayProcess, since: float) -> float:
    """Seconds from ``since`` until the gateway process exited (it must, with status 0)."""
    while gateway.process.poll() is None:
        assert time.monotonic() - since < SHUTDOWN_TIMEOUT + 10, "the gateway did not exit"
        await asyncio.sleep(0.02)
    assert gateway.process.returncode == 0, gateway.log()
    return time.monotonic() - since


def masked_text(text: str) -> bytes:
    """A client's WebSocket text frame (masked, as RFC 6455 requires of clients), under 126 bytes."""
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def stubborn_client(port: int) -> socket.socket:
    """A client that asks for 20 spoken replies (about 400 KB each), then reads nothing and never
    answers a close: its session is stuck sending to it when the shutdown comes."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(5)
    raw.connect(("127.0.0.1", port))
    raw.sendall(
        b"GET /v1/realtime?provider=simulator HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)  # one byte at a time: leave every frame after the 101 unread
    assert answer.startswith(b"HTTP/1.1 101"), answer
    # 20 replies, 8 MB: more than the loopback buffers hold (they took in 1.6 MB when asked for 4).
    raw.sendall(masked_text(json.dumps({"type": "response.create"})) * 20)
    return raw


def connection_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.deps
async def test_sigterm_tells_every_client_closes_every_provider_and_exits(
    gateway_to_stop: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    models = ["limits-shutdown-a", "limits-shutdown-b"]
    clients = [await open_session(gateway_to_stop, model=name) for name in models]
    clients.append(await open_session(gateway_to_stop, provider="simulator"))
    upstreams = [fake_upstream.connection_for(name) for name in models]
    watching = [asyncio.create_task(until_closed(client)) for client in clients]
    sent = time.monotonic()
    gateway_to_stop.process.send_signal(signal.SIGTERM)
    outcomes = await asyncio.gather(*watching)
    for events, close in outcomes:
        assert [event["type"] for event in events] == ["error"], events
        assert events[0]["error"]["code"] == "server_shutting_down"
        assert events[0]["error"]["message"]
        assert close == 1001
    seconds = await exit_time(gateway_to_stop, sent)
    assert seconds < 2, f"well-behaved clients close at once; the gateway took {seconds:.2f} s"
    for upstream in upstreams:
        assert upstream.closed.is_set()
        assert upstream.close_code == 1001
    log = gateway_to_stop.log()
    assert "shutting down: closing 3 sessions" in log
    assert "dropping" not in log
    assert "Traceback" not in log


async def test_sigterm_exits_within_the_deadline_despite_a_client_that_never_closes(
    gateway_to_stop: GatewayProcess,
) -> None:
    stubborn = stubborn_client(gateway_to_stop.port)
    polite = await open_session(gateway_to_stop, provider="simulator")
    await asyncio.sleep(0.5)  # the stubborn session's replies fill every buffer on the way
    watching = asyncio.create_task(until_closed(polite))
    try:
        sent = time.monotonic()
        gateway_to_stop.process.send_signal(signal.SIGTERM)
        events, close = await watching
        assert events[-1]["error"]["code"] == "server_shutting_down"
        assert close == 1001
        # The stubborn client holds the process for now, but the listener is already closed.
        assert gateway_to_stop.process.poll() is None
        assert await asyncio.to_thread(connection_refused, gateway_to_stop.port)
        seconds = await exit_time(gateway_to_stop, sent)
    finally:
        stubborn.close()
    print(f"\nexited {seconds:.2f} s after SIGTERM (SHUTDOWN_TIMEOUT_SECONDS={SHUTDOWN_TIMEOUT:g})")
    assert seconds <= SHUTDOWN_TIMEOUT + EXIT_SLACK
    assert seconds >= SHUTDOWN_TIMEOUT / 2  # it did wait for the stubborn client, for a while
    log = gateway_to_stop.log()
    assert "dropping 1 sessions that did not close in time" in log
    assert "Traceback" not in log


async def test_sigterm_with_no_sessions_exits_at_once(gateway_to_stop: GatewayProcess) -> None:
    sent = time.monotonic()
    gateway_to_stop.process.send_signal(signal.SIGTERM)
    assert await exit_time(gateway_to_stop, sent) < 1.5


# -- serve --workers 2: the supervisor drains every worker ------------------------------------------------


@pytest.fixture
def workers_to_stop(fake_upstream: FakeUpstream, tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "SIMULATOR_PACE": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT),
        "MAX_BUFFERED_BYTES": "16384",
    }
    process = start_gateway("standalone", env, tmp_path / "gateway.log", args=("--workers", "2"))
    yield process
    if process.process.poll() is None:
        process.stop()


async def test_sigterm_drains_every_worker(
    workers_to_stop: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    models = [f"limits-shutdown-workers-{n}" for n in range(6)]  # spread over both workers
    clients = [await open_session(workers_to_stop, model=name) for name in models]
    upstreams = [fake_upstream.connection_for(name) for name in models]
    watching = [asyncio.create_task(until_closed(client)) for client in clients]
    sent = time.monotonic()
    workers_to_stop.process.send_signal(signal.SIGTERM)
    for events, close in await asyncio.gather(*watching):
        assert [event["error"]["code"] for event in events] == ["server_shutting_down"]
        assert close == 1001
    seconds = await exit_time(workers_to_stop, sent)
    assert seconds < 2 + EXIT_SLACK, f"well-behaved clients close at once; the gateway took {seconds:.2f} s"
    for upstream in upstreams:
        assert upstream.closed.is_set()
        assert upstream.close_code == 1001
    log = workers_to_stop.log()
    closing = [int(n) for n in re.findall(r"shutting down: closing (\d+) sessions", log)]
    assert sum(closing) == len(models)
    assert "stopping 2 workers" in log
    assert "without REDIS_URL" in log  # the per-worker limits were said at start-up
    assert "dropping" not in log
    assert "Traceback" not in log


async def test_sigterm_stops_every_worker_within_the_deadline_despite_a_stubborn_client(
    workers_to_stop: GatewayProcess,
) -> None:
    stubborn = stubborn_client(workers_to_stop.port)
    await asyncio.sleep(0.5)
    try:
        sent = time.monotonic()
        workers_to_stop.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert workers_to_stop.process.poll() is None  # a worker still drains the stubborn session
        assert await asyncio.to_thread(connection_refused, workers_to_stop.port)  # nobody listens
        seconds = await exit_time(workers_to_stop, sent)
    finally:
        stubborn.close()
    print(f"\nexited {seconds:.2f} s after SIGTERM (SHUTDOWN_TIMEOUT_SECONDS={SHUTDOWN_TIMEOUT:g})")
    assert seconds <= SHUTDOWN_TIMEOUT + EXIT_SLACK
    assert "dropping 1 sessions that did not close in time" in workers_to_stop.log()
