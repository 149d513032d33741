"""The ``openai`` npm SDK's realtime clients, GA and beta, through the standalone gateway over TLS.

``js/openai_sdk.mjs`` drives ``OpenAIRealtimeWS`` (the ``ws`` package: the key as ``Authorization:
Bearer``) or ``OpenAIRealtimeWebSocket`` (Node 22's WHATWG ``WebSocket``: the key as the
``openai-insecure-api-key.<key>`` subprotocol), from ``openai/realtime/*`` (GA) or
``openai/beta/realtime/*`` (beta). The SDK builds ``wss://`` + the client's ``baseURL`` host and path
+ ``/realtime``, keeping the base URL's query, so ``baseURL: https://127.0.0.1:<port>/v1?provider=...``
reaches the gateway; it refuses anything but ``wss://``, hence the TLS gateway (``gateway``'s
settings: OpenAI is the fake provider), whose test CA Node trusts through ``NODE_EXTRA_CA_CERTS``.
The local Worker host serves ``ws://`` only, so these cells are standalone-only.

On one connection the client holds a text turn and an audio turn (PCM16 speech appended in 100 ms
chunks; the provider's server VAD, on by default, ends the turn and starts the reply: the SDK has
``input_audio_buffer.commit`` too, but a client streaming audio leaves it to VAD). The cell: the
turns with the strict GA-only fake provider (``provider=openai``). Then, separately, the same turns
with ``provider=simulator``.
"""

from __future__ import annotations

import pytest
from clients.harness import (
    CLIENT_KEY,
    SIMULATOR_MODEL,
    ClientRun,
    TlsGateway,
    cell_model,
    check_fake_audio_turn,
    check_fake_text_turn,
    check_provider_got_the_turns,
    check_simulator_audio_turn,
    check_simulator_text_turn,
    check_strict_provider,
    run_node,
    upstream_of,
)
from support.fake_upstream import FakeUpstream, UpstreamConnection

TRANSPORTS = {"openai-npm-ws": "ws", "openai-npm-websocket": "websocket"}

pytestmark = [
    pytest.mark.compat(runtime="standalone"),
    pytest.mark.parametrize("client", list(TRANSPORTS), scope="module"),
    pytest.mark.parametrize("protocol", ["ga", "beta"], scope="module"),
]


def run_client(client: str, protocol: str, tls_gateway: TlsGateway, provider: str, model: str) -> ClientRun:
    assert tls_gateway.certificates is not None
    return run_node(
        "openai_sdk.mjs",
        {
            "transport": TRANSPORTS[client],
            "protocol": protocol,
            "origin": tls_gateway.origin,
            "key": CLIENT_KEY,
            "provider": provider,
            "model": model,
        },
        env={"NODE_EXTRA_CA_CERTS": str(tls_gateway.certificates.ca)},
    )


@pytest.fixture(scope="module")
def run(client: str, protocol: str, node_sdks: None, tls_gateway: TlsGateway) -> ClientRun:
    """The cell's run: both turns with the strict GA-only fake provider."""
    return run_client(client, protocol, tls_gateway, "openai", cell_model(client, protocol, "standalone"))


@pytest.fixture(scope="module")
def upstream(
    run: ClientRun, client: str, protocol: str, fake_upstream: FakeUpstream
) -> list[UpstreamConnection]:
    """What the fake provider saw of the run: one connection."""
    return upstream_of(fake_upstream, cell_model(client, protocol, "standalone"), 1)


def test_connects_over_wss(run: ClientRun, client: str, protocol: str, tls_gateway: TlsGateway) -> None:
    opened = run.step("open")
    model = cell_model(client, protocol, "standalone")
    assert opened["url"] == f"{tls_gateway.base}/v1/realtime?provider=openai&model={model}"
    assert opened["first"] == "session.created"
    # The WHATWG WebSocket offered subprotocols; the gateway must pick `realtime` or it fails.
    assert opened["subprotocol"] == ("realtime" if client == "openai-npm-websocket" else "")


def test_text_turn(run: ClientRun, protocol: str) -> None:
    check_fake_text_turn(run.step("text"), protocol)


def test_audio_turn(run: ClientRun, protocol: str) -> None:
    check_fake_audio_turn(run.step("audio"), protocol)


def test_sdk_reported_no_error(run: ClientRun) -> None:
    assert run.step("sdk")["errors"] == []


def test_strict_provider_refused_nothing_and_saw_no_beta(upstream: list[UpstreamConnection]) -> None:
    check_strict_provider(upstream)  # the key too: it reached the provider as a bearer


def test_provider_got_the_turns_intact(upstream: list[UpstreamConnection]) -> None:
    check_provider_got_the_turns(upstream)


# -- the same turns with the simulator: a separate check, not the cell's ---------------------------


@pytest.fixture(scope="module")
def simulator_run(client: str, protocol: str, node_sdks: None, tls_gateway: TlsGateway) -> ClientRun:
    return run_client(client, protocol, tls_gateway, "simulator", SIMULATOR_MODEL)


@pytest.mark.simulator
def test_simulator_text_turn(simulator_run: ClientRun, protocol: str) -> None:
    assert simulator_run.step("sdk")["errors"] == []
    check_simulator_text_turn(simulator_run.step("text"), protocol)


@pytest.mark.simulator
def test_simulator_audio_turn(simulator_run: ClientRun, protocol: str) -> None:
    check_simulator_audio_turn(simulator_run.step("audio"), protocol)
