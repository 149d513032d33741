"""Tests of `shared.translation`: beta <-> GA client and server events, warnings, round trips.

Translated events are checked three ways: against the expected dict, against `shared.events`
(`validate_client_event` / `validate_server_event` for the receiving side's protocol), and against
the openai SDK's own unions, validated strictly (a discriminated pydantic `TypeAdapter`, as the
openai-agents SDK does) into the right class, with no field the SDK does not know (`model_extra`
empty everywhere), so every field name is the protocol's.
"""

from __future__ import annotations

import base64
import json
import string
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.beta.realtime import RealtimeClientEvent as BetaClientUnion
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerUnion
from openai.types.realtime import RealtimeClientEvent as GAClientUnion
from openai.types.realtime import RealtimeServerEvent as GAServerUnion
from pydantic import BaseModel, Field, TypeAdapter

from shared.events import validate_client_event, validate_server_event
from shared.simulator import Simulator
from shared.translation import Translator
from shared.translation.server import STREAM_RENAMES_TO_BETA, BetaToGa, GaToBeta

Event = dict[str, Any]

SDK_SERVER = {
    "ga": TypeAdapter(Annotated[GAServerUnion, Field(discriminator="type")]),
    "beta": TypeAdapter(Annotated[BetaServerUnion, Field(discriminator="type")]),
}
SDK_CLIENT = {
    "ga": TypeAdapter(Annotated[GAClientUnion, Field(discriminator="type")]),
    "beta": TypeAdapter(Annotated[BetaClientUnion, Field(discriminator="type")]),
}
# The SDK unions lack a few events the protocols have (see tests/unit/test_events.py).
# Its beta transcription session model is the REST one (`client_secret` required), so
# `transcription_session.updated` is checked against `shared.events` only.
NOT_IN_SDK = {"ga": set(), "beta": {"transcription_session.created", "transcription_session.updated"}}
# Fields the protocols send that the SDK models lack: the server events reuse the request models
# (no `id`, `object`, `expires_at`); beta's turn detection has no `idle_timeout_ms` and beta usage
# no `image_tokens` / `cached_tokens_details` (GA's, kept for a beta client: nothing is lost).
SDK_GAPS = {
    "session.id",
    "session.object",
    "session.expires_at",
    "session.turn_detection.idle_timeout_ms",
    "response.usage.input_token_details.image_tokens",
    "response.usage.input_token_details.cached_tokens_details",
}


def extras(model: Any, path: str = "") -> list[str]:
    """Paths of every field the SDK model tree does not declare."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}.{key}".lstrip(".") for key in model.model_extra or {}]
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, value in enumerate(model):
            found += extras(value, f"{path}[{i}]")
    return found


def sdk_server(event: Event, protocol: str, allowed_extras: set[str] = frozenset()) -> BaseModel:
    """``event`` validated strictly by the SDK's server union of ``protocol``; the model."""
    model = SDK_SERVER[protocol].validate_python(event)
    assert model.type == event["type"]
    assert set(extras(model)) <= allowed_extras | SDK_GAPS, extras(model)
    return model


def check_server(event: Event, protocol: str, allowed_extras: set[str] = frozenset()) -> None:
    validate_server_event(event, protocol=protocol)
    if event["type"] not in NOT_IN_SDK[protocol]:
        sdk_server(event, protocol, allowed_extras)


def check_client(event: Event, protocol: str) -> None:
    validate_client_event(event)
    model = SDK_CLIENT[protocol].validate_python(event)
    assert model.type == event["type"]
    assert extras(model) == [], extras(model)


def up(translator: Translator, event: Event) -> tuple[Event, list[Event]]:
    """One client event through ``to_upstream``: the single upstream event and the notices."""
    validate_client_event(event)
    frames, notices = translator.to_upstream(event)
    (frame,) = frames
    return json.loads(frame), [json.loads(n) for n in notices]


def down(translator: Translator, event: Event) -> list[Event]:
    return [json.loads(frame) for frame in translator.to_client(json.dumps(event))]


def down_one(translator: Translator, event: Event) -> Event:
    (out,) = down(translator, event)
    return out


def beta_client() -> Translator:
    """A beta client of a GA provider: client events beta -> GA, provider events GA -> beta."""
    return Translator("beta", "ga")


def ga_client() -> Translator:
    """A GA client of a beta provider: client events GA -> beta, provider events beta -> GA."""
    return Translator("ga", "beta")


TD = {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200, "silence_duration_ms": 700}
TRANSCRIPTION = {"model": "gpt-4o-transcribe", "language": "en", "prompt": "names"}
TOOL = {"type": "function", "name": "lookup", "description": "d", "parameters": {"type": "object"}}

BETA_SESSION = {
    "modalities": ["text", "audio"],
    "instructions": "Be brief.",
    "voice": "ash",
    "speed": 1.2,
    "input_audio_format": "g711_ulaw",
    "output_audio_format": "pcm16",
    "input_audio_transcription": TRANSCRIPTION,
    "input_audio_noise_reduction": {"type": "near_field"},
    "turn_detection": TD,
    "tools": [TOOL],
    "tool_choice": "auto",
    "max_response_output_tokens": 500,
    "tracing": "auto",
}
GA_SESSION = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "instructions": "Be brief.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "transcription": TRANSCRIPTION,
            "noise_reduction": {"type": "near_field"},
            "turn_detection": TD,
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "ash", "speed": 1.2},
    },
    "tools": [TOOL],
    "tool_choice": "auto",
    "max_output_tokens": 500,
    "tracing": "auto",
}


def same(a: Any, b: Any) -> bool:
    """Equal as JSON objects, nested ``audio`` included, key order aside."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- construction ------------------------------------------------------------------------------------


def test_only_cross_protocol_translators_exist() -> None:
    with pytest.raises(ValueError, match="no translation"):
        Translator("ga", "ga")
    with pytest.raises(ValueError, match="no translation"):
        Translator("beta", "beta")


# -- client events, beta -> GA ----------------------------------------------------------------------


def test_beta_session_update_becomes_a_ga_session() -> None:
    event = {"type": "session.update", "event_id": "evt_1", "session": BETA_SESSION}
    out, notices = up(beta_client(), event)
    assert notices == []
    assert out["type"] == "session.update"
    assert out["event_id"] == "evt_1"
    assert same(out["session"], GA_SESSION)
    check_client(out, "ga")


@pytest.mark.parametrize(
    ("beta", "ga"),
    [(["text", "audio"], ["audio"]), (["audio", "text"], ["audio"]), (["text"], ["text"])],
)
def test_beta_modalities_become_ga_output_modalities(beta: list[str], ga: list[str]) -> None:
    out, _ = up(beta_client(), {"type": "session.update", "session": {"modalities": beta}})
    assert out["session"] == {"type": "realtime", "output_modalities": ga}


@pytest.mark.parametrize(
    ("beta", "ga"),
    [
        ("pcm16", {"type": "audio/pcm", "rate": 24000}),
        ("g711_ulaw", {"type": "audio/pcmu"}),
        ("g711_alaw", {"type": "audio/pcma"}),
    ],
)
def test_audio_formats_map_both_ways(beta: str, ga: dict[str, Any]) -> None:
    beta_update = {
        "type": "session.update",
        "session": {"input_audio_format": beta, "output_audio_format": beta},
    }
    ga_update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"format": ga}, "output": {"format": ga}}},
    }
    out, _ = up(beta_client(), beta_update)
    assert out == ga_update
    back, _ = up(ga_client(), ga_update)
    assert back == beta_update
    check_client(out, "ga")
    check_client(back, "beta")


def test_ga_pcm_without_a_rate_is_pcm16() -> None:
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm"}}}},
    }
    out, _ = up(ga_client(), update)
    assert out["session"] == {"input_audio_format": "pcm16"}


def test_null_turn_detection_and_transcription_stay_null() -> None:
    update = {
        "type": "session.update",
        "session": {"turn_detection": None, "input_audio_transcription": None},
    }
    out, _ = up(beta_client(), update)
    assert out["session"] == {
        "type": "realtime",
        "audio": {"input": {"turn_detection": None, "transcription": None}},
    }
    back, _ = up(ga_client(), out)
    assert back == update


def test_beta_only_session_fields_are_dropped_with_one_notice_each() -> None:
    translator = beta_client()
    update = {"type": "session.update", "session": {"temperature": 0.7, "voice": "ash", "client_secret": {}}}
    out, notices = up(translator, update)
    assert out["session"] == {"type": "realtime", "audio": {"output": {"voice": "ash"}}}
    assert sorted(n["error"]["param"] for n in notices) == ["session.client_secret", "session.temperature"]
    # Again: the fields are still dropped, but the client was told already.
    out, notices = up(translator, update)
    assert "temperature" not in out["session"]
    assert notices == []
    # The same name in another object is another field.
    out, notices = up(translator, {"type": "response.create", "response": {"temperature": 0.9}})
    assert out == {"type": "response.create", "response": {}}
    assert [n["error"]["param"] for n in notices] == ["response.temperature"]
    # Each session is told for itself.
    _, notices = up(beta_client(), update)
    assert len(notices) == 2


def test_notice_is_an_openai_error_event_that_no_sdk_mistakes_for_a_failure() -> None:
    _, (notice,) = up(
        beta_client(), {"type": "response.create", "event_id": "evt_9", "response": {"temperature": 1}}
    )
    assert notice["type"] == "error"
    assert notice["event_id"].startswith("event_")
    error = notice["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "field_dropped"
    assert error["param"] == "response.temperature"
    # The agents SDK takes an error with an event_id, or naming response.create, while a response
    # is being requested, for that request's failure.
    assert error["event_id"] is None
    assert "response.create" not in error["message"]
    assert "GA" in error["message"]
    for protocol in ("ga", "beta"):
        check_server(notice, protocol)


def test_beta_response_create_becomes_ga() -> None:
    event = {
        "type": "response.create",
        "event_id": "evt_2",
        "response": {
            "modalities": ["text", "audio"],
            "voice": "coral",
            "output_audio_format": "g711_alaw",
            "max_response_output_tokens": "inf",
            "instructions": "Answer.",
            "conversation": "none",
            "metadata": {"k": "v"},
            "tools": [TOOL],
            "tool_choice": "required",
            "input": [
                {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Earlier."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Now?"}]},
            ],
        },
    }
    out, notices = up(beta_client(), event)
    assert notices == []
    assert same(
        out["response"],
        {
            "output_modalities": ["audio"],
            "audio": {"output": {"voice": "coral", "format": {"type": "audio/pcma"}}},
            "max_output_tokens": "inf",
            "instructions": "Answer.",
            "conversation": "none",
            "metadata": {"k": "v"},
            "tools": [TOOL],
            "tool_choice": "required",
            "input": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Earlier."}],
                },
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Now?"}]},
            ],
        },
    )
    check_client(out, "ga")


def test_beta_assistant_content_becomes_ga_in_conversation_item_create() -> None:
    event = {
        "type": "conversation.item.create",
        "previous_item_id": "item_0",
        "item": {
            "id": "item_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hi."}, {"type": "audio", "transcript": "Hi."}],
        },
    }
    out, _ = up(beta_client(), event)
    assert out["previous_item_id"] == "item_0"
    assert out["item"]["content"] == [
        {"type": "output_text", "text": "Hi."},
        {"type": "output_audio", "transcript": "Hi."},
    ]
    assert event["item"]["content"][0]["type"] == "text"  # the caller's event is not changed
    back, _ = up(ga_client(), out)
    assert back == event


def test_beta_transcription_session_update_becomes_a_ga_transcription_session() -> None:
    event = {
        "type": "transcription_session.update",
        "event_id": "evt_3",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": TRANSCRIPTION,
            "input_audio_noise_reduction": {"type": "far_field"},
            "turn_detection": TD,
            "include": ["item.input_audio_transcription.logprobs"],
            "modalities": ["text"],
        },
    }
    out, notices = up(beta_client(), event)
    assert out == {
        "type": "session.update",
        "event_id": "evt_3",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": TRANSCRIPTION,
                    "noise_reduction": {"type": "far_field"},
                    "turn_detection": TD,
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    assert [n["error"]["param"] for n in notices] == ["session.modalities"]
    check_client(out, "ga")
    back, notices = up(ga_client(), out)
    assert notices == []
    assert back == {**event, "session": {k: v for k, v in event["session"].items() if k != "modalities"}}
    check_client(back, "beta")


def test_events_alike_in_both_protocols_are_relayed_as_sent() -> None:
    translator = beta_client()
    audio = base64.b64encode(b"\0" * 4800).decode()
    for event in (
        {"type": "input_audio_buffer.append", "audio": audio},
        {"type": "input_audio_buffer.commit", "event_id": "e"},
        {"type": "response.cancel"},
        {"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 10},
        # already in the provider's shape
        {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}},
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
        },
        {"type": "response.create", "response": {"instructions": "x"}},
    ):
        raw = json.dumps(event, indent=1)
        frames, notices = translator.to_upstream(event, raw=raw)
        assert frames[0] is raw
        assert notices == []
        frames, _ = translator.to_upstream(event)
        assert json.loads(frames[0]) == event


def test_a_ga_shaped_session_from_a_beta_client_goes_to_ga_unchanged() -> None:
    event = {"type": "session.update", "session": GA_SESSION}
    out, _ = up(beta_client(), event)
    assert out == event


def test_unknown_fields_pass_through() -> None:
    out, notices = up(
        beta_client(), {"type": "session.update", "future": 1, "session": {"voice": "ash", "novel": {"a": 1}}}
    )
    assert notices == []
    assert out == {
        "type": "session.update",
        "future": 1,
        "session": {"type": "realtime", "novel": {"a": 1}, "audio": {"output": {"voice": "ash"}}},
    }


def test_a_ga_field_given_beside_its_beta_twin_wins() -> None:
    session = {
        "modalities": ["text", "audio"],
        "output_modalities": ["text"],
        "voice": "ash",
        "audio": {"output": {"voice": "marin"}},
    }
    out, _ = up(beta_client(), {"type": "session.update", "session": session})
    assert out["session"]["output_modalities"] == ["text"]
    assert out["session"]["audio"] == {"output": {"voice": "marin"}}


# -- client events, GA -> beta ----------------------------------------------------------------------


def test_ga_session_update_becomes_a_beta_session() -> None:
    out, notices = up(ga_client(), {"type": "session.update", "event_id": "evt_4", "session": GA_SESSION})
    assert notices == []
    assert out["event_id"] == "evt_4"
    assert same(out["session"], BETA_SESSION)
    check_client(out, "beta")


def test_ga_text_output_is_beta_text_only() -> None:
    out, _ = up(
        ga_client(),
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
    )
    assert out["session"] == {"modalities": ["text"]}


def test_ga_only_session_fields_are_dropped_with_notices() -> None:
    translator = ga_client()
    session = {
        "type": "realtime",
        "instructions": "x",
        "prompt": {"id": "pmpt_1"},
        "truncation": "auto",
        "reasoning": {"effort": "low"},
        "include": ["item.input_audio_transcription.logprobs"],
        "parallel_tool_calls": False,
        "audio": {"output": {"voice": "ash", "novel": 1}, "input": None, "elsewhere": {"x": 1}},
    }
    out, notices = up(translator, {"type": "session.update", "session": session})
    assert out["session"] == {"instructions": "x", "voice": "ash"}
    assert sorted(n["error"]["param"] for n in notices) == [
        "session.audio.elsewhere.x",
        "session.audio.output.novel",
        "session.include",
        "session.parallel_tool_calls",
        "session.prompt",
        "session.reasoning",
        "session.truncation",
    ]
    assert all("Realtime beta interface" in n["error"]["message"] for n in notices)
    _, notices = up(translator, {"type": "session.update", "session": session})
    assert notices == []


def test_ga_response_create_becomes_beta() -> None:
    event = {
        "type": "response.create",
        "response": {
            "output_modalities": ["text"],
            "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "verse"}},
            "max_output_tokens": 64,
            "prompt": {"id": "pmpt_1"},
            "reasoning": {"effort": "low"},
            "parallel_tool_calls": True,
            "input": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "t"}],
                }
            ],
        },
    }
    out, notices = up(ga_client(), event)
    assert out["response"] == {
        "modalities": ["text"],
        "output_audio_format": "g711_ulaw",
        "voice": "verse",
        "max_response_output_tokens": 64,
        "input": [{"type": "message", "role": "assistant", "content": [{"type": "text", "text": "t"}]}],
    }
    assert sorted(n["error"]["param"] for n in notices) == [
        "response.parallel_tool_calls",
        "response.prompt",
        "response.reasoning",
    ]
    check_client(out, "beta")


def test_ga_transcription_session_update_becomes_beta_transcription_session_update() -> None:
    event = {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {"input": {"format": {"type": "audio/pcma"}, "turn_detection": None}},
        },
    }
    out, notices = up(ga_client(), event)
    assert notices == []
    assert out == {
        "type": "transcription_session.update",
        "session": {"input_audio_format": "g711_alaw", "turn_detection": None},
    }
    check_client(out, "beta")


def test_a_beta_shaped_session_from_a_ga_client_goes_to_beta_unchanged() -> None:
    event = {"type": "session.update", "session": BETA_SESSION}
    raw = json.dumps(event)
    frames, notices = ga_client().to_upstream(event, raw=raw)
    assert frames == [raw]
    assert notices == []


# -- client round trips -------------------------------------------------------------------------------

TOKENS = st.one_of(st.integers(1, 4096), st.just("inf"))
VOICES = st.sampled_from(["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"])
BETA_FORMATS = st.sampled_from(["pcm16", "g711_ulaw", "g711_alaw"])
TEXT = st.text(string.ascii_letters + " .,'é漢", max_size=20)
TURN_DETECTION = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"type": st.just("server_vad")},
        optional={
            "threshold": st.floats(0, 1),
            "prefix_padding_ms": st.integers(0, 1000),
            "silence_duration_ms": st.integers(0, 2000),
            "create_response": st.booleans(),
            "interrupt_response": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("semantic_vad")},
        optional={"eagerness": st.sampled_from(["low", "medium", "high", "auto"])},
    ),
)
BETA_SESSIONS = st.fixed_dictionaries(
    {},
    optional={
        "modalities": st.sampled_from([["text"], ["text", "audio"]]),
        "instructions": TEXT,
        "voice": VOICES,
        "speed": st.floats(0.25, 1.5),
        "input_audio_format": BETA_FORMATS,
        "output_audio_format": BETA_FORMATS,
        "input_audio_transcription": st.one_of(
            st.none(),
            st.fixed_dictionaries({"model": st.just("whisper-1")}, optional={"language": st.just("en")}),
        ),
        "input_audio_noise_reduction": st.one_of(
            st.none(), st.fixed_dictionaries({"type": st.sampled_from(["near_field", "far_field"])})
        ),
        "turn_detection": TURN_DETECTION,
        "tools": st.lists(st.just(TOOL), max_size=1),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "max_response_output_tokens": TOKENS,
        "tracing": st.one_of(st.none(), st.just("auto"), st.fixed_dictionaries({"workflow_name": TEXT})),
        "temperature": st.floats(0.6, 1.2),
    },
)
BETA_RESPONSES = st.fixed_dictionaries(
    {},
    optional={
        "modalities": st.sampled_from([["text"], ["text", "audio"]]),
        "instructions": TEXT,
        "voice": VOICES,
        "output_audio_format": BETA_FORMATS,
        "max_response_output_tokens": TOKENS,
        "conversation": st.sampled_from(["auto", "none"]),
        "metadata": st.dictionaries(st.sampled_from("abc"), TEXT, max_size=2),
        "tool_choice": st.sampled_from(["auto", "none"]),
        "temperature": st.floats(0.6, 1.2),
        "input": st.lists(
            st.builds(
                lambda role, kinds, text: {
                    "type": "message",
                    "role": role,
                    "content": [{"type": kind, "text": text} for kind in kinds],
                },
                st.sampled_from(["assistant"]),
                st.lists(st.just("text"), max_size=2),  # beta takes no assistant audio as input
                TEXT,
            )
            | st.builds(
                lambda text: {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
                TEXT,
            ),
            max_size=3,
        ),
    },
)


@given(BETA_SESSIONS)
@settings(max_examples=200, deadline=None)
def test_beta_session_round_trip_is_lossless_for_shared_fields(session: Event) -> None:
    event = {"type": "session.update", "session": session}
    ga, notices = up(beta_client(), event)
    check_client(ga, "ga")
    assert [n["error"]["param"] for n in notices] == (
        ["session.temperature"] if "temperature" in session else []
    )
    back, notices = up(ga_client(), ga)
    assert notices == []
    expected = {k: v for k, v in session.items() if k != "temperature"}
    assert same(back["session"], expected)


@given(BETA_RESPONSES)
@settings(max_examples=200, deadline=None)
def test_beta_response_create_round_trip_is_lossless_for_shared_fields(params: Event) -> None:
    event = {"type": "response.create", "response": params}
    ga, _ = up(beta_client(), event)
    check_client(ga, "ga")
    back, notices = up(ga_client(), ga)
    assert notices == []
    assert same(back["response"], {k: v for k, v in params.items() if k != "temperature"})


@given(BETA_SESSIONS)
@settings(max_examples=100, deadline=None)
def test_ga_session_round_trip_is_lossless(beta_session: Event) -> None:
    ga, _ = up(beta_client(), {"type": "session.update", "session": beta_session})  # a valid GA session
    beta, _ = up(ga_client(), ga)
    again, notices = up(beta_client(), beta)
    assert notices == []
    assert same(again, ga)


# -- server events, GA -> beta ----------------------------------------------------------------------

DELTA = base64.b64encode(bytes(range(256)) * 19)[:6400].decode()  # 100 ms of 24 kHz PCM16 in base64
AT = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
STREAM_EVENTS = {
    "response.output_text.delta": {"delta": "Hel"},
    "response.output_text.done": {"text": "Hello"},
    "response.output_audio.delta": {"delta": DELTA},
    "response.output_audio.done": {},
    "response.output_audio_transcript.delta": {"delta": "Hel"},
    "response.output_audio_transcript.done": {"transcript": "Hello"},
}


@pytest.mark.parametrize(("ga", "beta"), sorted(STREAM_RENAMES_TO_BETA.items()))
def test_stream_events_are_renamed_both_ways(ga: str, beta: str) -> None:
    event = {"type": ga, "event_id": "event_1", **AT, **STREAM_EVENTS[ga]}
    frame = json.dumps(event, separators=(",", ":"))
    (out,) = beta_client().to_client(frame)
    assert out == frame.replace(ga, beta, 1)  # renamed in place, nothing else touched
    check_server(json.loads(out), "beta")
    (back,) = ga_client().to_client(out)
    assert back == frame
    check_server(json.loads(back), "ga")
    # Not compact, or with ``type`` elsewhere: the same result through a parse.
    spaced = json.dumps(event)
    assert json.loads(beta_client().to_client(spaced)[0]) == {**event, "type": beta}
    late = json.dumps({**{k: v for k, v in event.items() if k != "type"}, "type": ga})
    assert json.loads(beta_client().to_client(late)[0]) == {**event, "type": beta}


def test_escaped_type_is_parsed_not_guessed() -> None:
    frame = (
        '{"type":"response.output_audio\\u002edelta","event_id":"e",'
        + json.dumps(AT)[1:-1]
        + ',"delta":"AAAA"}'
    )
    (out,) = beta_client().to_client(frame)
    assert json.loads(out)["type"] == "response.audio.delta"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "input_audio_buffer.speech_started", "event_id": "e", "audio_start_ms": 0, "item_id": "i"},
        {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "message": "m"}},
        {
            "type": "response.function_call_arguments.delta",
            "event_id": "e",
            **AT,
            "call_id": "c",
            "delta": "{",
        },
        {"type": "rate_limits.updated", "event_id": "e", "rate_limits": []},
        {"type": "mcp_list_tools.in_progress", "event_id": "e", "item_id": "i"},
        {
            "type": "response.output_item.added",
            "event_id": "e",
            "response_id": "r",
            "output_index": 0,
            "item": {"id": "i", "type": "function_call", "name": "f", "arguments": "", "call_id": "c"},
        },
        {
            "type": "response.content_part.added",
            "event_id": "e",
            **AT,
            "part": {"type": "audio", "transcript": ""},
        },
    ],
)
def test_events_needing_no_change_are_the_original_frame(event: Event) -> None:
    for translator in (beta_client(), ga_client()):
        frame = json.dumps(event, indent=2)
        (out,) = translator.to_client(frame)
        assert out is frame


GA_SESSION_OBJECT = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_1",
    "model": "gpt-realtime",
    "expires_at": 0,
    **{k: v for k, v in GA_SESSION.items() if k != "type"},
    "prompt": None,
    "truncation": "auto",
    "include": None,
}


def test_ga_session_created_becomes_beta() -> None:
    event = {"type": "session.created", "event_id": "event_1", "session": GA_SESSION_OBJECT}
    out = down_one(beta_client(), event)
    assert out["type"] == "session.created"
    session = out["session"]
    assert same(
        session,
        {
            "object": "realtime.session",
            "id": "sess_1",
            "model": "gpt-realtime",
            "expires_at": 0,
            **BETA_SESSION,
            # GA-only fields are kept: the SDK keeps them as extras, and nothing is lost
            "prompt": None,
            "truncation": "auto",
            "include": None,
        },
    )
    check_server(out, "beta", allowed_extras={"session.prompt", "session.truncation", "session.include"})
    back = down_one(ga_client(), out)
    assert same(back, event)
    check_server(back, "ga")


def test_ga_session_updated_becomes_beta() -> None:
    event = {
        "type": "session.updated",
        "event_id": "event_1",
        "session": {"type": "realtime", "output_modalities": ["text"]},
    }
    out = down_one(beta_client(), event)
    assert out == {"type": "session.updated", "event_id": "event_1", "session": {"modalities": ["text"]}}
    check_server(out, "beta")


GA_TRANSCRIPTION_SESSION = {
    "type": "transcription",
    "object": "realtime.transcription_session",
    "id": "sess_2",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": TRANSCRIPTION,
            "turn_detection": TD,
            "noise_reduction": None,
        }
    },
    "include": ["item.input_audio_transcription.logprobs"],
}


@pytest.mark.parametrize("suffix", ["created", "updated"])
def test_ga_transcription_session_events_become_beta_transcription_session_events(suffix: str) -> None:
    event = {"type": f"session.{suffix}", "event_id": "event_1", "session": GA_TRANSCRIPTION_SESSION}
    out = down_one(beta_client(), event)
    assert out == {
        "type": f"transcription_session.{suffix}",
        "event_id": "event_1",
        "session": {
            "object": "realtime.transcription_session",
            "id": "sess_2",
            "input_audio_format": "pcm16",
            "input_audio_transcription": TRANSCRIPTION,
            "turn_detection": TD,
            "input_audio_noise_reduction": None,
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    check_server(out, "beta")
    back = down_one(ga_client(), out)
    assert same(back, event)
    check_server(back, "ga")


ASSISTANT_GA = {
    "id": "item_1",
    "object": "realtime.item",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_audio", "transcript": "Hello"}, {"type": "output_text", "text": "Hi"}],
}
ASSISTANT_BETA = {
    **ASSISTANT_GA,
    "content": [{"type": "audio", "transcript": "Hello"}, {"type": "text", "text": "Hi"}],
}


def test_ga_item_added_becomes_created_and_its_done_is_dropped() -> None:
    translator = beta_client()
    added = {
        "type": "conversation.item.added",
        "event_id": "event_1",
        "previous_item_id": "item_0",
        "item": ASSISTANT_GA,
    }
    out = down_one(translator, added)
    assert out == {
        "type": "conversation.item.created",
        "event_id": "event_1",
        "previous_item_id": "item_0",
        "item": ASSISTANT_BETA,
    }
    check_server(out, "beta")
    assert down(translator, {**added, "type": "conversation.item.done", "event_id": "event_2"}) == []
    # A done for an item never announced is the only news of it: it becomes created.
    other = {**ASSISTANT_GA, "id": "item_2"}
    out = down_one(translator, {"type": "conversation.item.done", "event_id": "event_3", "item": other})
    assert out["type"] == "conversation.item.created"
    check_server(out, "beta")


@pytest.mark.parametrize("kind", ["response.output_item.added", "response.output_item.done"])
def test_output_items_get_beta_content_types(kind: str) -> None:
    event = {
        "type": kind,
        "event_id": "event_1",
        "response_id": "resp_1",
        "output_index": 0,
        "item": ASSISTANT_GA,
    }
    out = down_one(beta_client(), event)
    assert out == {**event, "item": ASSISTANT_BETA}
    check_server(out, "beta")


def test_retrieved_item_gets_beta_content_types() -> None:
    event = {"type": "conversation.item.retrieved", "event_id": "event_1", "item": ASSISTANT_GA}
    out = down_one(beta_client(), event)
    assert out == {**event, "item": ASSISTANT_BETA}
    check_server(out, "beta")


def test_ga_output_content_part_types_become_beta() -> None:
    event = {
        "type": "response.content_part.done",
        "event_id": "event_1",
        **AT,
        "part": {"type": "output_audio", "transcript": "Hello"},
    }
    out = down_one(beta_client(), event)
    assert out["part"] == {"type": "audio", "transcript": "Hello"}
    check_server(out, "beta")


USAGE = {
    "total_tokens": 30,
    "input_tokens": 10,
    "output_tokens": 20,
    "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 5, "audio_tokens": 15},
}
GA_RESPONSE = {
    "object": "realtime.response",
    "id": "resp_1",
    "status": "completed",
    "status_details": None,
    "output": [ASSISTANT_GA],
    "conversation_id": "conv_1",
    "output_modalities": ["audio"],
    "max_output_tokens": "inf",
    "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
    "usage": USAGE,
    "metadata": None,
}
BETA_RESPONSE = {
    "object": "realtime.response",
    "id": "resp_1",
    "status": "completed",
    "status_details": None,
    "output": [ASSISTANT_BETA],
    "conversation_id": "conv_1",
    "modalities": ["text", "audio"],
    "max_output_tokens": "inf",
    "output_audio_format": "pcm16",
    "voice": "alloy",
    "usage": USAGE,
    "metadata": None,
}


@pytest.mark.parametrize("kind", ["response.created", "response.done"])
def test_ga_response_objects_become_beta(kind: str) -> None:
    event = {"type": kind, "event_id": "event_1", "response": GA_RESPONSE}
    out = down_one(beta_client(), event)
    assert same(out, {**event, "response": BETA_RESPONSE})
    check_server(out, "beta")
    back = down(ga_client(), out)
    assert same(back[-1], event)
    check_server(back[-1], "ga")


# -- server events, beta -> GA ----------------------------------------------------------------------


BETA_SESSION_OBJECT = {
    "object": "realtime.session",
    "id": "sess_1",
    "model": "gpt-4o-realtime-preview",
    "expires_at": 0,
    **BETA_SESSION,
    "temperature": 0.8,
}


def test_beta_session_created_becomes_ga() -> None:
    event = {"type": "session.created", "event_id": "event_1", "session": BETA_SESSION_OBJECT}
    out = down_one(ga_client(), event)
    expected = {
        **{k: v for k, v in GA_SESSION_OBJECT.items() if k not in ("prompt", "truncation", "include")}
    }
    expected["model"] = "gpt-4o-realtime-preview"
    assert same(out["session"], {**expected, "temperature": 0.8})  # kept: nothing the provider says is lost
    check_server(out, "ga", allowed_extras={"session.temperature"})
    back = down_one(beta_client(), out)
    assert same(back, event)


def test_beta_item_created_for_a_final_item_becomes_added_and_done() -> None:
    user = {
        "id": "item_2",
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    event = {
        "type": "conversation.item.created",
        "event_id": "event_1",
        "previous_item_id": "item_1",
        "item": user,
    }
    added, done = down(ga_client(), event)
    assert added == {**event, "type": "conversation.item.added"}
    assert done["type"] == "conversation.item.done"
    assert done["event_id"] != added["event_id"]
    assert done["item"] == user
    assert done["previous_item_id"] == "item_1"
    for out in (added, done):
        check_server(out, "ga")


def test_beta_item_in_progress_is_done_after_its_output_item_done() -> None:
    translator = ga_client()
    in_progress = {**ASSISTANT_BETA, "status": "in_progress", "content": []}
    created = {
        "type": "conversation.item.created",
        "event_id": "event_1",
        "previous_item_id": "item_0",
        "item": in_progress,
    }
    (added,) = down(translator, created)
    assert added["type"] == "conversation.item.added"
    check_server(added, "ga")
    output_done = {
        "type": "response.output_item.done",
        "event_id": "event_2",
        "response_id": "resp_1",
        "output_index": 0,
        "item": ASSISTANT_BETA,
    }
    relayed, done = down(translator, output_done)
    assert relayed == {**output_done, "item": ASSISTANT_GA}
    assert done["type"] == "conversation.item.done"
    assert done["item"] == ASSISTANT_GA
    assert done["previous_item_id"] == "item_0"
    check_server(done, "ga")
    # Once only: response.done adds nothing more.
    (response_done,) = down(
        translator, {"type": "response.done", "event_id": "event_3", "response": BETA_RESPONSE}
    )
    assert response_done["type"] == "response.done"


def test_beta_item_left_open_is_done_before_response_done() -> None:
    translator = ga_client()
    in_progress = {**ASSISTANT_BETA, "status": "in_progress", "content": []}
    down(translator, {"type": "conversation.item.created", "event_id": "event_1", "item": in_progress})
    done, response_done = down(
        translator, {"type": "response.done", "event_id": "event_3", "response": BETA_RESPONSE}
    )
    assert done["type"] == "conversation.item.done"
    assert done["item"] == ASSISTANT_GA
    assert response_done["type"] == "response.done"
    check_server(done, "ga")
    check_server(response_done, "ga")


def test_deleted_open_item_is_forgotten() -> None:
    translator = ga_client()
    in_progress = {**ASSISTANT_BETA, "status": "in_progress", "content": []}
    down(translator, {"type": "conversation.item.created", "event_id": "event_1", "item": in_progress})
    deleted = json.dumps({"type": "conversation.item.deleted", "event_id": "event_2", "item_id": "item_1"})
    assert translator.to_client(deleted) == [deleted]
    assert [
        e["type"]
        for e in down(translator, {"type": "response.done", "event_id": "e", "response": BETA_RESPONSE})
    ] == ["response.done"]


def test_beta_content_parts_stay_as_the_ga_sdk_declares_them() -> None:
    # The GA SDK declares response.content_part.* parts as "text" / "audio", as beta has them.
    event = {
        "type": "response.content_part.added",
        "event_id": "event_1",
        **AT,
        "part": {"type": "audio", "transcript": ""},
    }
    frame = json.dumps(event)
    assert ga_client().to_client(frame) == [frame]
    check_server(event, "ga")


# -- whole sessions ---------------------------------------------------------------------------------


def simulated_ga_stream(client_events: list[Event]) -> list[str]:
    """Frames of the (GA) simulator for ``client_events`` sent by a beta client via the translator."""
    sim = Simulator("gpt-realtime", pace=0, now=0.0)
    frames = sim.start(0.0)
    translator = beta_client()
    for event in client_events:
        (upstream,), _ = translator.to_upstream(event)
        frames += sim.receive(json.loads(upstream), 0.0)
    return frames


BETA_CONVERSATION = [
    {
        "type": "session.update",
        "session": {
            "modalities": ["text", "audio"],
            "voice": "ash",
            "output_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1"},
        },
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Say something."}],
        },
    },
    {"type": "response.create"},
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Earlier."}]},
    },
    {"type": "response.create", "response": {"modalities": ["text"], "instructions": "Text now."}},
    {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x10\x20" * 2400).decode()},
    {"type": "input_audio_buffer.commit"},
]


def test_a_simulated_ga_session_reaches_a_beta_client_as_valid_beta() -> None:
    translator = beta_client()
    frames = simulated_ga_stream(BETA_CONVERSATION)
    kinds = []
    for frame in frames:
        for out in translator.to_client(frame):
            event = json.loads(out)
            kinds.append(event["type"])
            check_server(event, "beta", allowed_extras=_ga_only_session_extras(event))
    assert "response.audio.delta" in kinds
    assert "response.audio_transcript.done" in kinds
    assert "response.text.delta" in kinds
    assert "conversation.item.created" in kinds
    assert "conversation.item.added" not in kinds
    assert "conversation.item.done" not in kinds
    assert not any(
        k.startswith("response.output_")
        and k not in ("response.output_item.added", "response.output_item.done")
        for k in kinds
    )


def _ga_only_session_extras(event: Event) -> set[str]:
    if event["type"] in ("session.created", "session.updated"):
        return {"session.prompt", "session.truncation", "session.include"}
    return set()


def test_a_ga_stream_through_beta_and_back_is_unchanged() -> None:
    """GA -> beta -> GA over a whole simulated session gives back the GA stream, event for event
    (the regenerated conversation.item.done events have new event ids)."""
    there, back = beta_client(), ga_client()
    original = [json.loads(f) for f in simulated_ga_stream(BETA_CONVERSATION)]
    returned = [
        json.loads(b) for f in original for t in there.to_client(json.dumps(f)) for b in back.to_client(t)
    ]
    assert [e["type"] for e in returned] == [e["type"] for e in original]
    for got, want in zip(returned, original, strict=True):
        if want["type"] == "conversation.item.done":
            got = {**got, "event_id": want["event_id"]}
        assert same(got, want), (got, want)
        check_server(got, "ga")


# -- robustness ---------------------------------------------------------------------------------------


@given(st.text())
@settings(max_examples=500, deadline=None)
def test_to_client_never_raises_on_arbitrary_text(frame: str) -> None:
    for translator in (beta_client(), ga_client()):
        out = translator.to_client(frame)
        assert isinstance(out, list)
        assert all(isinstance(f, str) for f in out)


HANDLED = sorted(
    GaToBeta.handled | BetaToGa.handled | set(STREAM_RENAMES_TO_BETA) | set(STREAM_RENAMES_TO_BETA.values())
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "id",
                    "item",
                    "content",
                    "session",
                    "response",
                    "output",
                    "audio",
                    "input",
                    "output_modalities",
                    "modalities",
                    "status",
                    "part",
                    "item_id",
                    "previous_item_id",
                    "format",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(
    st.sampled_from(HANDLED),
    st.dictionaries(
        st.sampled_from(["session", "item", "response", "part", "item_id", "event_id"]), JSON, max_size=4
    ),
)
@settings(max_examples=500, deadline=None)
def test_to_client_never_raises_on_odd_shapes_of_the_events_it_translates(kind: str, body: Event) -> None:
    frame = json.dumps({"type": kind, **body})
    for translator in (beta_client(), ga_client()):
        for out in translator.to_client(frame):
            assert isinstance(json.loads(out), dict)


def test_to_client_passes_non_events_through() -> None:
    translator = beta_client()
    for frame in [
        "",
        "not json",
        "[1,2]",
        '{"type": 5}',
        '{"no": "type"}',
        '{"type":"session.created"',
        "[" * 100_000,
    ]:
        assert translator.to_client(frame) == [frame]


def test_lone_surrogates_are_escaped_not_sent_raw() -> None:
    item = '{"type":"message","role":"assistant","content":[{"type":"output_text","text":"\\ud800 ok é"}]}'
    frame = (
        '{"type":"response.output_item.done","event_id":"e","response_id":"r","output_index":0,"item":'
        + item
        + "}"
    )
    (out,) = beta_client().to_client(frame)
    out.encode()  # sendable as UTF-8
    assert json.loads(out)["item"]["content"][0] == {"type": "text", "text": "\ud800 ok é"}
