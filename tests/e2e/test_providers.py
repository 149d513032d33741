"""Providers beyond OpenAI through the gateway, on both runtimes: xAI (``provider=xai``) and Gemini
Live (``provider=gemini``).

The official ``openai`` SDK, GA (``client.realtime``) and beta (``client.beta.realtime``), holds a text
turn, a turn of speech (PCM16 appended in 100 ms chunks; the provider's server VAD ends the turn) and
a function-call turn against a fake of xAI's Grok Voice Agent API (tests/support/fake_xai.py) that
deviates from OpenAI's GA events as xAI is documented to, and against a fake of Gemini Live
(tests/support/fake_gemini.py, strict as Google documents it: a message before ``setup`` or a second
``setup`` closes the socket with 1007); with Gemini, a ``goAway`` moves the session to a new
connection the client does not notice. Every event the client receives is checked
strictly against the protocol it speaks (the SDK's own union, no undeclared field), so a deviation
the gateway let through fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import websockets
from clients.harness import speech_pcm16
from openai import AsyncOpenAI
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from pydantic import Field, TypeAdapter
from support import fake_gemini
from support.fake_gemini import FakeGemini
from support.fake_xai import API_KEY, HEARD_TEXT, REPLY_TEXT, FakeXai
from support.fault_upstream import FaultUpstream
from support.ga_events import check_ga
from support.gateway_process import GatewayProcess, start_gateway

from shared.events import validate_server_event

TURN_TIMEOUT_SECONDS = 15.0
Event = dict[str, Any]
_BETA_SERVER = TypeAdapter(Annotated[BetaServerEvent, Field(discriminator="type")])
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def fake_xai() -> Iterator[FakeXai]:
    with FakeXai() as fake:
        yield fake


@pytest.fixture(scope="module")
def xai_gateway(
    runtime: str, fake_xai: FakeXai, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {"XAI_REALTIME_URL": fake_xai.url, "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "5"}
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-xai") / "gateway.log")
    yield process
    process.stop()


def check_beta(frame: str) -> Event:
    """``frame``, a valid beta server event. The beta SDK's session types ``model`` as a literal of
    OpenAI's names (it parses unchecked, so another provider's model is no problem to it): that
    one field is checked as a string instead."""
    event = json.loads(frame)
    validate_server_event(event, protocol="beta")
    session = event.get("session")
    if isinstance(session, dict) and isinstance(session.get("model"), str):
        checked = {**event, "session": {**session, "model": "gpt-realtime"}}
    else:
        checked = event
    assert _BETA_SERVER.validate_python(checked).type == event["type"]
    return event


class Turns:
    """One SDK connection: sends events, reads raw frames until an event type, checks each one."""

    def __init__(self, connection: Any, protocol: str) -> None:
        self.connection = connection
        self.check = check_ga if protocol == "ga" else check_beta
        self.beta = protocol == "beta"
        self.events: list[Event] = []

    async def send(self, event: Event) -> None:
        await self.connection.send(event)

    async def until(self, kind: str) -> list[Event]:
        start = len(self.events)
        while True:
            event = self.check((await self.connection.recv_bytes()).decode())
            self.events.append(event)
            assert event["type"] != "error", event
            if event["type"] == kind:
                return self.events[start:]

    def transcript_done(self) -> str:
        return "response.audio_transcript.done" if self.beta else "response.output_audio_transcript.done"


def user_text(text: str) -> Event:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }


def session_update(beta: bool) -> Event:
    if beta:
        session = {"voice": "coral", "tools": [WEATHER_TOOL]}
    else:
        session = {"type": "realtime", "audio": {"output": {"voice": "coral"}}, "tools": [WEATHER_TOOL]}
    return {"type": "session.update", "session": session}


@pytest.mark.parametrize("protocol", ["ga", "beta"])
async def test_the_sdk_holds_text_audio_and_function_call_turns_with_xai(
    xai_gateway: GatewayProcess, fake_xai: FakeXai, protocol: str
) -> None:
    async with AsyncOpenAI(api_key=API_KEY, websocket_base_url=xai_gateway.url(path="/v1")) as client:
        realtime = client.realtime if protocol == "ga" else client.beta.realtime
        manager = realtime.connect(model="gpt-realtime", extra_query={"provider": "xai"})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), manager as connection:
            turns = Turns(connection, protocol)
            first = await turns.until("session.created")
            assert len(first) == 1  # session.created is the first event, as from OpenAI
            await turns.send(session_update(turns.beta))
            updated = (await turns.until("session.updated"))[-1]["session"]
            voice = updated["voice"] if turns.beta else updated["audio"]["output"]["voice"]
            assert voice == "Eve"  # OpenAI's coral, in xAI's voices
            reached = fake_xai.connections[-1]
            assert reached.headers["authorization"] == f"Bearer {API_KEY}"
            assert reached.query["model"] == "grok-voice-latest"
            assert reached.session["voice"] == "Eve"

            # A text turn.
            await turns.send(user_text("Hello"))
            await turns.send({"type": "response.create"})
            events = await turns.until("response.done")
            spoken = next(e for e in events if e["type"] == turns.transcript_done())
            assert spoken["transcript"] == REPLY_TEXT
            assert events[-1]["response"]["usage"]["total_tokens"] == 12

            # A turn of speech: the provider's VAD hears it and asks for the weather tool.
            pcm = speech_pcm16()
            for start in range(0, len(pcm), 4800):
                chunk = base64.b64encode(pcm[start : start + 4800]).decode()
                await turns.send({"type": "input_audio_buffer.append", "audio": chunk})
            events = await turns.until("response.done")
            kinds = [e["type"] for e in events]
            assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.created")
            heard = next(
                e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
            )
            assert heard["transcript"] == HEARD_TEXT
            started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
            assert started["audio_start_ms"] >= 0

            # The function call it made, and its result.
            call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Paris"})
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
            await turns.send({"type": "conversation.item.create", "item": output})
            await turns.send({"type": "response.create"})
            events = await turns.until("response.done")
            spoken = next(e for e in events if e["type"] == turns.transcript_done())
            assert spoken["transcript"] == "Result: sunny"
    sent = [event["type"] for event in reached.received]
    assert "session.update" in sent
    assert sent.count("response.create") == 2
    # xAI reads the voice at the session's top, where the gateway put it.
    update = next(event for event in reached.received if event["type"] == "session.update")
    assert update["session"]["voice"] == "Eve"


# -- Gemini Live -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_gemini_live() -> Iterator[FakeGemini]:
    fake = FakeGemini().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gemini_gateway(
    runtime: str, fake_gemini_live: FakeGemini, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {"GEMINI_LIVE_URL": fake_gemini_live.url, "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "5"}
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-gemini") / "gateway.log")
    yield process
    process.stop()


def gemini_session_update(beta: bool) -> Event:
    if beta:
        session = {"input_audio_transcription": {"model": "whisper-1"}, "tools": [WEATHER_TOOL]}
    else:
        transcription = {"model": "gpt-4o-transcribe"}
        session = {
            "type": "realtime",
            "audio": {"input": {"transcription": transcription}},
            "tools": [WEATHER_TOOL],
        }
    return {"type": "session.update", "session": session}


@pytest.mark.parametrize("protocol", ["ga", "beta"])
async def test_the_sdk_holds_text_audio_and_function_call_turns_with_gemini(
    gemini_gateway: GatewayProcess, fake_gemini_live: FakeGemini, protocol: str
) -> None:
    base = gemini_gateway.url(path="/v1")
    async with AsyncOpenAI(api_key=fake_gemini.API_KEY, websocket_base_url=base) as client:
        realtime = client.realtime if protocol == "ga" else client.beta.realtime
        manager = realtime.connect(model="gpt-realtime", extra_query={"provider": "gemini"})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), manager as connection:
            turns = Turns(connection, protocol)
            assert len(await turns.until("session.created")) == 1
            await turns.send(gemini_session_update(turns.beta))
            await turns.until("session.updated")

            # A text turn: the setup goes with it, then the turn.
            await turns.send(user_text("Hello"))
            await turns.send({"type": "response.create"})
            events = await turns.until("response.done")
            spoken = next(e for e in events if e["type"] == turns.transcript_done())
            assert spoken["transcript"] == fake_gemini.REPLY_TEXT
            assert events[-1]["response"]["status"] == "completed"
            reached = fake_gemini_live.connections[-1]
            assert reached.key == fake_gemini.API_KEY
            assert reached.setup is not None
            assert reached.setup["model"] == "models/gemini-3.8-live"

            # A turn of speech, heard by Gemini's activity detection.
            pcm = speech_pcm16()
            for start in range(0, len(pcm), 4800):
                chunk = base64.b64encode(pcm[start : start + 4800]).decode()
                await turns.send({"type": "input_audio_buffer.append", "audio": chunk})
            since_speech = len(turns.events)
            events = await turns.until("response.done")
            kinds = [e["type"] for e in events]
            assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.created")

            # It asked for the weather: a function call, and its result.
            call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Paris"})
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
            await turns.send({"type": "conversation.item.create", "item": output})
            await turns.send({"type": "response.create"})
            events = await turns.until("response.done")
            spoken = next(e for e in events if e["type"] == turns.transcript_done())
            assert spoken["transcript"] == "Result: sunny"
            # Gemini completes the speech's transcript with the turn, which ends after the call.
            heard = next(
                e
                for e in turns.events[since_speech:]
                if e["type"] == "conversation.item.input_audio_transcription.completed"
            )
            assert heard["transcript"] == fake_gemini.HEARD_TEXT
    assert len(reached.of_kind("setup")) == 1
    assert reached.close_code in (None, 1000)


async def test_a_gemini_go_away_moves_the_session_without_the_client_noticing(
    gemini_gateway: GatewayProcess, fake_gemini_live: FakeGemini
) -> None:
    base = gemini_gateway.url(path="/v1")
    async with AsyncOpenAI(api_key=fake_gemini.API_KEY, websocket_base_url=base) as client:
        manager = client.realtime.connect(model="gpt-realtime", extra_query={"provider": "gemini"})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), manager as connection:
            turns = Turns(connection, "ga")
            await turns.until("session.created")
            await turns.send(user_text("Remember: blue"))
            await turns.send({"type": "response.create"})
            await turns.until("response.done")
            first = fake_gemini_live.connections[-1]
            handles = fake_gemini_live.wait_for(
                lambda _: [m for m in first.sent if "sessionResumptionUpdate" in m][1:]
            )
            fake_gemini_live.inject(first, {"goAway": {"timeLeft": "10s"}})
            second = fake_gemini_live.wait_for(
                lambda _: fake_gemini_live.connections[-1] is not first and fake_gemini_live.connections[-1]
            )
            await turns.send(user_text("What did I say?"))
            await turns.send({"type": "response.create"})
            events = await turns.until("response.done")
            assert events[-1]["response"]["status"] == "completed"
            assert not any(e["type"] in ("session.created", "session.updated") for e in events)
    assert second.setup is not None
    assert second.setup["session_resumption"]["handle"] == handles[-1]["sessionResumptionUpdate"]["newHandle"]
    assert first.close_code == 1000


# -- fallback at connect -----------------------------------------------------------------------------------

CLIENT_KEY = "sk-client-key-for-openai-only"


@pytest.fixture(scope="module")
def fault_provider() -> Iterator[FaultUpstream]:
    fault = FaultUpstream().start()
    yield fault
    fault.stop()


@pytest.fixture(scope="module")
def fallback_gateway(
    runtime: str, fault_provider: FaultUpstream, fake_xai: FakeXai, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """OpenAI is the misbehaving provider (its fault chosen by the model); xAI, with the operator's
    key, is next in line."""
    env = {
        "OPENAI_REALTIME_URL": fault_provider.url,
        "XAI_REALTIME_URL": fake_xai.url,
        "XAI_API_KEY": API_KEY,
        "FALLBACK_PROVIDERS": "openai=xai",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "4",
    }
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-fallback") / "gateway.log")
    yield process
    process.stop()


EARLY_EVENTS = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}},
    user_text("Hello"),
    {"type": "response.create"},
]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("status-503", "HTTP 503"),
        ("status-500", "HTTP 500"),
        ("status-429", "HTTP 429"),
        ("hang", "timed out"),
        ("silent", "timed out"),
        ("reset-before-answer", "unreachable"),
    ],
)
async def test_a_provider_failing_at_connect_is_replaced_by_the_next(
    fallback_gateway: GatewayProcess,
    fault_provider: FaultUpstream,
    fake_xai: FakeXai,
    runtime: str,
    fault: str,
    reason: str,
) -> None:
    before = len(fake_xai.connections)
    url = fallback_gateway.url(model=fault)
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with websockets.connect(url, additional_headers=headers) as client:
        for event in EARLY_EVENTS:  # before the provider has said anything
            await client.send(json.dumps(event))
        received: list[Event] = []
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS):
            while not received or received[-1]["type"] != "response.done":
                received.append(check_ga(await client.recv()))
    kinds = [event["type"] for event in received]
    assert kinds[0] == "session.created"
    assert kinds.count("session.created") == 1
    assert "error" not in kinds
    spoken = next(e for e in received if e["type"] == "response.output_audio_transcript.done")
    assert spoken["transcript"] == REPLY_TEXT
    assert len(fake_xai.connections) == before + 1
    reached = fake_xai.connections[-1]
    assert reached.headers["authorization"] == f"Bearer {API_KEY}"  # the operator's key, never the client's
    assert [event["type"] for event in reached.received][:3] == [event["type"] for event in EARLY_EVENTS]
    assert [event["type"] for event in reached.received].count("response.create") == 1
    log = fallback_gateway.log()
    assert f"upstream attempt failed provider=openai reason={reason}" in log
    assert CLIENT_KEY not in log


async def test_a_refusal_that_is_the_clients_problem_is_not_retried_elsewhere(
    fallback_gateway: GatewayProcess, fake_xai: FakeXai
) -> None:
    before = len(fake_xai.connections)
    url = fallback_gateway.url(model="status-401")
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    ) as client:
        event = json.loads(await asyncio.wait_for(client.recv(), TURN_TIMEOUT_SECONDS))
        assert event["type"] == "error"
        assert event["error"]["code"] == "upstream_unauthorized"
    assert len(fake_xai.connections) == before
