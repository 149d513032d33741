"""Tests of `shared.translation.gemini`: OpenAI Realtime GA <-> Gemini Live, through the translator only.

Every frame the translator gives the client is checked to be a valid GA server event, both against
`shared.events` and, strictly, against the openai SDK's union (`support.ga_events.check_ga`).
Every message it gives Gemini is checked against the fake Gemini's schema (the fields and enums
Google documents), so a name Gemini would refuse fails here too.
"""

from __future__ import annotations

import base64
import json
import math
import random
import sys
from array import array
from typing import Any

import pytest
from support.fake_gemini import _CLIENT_MESSAGE, _check_fields
from support.ga_events import check_ga

from shared.events import validate_server_event
from shared.translation import Translator
from shared.translation.gemini import Frames, GeminiTranslator, Reconnect
from shared.translation.gemini.audio import _A, _B, _SCALE, Downsampler
from shared.translation.gemini.setup import build_setup, initial_session
from shared.translation.gemini.usage import usage

Event = dict[str, Any]

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def pcm(ms: int, amplitude: int = 8000, hz: float = 440.0, rate: int = 24_000) -> bytes:
    count = rate * ms // 1000
    samples = array("h", (int(amplitude * math.sin(2 * math.pi * hz * i / rate)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Harness:
    """A translator, with everything it said to each side collected and checked."""

    def __init__(self, model: str = "gemini-3.8-live", **options: Any) -> None:
        self.translator = GeminiTranslator(model, **options)
        self.client: list[Event] = []
        self.provider: list[Event] = []
        self.reconnects: list[Reconnect] = []
        self.take(self.translator.opened())

    def take(self, frames: Frames) -> list[Event]:
        events = [check_ga(frame) for frame in frames.client]
        self.client += events
        for frame in frames.provider:
            message = json.loads(frame)
            _check_fields(message, _CLIENT_MESSAGE, "")  # Gemini would refuse it otherwise
            assert len(message) == 1, message
            self.provider.append(message)
        if frames.reconnect is not None:
            setup = json.loads(frames.reconnect.setup)
            _check_fields(setup, _CLIENT_MESSAGE, "")
            self.reconnects.append(frames.reconnect)
        return events

    def send(self, event: Event) -> list[Event]:
        return self.take(self.translator.to_provider(event))

    def hear(self, *messages: Event, binary: bool = True) -> list[Event]:
        events: list[Event] = []
        for message in messages:
            frame = json.dumps(message)
            events += self.take(self.translator.to_client(frame.encode() if binary else frame))
        return events

    def ready(self, **session: Any) -> None:
        """Configure (if asked), start the setup and complete it."""
        if session:
            self.send({"type": "session.update", "session": {"type": "realtime", **session}})
        self.take(self.translator.flush_setup())
        self.hear({"setupComplete": {}})

    def types(self, events: list[Event] | None = None) -> list[str]:
        return [event["type"] for event in (self.client if events is None else events)]

    def sent(self, kind: str) -> list[Event]:
        return [message[kind] for message in self.provider if kind in message]

    @property
    def setup(self) -> Event:
        return self.sent("setup")[-1]


def text_item(text: str, role: str = "user") -> Event:
    kind = "input_text" if role == "user" else "output_text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    }


def model_text(*words: str) -> list[Event]:
    return [{"serverContent": {"modelTurn": {"parts": [{"text": word}]}}} for word in words]


def model_audio(data: str) -> Event:
    return {
        "serverContent": {
            "modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}]}
        }
    }


TURN_USAGE = {
    "promptTokenCount": 40,
    "responseTokenCount": 30,
    "totalTokenCount": 70,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}, {"modality": "AUDIO", "tokenCount": 32}],
    "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
}


# -- setup ------------------------------------------------------------------------------------------


def test_session_created_at_open_is_ga_and_names_the_gemini_model() -> None:
    h = Harness()
    (created,) = h.client
    assert created["type"] == "session.created"
    assert created["session"]["model"] == "gemini-3.8-live"
    assert created["session"]["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert h.provider == []  # the setup waits for the client


def test_setup_waits_for_the_client_and_carries_everything_it_configured() -> None:
    h = Harness()
    assert h.types(
        h.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}})
    ) == ["session.updated"]
    update = {
        "type": "realtime",
        "tools": [WEATHER_TOOL],
        "max_output_tokens": 500,
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-transcribe", "language": "fr"},
                "turn_detection": {
                    "type": "server_vad",
                    "prefix_padding_ms": 200,
                    "silence_duration_ms": 700,
                    "threshold": 0.8,
                },
            },
            "output": {"voice": "alloy"},
        },
    }
    events = h.send({"type": "session.update", "session": update})
    assert h.types(events) == ["session.updated"]
    assert events[0]["session"]["instructions"] == "Be brief."
    assert events[0]["session"]["audio"]["output"]["voice"] == "alloy"
    assert h.provider == []
    h.send(text_item("Hi"))
    assert list(h.provider[0]) == ["setup"]
    assert h.setup == {
        "model": "models/gemini-3.8-live",
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Zephyr"}}},
            "maxOutputTokens": 500,
        },
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather in a city.",
                        "parametersJsonSchema": WEATHER_TOOL["parameters"],
                        "behavior": "BLOCKING",
                    }
                ]
            }
        ],
        "realtimeInputConfig": {
            "automaticActivityDetection": {
                "disabled": False,
                "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
                "prefixPaddingMs": 200,
                "silenceDurationMs": 700,
            }
        },
        "inputAudioTranscription": {"languageCodes": ["fr"]},
        "outputAudioTranscription": {},
        "contextWindowCompression": {"slidingWindow": {}},
        "sessionResumption": {},
    }


def test_frames_wait_for_setup_complete() -> None:
    h = Harness()
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    assert [list(m) for m in h.provider] == [["setup"]]
    assert len(h.translator.held) == 1
    h.hear({"setupComplete": {}})
    assert [list(m) for m in h.provider] == [["setup"], ["clientContent"]]
    assert h.sent("clientContent") == [
        {"turns": [{"role": "user", "parts": [{"text": "Hi"}]}], "turnComplete": True}
    ]


def test_flush_setup_sends_gemini_defaults_once() -> None:
    h = Harness()
    h.take(h.translator.flush_setup())
    h.take(h.translator.flush_setup())
    assert len(h.sent("setup")) == 1
    assert h.setup["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": False}}
    assert (
        h.setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
        == "Puck"
    )


@pytest.mark.parametrize(
    ("voice", "gemini"), [("Kore", "Kore"), ("charon", "Charon"), ("verse", "Enceladus")]
)
def test_voices_map_and_gemini_names_pass(voice: str, gemini: str) -> None:
    setup = build_setup(
        {**initial_session("s", "m"), "audio": {"output": {"voice": voice}}}, "gemini-3.8-live"
    )
    assert (
        setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == gemini
    )


@pytest.mark.parametrize(
    ("update", "param"),
    [
        ({"audio": {"output": {"voice": "nobody"}}}, "session.audio.output.voice"),
        ({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}, "session.audio.input.format"),
        (
            {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "session.audio.output.format",
        ),
        ({"output_modalities": ["text", "audio"]}, "session.output_modalities"),
    ],
)
def test_values_gemini_cannot_take_are_refused_and_nothing_applies(update: Event, param: str) -> None:
    h = Harness()
    events = h.send(
        {
            "type": "session.update",
            "event_id": "evt_1",
            "session": {"type": "realtime", "instructions": "x", **update},
        }
    )
    assert h.types(events) == ["error"]
    assert events[0]["error"]["param"] == param
    assert events[0]["error"]["event_id"] == "evt_1"
    assert h.translator.session["instructions"] == ""


def test_fields_without_counterpart_are_reported_once_and_neutral_values_not_at_all() -> None:
    h = Harness()
    neutral = {
        "type": "realtime",
        "tool_choice": "auto",
        "tracing": None,
        "audio": {"output": {"speed": 1.0}},
    }
    assert h.types(h.send({"type": "session.update", "session": neutral})) == ["session.updated"]
    update = {
        "type": "realtime",
        "tool_choice": "required",
        "audio": {
            "input": {
                "noise_reduction": {"type": "near_field"},
                "turn_detection": {"type": "server_vad", "create_response": False},
            },
            "output": {"speed": 1.2},
        },
    }
    events = h.send({"type": "session.update", "session": update})
    notices = [e for e in events if e["type"] == "error"]
    assert {e["error"]["param"] for e in notices} == {
        "session.tool_choice",
        "session.audio.input.noise_reduction",
        "session.audio.input.turn_detection.create_response",
        "session.audio.output.speed",
    }
    assert all(e["error"]["code"] == "field_dropped" and e["error"]["event_id"] is None for e in notices)
    assert events[-1]["type"] == "session.updated"
    assert h.types(h.send({"type": "session.update", "session": update})) == ["session.updated"]


def test_tool_choice_none_removes_the_tools() -> None:
    h = Harness()
    h.ready(tools=[WEATHER_TOOL], tool_choice="none")
    assert "tools" not in h.setup


# -- audio in ---------------------------------------------------------------------------------------


def test_audio_is_resampled_to_16_khz_and_declared() -> None:
    h = Harness()
    h.ready()
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    (chunk,) = h.sent("realtimeInput")
    assert chunk["audio"]["mimeType"] == "audio/pcm;rate=16000"
    samples = len(base64.b64decode(chunk["audio"]["data"])) // 2
    assert 1590 <= samples <= 1600  # 2/3 of 2400, less the few held for the filter
    h.send({"type": "input_audio_buffer.commit"})
    total = sum(
        len(base64.b64decode(c["audio"]["data"])) // 2 for c in h.sent("realtimeInput") if "audio" in c
    )
    assert total == 1600


def test_audio_at_24_khz_passes_as_sent() -> None:
    h = Harness(input_rate=24_000)
    h.ready()
    data = b64(pcm(20))
    h.send({"type": "input_audio_buffer.append", "audio": data})
    assert h.sent("realtimeInput") == [{"audio": {"mimeType": "audio/pcm;rate=24000", "data": data}}]


def test_commit_with_server_vad_ends_the_audio_stream_and_tells_the_item() -> None:
    h = Harness()
    h.ready()
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(200))})
    events = h.send({"type": "input_audio_buffer.commit"})
    assert h.sent("realtimeInput")[-1] == {"audioStreamEnd": True}
    assert h.types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[1]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert events[0]["item_id"] == events[1]["item"]["id"]


def test_without_turn_detection_commits_become_activity_signals() -> None:
    h = Harness()
    h.ready(audio={"input": {"turn_detection": None}})
    assert h.setup["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": True}}
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    assert list(h.sent("realtimeInput")[0]) == ["activityStart"]
    assert sum("activityStart" in m for m in h.sent("realtimeInput")) == 1
    events = h.send({"type": "input_audio_buffer.commit"})
    assert h.types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert not any("activityEnd" in m or "audioStreamEnd" in m for m in h.sent("realtimeInput"))
    h.send({"type": "response.create"})  # the client decides when the model answers
    assert h.sent("realtimeInput")[-1] == {"activityEnd": {}}
    assert h.sent("clientContent") == []


def test_commit_of_nothing_is_openais_error() -> None:
    h = Harness()
    h.ready()
    events = h.send({"type": "input_audio_buffer.commit", "event_id": "evt_c"})
    assert events[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    assert events[0]["error"]["event_id"] == "evt_c"
    assert h.sent("realtimeInput") == []


def test_clear_is_answered() -> None:
    h = Harness()
    h.ready()
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(50))})
    assert h.types(h.send({"type": "input_audio_buffer.clear"})) == ["input_audio_buffer.cleared"]
    assert (
        h.send({"type": "input_audio_buffer.commit"})[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    )


# -- items ------------------------------------------------------------------------------------------


def test_items_become_turns_sent_with_response_create() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("What is 2+2?"))
    h.send(text_item("4", role="assistant"))
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call", "name": "add", "call_id": "c1", "arguments": '{"a":2}'},
        }
    )
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c1", "output": "4"},
        }
    )
    assert h.sent("clientContent") == []
    h.send({"type": "response.create"})
    (content,) = h.sent("clientContent")
    assert content["turnComplete"] is True
    assert content["turns"] == [
        {"role": "user", "parts": [{"text": "What is 2+2?"}]},
        {"role": "model", "parts": [{"text": "4"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "add", "args": {"a": 2}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "add", "response": {"output": 4}}}]},
    ]
    added = [e for e in h.client if e["type"] == "conversation.item.added"]
    assert [e["previous_item_id"] for e in added[1:]] == [e["item"]["id"] for e in added[:-1]]


def test_text_waiting_for_a_reply_goes_before_audio() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Context first."))
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    assert [list(m) for m in h.provider[1:]] == [["clientContent"], ["realtimeInput"]]
    assert h.sent("clientContent")[0]["turnComplete"] is False


def test_system_items_are_refused() -> None:
    h = Harness()
    h.ready()
    events = h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]},
        }
    )
    assert h.types(events) == ["error"]
    assert "instructions" in events[0]["error"]["message"]


def test_gemini_2_5_gets_a_placeholder_turn_for_a_bare_response_create() -> None:
    h = Harness("gemini-2.5-flash-native-audio-preview-12-2025")
    h.ready()
    h.send({"type": "response.create"})
    assert h.sent("clientContent") == [
        {"turns": [{"role": "user", "parts": [{"text": "."}]}], "turnComplete": True}
    ]
    later = Harness("gemini-3.1-flash-live-preview")
    later.ready()
    later.send({"type": "response.create"})
    assert later.sent("clientContent") == [{"turnComplete": True}]


# -- replies ----------------------------------------------------------------------------------------


def reply_types(parts: list[str]) -> list[str]:
    return [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        *parts,
    ]


def test_text_reply_is_the_full_openai_sequence_with_usage() -> None:
    h = Harness("gemini-3.1-flash-live-preview")
    h.ready(output_modalities=["text"])
    assert h.setup["generationConfig"] == {"responseModalities": ["TEXT"]}
    assert "outputAudioTranscription" not in h.setup
    h.send(text_item("Hi"))
    h.send({"type": "response.create", "response": {"metadata": {"turn": "1"}}})
    start = len(h.client)
    h.hear(*model_text("Hello", " there"))
    h.hear({"serverContent": {"generationComplete": True}})
    h.hear({"serverContent": {"turnComplete": True}, "usageMetadata": TURN_USAGE})
    events = h.client[start:]
    assert h.types(events) == reply_types(
        [
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    )
    assert events[6]["text"] == "Hello there"
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["metadata"] == {"turn": "1"}
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "Hello there"}]
    assert done["usage"] == {
        "total_tokens": 70,
        "input_tokens": 40,
        "output_tokens": 30,
        "input_token_details": {"text_tokens": 8, "audio_tokens": 32, "image_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 0, "audio_tokens": 30},
    }
    ids = {e.get("response_id") for e in events if "response_id" in e}
    assert ids == {events[0]["response"]["id"]}


def test_audio_reply_streams_audio_as_sent_and_the_transcript() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    start = len(h.client)
    chunk = b64(pcm(40))
    h.hear(model_audio(chunk), {"serverContent": {"outputTranscription": {"text": "Hello"}}})
    h.hear(model_audio(chunk), {"serverContent": {"outputTranscription": {"text": " world"}}})
    h.hear({"serverContent": {"modelTurn": {"parts": [{"text": "thinking...", "thought": True}]}}})
    h.hear({"serverContent": {"turnComplete": True}})
    events = h.client[start:]
    assert h.types(events) == reply_types(
        [
            "response.output_audio.delta",
            "response.output_audio_transcript.delta",
            "response.output_audio.delta",
            "response.output_audio_transcript.delta",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    )
    assert events[3]["part"] == {"type": "audio", "transcript": ""}
    assert events[4]["delta"] == chunk
    assert events[9]["transcript"] == "Hello world"
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": "output_audio", "transcript": "Hello world"}
    ]


def test_text_session_on_an_audio_only_model_gets_the_transcript_as_text() -> None:
    h = Harness("gemini-3.8-live")
    h.ready(output_modalities=["text"])
    assert h.setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert h.setup["outputAudioTranscription"] == {}
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    start = len(h.client)
    h.hear(model_audio(b64(pcm(40))), {"serverContent": {"outputTranscription": {"text": "Hi!"}}})
    h.hear({"serverContent": {"turnComplete": True}})
    events = h.client[start:]
    assert "response.output_audio.delta" not in h.types(events)
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hi!"]
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "output_text", "text": "Hi!"}]


def test_a_spoken_turn_is_told_as_openais_server_vad_would() -> None:
    h = Harness()
    h.ready(audio={"input": {"transcription": {"model": "whisper-1"}}})
    for _ in range(5):
        h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    start = len(h.client)
    assert h.hear({"serverContent": {"inputTranscription": {"text": " What is"}}}) == []  # held: no item yet
    h.hear({"serverContent": {"inputTranscription": {"text": " the time?"}}})
    h.hear(model_audio(b64(pcm(40))))
    h.hear({"serverContent": {"turnComplete": True}, "usageMetadata": TURN_USAGE})
    events = h.client[start:]
    assert h.types(events)[:9] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "response.created",
        "response.output_item.added",
    ]
    user_item = events[3]["item"]["id"]
    assert events[0]["audio_start_ms"] == 0
    assert events[1]["audio_end_ms"] == 500
    assert [e["delta"] for e in events[5:7]] == ["What is", " the time?"]
    completed = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert completed[0]["item_id"] == user_item
    assert completed[0]["transcript"] == "What is the time?"
    assert completed[0]["usage"] == {"type": "duration", "seconds": 0.5}
    order = h.types(events)
    assert order.index("conversation.item.input_audio_transcription.completed") < order.index(
        "response.output_audio.done"
    )
    assert order[-1] == "response.done"


def test_interruption_starts_speech_at_once_and_cancels_the_reply_at_turn_complete() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Tell me a story"))
    h.send({"type": "response.create"})
    h.hear(model_audio(b64(pcm(40))), {"serverContent": {"outputTranscription": {"text": "Once"}}})
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    events = h.hear({"serverContent": {"interrupted": True}})
    assert h.types(events) == ["input_audio_buffer.speech_started"]
    assert h.hear(model_audio(b64(pcm(40)))) == []  # what Gemini still sends of that turn is not played
    events = h.hear({"serverContent": {"turnComplete": True}})
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["output"][0]["status"] == "incomplete"
    item_id = done["output"][0]["id"]
    truncated = h.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 20}
    )
    assert h.types(truncated) == ["conversation.item.truncated"]


def test_an_interruption_after_the_turn_only_starts_speech() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    h.hear(model_audio(b64(pcm(40))), {"serverContent": {"turnComplete": True}})
    assert h.types(h.hear({"serverContent": {"interrupted": True}})) == ["input_audio_buffer.speech_started"]
    h.send(text_item("Again"))
    h.send({"type": "response.create"})
    assert "response.created" in h.types(h.hear(model_audio(b64(pcm(40)))))  # not suppressed


def test_cancel_ends_the_reply_and_drops_the_rest_of_the_turn() -> None:
    h = Harness()
    h.ready()
    assert h.send({"type": "response.cancel"})[0]["error"]["code"] == "response_cancel_not_active"
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    h.hear(model_audio(b64(pcm(40))))
    events = h.send({"type": "response.cancel"})
    assert events[-1]["type"] == "response.done"
    assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert h.hear(model_audio(b64(pcm(40))), {"serverContent": {"turnComplete": True}}) == []
    h.send(text_item("Next"))
    assert h.send({"type": "response.create"}) == []
    assert h.types(h.hear(model_audio(b64(pcm(40)))))[0] == "response.created"


def test_a_second_response_create_while_one_is_active_is_openais_error() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    events = h.send({"type": "response.create"})
    assert events[0]["error"]["code"] == "conversation_already_has_active_response"
    assert len(h.sent("clientContent")) == 1


def test_response_overrides_are_reported_and_metadata_echoed() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Hi"))
    events = h.send(
        {
            "type": "response.create",
            "response": {"instructions": "Shout.", "output_modalities": ["audio"], "metadata": {"k": "v"}},
        }
    )
    assert [e["error"]["param"] for e in events] == ["response.instructions"]
    created = h.hear(model_audio(b64(pcm(40))))[0]
    assert created["response"]["metadata"] == {"k": "v"}


# -- function calls ---------------------------------------------------------------------------------


def test_tool_call_becomes_function_call_items_and_results_go_back_as_tool_response() -> None:
    h = Harness()
    h.ready(tools=[WEATHER_TOOL])
    h.send(text_item("Weather in Paris?"))
    h.send({"type": "response.create"})
    start = len(h.client)
    h.hear(
        {
            "toolCall": {"functionCalls": [{"id": "fc-1", "name": "get_weather", "args": {"city": "Paris"}}]},
            "usageMetadata": TURN_USAGE,
        }
    )
    events = h.client[start:]
    assert h.types(events) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    assert events[4]["call_id"] == "fc-1"
    assert events[4]["arguments"] == '{"city":"Paris"}'
    done = events[-1]["response"]
    assert done["output"][0]["type"] == "function_call"
    assert done["usage"]["total_tokens"] == 70
    assert h.hear({"serverContent": {"turnComplete": True}}) == []  # the paused turn's end shows nothing
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "fc-1", "output": '{"sky": "clear"}'},
        }
    )
    assert h.sent("toolResponse") == [
        {"functionResponses": [{"name": "get_weather", "response": {"sky": "clear"}, "id": "fc-1"}]}
    ]
    assert h.send({"type": "response.create"}) == []  # Gemini answers results by itself
    assert len(h.sent("clientContent")) == 1
    follow_up = h.hear(model_audio(b64(pcm(40))), {"serverContent": {"turnComplete": True}})
    assert h.types(follow_up)[0] == "response.created"
    assert h.types(follow_up)[-1] == "response.done"


def test_results_of_several_calls_go_together() -> None:
    h = Harness()
    h.ready(tools=[WEATHER_TOOL])
    calls = [
        {"id": f"fc-{n}", "name": "get_weather", "args": {"city": c}} for n, c in ((1, "Paris"), (2, "Rome"))
    ]
    h.hear({"toolCall": {"functionCalls": calls}})
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "fc-1", "output": "sunny"},
        }
    )
    assert h.sent("toolResponse") == []
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "fc-2", "output": "rainy"},
        }
    )
    (response,) = h.sent("toolResponse")
    assert [r["response"] for r in response["functionResponses"]] == [
        {"output": "sunny"},
        {"output": "rainy"},
    ]


def test_cancelled_calls_are_reported_and_their_results_not_sent() -> None:
    h = Harness()
    h.ready(tools=[WEATHER_TOOL])
    h.hear({"toolCall": {"functionCalls": [{"id": "fc-9", "name": "get_weather", "args": {}}]}})
    events = h.hear({"toolCallCancellation": {"ids": ["fc-9"]}})
    assert events[0]["error"]["code"] == "function_call_cancelled"
    assert "fc-9" in events[0]["error"]["message"]
    refused = h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "fc-9", "output": "x"},
        }
    )
    assert refused[0]["error"]["code"] == "function_call_cancelled"
    assert h.sent("toolResponse") == []


# -- usage ------------------------------------------------------------------------------------------


def test_usage_counts_modalities_thinking_tool_results_and_vertex_names() -> None:
    metadata = {
        "promptTokenCount": 100,
        "cachedContentTokenCount": 20,
        "candidatesTokenCount": 50,
        "thoughtsTokenCount": 7,
        "toolUsePromptTokenCount": 5,
        "totalTokenCount": 162,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 60},
            {"modality": "AUDIO", "tokenCount": 30},
            {"modality": "IMAGE", "tokenCount": 10},
        ],
        "toolUsePromptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
        "candidatesTokensDetails": [
            {"modality": "AUDIO", "tokenCount": 45},
            {"modality": "TEXT", "tokenCount": 5},
        ],
    }
    assert usage(metadata) == {
        "total_tokens": 162,
        "input_tokens": 105,
        "output_tokens": 57,
        "input_token_details": {
            "text_tokens": 65,
            "audio_tokens": 30,
            "image_tokens": 10,
            "cached_tokens": 20,
        },
        "output_token_details": {"text_tokens": 12, "audio_tokens": 45},
    }


def test_usage_reported_between_turns_goes_to_the_next_reply() -> None:
    h = Harness()
    h.ready()
    h.hear({"usageMetadata": TURN_USAGE})
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    events = h.hear(model_audio(b64(pcm(40))), {"serverContent": {"turnComplete": True}})
    assert events[-1]["response"]["usage"]["total_tokens"] == 70


# -- moving to a new connection ---------------------------------------------------------------------


def said_something(h: Harness) -> None:
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    h.hear(model_audio(b64(pcm(40))), {"serverContent": {"turnComplete": True}})


def test_go_away_moves_the_session_with_the_resumption_handle() -> None:
    h = Harness()
    h.ready()
    said_something(h)
    h.hear({"sessionResumptionUpdate": {"newHandle": "handle-7", "resumable": True}})
    events = h.hear({"goAway": {"timeLeft": "10s"}})
    assert events == []
    (move,) = h.reconnects
    assert move.reason == "go_away"
    assert move.handle == "handle-7"
    assert json.loads(move.setup)["setup"]["sessionResumption"] == {"handle": "handle-7"}
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100))})
    assert h.translator.held
    assert not any("realtimeInput" in m for m in h.provider)
    assert h.hear({"setupComplete": {}}) == []  # nothing to tell: the client saw no change
    assert h.sent("realtimeInput")


def test_go_away_during_a_reply_waits_for_its_end_and_a_fresh_handle() -> None:
    h = Harness()
    h.ready()
    h.hear({"sessionResumptionUpdate": {"newHandle": "old", "resumable": True}})
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    h.hear(model_audio(b64(pcm(40))))
    h.hear({"goAway": {"timeLeft": "5s"}})
    h.hear({"serverContent": {"turnComplete": True}})
    assert h.reconnects == []  # the "old" handle would lose the last turn
    h.hear({"sessionResumptionUpdate": {"newHandle": "new", "resumable": True}})
    assert [m.handle for m in h.reconnects] == ["new"]


def test_go_away_with_no_handle_is_told_to_the_client_and_moves_when_one_comes() -> None:
    h = Harness()
    h.ready()
    said_something(h)
    events = h.hear({"goAway": {"timeLeft": "3s"}})
    assert events[0]["error"]["code"] == "provider_going_away"
    assert "3s" in events[0]["error"]["message"]
    h.hear({"sessionResumptionUpdate": {"resumable": False}})
    assert h.reconnects == []
    h.hear({"sessionResumptionUpdate": {"newHandle": "late", "resumable": True}})
    assert [m.handle for m in h.reconnects] == ["late"]


def test_a_later_session_update_moves_the_session_and_is_acknowledged_by_the_new_setup() -> None:
    h = Harness()
    h.ready(instructions="Be brief.")
    said_something(h)
    h.hear({"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}})
    events = h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be verbose.",
                "audio": {"output": {"voice": "Kore"}},
            },
        }
    )
    assert events == []
    (move,) = h.reconnects
    setup = json.loads(move.setup)["setup"]
    assert move.reason == "session_update"
    assert setup["systemInstruction"] == {"parts": [{"text": "Be verbose."}]}
    assert (
        setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Kore"
    )
    assert setup["sessionResumption"] == {"handle": "h1"}
    events = h.hear({"setupComplete": {}})
    assert h.types(events) == ["session.updated"]
    assert events[0]["session"]["instructions"] == "Be verbose."


def test_a_session_update_that_changes_nothing_gemini_takes_needs_no_move() -> None:
    h = Harness()
    h.ready(instructions="Be brief.")
    said_something(h)
    events = h.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}})
    assert h.types(events) == ["session.updated"]
    assert h.reconnects == []


def test_a_session_update_before_anything_was_said_starts_afresh() -> None:
    h = Harness()
    h.ready()
    h.send({"type": "session.update", "session": {"type": "realtime", "instructions": "New."}})
    (move,) = h.reconnects
    assert move.handle is None
    assert "handle" not in json.loads(move.setup)["setup"]["sessionResumption"]


def test_resume_after_a_lost_connection() -> None:
    h = Harness()
    h.ready()
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    h.hear(model_audio(b64(pcm(40))))
    assert h.translator.resume().reconnect is None  # said something, no handle: nothing to resume
    h.hear({"sessionResumptionUpdate": {"newHandle": "h2", "resumable": True}})
    frames = h.translator.resume()
    events = h.take(frames)
    assert frames.reconnect is not None
    assert frames.reconnect.handle == "h2"
    assert events[-1]["response"]["status"] == "failed"


# -- odds and ends ----------------------------------------------------------------------------------


def test_retrieve_and_delete() -> None:
    h = Harness()
    h.ready()
    item_id = h.send(text_item("Hi"))[0]["item"]["id"]
    retrieved = h.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved[0]["type"] == "conversation.item.retrieved"
    assert retrieved[0]["item"]["id"] == item_id
    assert (
        h.send({"type": "conversation.item.retrieve", "item_id": "nope"})[0]["error"]["code"]
        == "item_not_found"
    )
    assert h.types(h.send({"type": "conversation.item.delete", "item_id": item_id})) == ["error"]


def test_what_is_not_json_or_unknown_is_dropped() -> None:
    h = Harness()
    assert h.take(h.translator.to_client(b"\xff\xfe")) == []
    assert h.take(h.translator.to_client("[1, 2]")) == []
    assert h.hear({"somethingNew": {}}, binary=False) == []


# -- the resampler ----------------------------------------------------------------------------------


def reference(samples: list[int]) -> list[int]:
    """The same filter, sample by sample (history: one group of silence)."""
    x = [0, 0, 0, *samples]

    def at(i: int) -> int:
        return x[i] if 0 <= i < len(x) else 0

    out = []
    for m in range(1, 1 + math.ceil(len(samples) / 3)):
        c = 3 * m
        a = _A[0] * at(c) + sum(_A[t] * (at(c - t) + at(c + t)) for t in (1, 2, 3))
        b = _B[0] * (at(c + 1) + at(c + 2)) + _B[1] * (at(c) + at(c + 3)) + _B[2] * (at(c - 1) + at(c + 4))
        b += _B[3] * (at(c - 2) + at(c + 5))
        out += [max(-32768, min(32767, (v + _SCALE // 2) >> 16)) for v in (a, b)]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resampler_matches_the_filter_sample_by_sample_over_any_chunking(seed: int) -> None:
    rng = random.Random(seed)
    # Loud enough to clip now and then (the slow path), with noise across the whole band.
    samples = [
        max(-32768, min(32767, int(30000 * math.sin(i / 7) + rng.randint(-8000, 8000)))) for i in range(4801)
    ]
    data = array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    raw = data.tobytes()
    downsampler = Downsampler()
    out = b""
    position = 0
    while position < len(raw):
        size = rng.randint(1, 2000)
        out += downsampler.feed(raw[position : position + size])
        position += size
    out += downsampler.flush()
    got = array("h", out)
    if sys.byteorder == "big":
        got.byteswap()
    expected = reference(samples)
    assert len(got) == math.ceil(len(samples) * 2 / 3)
    assert list(got) == expected[: len(got)]


def rms(data: bytes) -> float:
    samples = array("h", data)
    return math.sqrt(sum(s * s for s in samples) / len(samples))


@pytest.mark.parametrize(
    ("hz", "low_db", "high_db"), [(1000, -0.5, 0.5), (3000, -1.5, 0.0), (10000, -60, -15), (11000, -80, -25)]
)
def test_resampler_passes_speech_and_stops_what_would_alias(hz: int, low_db: float, high_db: float) -> None:
    tone = pcm(500, amplitude=10000, hz=hz)
    downsampler = Downsampler()
    out = downsampler.feed(tone)[400:-400]  # past the edges
    gain = 20 * math.log10(rms(out) / rms(tone))
    assert low_db <= gain <= high_db, gain


def test_a_requested_reply_does_not_tell_silence_as_a_user_turn() -> None:
    h = Harness()
    h.ready()
    h.send({"type": "input_audio_buffer.append", "audio": b64(pcm(100, amplitude=0))})
    h.send(text_item("Hi"))
    h.send({"type": "response.create"})
    events = h.hear(model_audio(b64(pcm(40))))
    assert h.types(events)[0] == "response.created"


def test_a_response_create_after_new_input_is_not_taken_for_the_function_results() -> None:
    h = Harness()
    h.ready(tools=[WEATHER_TOOL])
    h.hear({"toolCall": {"functionCalls": [{"id": "fc-1", "name": "get_weather", "args": {}}]}})
    output = {"type": "function_call_output", "call_id": "fc-1", "output": "sunny"}
    h.send({"type": "conversation.item.create", "item": output})  # and no response.create
    h.hear(model_audio(b64(pcm(40))), {"serverContent": {"turnComplete": True}})
    h.send(text_item("And tomorrow?"))
    h.send({"type": "response.create"})
    assert h.sent("clientContent")[-1] == {
        "turns": [{"role": "user", "parts": [{"text": "And tomorrow?"}]}],
        "turnComplete": True,
    }


def test_a_beta_client_is_served_through_the_beta_translation() -> None:
    beta = Translator("beta", "ga")
    gemini = GeminiTranslator("gemini-3.1-flash-live-preview")
    seen: list[Event] = []

    def to_client(frames: Frames) -> None:
        for frame in frames.client:
            for translated in beta.to_client(frame):
                event = json.loads(translated)
                validate_server_event(event, protocol="beta")
                seen.append(event)

    def from_client(event: Event) -> list[str]:
        upstream, _notices = beta.to_upstream(event)
        frames = Frames()
        for frame in upstream:
            got = gemini.to_provider(frame)
            frames.provider += got.provider
            frames.client += got.client
        to_client(frames)
        return frames.provider

    to_client(gemini.opened())
    from_client({"type": "session.update", "session": {"modalities": ["text"], "instructions": "Hi."}})
    gemini.flush_setup()
    to_client(gemini.to_client('{"setupComplete": {}}'))
    from_client(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        }
    )
    sent = from_client({"type": "response.create"})
    assert json.loads(sent[0])["clientContent"]["turnComplete"] is True
    for message in model_text("Hello"):
        to_client(gemini.to_client(json.dumps(message)))
    to_client(gemini.to_client(json.dumps({"serverContent": {"turnComplete": True}})))
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "session.created"
    assert "modalities" in seen[0]["session"]
    assert "response.text.delta" in kinds
    assert kinds[-1] == "response.done"
    assert "conversation.item.created" in kinds
