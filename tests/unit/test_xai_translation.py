"""Tests of `shared.translation.xai`: xAI's voice agent events made GA, unit by unit and over sockets.

Every event the client gets is checked strictly against `shared.events` and the openai SDK's GA
union (`support.ga_events.check_ga`); the fake (`support.fake_xai`) sends xAI's deviations.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import sys
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.fake_xai import API_KEY, HEARD_TEXT, REPLY_TEXT, FakeXai
from support.ga_events import check_ga
from websockets.asyncio.client import ClientConnection, connect

from shared.translation.xai import XaiNormalizer

Event = dict[str, Any]


def normalised(normalizer: XaiNormalizer, *events: Event) -> list[Event]:
    out: list[Event] = []
    for event in events:
        out += [check_ga(frame) for frame in normalizer.to_client(json.dumps(event))]
    return out


def test_pings_are_dropped_and_a_session_created_comes_first() -> None:
    n = XaiNormalizer()
    assert normalised(n, {"type": "ping", "event_id": "e0", "timestamp": 1}) == []
    events = normalised(
        n,
        {
            "type": "conversation.created",
            "event_id": "e1",
            "conversation": {"id": "c", "object": "realtime.conversation"},
        },
    )
    assert [e["type"] for e in events] == ["session.created", "conversation.created"]
    assert events[0]["session"]["type"] == "realtime"
    later = normalised(n, {"type": "session.created", "event_id": "e2", "session": {"voice": "Rex"}})
    assert later[0]["type"] == "session.updated"
    assert later[0]["session"]["audio"]["output"]["voice"] == "Rex"


def test_the_flat_session_becomes_ga() -> None:
    n = XaiNormalizer()
    flat = {
        "id": "s",
        "object": "realtime.session",
        "voice": "Eve",
        "turn_detection": None,
        "instructions": "Hi",
        "tools": [],
    }
    (event,) = normalised(n, {"type": "session.updated", "event_id": "e", "session": flat})
    session = event["session"]
    assert "voice" not in session
    assert "turn_detection" not in session
    assert session["audio"]["output"]["voice"] == "Eve"
    assert session["audio"]["input"]["turn_detection"] is None
    assert session["instructions"] == "Hi"


def test_a_reply_missing_indices_parts_and_transcripts_is_completed() -> None:
    n = XaiNormalizer()
    at = {"response_id": "r1", "item_id": "i1"}
    item = {
        "id": "i1",
        "object": "realtime.item",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    events = normalised(
        n,
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {
                "id": "r1",
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
                "usage": {},
            },
        },
        {"type": "response.output_item.added", "event_id": "e2", "response_id": "r1", "item": item},
        {
            "type": "response.content_part.added",
            "event_id": "e3",
            **at,
            "part": {"type": "audio", "transcript": ""},
        },
        {"type": "response.output_audio_transcript.delta", "event_id": "e4", **at, "delta": "Hel"},
        {"type": "response.output_audio_transcript.delta", "event_id": "e5", **at, "delta": "lo"},
        {"type": "response.output_audio.done", "event_id": "e6", **at},
        {"type": "response.output_audio_transcript.done", "event_id": "e7", **at},
        {"type": "response.content_part.done", "event_id": "e8", **at},
        {
            "type": "response.done",
            "event_id": "e9",
            "response": {
                "id": "r1",
                "object": "realtime.response",
                "status": "completed",
                "output": [],
                "usage": {},
            },
            "usage": {"total_tokens": 3},
        },
    )
    assert events[0]["response"]["usage"] is None
    assert all(e["output_index"] == 0 for e in events[1:8])
    assert all(e["content_index"] == 0 for e in events[2:8])
    assert events[6]["transcript"] == "Hello"
    assert events[7]["part"] == {"type": "audio", "transcript": "Hello"}
    assert events[8]["response"]["usage"] == {"total_tokens": 3}
    assert "usage" not in events[8]


def test_function_calls_get_their_place_and_lose_the_tool_role() -> None:
    n = XaiNormalizer()
    call = {
        "id": "i2",
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "role": "tool",
        "name": "f",
        "call_id": "c1",
        "arguments": "{}",
    }
    events = normalised(
        n,
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {"id": "r2", "object": "realtime.response", "status": "in_progress", "output": []},
        },
        {"type": "response.output_item.added", "event_id": "e2", "response_id": "r2", "item": call},
        {"type": "conversation.item.added", "event_id": "e3", "item": call},
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e4",
            "call_id": "c1",
            "name": "f",
            "arguments": "{}",
        },
    )
    assert "role" not in events[1]["item"]
    assert "role" not in events[2]["item"]
    assert (events[3]["response_id"], events[3]["item_id"], events[3]["output_index"]) == ("r2", "i2", 0)


def test_a_call_seen_only_in_response_done_gets_its_arguments_event() -> None:
    n = XaiNormalizer()
    call = {
        "id": "i3",
        "object": "realtime.item",
        "type": "function_call",
        "status": "completed",
        "role": "tool",
        "name": "f",
        "call_id": "c9",
        "arguments": '{"a":1}',
    }
    done = {
        "type": "response.done",
        "event_id": "e",
        "response": {"id": "r3", "object": "realtime.response", "status": "completed", "output": [call]},
    }
    events = normalised(n, done)
    assert [e["type"] for e in events] == ["response.function_call_arguments.done", "response.done"]
    assert events[0]["arguments"] == '{"a":1}'
    assert events[0]["call_id"] == "c9"


def test_speech_events_and_transcriptions_get_times_and_usage_from_the_audio_appended() -> None:
    n = XaiNormalizer()
    chunk = base64.b64encode(bytes(4800)).decode()  # 100 ms at 24 kHz
    for _ in range(3):
        n.to_provider({"type": "input_audio_buffer.append", "audio": chunk})
    started = normalised(n, {"type": "input_audio_buffer.speech_started", "event_id": "e1", "item_id": "u1"})
    for _ in range(5):
        n.to_provider({"type": "input_audio_buffer.append", "audio": chunk})
    stopped = normalised(n, {"type": "input_audio_buffer.speech_stopped", "event_id": "e2", "item_id": "u1"})
    completed = normalised(
        n,
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e3",
            "item_id": "u1",
            "transcript": "hi",
        },
    )
    assert started[0]["audio_start_ms"] == 300
    assert stopped[0]["audio_end_ms"] == 800
    assert completed[0]["content_index"] == 0
    assert completed[0]["usage"] == {"type": "duration", "seconds": 0.5}


def test_complete_audio_deltas_pass_as_sent() -> None:
    n = XaiNormalizer()
    frame = (
        '{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"i",'
        '"output_index":0,"content_index":0,"delta":"AAAA"}'
    )
    assert n.to_client(frame) == [frame]


def test_session_update_puts_voice_and_turn_detection_where_xai_reads_them() -> None:
    n = XaiNormalizer()
    update = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad"}}, "output": {"voice": "alloy"}},
        },
    }
    sent = json.loads(n.to_provider(update))
    assert sent["session"]["voice"] == "Ara"
    assert sent["session"]["turn_detection"] == {"type": "server_vad"}
    assert sent["session"]["audio"] == {"input": {}, "output": {}}
    assert update["session"]["audio"]["output"] == {"voice": "alloy"}  # the client's event is left alone
    append = {"type": "input_audio_buffer.append", "audio": "AAAA"}
    assert (
        n.to_provider(append, raw='{"type":"input_audio_buffer.append","audio":"AAAA"}')
        == '{"type":"input_audio_buffer.append","audio":"AAAA"}'
    )


# -- over sockets ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xai() -> Iterator[FakeXai]:
    with FakeXai() as fake:
        yield fake


class MiniRelay:
    def __init__(self, xai: FakeXai) -> None:
        self.xai = xai
        self.normalizer = XaiNormalizer()
        self.events: list[Event] = []
        self.socket: ClientConnection | None = None

    async def open(self) -> None:
        self.socket = await connect(
            self.xai.url + "?model=grok-voice-latest",
            additional_headers={"Authorization": f"Bearer {API_KEY}"},
        )

    async def send(self, event: Event) -> None:
        assert self.socket is not None
        await self.socket.send(self.normalizer.to_provider(event))

    async def until(self, done: Callable[[list[Event]], bool]) -> list[Event]:
        start = len(self.events)
        async with asyncio.timeout(10):
            while not done(self.events[start:]):
                assert self.socket is not None
                frame = await self.socket.recv()
                self.events += [check_ga(out) for out in self.normalizer.to_client(frame)]
        return self.events[start:]


def has(kind: str) -> Callable[[list[Event]], bool]:
    return lambda events: any(e["type"] == kind for e in events)


def loud(ms: int, amplitude: int) -> str:
    count = 24 * ms
    samples = array("h", (int(amplitude * math.sin(2 * math.pi * 300 * i / 24_000)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return base64.b64encode(samples.tobytes()).decode()


async def test_text_audio_and_function_call_turns_with_xai(xai: FakeXai) -> None:
    relay = MiniRelay(xai)
    await relay.open()
    first = await relay.until(has("conversation.created"))
    assert [e["type"] for e in first] == ["session.created", "conversation.created"]
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {"type": "object", "properties": {}},
    }
    session = {"type": "realtime", "tools": [tool], "audio": {"output": {"voice": "coral"}}}
    await relay.send({"type": "session.update", "session": session})
    updated = await relay.until(has("session.updated"))
    assert updated[-1]["session"]["audio"]["output"]["voice"] == "Eve"
    # A text turn.
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    await relay.send({"type": "conversation.item.create", "item": item})
    await relay.send({"type": "response.create"})
    events = await relay.until(has("response.done"))
    assert (
        next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
        == REPLY_TEXT
    )
    assert events[-1]["response"]["usage"]["total_tokens"] == 12
    # A turn of speech.
    for _ in range(3):
        await relay.send({"type": "input_audio_buffer.append", "audio": loud(100, 12000)})
    for _ in range(6):
        await relay.send({"type": "input_audio_buffer.append", "audio": loud(100, 0)})
    events = await relay.until(has("response.done"))
    kinds = [e["type"] for e in events]
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    completed = next(
        e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
    )
    assert completed["transcript"] == HEARD_TEXT  # "weather": the next reply will be a call
    call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert call["name"] == "get_weather"
    assert call["output_index"] == 0
    # Its result.
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    await relay.send({"type": "conversation.item.create", "item": output})
    await relay.send({"type": "response.create"})
    events = await relay.until(has("response.done"))
    assert (
        next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
        == "Result: sunny"
    )
    assert xai.connections[-1].session["voice"] == "Eve"
    assert relay.socket is not None
    await relay.socket.close()


async def test_what_xai_sends_is_not_ga_without_the_normaliser(xai: FakeXai) -> None:
    """The fake deviates as xAI does: a strict GA client would refuse these events as they come."""
    async with connect(xai.url, additional_headers={"Authorization": f"Bearer {API_KEY}"}) as socket:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
        await socket.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await socket.send(json.dumps({"type": "response.create"}))
        refused: set[str] = set()
        async with asyncio.timeout(10):
            while "response.done" not in refused:
                event = json.loads(await socket.recv())
                try:
                    check_ga(json.dumps(event))
                except (AssertionError, ValueError):
                    refused.add(event["type"])
    assert {"ping", "response.output_item.added", "response.content_part.done", "response.done"} <= refused
