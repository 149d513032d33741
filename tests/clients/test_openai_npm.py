"""The ``openai`` npm SDK's realtime clients, GA and beta, through the standalone gateway over TLS.

``js/openai_sdk.mjs`` drives ``OpenAIRealtimeWS`` (the ``ws`` package: the key as ``Authorization:
Bearer``) or ``OpenAIRealtimeWebSocket`` (Node 22's WHATWG ``WebSocket``: the key as the
``openai-insecure-api-key.<key>`` subprotocol), from ``openai/realtime/*`` (GA) or
``openai/beta/realtime/*`` (beta). The SDK builds ``wss://`` + the client's ``baseURL`` host and path
+ ``/realtime``, keeping the base URL's query, so ``baseURL: https://127.0.0.1:<port>/v1?provider=...``
reaches the gateway; it refuses anything but ``wss://``, hence the TLS gateway, whose test CA Node
trusts through ``NODE_EXTRA_CA_CERTS``. The local Worker host serves ``ws://`` only, so these cells
are standalone-only.
"""

from __future__ import annotations

import pytest
from clients.harness import (
    CLIENT_KEY,
    SIMULATOR_MODEL,
    ClientRun,
    TlsGateway,
    check_audio_turn,
    check_text_turn,
    key_model,
    run_node,
)
from support.fake_upstream import FakeUpstream

TRANSPORTS = {"openai-npm-ws": "ws", "openai-npm-websocket": "websocket"}

pytestmark = [
    pytest.mark.compat(runtime="standalone"),
    pytest.mark.parametrize("client", list(TRANSPORTS), scope="module"),
    pytest.mark.parametrize("protocol", ["ga", "beta"], scope="module"),
]


@pytest.fixture(scope="module")
def run(client: str, protocol: str, node_sdks: None, tls_gateway: TlsGateway) -> ClientRun:
    """One run of the client: text and audio turns with the simulator, then the key handshake."""
    assert tls_gateway.certificates is not None
    return run_node(
        "openai_sdk.mjs",
        {
            "transport": TRANSPORTS[client],
            "protocol": protocol,
            "origin": tls_gateway.origin,
            "key": CLIENT_KEY,
            "model": SIMULATOR_MODEL,
            "key-model": key_model(client, protocol, "standalone"),
        },
        env={"NODE_EXTRA_CA_CERTS": str(tls_gateway.certificates.ca)},
    )


def test_connects_over_wss(run: ClientRun, client: str, tls_gateway: TlsGateway) -> None:
    opened = run.step("open")
    assert opened["url"] == f"{tls_gateway.base}/v1/realtime?provider=simulator&model={SIMULATOR_MODEL}"
    assert opened["first"] == "session.created"
    # The WHATWG WebSocket offered subprotocols; the gateway must pick `realtime` or it fails.
    assert opened["subprotocol"] == ("realtime" if client == "openai-npm-websocket" else "")


def test_text_turn(run: ClientRun, protocol: str) -> None:
    check_text_turn(run.step("text"), protocol)


def test_audio_turn(run: ClientRun, protocol: str) -> None:
    check_audio_turn(run.step("audio"), protocol)


def test_sdk_reported_no_error(run: ClientRun) -> None:
    assert run.step("sdk")["errors"] == []


def test_key_reaches_the_provider_as_bearer(
    run: ClientRun, client: str, protocol: str, fake_upstream: FakeUpstream
) -> None:
    keyed = run.step("key")
    assert keyed["first"] == "session.created", keyed
    assert keyed["errors"] == []
    headers = fake_upstream.connection_for(key_model(client, protocol, "standalone")).headers
    assert headers["authorization"] == f"Bearer {CLIENT_KEY}"
