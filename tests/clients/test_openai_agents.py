"""The OpenAI Agents SDK for Python (``openai-agents``): a ``RealtimeRunner`` session through the gateway.

The SDK's realtime model (``OpenAIRealtimeWebSocketModel``) takes its URL from the model config
(``runner.run(model_config={"url": ..., "api_key": ...})``) and connects to it as given, so the
gateway is reached on ``ws://`` on both runtimes, ``provider`` and ``model`` in the URL's query. It
validates every server event against its pydantic types: a malformed event becomes an ``error``
session event (and an ``openai.agents`` log error), which is what these tests look for. GA only:
the SDK has no beta interface.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from clients.harness import (
    CLIENT_KEY,
    SIMULATOR_MODEL,
    USER_TEXT,
    check_audio_turn,
    check_text_turn,
    key_model,
    summarize,
)
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess

pytestmark = [
    pytest.mark.compat(client="openai-agents", protocol="ga"),
    pytest.mark.usefixtures("openai_agents"),
]

TURN_TIMEOUT_SECONDS = 20.0


@dataclass
class AgentsTurn:
    """A session's events as the SDK delivered them, and what it complained about."""

    events: list[Any] = field(default_factory=list)  # RealtimeSessionEvent objects
    server: list[dict[str, Any]] = field(default_factory=list)  # the raw server events among them
    logged: list[str] = field(default_factory=list)  # ERROR records of the openai.agents logger

    def of(self, event_type: str) -> list[Any]:
        return [event for event in self.events if event.type == event_type]

    @property
    def history(self) -> list[Any]:
        """The conversation as the SDK understood it (its last ``history_updated``)."""
        updates = self.of("history_updated")
        return list(updates[-1].history) if updates else []


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def speech_pcm16() -> bytes:
    """One second of a 440 Hz tone and 0.8 s of silence, PCM16 LE at 24 kHz (as js/turns.mjs)."""
    rate = 24_000
    tone = [round(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate)]
    samples = array("h", tone + [0] * int(rate * 0.8))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


async def agents_session(
    gateway: GatewayProcess,
    provider: str,
    model: str,
    output_modalities: list[str],
    drive: Callable[[Any], Awaitable[None]],
    done: Callable[[AgentsTurn], bool] = lambda turn: bool(turn.of("agent_end")),
) -> AgentsTurn:
    """Open a RealtimeSession on the gateway, run ``drive(session)``, read events until ``done``."""
    from agents.realtime import RealtimeAgent, RealtimeRunner

    agent = RealtimeAgent(name="assistant", instructions="Answer in one sentence.")
    settings = {"model_name": model, "output_modalities": output_modalities}
    runner = RealtimeRunner(agent, config={"model_settings": settings})  # type: ignore[typeddict-item]
    url = gateway.url(provider=provider, model=model)
    turn = AgentsTurn()
    handler = _Collect(turn.logged)
    logger = logging.getLogger("openai.agents")
    logger.addHandler(handler)
    try:
        session = await runner.run(model_config={"url": url, "api_key": CLIENT_KEY})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), session:
            await drive(session)
            async for event in session:
                turn.events.append(event)
                if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    turn.server.append(event.data.data)
                if done(turn):
                    break
    finally:
        logger.removeHandler(handler)
    return turn


def check_sdk_was_happy(turn: AgentsTurn) -> None:
    errors = [str(event.error) for event in turn.of("error")]
    assert errors == [], errors  # gateway error events, or server events the SDK failed to validate
    assert turn.logged == [], turn.logged
    exceptions = [
        event.data
        for event in turn.of("raw_model_event")
        if event.data.type in ("exception", "error")  # RealtimeModelExceptionEvent / ErrorEvent
    ]
    assert exceptions == [], exceptions


async def test_text_turn(gateway: GatewayProcess) -> None:
    async def say(session: Any) -> None:
        await session.send_message(USER_TEXT)

    turn = await agents_session(gateway, "simulator", SIMULATOR_MODEL, ["text"], say)
    check_sdk_was_happy(turn)
    check_text_turn(summarize("text", "ga", turn.server), "ga")
    assert turn.of("agent_start")
    assert turn.of("agent_end")
    replies = [item for item in turn.history if getattr(item, "role", None) == "assistant"]
    assert replies, turn.history
    text = "".join(getattr(part, "text", None) or "" for part in replies[-1].content)
    assert text.startswith(f"You said: {USER_TEXT}"), replies[-1]


async def test_audio_turn(gateway: GatewayProcess) -> None:
    async def speak(session: Any) -> None:
        pcm = speech_pcm16()
        for offset in range(0, len(pcm), 4800):  # 100 ms chunks
            await session.send_audio(pcm[offset : offset + 4800])

    turn = await agents_session(gateway, "simulator", SIMULATOR_MODEL, ["audio"], speak)
    check_sdk_was_happy(turn)
    check_audio_turn(summarize("audio", "ga", turn.server), "ga")
    audio = b"".join(event.audio.data for event in turn.of("audio"))  # the SDK's decoded PCM16
    assert len(audio) == summarize("audio", "ga", turn.server)["audio_bytes"]
    assert turn.of("audio_end")
    assert turn.of("agent_end")


async def test_key_reaches_the_provider_as_bearer(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    model = key_model("openai-agents", "ga", gateway.runtime)

    async def nothing(session: Any) -> None:
        return None

    turn = await agents_session(
        gateway, "openai", model, ["text"], nothing, done=lambda turn: bool(turn.server)
    )
    assert turn.server[0]["type"] == "session.created", turn.server
    headers = (await asyncio.to_thread(fake_upstream.connection_for, model)).headers
    assert headers["authorization"] == f"Bearer {CLIENT_KEY}"
