"""The OpenAI Agents SDK for JavaScript (``@openai/agents-realtime``): a ``RealtimeSession``.

``js/agents_realtime.mjs`` runs a ``RealtimeSession`` over the SDK's ``OpenAIRealtimeWebSocket``
transport, pointed at the gateway by ``session.connect({ apiKey, url })``: the transport opens that
URL as given (``ws://`` included), so both runtimes are reached, ``provider`` and ``model`` in the
query. In Node the transport uses the ``ws`` package and sends the key as ``Authorization:
Bearer``. The SDK silently drops server events that fail its zod schema, so the script checks every
raw event against that schema itself and reports failures (``invalid``) and types the SDK does not
know (``unknown_types``). GA only: the SDK has no beta interface.
"""

from __future__ import annotations

import pytest
from clients.harness import (
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

pytestmark = pytest.mark.compat(client="agents-realtime", protocol="ga")


@pytest.fixture(scope="module")
def run(node_sdks: None, gateway: GatewayProcess) -> ClientRun:
    return run_node(
        "agents_realtime.mjs",
        {
            "url": gateway.url(),
            "key": CLIENT_KEY,
            "model": SIMULATOR_MODEL,
            "key-model": key_model("agents-realtime", "ga", gateway.runtime),
        },
    )


@pytest.mark.parametrize("step", ["text", "audio", "key"])
def test_every_event_passes_the_sdk_schema(run: ClientRun, step: str) -> None:
    record = run.step(step)
    assert record["invalid"] == [], record["invalid"]
    assert record["unknown_types"] == [], record["unknown_types"]
    if step != "key":  # the fake provider is not the subject here
        assert record["sdk_errors"] == [], record["sdk_errors"]


def test_text_turn(run: ClientRun) -> None:
    check_text_turn(run.step("text"), "ga")


def test_audio_turn(run: ClientRun) -> None:
    check_audio_turn(run.step("audio"), "ga")


def test_key_reaches_the_provider_as_bearer(
    run: ClientRun, gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    assert run.step("key")["first"] == "session.created"
    headers = fake_upstream.connection_for(key_model("agents-realtime", "ga", gateway.runtime)).headers
    assert headers["authorization"] == f"Bearer {CLIENT_KEY}"
