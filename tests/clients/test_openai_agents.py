"""The OpenAI Agents SDK for Python (``openai-agents``): a ``RealtimeRunner`` session through the gateway.

The SDK's realtime model (``OpenAIRealtimeWebSocketModel``) takes its URL from the model config
(``runner.run(model_config={"url": ..., "api_key": ...})``) and connects to it as given, so the
gateway is reached on ``ws://`` on both runtimes, ``provider`` and ``model`` in the URL's query. It
validates every server event against its pydantic types: a malformed event becomes an ``error``
session event (and an ``openai.agents`` log error), which is what these tests look for. GA only:
the SDK has no beta interface.

Two sessions: a text turn (``session.send_message``), and an audio turn (``session.send_audio`` of
PCM16 speech in 100 ms chunks and nothing else: the SDK's session asks for ``semantic_vad``, and the
provider's turn detection ends the turn and starts the reply, as the SDK is meant to be used). The
cell: the turns with the strict GA-only fake provider (``provider=openai``). Then, separately, the
same turns with ``provider=simulator``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from clients.harness import (
    CLIENT_KEY,
    SIMULATOR_MODEL,
    USER_TEXT,
    cell_model,
    check_fake_audio_turn,
    check_fake_text_turn,
    check_provider_got_the_turns,
    check_simulator_audio_turn,
    check_simulator_text_turn,
    check_strict_provider,
    check_turn,
    speech_pcm16,
    summarize,
    upstream_of,
)
from support.fake_gemini import REPLY_TEXT as GEMINI_REPLY
from support.fake_gemini import FakeGemini
from support.fake_upstream import REPLY_TEXT, FakeUpstream, UpstreamConnection
from support.fake_xai import REPLY_TEXT as XAI_REPLY
from support.fake_xai import FakeXai
from support.gateway_process import GatewayProcess, start_gateway

from shared.translation.gemini.setup import DROPPED as GEMINI_DROPPED

pytestmark = pytest.mark.compat(client="openai-agents", protocol="ga")

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


async def say(session: Any) -> None:
    await session.send_message(USER_TEXT)


async def speak(session: Any) -> None:
    pcm = speech_pcm16()
    for offset in range(0, len(pcm), 4800):  # 100 ms chunks
        await session.send_audio(pcm[offset : offset + 4800])


def check_text_reply(turn: AgentsTurn) -> str:
    """The SDK's own view of a text turn; returns the assistant's text as its history has it."""
    check_sdk_was_happy(turn)
    assert turn.of("agent_start")
    assert turn.of("agent_end")
    replies = [item for item in turn.history if getattr(item, "role", None) == "assistant"]
    assert replies, turn.history
    return "".join(getattr(part, "text", None) or "" for part in replies[-1].content)


def check_audio_reply(turn: AgentsTurn) -> None:
    """The SDK's own view of an audio turn: the audio it decoded is all the provider sent."""
    check_sdk_was_happy(turn)
    audio = b"".join(event.audio.data for event in turn.of("audio"))  # the SDK's decoded PCM16
    assert len(audio) == summarize("audio", "ga", turn.server)["audio_bytes"]
    assert turn.of("audio_end")
    assert turn.of("agent_end")


def hold_turns(gateway: GatewayProcess, provider: str, model: str) -> dict[str, AgentsTurn]:
    """A text turn and an audio turn, each in a session of its own, on an event loop of their own."""

    async def both() -> dict[str, AgentsTurn]:
        return {
            "text": await agents_session(gateway, provider, model, ["text"], say),
            "audio": await agents_session(gateway, provider, model, ["audio"], speak),
        }

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, both()).result()


# -- the cell: the turns with the strict GA-only fake provider --------------------------------------


@pytest.fixture(scope="module")
def turns(openai_agents: None, gateway: GatewayProcess) -> dict[str, AgentsTurn]:
    return hold_turns(gateway, "openai", cell_model("openai-agents", "ga", gateway.runtime))


@pytest.fixture(scope="module")
def upstream(
    turns: dict[str, AgentsTurn], gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> list[UpstreamConnection]:
    """What the fake provider saw of the turns: a connection per session."""
    return upstream_of(fake_upstream, cell_model("openai-agents", "ga", gateway.runtime), 2)


def test_text_turn(turns: dict[str, AgentsTurn]) -> None:
    check_fake_text_turn(summarize("text", "ga", turns["text"].server), "ga")
    assert check_text_reply(turns["text"]) == REPLY_TEXT


def test_audio_turn(turns: dict[str, AgentsTurn]) -> None:
    check_fake_audio_turn(summarize("audio", "ga", turns["audio"].server), "ga")
    check_audio_reply(turns["audio"])


def test_strict_provider_refused_nothing(upstream: list[UpstreamConnection]) -> None:
    check_strict_provider(upstream)  # the key too: it reached the provider as a bearer


def test_provider_got_the_turns_intact(upstream: list[UpstreamConnection]) -> None:
    check_provider_got_the_turns(upstream)


# -- the same turns with the simulator: a separate check, not the cell's ---------------------------


@pytest.fixture(scope="module")
def simulator_turns(openai_agents: None, gateway: GatewayProcess) -> dict[str, AgentsTurn]:
    return hold_turns(gateway, "simulator", SIMULATOR_MODEL)


@pytest.mark.simulator
def test_simulator_text_turn(simulator_turns: dict[str, AgentsTurn]) -> None:
    check_simulator_text_turn(summarize("text", "ga", simulator_turns["text"].server), "ga")
    assert check_text_reply(simulator_turns["text"]).startswith(f"You said: {USER_TEXT}")


@pytest.mark.simulator
def test_simulator_audio_turn(simulator_turns: dict[str, AgentsTurn]) -> None:
    check_simulator_audio_turn(summarize("audio", "ga", simulator_turns["audio"].server), "ga")
    check_audio_reply(simulator_turns["audio"])


# -- the same SDK with xAI and Gemini Live (fakes of both): the strictest client of the matrix ------


@pytest.fixture(scope="module")
def other_providers_gateway(
    openai_agents: None, runtime: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway whose xAI and Gemini are fakes that take the client's key."""
    with FakeXai(api_key=CLIENT_KEY) as xai:
        gemini = FakeGemini(api_key=CLIENT_KEY).start()
        try:
            env = {"XAI_REALTIME_URL": xai.url, "GEMINI_LIVE_URL": gemini.url}
            log = tmp_path_factory.mktemp(f"{runtime}-agents-providers") / "gateway.log"
            process = start_gateway(runtime, env, log)
            yield process
            process.stop()
        finally:
            gemini.stop()


@pytest.mark.parametrize(("provider", "reply"), [("xai", XAI_REPLY), ("gemini", GEMINI_REPLY)])
def test_text_and_audio_turns_with_xai_and_gemini(
    other_providers_gateway: GatewayProcess, provider: str, reply: str
) -> None:
    turns = hold_turns(other_providers_gateway, provider, "gpt-realtime")
    for step, turn in turns.items():
        # The SDK's session.update carries OpenAI's tracing, which Gemini cannot: the one notice
        # (field_dropped, documented in docs/providers.md) that may come; nothing else.
        notices = [event for event in turn.events if _notice_param(event) is not None]
        assert all(_notice_param(notice) in GEMINI_DROPPED for notice in notices), notices
        turn.events = [event for event in turn.events if _notice_param(event) is None]
        turn.server = [
            event
            for event in turn.server
            if not (event.get("type") == "error" and event["error"].get("code") == "field_dropped")
        ]
        check_sdk_was_happy(turn)  # every event validated by the SDK's own types
        summary = summarize(step, "ga", turn.server)
        check_turn(summary, "ga")
        assert reply in summary["text"] + summary["transcript"], summary
    check_audio_reply(turns["audio"])
    assert summarize("audio", "ga", turns["audio"].server)["audio_bytes"] > 0


def _notice_param(event: Any) -> str | None:
    """The field a ``field_dropped`` notice names, as the SDK delivered it (a session error event, or
    the raw model event it came as); None for any other event."""
    if event.type == "error":
        error = event.error
    elif event.type == "raw_model_event" and getattr(event.data, "type", None) == "error":
        error = event.data.error
    else:
        return None
    if isinstance(error, dict):
        return error.get("param") if error.get("code") == "field_dropped" else None
    return getattr(error, "param", None) if getattr(error, "code", None) == "field_dropped" else None
