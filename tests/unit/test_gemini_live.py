"""The Gemini translator against the fake Gemini Live endpoint, over real WebSockets.

:class:`MiniRelay` is the whole of what a relay does with the translator (the contract in
``shared.translation.gemini.translator``): client events in, Gemini frames out, Gemini's messages
in, client events out, and a move to a new connection when the translator asks. The fake is as
strict as Google documents Gemini (``tests/support/fake_gemini.py``), and is tested to be so here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import sys
from array import array
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support.fake_gemini import (
    API_KEY,
    BAD_KEY,
    HEARD_TEXT,
    INVALID_ARGUMENT,
    MISSING_KEY,
    REPLY_TEXT,
    FakeGemini,
    GeminiConnection,
)
from support.ga_events import check_ga
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from shared.translation.gemini import Frames, GeminiTranslator

Event = dict[str, Any]

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def gemini() -> AsyncIterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


def tone(ms: int, amplitude: int) -> str:
    count = 24_000 * ms // 1000
    samples = array("h", (int(amplitude * math.sin(2 * math.pi * 300 * i / 24_000)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return base64.b64encode(samples.tobytes()).decode()


class MiniRelay:
    """A relay's part, and no more: frames between a (scripted) client, the translator and Gemini."""

    def __init__(self, gemini: FakeGemini, model: str, **options: Any) -> None:
        self.gemini = gemini
        self.translator = GeminiTranslator(model, **options)
        self.events: list[Event] = []  # what the client got
        self.socket: ClientConnection | None = None
        self.moves = 0

    async def open(self) -> None:
        self.socket = await self._connect()
        await self.apply(self.translator.opened())

    async def _connect(self) -> ClientConnection:
        return await connect(self.gemini.url, additional_headers={"x-goog-api-key": API_KEY})

    async def apply(self, frames: Frames) -> None:
        self.events += [check_ga(frame) for frame in frames.client]
        if frames.reconnect is not None:
            old, self.socket = self.socket, await self._connect()
            await self.socket.send(frames.reconnect.setup)
            assert old is not None
            await old.close()  # and nothing more it says reaches the translator
            self.moves += 1
        assert self.socket is not None
        for frame in frames.provider:
            await self.socket.send(frame)

    async def send(self, event: Event) -> None:
        await self.apply(self.translator.to_provider(event))

    async def until(self, done: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
        """Relay Gemini's messages until ``done(events)``; the events that came meanwhile."""
        start = len(self.events)
        async with asyncio.timeout(timeout):
            while not done(self.events[start:]):
                assert self.socket is not None
                message = await self.socket.recv()
                assert isinstance(message, bytes)  # Gemini sends its JSON in binary frames
                await self.apply(self.translator.to_client(message))
        return self.events[start:]

    async def flush_setup(self) -> None:
        await self.apply(self.translator.flush_setup())

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()

    def connection(self) -> GeminiConnection:
        return self.gemini.connections[-1]


def has(kind: str, count: int = 1) -> Callable[[list[Event]], bool]:
    return lambda events: sum(e["type"] == kind for e in events) >= count


def types(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


async def text_turn(relay: MiniRelay, text: str) -> list[Event]:
    await relay.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        }
    )
    await relay.send({"type": "response.create"})
    return await relay.until(has("response.done"))


async def test_text_turn(gemini: FakeGemini) -> None:
    relay = MiniRelay(gemini, "gemini-3.1-flash-live-preview")
    await relay.open()
    session = {"type": "realtime", "output_modalities": ["text"], "instructions": "Be brief."}
    await relay.send({"type": "session.update", "session": session})
    events = await text_turn(relay, "Hi there")
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"] == [{"type": "output_text", "text": REPLY_TEXT}]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == REPLY_TEXT
    assert done["usage"]["input_token_details"]["text_tokens"] == 2
    assert done["usage"]["output_token_details"] == {"text_tokens": 3, "audio_tokens": 0}
    connection = relay.connection()
    assert connection.setup is not None
    assert connection.setup["system_instruction"] == {"parts": [{"text": "Be brief."}]}
    assert connection.close_code is None or connection.close_code == 1000
    await relay.close()


async def test_audio_turn(gemini: FakeGemini) -> None:
    relay = MiniRelay(gemini, "gemini-3.8-live")
    await relay.open()
    transcription = {"model": "gpt-4o-transcribe"}
    await relay.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"transcription": transcription}}},
        }
    )
    for _ in range(3):
        await relay.send({"type": "input_audio_buffer.append", "audio": tone(100, 12000)})
    for _ in range(6):
        await relay.send({"type": "input_audio_buffer.append", "audio": tone(100, 0)})
    events = await relay.until(has("response.done"))
    order = types(events)
    assert order[:5] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    completed = next(
        e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    assert completed["transcript"] == HEARD_TEXT
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio) == 3 * 24_000 * 2 * 40 // 1000  # three 40 ms chunks at 24 kHz, as Gemini sent them
    transcript = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert transcript == REPLY_TEXT
    usage = events[-1]["response"]["usage"]
    assert usage["output_token_details"]["audio_tokens"] == 4  # 120 ms at 32 tokens a second
    assert usage["input_token_details"]["audio_tokens"] > 0
    connection = relay.connection()
    assert set(connection.input_rates) == {16_000}
    # The reply began after 500 ms of quiet: the last appends may still be on their way to the fake,
    # whose count is kept on its own thread (it notifies before counting, so it is polled).
    async with asyncio.timeout(5):
        while connection.input_audio_bytes < 900 * 32 - 32:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert connection.input_audio_bytes == pytest.approx(900 * 32, abs=32)  # 900 ms at 16 kHz
    await relay.close()


async def test_audio_turn_without_turn_detection(gemini: FakeGemini) -> None:
    relay = MiniRelay(gemini, "gemini-3.8-live")
    await relay.open()
    await relay.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    for _ in range(3):
        await relay.send({"type": "input_audio_buffer.append", "audio": tone(100, 12000)})
    await relay.send({"type": "input_audio_buffer.commit"})
    await relay.send({"type": "response.create"})
    events = await relay.until(has("response.done"))
    assert events[-1]["response"]["status"] == "completed"
    realtime = [list(m["realtimeInput"]) for m in relay.connection().of_kind("realtimeInput")]
    assert realtime[0] == ["activityStart"]
    assert realtime[-1] == ["activityEnd"]
    await relay.close()


async def test_function_call_turn(gemini: FakeGemini) -> None:
    relay = MiniRelay(gemini, "gemini-3.8-live")
    await relay.open()
    await relay.send({"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
    events = await text_turn(relay, "What is the weather in Paris?")
    call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    output = {
        "type": "function_call_output",
        "call_id": call["call_id"],
        "output": '{"output": "sunny, 21 C"}',
    }
    await relay.send({"type": "conversation.item.create", "item": output})
    await relay.send({"type": "response.create"})
    events = await relay.until(has("response.done"))
    transcript = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert transcript == "Result: sunny, 21 C"
    (response,) = relay.connection().of_kind("toolResponse")
    assert response["toolResponse"]["functionResponses"][0]["id"] == call["call_id"]
    await relay.close()


async def test_go_away_moves_the_session_and_it_goes_on(gemini: FakeGemini) -> None:
    relay = MiniRelay(gemini, "gemini-3.1-flash-live-preview")
    await relay.open()
    await relay.send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    )
    await text_turn(relay, "Remember: blue")
    first = relay.connection()
    handle = gemini.wait_for(lambda _: [m for m in first.sent if "sessionResumptionUpdate" in m][1:])
    gemini.inject(first, {"goAway": {"timeLeft": "10s"}})
    await relay.until(lambda _: relay.moves == 1)
    second = relay.connection()
    assert second is not first
    resumed_from = second.setup["session_resumption"]["handle"] if second.setup else None
    assert resumed_from == handle[-1]["sessionResumptionUpdate"]["newHandle"]
    events = await text_turn(relay, "What did I say?")
    assert events[-1]["response"]["status"] == "completed"
    assert not any(e["type"] in ("error", "session.created", "session.updated") for e in events)
    await relay.close()


async def test_a_later_session_update_reaches_gemini_through_resumption(gemini: FakeGemini) -> None:
    relay = MiniRelay(gemini, "gemini-3.8-live")
    await relay.open()
    await relay.send({"type": "session.update", "session": {"type": "realtime", "instructions": "One."}})
    await text_turn(relay, "Hello")
    await relay.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Two."}})
    events = await relay.until(has("session.updated"))
    assert events[-1]["session"]["instructions"] == "Two."
    assert relay.moves == 1
    setup = relay.connection().setup
    assert setup is not None
    assert setup["system_instruction"] == {"parts": [{"text": "Two."}]}
    assert setup["session_resumption"]["handle"].startswith("handle-")
    assert (await text_turn(relay, "Again"))[-1]["response"]["status"] == "completed"
    await relay.close()


# -- the fake is as strict as Gemini is documented to be -------------------------------------------------


async def refusal(
    gemini: FakeGemini, *messages: str, query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """Send ``messages`` and return the close code and reason Gemini answers with."""
    headers = {"x-goog-api-key": API_KEY} if headers is None else headers
    async with connect(gemini.url + query, additional_headers=headers) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await _send_then_read(socket, messages)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _send_then_read(socket: ClientConnection, messages: tuple[str, ...]) -> None:
    for message in messages:
        await socket.send(message)
    while True:
        await asyncio.wait_for(socket.recv(), 5)


SETUP = json.dumps({"setup": {"model": "models/gemini-3.8-live"}})
TEXT = json.dumps(
    {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}], "turnComplete": True}}
)


async def test_fake_refuses_anything_before_setup(gemini: FakeGemini) -> None:
    assert await refusal(gemini, TEXT) == (1007, INVALID_ARGUMENT)


async def test_fake_refuses_a_second_setup(gemini: FakeGemini) -> None:
    assert await refusal(gemini, SETUP, SETUP) == (1007, INVALID_ARGUMENT)


async def test_fake_refuses_unknown_fields_as_google_does(gemini: FakeGemini) -> None:
    setup = json.dumps({"setup": {"model": "models/gemini-3.8-live", "generationConfig": {"voice": "x"}}})
    code, reason = await refusal(gemini, setup)
    assert code == 1007
    expected = "Invalid JSON payload received. Unknown name \"voice\" at 'setup.generation_config': "
    expected += "Cannot find field."
    assert reason == expected
    vertex_only = json.dumps(
        {"setup": {"model": "models/gemini-3.8-live", "sessionResumption": {"transparent": True}}}
    )
    assert (await refusal(gemini, vertex_only))[0] == 1007


async def test_fake_refuses_two_kinds_in_one_message_and_bad_enums(gemini: FakeGemini) -> None:
    both = json.dumps({"setup": {"model": "models/gemini-3.8-live"}, "clientContent": {}})
    assert await refusal(gemini, both) == (1007, INVALID_ARGUMENT)
    modality = json.dumps(
        {"setup": {"model": "models/gemini-3.8-live", "generationConfig": {"responseModalities": ["VIDEO"]}}}
    )
    code, reason = await refusal(gemini, modality)
    assert code == 1007
    assert reason.startswith("Invalid value at 'setup.generation_config.response_modalities'")
    text_on_audio_only = json.dumps(
        {"setup": {"model": "models/gemini-3.8-live", "generationConfig": {"responseModalities": ["TEXT"]}}}
    )
    assert await refusal(gemini, text_on_audio_only) == (1007, INVALID_ARGUMENT)


async def test_fake_refuses_unknown_models_and_keys(gemini: FakeGemini) -> None:
    code, reason = await refusal(gemini, json.dumps({"setup": {"model": "models/gpt-realtime"}}))
    assert code == 1008
    assert reason.startswith("models/gpt-realtime is not found")
    assert await refusal(gemini, SETUP, headers={}) == (1008, MISSING_KEY[:123])
    assert await refusal(gemini, SETUP, headers={"x-goog-api-key": "wrong"}) == (1007, BAD_KEY)


async def test_fake_takes_the_key_in_the_query_too(gemini: FakeGemini) -> None:
    async with connect(f"{gemini.url}?key={API_KEY}") as socket:
        await socket.send(SETUP)
        assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"setupComplete": {}}


async def test_fake_refuses_activity_signals_against_its_detection_mode(gemini: FakeGemini) -> None:
    start = json.dumps({"realtimeInput": {"activityStart": {}}})
    assert await refusal(gemini, SETUP, start) == (1007, INVALID_ARGUMENT)
    manual = json.dumps(
        {
            "setup": {
                "model": "models/gemini-3.8-live",
                "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
            }
        }
    )
    end_of_stream = json.dumps({"realtimeInput": {"audioStreamEnd": True}})
    assert await refusal(gemini, manual, end_of_stream) == (1007, INVALID_ARGUMENT)


async def test_fake_refuses_results_for_calls_it_did_not_make(gemini: FakeGemini) -> None:
    result = json.dumps(
        {"toolResponse": {"functionResponses": [{"id": "nope", "name": "f", "response": {}}]}}
    )
    assert await refusal(gemini, SETUP, result) == (1007, INVALID_ARGUMENT)
