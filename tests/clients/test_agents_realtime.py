"""The OpenAI Agents SDK for JavaScript (``@openai/agents-realtime``): a ``RealtimeSession``.

``js/agents_realtime.mjs`` runs a ``RealtimeSession`` over the SDK's ``OpenAIRealtimeWebSocket``
transport, pointed at the gateway by ``session.connect({ apiKey, url })``: the transport opens that
URL as given (``ws://`` included), so both runtimes are reached, ``provider`` and ``model`` in the
query. In Node the transport uses the ``ws`` package and sends the key as ``Authorization:
Bearer``. The SDK silently drops server events that fail its zod schema, so the script checks every
raw event against that schema itself and reports failures (``invalid``) and types the SDK does not
know (``unknown_types``). GA only: the SDK has no beta interface.

Two sessions: a text turn (``sendMessage``), and an audio turn (``sendAudio`` of PCM16 speech in
100 ms chunks and nothing else: the SDK's session asks for ``semantic_vad``, and the provider's
turn detection ends the turn and starts the reply, as the SDK is meant to be used). The cell: the
turns with the strict GA-only fake provider (``provider=openai``). Then, separately, the same turns
with ``provider=simulator``.
"""

from __future__ import annotations

import pytest
from clients.harness import (
    CLIENT_KEY,
    SIMULATOR_MODEL,
    ClientRun,
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
from support.gateway_process import GatewayProcess

pytestmark = pytest.mark.compat(client="agents-realtime", protocol="ga")


def run_session(gateway: GatewayProcess, provider: str, model: str) -> ClientRun:
    return run_node(
        "agents_realtime.mjs",
        {"url": gateway.url(), "key": CLIENT_KEY, "provider": provider, "model": model},
    )


@pytest.fixture(scope="module")
def run(node_sdks: None, gateway: GatewayProcess) -> ClientRun:
    """The cell's run: both turns with the strict GA-only fake provider."""
    return run_session(gateway, "openai", cell_model("agents-realtime", "ga", gateway.runtime))


@pytest.fixture(scope="module")
def upstream(
    run: ClientRun, gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> list[UpstreamConnection]:
    """What the fake provider saw of the run: a connection per session."""
    return upstream_of(fake_upstream, cell_model("agents-realtime", "ga", gateway.runtime), 2)


def check_sdk_was_happy(record: dict) -> None:
    assert record["invalid"] == [], record["invalid"]
    assert record["unknown_types"] == [], record["unknown_types"]
    assert record["sdk_errors"] == [], record["sdk_errors"]


@pytest.mark.parametrize("step", ["text", "audio"])
def test_every_event_passes_the_sdk_schema(run: ClientRun, step: str) -> None:
    check_sdk_was_happy(run.step(step))


def test_text_turn(run: ClientRun) -> None:
    check_fake_text_turn(run.step("text"), "ga")


def test_audio_turn(run: ClientRun) -> None:
    check_fake_audio_turn(run.step("audio"), "ga")


def test_strict_provider_refused_nothing(upstream: list[UpstreamConnection]) -> None:
    check_strict_provider(upstream)  # the key too: it reached the provider as a bearer


def test_provider_got_the_turns_intact(upstream: list[UpstreamConnection]) -> None:
    check_provider_got_the_turns(upstream)


# -- the same turns with the simulator: a separate check, not the cell's ---------------------------


@pytest.fixture(scope="module")
def simulator_run(node_sdks: None, gateway: GatewayProcess) -> ClientRun:
    return run_session(gateway, "simulator", SIMULATOR_MODEL)


@pytest.mark.simulator
def test_simulator_text_turn(simulator_run: ClientRun) -> None:
    check_sdk_was_happy(simulator_run.step("text"))
    check_simulator_text_turn(simulator_run.step("text"), "ga")


@pytest.mark.simulator
def test_simulator_audio_turn(simulator_run: ClientRun) -> None:
    check_sdk_was_happy(simulator_run.step("audio"))
    check_simulator_audio_turn(simulator_run.step("audio"), "ga")
