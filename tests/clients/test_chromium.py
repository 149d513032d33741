"""Headless Chromium: a web page's own ``WebSocket`` to the gateway, GA and beta.

``js/chromium.mjs`` serves ``js/page.html`` on 127.0.0.1 and opens it in Debian's Chromium (driven
by ``playwright-core``, a fresh profile, no network but loopback). The page connects with the
subprotocols a browser client offers: ``realtime`` and ``openai-insecure-api-key.<key>`` (a browser
cannot set headers), plus ``openai-beta.realtime-v1`` for beta; a browser fails the handshake
unless the gateway answers one of them. It holds a text turn and an audio turn (PCM16 made in the
page) with the simulator, then opens a session with the fake provider, and returns its records to
the script through ``page.evaluate``. Plain ``ws://``, so both runtimes.
"""

from __future__ import annotations

import pytest
from clients.harness import (
    CHROMIUM,
    CLIENT_KEY,
    SIMULATOR_MODEL,
    ClientRun,
    check_audio_turn,
    check_text_turn,
    key_model,
    run_node,
)
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess

pytestmark = [
    pytest.mark.compat(client="chromium"),
    pytest.mark.parametrize("protocol", ["ga", "beta"], scope="module"),
]


@pytest.fixture(scope="module")
def run(protocol: str, chromium: None, gateway: GatewayProcess) -> ClientRun:
    return run_node(
        "chromium.mjs",
        {
            "gateway": gateway.base,
            "key": CLIENT_KEY,
            "protocol": protocol,
            "model": SIMULATOR_MODEL,
            "key-model": key_model("chromium", protocol, gateway.runtime),
            "executable": str(CHROMIUM),
        },
    )


def test_page_connects_with_the_realtime_subprotocol(run: ClientRun) -> None:
    assert "HeadlessChrome" in run.step("browser")["user_agent"]
    opened = run.step("open")
    assert opened["first"] == "session.created"
    assert opened["subprotocol"] == "realtime"
    assert "pageerror" not in run.steps


def test_text_turn(run: ClientRun, protocol: str) -> None:
    check_text_turn(run.step("text"), protocol)


def test_audio_turn(run: ClientRun, protocol: str) -> None:
    check_audio_turn(run.step("audio"), protocol)


def test_key_reaches_the_provider_as_bearer(
    run: ClientRun, protocol: str, gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    assert run.step("key")["first"] == "session.created"
    headers = fake_upstream.connection_for(key_model("chromium", protocol, gateway.runtime)).headers
    assert headers["authorization"] == f"Bearer {CLIENT_KEY}"
