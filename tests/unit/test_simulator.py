"""Tests of `shared.simulator`: the GA event sequences, server VAD, pacing, cancellation, errors.

The simulator is driven with explicit times (a fake clock); every frame it emits is checked to be
compact JSON with an `event_` id and, when `shared.events` is present, a valid GA server event.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import sys
from array import array
from typing import Any

import pytest

from shared.simulator import Simulator
from shared.simulator.audio import MS_PER_CHAR, SYLLABLE_MS

try:
    from shared.events import validate_server_event
except ImportError:  # the schema module is written separately; only this check depends on it
    validate_server_event = None

Event = dict[str, Any]
TEXT_TURN_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]
AUDIO_TURN_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]
RESPONSE_HEAD = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]


# -- helpers ---------------------------------------------------------------------------------------


def parse(frames: list[str]) -> list[Event]:
    """The events in ``frames``, each checked for framing and (if available) the GA schema."""
    out = []
    for frame in frames:
        assert isinstance(frame, str)
        event = json.loads(frame)
        assert frame == json.dumps(event, separators=(",", ":"), ensure_ascii=False), "compact JSON"
        assert event["event_id"].startswith("event_")
        if validate_server_event is not None:
            validate_server_event(event)
        out.append(event)
    return out


def types(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


def of_type(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e["type"] == kind]


def one(events: list[Event], kind: str) -> Event:
    found = of_type(events, kind)
    assert len(found) == 1, (kind, types(events))
    return found[0]


def squeeze(kinds: list[str]) -> list[str]:
    """``kinds`` with runs of the same delta type collapsed to one entry."""
    out: list[str] = []
    for kind in kinds:
        if not (kind.endswith(".delta") and out and out[-1] == kind):
            out.append(kind)
    return out


def pcm16(samples: list[int]) -> bytes:
    data = array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    return data.tobytes()


def tone(ms: int, amplitude: int = 8000, freq: float = 220.0, rate: int = 24000) -> bytes:
    n = rate * ms // 1000
    return pcm16([int(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)])


def silence(ms: int, rate: int = 24000) -> bytes:
    return bytes(2 * rate * ms // 1000)


def append(audio: bytes) -> Event:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}


def user_text(text: str, **extra: Any) -> Event:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": item, **extra}


def decoded_pcm(deltas: list[Event]) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in deltas)


def rms(pcm: bytes) -> float:
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def started(model: str = "gpt-realtime", pace: float = 0.0, now: float = 0.0) -> tuple[Simulator, Event]:
    sim = Simulator(model, pace=pace, now=now)
    (created,) = parse(sim.start(now))
    return sim, created


def send(sim: Simulator, event: Event, now: float = 0.0) -> list[Event]:
    return parse(sim.receive(event, now))


def text_session(sim: Simulator) -> None:
    send(sim, {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}})


def vad_turn(sim: Simulator, loud_ms: int = 1000, quiet_ms: int = 600, start: float = 0.0) -> list[Event]:
    """Feed ``loud_ms`` of tone then ``quiet_ms`` of silence in 100 ms appends, one every 100 ms."""
    out: list[Event] = []
    chunks = [tone(100)] * (loud_ms // 100) + [silence(100)] * (quiet_ms // 100)
    for i, chunk in enumerate(chunks):
        out += send(sim, append(chunk), start + i * 0.1)
    return out


# -- session ---------------------------------------------------------------------------------------


def test_session_created_is_a_ga_session() -> None:
    _, created = started("gpt-realtime-2025-08-28")
    assert created["type"] == "session.created"
    session = created["session"]
    assert session["type"] == "realtime"
    assert session["object"] == "realtime.session"
    assert session["id"].startswith("sess_")
    assert session["model"] == "gpt-realtime-2025-08-28"
    assert session["output_modalities"] == ["audio"]
    assert session["max_output_tokens"] == "inf"
    assert session["tools"] == []
    assert session["tool_choice"] == "auto"
    assert isinstance(session["instructions"], str)
    assert session["instructions"]
    audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_in["transcription"] is None
    assert audio_in["noise_reduction"] is None
    assert audio_in["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert audio_out == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0}


def test_session_update_merges_deeply_and_answers_with_the_whole_session() -> None:
    sim, created = started()
    update = {
        "type": "realtime",
        "instructions": "Be brief.",
        "audio": {
            "output": {"voice": "marin"},
            "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 800}},
        },
    }
    (updated,) = send(sim, {"type": "session.update", "session": update})
    session = updated["session"]
    assert updated["type"] == "session.updated"
    assert session["id"] == created["session"]["id"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    detection = session["audio"]["input"]["turn_detection"]
    assert detection["silence_duration_ms"] == 800
    assert detection["threshold"] == 0.5
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_session_update_maps_beta_flat_fields_onto_the_ga_session() -> None:
    sim, _ = started()
    beta = {
        "modalities": ["text"],
        "voice": "echo",
        "turn_detection": None,
        "input_audio_transcription": {"model": "whisper-1"},
        "input_audio_format": "g711_ulaw",
        "temperature": 0.7,
    }
    session = send(sim, {"type": "session.update", "session": beta})[0]["session"]
    assert session["output_modalities"] == ["text"]
    assert session["audio"]["output"]["voice"] == "echo"
    assert session["audio"]["input"]["turn_detection"] is None
    assert session["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert "modalities" not in session
    assert "temperature" not in session


def test_session_update_with_an_unknown_field_is_an_openai_error() -> None:
    sim, _ = started()
    (error,) = send(
        sim, {"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", "colour": 1}}
    )
    assert error["type"] == "error"
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": "Unknown parameter: 'session.colour'.",
        "param": "session.colour",
        "event_id": "evt_1",
    }


# -- text turn -------------------------------------------------------------------------------------


def test_text_turn_follows_openai_event_order() -> None:
    sim, _ = started()
    text_session(sim)
    added = send(sim, user_text("hello"))
    assert types(added) == ["conversation.item.added", "conversation.item.done"]
    user_item = added[0]["item"]
    assert user_item["id"].startswith("item_")
    assert user_item["status"] == "completed"
    assert user_item["content"] == [{"type": "input_text", "text": "hello"}]

    events = send(sim, {"type": "response.create"})
    assert squeeze(types(events)) == [*RESPONSE_HEAD, "response.output_text.delta", *TEXT_TURN_TAIL]
    created, done = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    assert created["usage"] is None
    assert created["id"].startswith("resp_")
    assert created["conversation_id"].startswith("conv_")
    assert created["object"] == "realtime.response"
    assert created["output_modalities"] == ["text"]

    text = "".join(e["delta"] for e in of_type(events, "response.output_text.delta"))
    assert text.startswith("You said: hello. ")
    assert "provider=openai" in text
    assert one(events, "response.output_text.done")["text"] == text
    assert one(events, "response.content_part.done")["part"] == {"type": "text", "text": text}
    item = one(events, "response.output_item.done")["item"]
    assert item["status"] == "completed"
    assert item["content"] == [{"type": "output_text", "text": text}]
    assert of_type(events, "conversation.item.added")[0]["previous_item_id"] == user_item["id"]

    assert done["status"] == "completed"
    assert done["output"] == [item]
    usage = done["usage"]
    assert usage["input_tokens"] > 0
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert set(usage["input_token_details"]) >= {"text_tokens", "audio_tokens", "cached_tokens"}
    assert usage["output_token_details"]["text_tokens"] == usage["output_tokens"]
    assert usage["output_token_details"]["audio_tokens"] == 0


def test_audio_reply_streams_transcript_with_real_pcm16() -> None:
    sim, _ = started()
    send(sim, user_text("hello"))
    events = send(sim, {"type": "response.create"})
    kinds = types(events)
    assert kinds[:4] == RESPONSE_HEAD
    assert kinds[-6:] == AUDIO_TURN_TAIL
    assert set(kinds[4:-6]) == {"response.output_audio.delta", "response.output_audio_transcript.delta"}
    assert one(events, "response.content_part.added")["part"] == {"type": "audio", "transcript": ""}

    transcript = "".join(e["delta"] for e in of_type(events, "response.output_audio_transcript.delta"))
    assert one(events, "response.output_audio_transcript.done")["transcript"] == transcript
    item = one(events, "response.output_item.done")["item"]
    assert item["content"] == [{"type": "output_audio", "transcript": transcript}]

    deltas = of_type(events, "response.output_audio.delta")
    assert all(len(base64.b64decode(d["delta"])) == 4800 for d in deltas)  # 100 ms each
    pcm = decoded_pcm(deltas)
    assert len(pcm) % 2 == 0
    duration_ms = len(pcm) / 48
    assert abs(duration_ms - len(transcript) * MS_PER_CHAR) <= SYLLABLE_MS
    assert rms(pcm) > 1000  # voiced, not silence
    usage = events[-1]["response"]["usage"]
    assert usage["output_token_details"]["audio_tokens"] == round(duration_ms / 50)


# -- audio turn via server VAD ---------------------------------------------------------------------


def test_server_vad_turn_commits_and_answers_with_audio() -> None:
    sim, _ = started()
    events = vad_turn(sim)
    kinds = types(events)
    started_ev = one(events, "input_audio_buffer.speech_started")
    stopped = one(events, "input_audio_buffer.speech_stopped")
    committed = one(events, "input_audio_buffer.committed")
    assert started_ev["audio_start_ms"] == 0  # prefix padding cannot reach before the buffer
    assert 1500 <= stopped["audio_end_ms"] <= 1520  # 1 s of speech + 500 ms of silence
    assert started_ev["item_id"] == stopped["item_id"] == committed["item_id"]
    start = kinds.index("input_audio_buffer.speech_stopped")
    assert kinds[start : start + 5] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    user_item = of_type(events, "conversation.item.added")[0]["item"]
    assert user_item["id"] == committed["item_id"]
    assert user_item["role"] == "user"
    assert user_item["content"] == [{"type": "input_audio", "transcript": None}]

    assert events[-1]["type"] == "response.done"
    assert events[-1]["response"]["status"] == "completed"
    transcript = one(events, "response.output_audio_transcript.done")["transcript"]
    assert transcript == "I heard 1.5 seconds of audio."
    pcm = decoded_pcm(of_type(events, "response.output_audio.delta"))
    assert len(pcm) % 2 == 0
    assert rms(pcm) > 1000
    assert abs(len(pcm) / 48 - len(transcript) * MS_PER_CHAR) <= SYLLABLE_MS
    assert events[-1]["response"]["usage"]["input_token_details"]["audio_tokens"] == 15  # 1.5 s at 10/s


def test_server_vad_ignores_silence_and_quiet_noise() -> None:
    sim, _ = started()
    quiet = tone(100, amplitude=60)  # about -58 dBFS, below threshold 0.5
    for i in range(10):
        assert send(sim, append(quiet), i * 0.1) == []
    assert send(sim, append(silence(500)), 1.0) == []


def test_input_transcription_when_configured() -> None:
    sim, _ = started()
    update = {"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    send(sim, {"type": "session.update", "session": update})
    events = vad_turn(sim)
    committed = one(events, "input_audio_buffer.committed")
    delta = one(events, "conversation.item.input_audio_transcription.delta")
    completed = one(events, "conversation.item.input_audio_transcription.completed")
    assert delta["item_id"] == completed["item_id"] == committed["item_id"]
    assert completed["transcript"] == delta["delta"] == "(1.5 seconds of audio)"
    assert completed["usage"]["type"] == "tokens"
    assert completed["usage"]["input_tokens"] == 15
    (retrieved,) = send(sim, {"type": "conversation.item.retrieve", "item_id": committed["item_id"]})
    assert retrieved["item"]["content"] == [{"type": "input_audio", "transcript": "(1.5 seconds of audio)"}]


def test_speech_interrupts_the_active_response() -> None:
    sim, _ = started(pace=1.0)
    send(sim, user_text("hello"))
    send(sim, {"type": "response.create"}, 0.0)
    parse(sim.poll(0.5))
    events = send(sim, append(tone(100)), 0.5)
    assert types(events)[0] == "input_audio_buffer.speech_started"
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


# -- manual commit ---------------------------------------------------------------------------------


def test_manual_commit_with_turn_detection_off() -> None:
    sim, _ = started()
    send(
        sim,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    for i in range(3):
        assert send(sim, append(tone(100)), i * 0.1) == []  # no VAD, no events
    events = send(sim, {"type": "input_audio_buffer.commit"}, 0.3)
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[0]["item_id"] == events[1]["item"]["id"]
    events = send(sim, {"type": "response.create"}, 0.4)
    transcript = one(events, "response.output_audio_transcript.done")["transcript"]
    assert transcript == "I heard 0.3 seconds of audio."


def test_commit_of_too_little_audio_is_the_openai_error() -> None:
    sim, _ = started()
    send(
        sim,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    send(sim, append(silence(50)))
    (error,) = send(sim, {"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert error["error"]["event_id"] == "evt_commit"
    assert error["error"]["param"] is None
    assert "Expected at least 100ms of audio, but buffer only has 50.00ms" in error["error"]["message"]


def test_clear_empties_the_buffer() -> None:
    sim, _ = started()
    send(
        sim,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    send(sim, append(tone(300)))
    assert types(send(sim, {"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    assert (
        send(sim, {"type": "input_audio_buffer.commit"})[0]["error"]["code"]
        == "input_audio_buffer_commit_empty"
    )


# -- cancellation and concurrency ------------------------------------------------------------------


def test_cancel_mid_stream() -> None:
    sim, _ = started(pace=1.0)
    send(sim, user_text("hello"))
    (created,) = send(sim, {"type": "response.create"}, 10.0)
    streamed = parse(sim.poll(10.6))
    assert of_type(streamed, "response.output_audio.delta")
    said = "".join(e["delta"] for e in of_type(streamed, "response.output_audio_transcript.delta"))

    events = send(sim, {"type": "response.cancel"}, 10.6)
    assert types(events) == AUDIO_TURN_TAIL
    assert one(events, "response.output_audio_transcript.done")["transcript"] == said
    assert one(events, "response.output_item.done")["item"]["status"] == "incomplete"
    done = events[-1]["response"]
    assert done["id"] == created["response"]["id"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["usage"]["output_tokens"] > 0
    assert sim.next_deadline() is None
    assert sim.poll(100.0) == []

    (error,) = send(sim, {"type": "response.cancel", "event_id": "evt_c"}, 11.0)
    assert error["error"]["code"] == "response_cancel_not_active"
    assert error["error"]["event_id"] == "evt_c"


def test_cancel_before_first_output_reports_an_empty_cancelled_response() -> None:
    sim, _ = started(pace=1.0)
    send(sim, {"type": "response.create"}, 0.0)
    events = send(sim, {"type": "response.cancel"}, 0.1)
    assert types(events) == ["response.done"]
    assert events[0]["response"]["status"] == "cancelled"
    assert events[0]["response"]["output"] == []


def test_second_response_while_one_is_active_is_refused() -> None:
    sim, _ = started(pace=1.0)
    (created,) = send(sim, {"type": "response.create"}, 0.0)
    (error,) = send(sim, {"type": "response.create", "event_id": "evt_2"}, 0.1)
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert created["response"]["id"] in error["error"]["message"]
    assert error["error"]["event_id"] == "evt_2"


def test_out_of_band_response_runs_beside_the_conversation() -> None:
    sim, _ = started(pace=1.0)
    send(sim, user_text("hello"))
    send(sim, {"type": "response.create"}, 0.0)
    side_question = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "side"}]}
    params = {
        "conversation": "none",
        "output_modalities": ["text"],
        "metadata": {"topic": "summary"},
        "input": [side_question],
    }
    (created,) = send(sim, {"type": "response.create", "response": params}, 0.0)
    assert created["response"]["conversation_id"] is None
    assert created["response"]["metadata"] == {"topic": "summary"}
    events = parse(sim.poll(60.0))
    dones = {e["response"]["id"]: e["response"] for e in of_type(events, "response.done")}
    assert len(dones) == 2
    side = dones[created["response"]["id"]]
    assert side["status"] == "completed"
    assert side["output"][0]["content"][0]["text"].startswith("You said: side.")
    side_item = side["output"][0]["id"]
    assert not [e for e in events if e["type"].startswith("conversation.") and e["item"]["id"] == side_item]
    assert len(of_type(events, "conversation.item.done")) == 1  # only the in-conversation reply


# -- pacing ----------------------------------------------------------------------------------------


def test_pacing_at_real_speed() -> None:
    sim, _ = started(pace=1.0, now=100.0)
    send(sim, user_text("hello"), 100.0)
    events = send(sim, {"type": "response.create"}, 100.0)
    assert types(events) == ["response.created"]
    assert sim.next_deadline() == pytest.approx(100.25)
    assert sim.poll(100.24) == []

    first = parse(sim.poll(100.25))
    assert types(first)[:3] == RESPONSE_HEAD[1:]
    assert len(of_type(first, "response.output_audio.delta")) == 1
    times, deltas = [], []
    now = 100.25
    while (deadline := sim.next_deadline()) is not None:
        assert deadline > now
        now = deadline
        batch = parse(sim.poll(now))
        times.append(now)
        deltas += of_type(batch, "response.output_audio.delta")
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [0.05] * (len(times) - 1)
    audio_ms = (len(deltas) + 1) * 100
    assert times[-1] - 100.0 == pytest.approx(0.25 + audio_ms / 1000 / 2)  # streamed at twice real time


@pytest.mark.parametrize(("pace", "first"), [(0.5, 0.125), (2.0, 0.5)])
def test_pace_scales_the_delays(pace: float, first: float) -> None:
    sim, _ = started(pace=pace)
    send(sim, {"type": "response.create"}, 0.0)
    assert sim.next_deadline() == pytest.approx(first)


def test_pace_zero_makes_everything_due_at_once() -> None:
    sim, _ = started(pace=0.0)
    events = send(sim, {"type": "response.create"}, 5.0)
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.done"
    assert sim.next_deadline() is None


def test_late_poll_returns_everything_due_in_order() -> None:
    fast, _ = started(pace=0.0)
    text_session(fast)
    send(fast, user_text("order please"))
    expected = types(send(fast, {"type": "response.create"}))

    slow, _ = started(pace=1.0)
    text_session(slow)
    send(slow, user_text("order please"))
    late = send(slow, {"type": "response.create"}) + parse(slow.poll(1000.0))
    assert types(late) == expected


def test_receive_releases_what_was_already_due_first() -> None:
    sim, _ = started(pace=1.0)
    send(sim, {"type": "response.create"}, 0.0)
    events = send(sim, {"type": "input_audio_buffer.clear"}, 0.3)  # the first output was due at 0.25
    assert types(events)[0] == "response.output_item.added"
    assert types(events)[-1] == "input_audio_buffer.cleared"


# -- conversation items ----------------------------------------------------------------------------


def test_item_create_honours_previous_item_id() -> None:
    sim, _ = started()
    first = send(sim, user_text("one"))[0]["item"]["id"]
    second = send(sim, user_text("two"))
    assert second[0]["previous_item_id"] == first
    root = send(sim, user_text("zero", previous_item_id="root"))
    assert root[0]["previous_item_id"] is None
    after = send(sim, user_text("one and a half", previous_item_id=first))
    assert after[0]["previous_item_id"] == first
    (error,) = send(sim, user_text("lost", previous_item_id="item_nope"))
    assert error["error"]["code"] == "item_create_invalid_previous_item_id"
    assert error["error"]["param"] == "previous_item_id"


def test_item_create_other_kinds_and_audio_content() -> None:
    sim, _ = started()
    items = [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be nice."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi."}]},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"ok":true}'},
        {
            "id": "item_custom",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": base64.b64encode(tone(200)).decode()}],
        },
    ]
    for item in items:
        added, done = send(sim, {"type": "conversation.item.create", "item": item})
        assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
        assert added["item"]["type"] == item["type"]
        assert added["item"]["object"] == "realtime.item"
    assert added["item"]["id"] == "item_custom"
    assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]  # audio not echoed
    events = send(sim, {"type": "response.create"})
    assert (
        one(events, "response.output_audio_transcript.done")["transcript"] == "I heard 0.2 seconds of audio."
    )


def test_retrieve_truncate_and_delete() -> None:
    sim, _ = started()
    send(sim, user_text("hello"))
    events = send(sim, {"type": "response.create"})
    item = one(events, "response.output_item.done")["item"]
    audio_ms = len(decoded_pcm(of_type(events, "response.output_audio.delta"))) // 48

    (retrieved,) = send(sim, {"type": "conversation.item.retrieve", "item_id": item["id"]})
    assert retrieved["type"] == "conversation.item.retrieved"
    assert retrieved["item"] == item

    (error,) = send(
        sim,
        {
            "type": "conversation.item.truncate",
            "item_id": item["id"],
            "content_index": 0,
            "audio_end_ms": audio_ms + 1,
        },
    )
    assert error["error"]["code"] == "invalid_value"
    assert "already shorter" in error["error"]["message"]
    (truncated,) = send(
        sim,
        {
            "type": "conversation.item.truncate",
            "item_id": item["id"],
            "content_index": 0,
            "audio_end_ms": 1000,
        },
    )
    assert (truncated["type"], truncated["item_id"], truncated["audio_end_ms"]) == (
        "conversation.item.truncated",
        item["id"],
        1000,
    )
    (retrieved,) = send(sim, {"type": "conversation.item.retrieve", "item_id": item["id"]})
    assert retrieved["item"]["content"] == [{"type": "output_audio", "transcript": ""}]

    (deleted,) = send(sim, {"type": "conversation.item.delete", "item_id": item["id"]})
    assert deleted["type"] == "conversation.item.deleted"
    assert deleted["item_id"] == item["id"]
    for kind, code in [
        ("conversation.item.delete", "item_delete_invalid_item_id"),
        ("conversation.item.retrieve", "item_retrieve_invalid_item_id"),
        ("conversation.item.truncate", "item_truncate_invalid_item_id"),
    ]:
        (error,) = send(sim, {"type": kind, "item_id": item["id"], "content_index": 0, "audio_end_ms": 0})
        assert error["error"]["code"] == code
        assert item["id"] in error["error"]["message"]


def test_conversation_keeps_a_bounded_history() -> None:
    sim, _ = started()
    ids = [send(sim, user_text(f"message {i}"))[0]["item"]["id"] for i in range(250)]
    assert send(sim, {"type": "conversation.item.retrieve", "item_id": ids[0]})[0]["type"] == "error"
    assert (
        send(sim, {"type": "conversation.item.retrieve", "item_id": ids[-1]})[0]["type"]
        == "conversation.item.retrieved"
    )


# -- tools -----------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {}},
}


def test_naming_a_tool_gets_a_function_call() -> None:
    sim, _ = started()
    send(sim, {"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
    send(sim, user_text("Please call get_weather for Paris"))
    events = send(sim, {"type": "response.create"})
    assert types(events) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    args = one(events, "response.function_call_arguments.done")
    assert args["name"] == "get_weather"
    assert args["arguments"] == "{}"
    assert args["call_id"].startswith("call_")
    item = one(events, "response.output_item.done")["item"]
    assert item["type"] == "function_call"
    assert item["call_id"] == args["call_id"]
    assert item["arguments"] == "{}"

    output = {"type": "function_call_output", "call_id": args["call_id"], "output": '{"sky":"clear"}'}
    send(sim, {"type": "conversation.item.create", "item": output})
    events = send(sim, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert one(events, "response.output_text.done")["text"] == 'The tool returned: {"sky":"clear"}.'


# -- formats and misc ------------------------------------------------------------------------------


def test_g711_sessions_get_g711_audio_and_vad() -> None:
    sim, _ = started()
    pcmu = {"type": "audio/pcmu"}
    send(
        sim,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"format": pcmu}, "output": {"format": pcmu}}},
        },
    )
    loud = bytes([0x8F, 0x0F] * 400)  # mu-law square wave, about -11 dBFS
    quiet = bytes([0xFF]) * 800  # mu-law zero
    events = []
    for i, chunk in enumerate([loud] * 5 + [quiet] * 6):
        events += send(sim, append(chunk), i * 0.1)
    assert one(events, "input_audio_buffer.speech_stopped")["audio_end_ms"] == 1000
    deltas = of_type(events, "response.output_audio.delta")
    assert deltas
    assert all(len(base64.b64decode(d["delta"])) == 800 for d in deltas)
    assert one(events, "response.created")["response"]["audio"]["output"]["format"] == pcmu


def test_unsupported_event_type_is_an_error() -> None:
    sim, _ = started()
    (error,) = send(sim, {"type": "transcription_session.update", "event_id": "evt_t", "session": {}})
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "type"
    assert error["error"]["event_id"] == "evt_t"


def test_output_audio_buffer_clear_acknowledges_the_last_response() -> None:
    sim, _ = started()
    assert send(sim, {"type": "output_audio_buffer.clear"})[0]["type"] == "error"
    (created,) = send(sim, {"type": "response.create"})[:1]
    (cleared,) = send(sim, {"type": "output_audio_buffer.clear"})
    assert cleared["type"] == "output_audio_buffer.cleared"
    assert cleared["response_id"] == created["response"]["id"]
