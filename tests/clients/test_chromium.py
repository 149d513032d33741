"""Headless Chromium: a web page's own ``WebSocket`` to the gateway, GA and beta.

``js/chromium.mjs`` serves ``js/page.html`` on 127.0.0.1 and opens it in Debian's Chromium (driven
by ``playwright-core``, a fresh profile, no network but loopback). The page connects with the
subprotocols a browser client offers: ``realtime`` and ``openai-insecure-api-key.<key>`` (a browser
cannot set headers), plus ``openai-beta.realtime-v1`` for beta; a browser fails the handshake
unless the gateway answers one of them. On one connection it holds a text turn and an audio turn
(PCM16 speech made in the page, appended in 100 ms chunks; the provider's server VAD, on by default,
ends the turn and starts the reply, as for a page streaming its microphone), and returns its
records to the script through ``page.evaluate``. Plain ``ws://``, so both runtimes.

The cell: the turns with the strict GA-only fake provider (``provider=openai``). Then, separately,
the same turns with ``provider=simulator`` (real PCM16 speech back, the simulator's VAD).
"""

from __future__ import annotations

import pytest
from clients.harness import (
    CHROMIUM,
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

pytestmark = [
    pytest.mark.compat(client="chromium"),
    pytest.mark.parametrize("protocol", ["ga", "beta"], scope="module"),
]


def run_page(gateway: GatewayProcess, protocol: str, provider: str, model: str) -> ClientRun:
    return run_node(
        "chromium.mjs",
        {
            "gateway": gateway.base,
            "key": CLIENT_KEY,
            "protocol": protocol,
            "provider": provider,
            "model": model,
            "executable": str(CHROMIUM),
        },
    )


@pytest.fixture(scope="module")
def run(protocol: str, chromium: None, gateway: GatewayProcess) -> ClientRun:
    """The cell's run: both turns with the strict GA-only fake provider."""
    return run_page(gateway, protocol, "openai", cell_model("chromium", protocol, gateway.runtime))


@pytest.fixture(scope="module")
def upstream(
    run: ClientRun, protocol: str, gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> list[UpstreamConnection]:
    """What the fake provider saw of the run: one connection."""
    return upstream_of(fake_upstream, cell_model("chromium", protocol, gateway.runtime), 1)


def test_page_connects_with_the_realtime_subprotocol(run: ClientRun) -> None:
    assert "HeadlessChrome" in run.step("browser")["user_agent"]
    opened = run.step("open")
    assert opened["first"] == "session.created"
    assert opened["subprotocol"] == "realtime"
    assert "pageerror" not in run.steps


def test_text_turn(run: ClientRun, protocol: str) -> None:
    check_fake_text_turn(run.step("text"), protocol)


def test_audio_turn(run: ClientRun, protocol: str) -> None:
    check_fake_audio_turn(run.step("audio"), protocol)


def test_strict_provider_refused_nothing_and_saw_no_beta(upstream: list[UpstreamConnection]) -> None:
    check_strict_provider(upstream)  # the key too: the subprotocol's key reached it as a bearer


def test_provider_got_the_turns_intact(upstream: list[UpstreamConnection]) -> None:
    check_provider_got_the_turns(upstream)


# -- the same turns with the simulator: a separate check, not the cell's ---------------------------


@pytest.fixture(scope="module")
def simulator_run(protocol: str, chromium: None, gateway: GatewayProcess) -> ClientRun:
    return run_page(gateway, protocol, "simulator", SIMULATOR_MODEL)


@pytest.mark.simulator
def test_simulator_text_turn(simulator_run: ClientRun, protocol: str) -> None:
    assert simulator_run.step("open")["subprotocol"] == "realtime"
    check_simulator_text_turn(simulator_run.step("text"), protocol)


@pytest.mark.simulator
def test_simulator_audio_turn(simulator_run: ClientRun, protocol: str) -> None:
    check_simulator_audio_turn(simulator_run.step("audio"), protocol)
