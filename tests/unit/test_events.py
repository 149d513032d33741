"""Tests of `shared.events`: required fields, permissiveness, and parity with the openai SDK."""

import typing
from typing import Any

import pytest
from pydantic import ValidationError

from shared import events
from shared.events import (
    BETA_SERVER_EVENT_TYPES,
    CLIENT_EVENT_TYPES,
    GA_SERVER_EVENT_TYPES,
    validate_client_event,
    validate_server_event,
)

# Names we accept beyond the SDK's unions: `transcription_session.*` were GA server events in
# early GA SDK builds (now `session.*` with `session.type == "transcription"`), and
# `transcription_session.created` is a beta server event in the OpenAPI spec.
LEGACY_GA_SERVER_TYPES = {"transcription_session.created", "transcription_session.updated"}
LEGACY_BETA_SERVER_TYPES = {"transcription_session.created"}

MESSAGE = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}

# Minimal valid client events: every key besides `type` is required.
CLIENT_MINIMAL: dict[str, dict[str, Any]] = {
    "session.update": {"session": {"type": "realtime"}},
    "transcription_session.update": {"session": {}},
    "input_audio_buffer.append": {"audio": "AAAA"},
    "input_audio_buffer.commit": {},
    "input_audio_buffer.clear": {},
    "output_audio_buffer.clear": {},
    "conversation.item.create": {"item": MESSAGE},
    "conversation.item.retrieve": {"item_id": "item_1"},
    "conversation.item.truncate": {"item_id": "item_1", "content_index": 0, "audio_end_ms": 1500},
    "conversation.item.delete": {"item_id": "item_1"},
    "response.create": {},
    "response.cancel": {},
}

_STREAM = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0}
_ARGS = {"response_id": "resp_1", "item_id": "item_1", "output_index": 0, "call_id": "call_1"}

# Minimal valid server event bodies shared by both protocols (`event_id` is added below).
_SHARED_SERVER: dict[str, dict[str, Any]] = {
    "error": {"error": {"type": "invalid_request_error", "message": "bad"}},
    "conversation.created": {"conversation": {}},
    "conversation.item.deleted": {"item_id": "item_1"},
    "conversation.item.truncated": {"item_id": "item_1", "content_index": 0, "audio_end_ms": 10},
    "conversation.item.input_audio_transcription.delta": {"item_id": "item_1"},
    "conversation.item.input_audio_transcription.completed": {
        "item_id": "item_1",
        "content_index": 0,
        "transcript": "hello",
        "usage": {"type": "duration", "seconds": 1.5},
    },
    "conversation.item.input_audio_transcription.failed": {
        "item_id": "item_1",
        "content_index": 0,
        "error": {},
    },
    "input_audio_buffer.committed": {"item_id": "item_1"},
    "input_audio_buffer.cleared": {},
    "input_audio_buffer.speech_started": {"item_id": "item_1", "audio_start_ms": 0},
    "input_audio_buffer.speech_stopped": {"item_id": "item_1", "audio_end_ms": 900},
    "output_audio_buffer.started": {"response_id": "resp_1"},
    "output_audio_buffer.stopped": {"response_id": "resp_1"},
    "output_audio_buffer.cleared": {"response_id": "resp_1"},
    "rate_limits.updated": {"rate_limits": []},
    "response.content_part.added": {**_STREAM, "part": {}},
    "response.content_part.done": {**_STREAM, "part": {}},
    "response.function_call_arguments.delta": {**_ARGS, "delta": "{"},
}

_GA_ONLY_SERVER: dict[str, dict[str, Any]] = {
    "session.created": {"session": {"type": "realtime"}},
    "session.updated": {"session": {"type": "transcription"}},
    "transcription_session.created": {"session": {}},
    "transcription_session.updated": {"session": {}},
    "conversation.item.added": {"item": MESSAGE},
    "conversation.item.done": {"item": MESSAGE},
    "conversation.item.created": {"item": MESSAGE},
    "conversation.item.retrieved": {"item": MESSAGE},
    "conversation.item.input_audio_transcription.segment": {
        "id": "seg_1",
        "item_id": "item_1",
        "content_index": 0,
        "text": "hi",
        "speaker": "A",
        "start": 0.0,
        "end": 0.5,
    },
    "input_audio_buffer.timeout_triggered": {
        "item_id": "item_1",
        "audio_start_ms": 0,
        "audio_end_ms": 5000,
    },
    "response.created": {"response": {}},
    "response.done": {"response": {}},
    "response.output_item.added": {"response_id": "resp_1", "output_index": 0, "item": MESSAGE},
    "response.output_item.done": {"response_id": "resp_1", "output_index": 0, "item": MESSAGE},
    "response.output_text.delta": {**_STREAM, "delta": "Hel"},
    "response.output_text.done": {**_STREAM, "text": "Hello"},
    "response.output_audio.delta": {**_STREAM, "delta": "AAAA"},
    "response.output_audio.done": dict(_STREAM),
    "response.output_audio_transcript.delta": {**_STREAM, "delta": "Hel"},
    "response.output_audio_transcript.done": {**_STREAM, "transcript": "Hello"},
    "response.function_call_arguments.done": {**_ARGS, "arguments": "{}", "name": "f"},
    "response.mcp_call_arguments.delta": {
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "delta": "{",
    },
    "response.mcp_call_arguments.done": {
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "arguments": "{}",
    },
    "response.mcp_call.in_progress": {"item_id": "item_1", "output_index": 0},
    "response.mcp_call.completed": {"item_id": "item_1", "output_index": 0},
    "response.mcp_call.failed": {"item_id": "item_1", "output_index": 0},
    "mcp_list_tools.in_progress": {"item_id": "item_1"},
    "mcp_list_tools.completed": {"item_id": "item_1"},
    "mcp_list_tools.failed": {"item_id": "item_1"},
}

_BETA_ONLY_SERVER: dict[str, dict[str, Any]] = {
    "session.created": {"session": {}},
    "session.updated": {"session": {}},
    "transcription_session.created": {"session": {}},
    # The SDK's beta model (the REST shape) requires `client_secret`; the WebSocket event has
    # none, so ours does not require it. Include it here so the SDK parity check applies.
    "transcription_session.updated": {"session": {"client_secret": {"value": "s", "expires_at": 1}}},
    "conversation.item.created": {"item": {}},
    "conversation.item.retrieved": {"item": {}},
    "response.created": {"response": {}},
    "response.done": {"response": {}},
    "response.output_item.added": {"response_id": "resp_1", "output_index": 0, "item": {}},
    "response.output_item.done": {"response_id": "resp_1", "output_index": 0, "item": {}},
    "response.text.delta": {**_STREAM, "delta": "Hel"},
    "response.text.done": {**_STREAM, "text": "Hello"},
    "response.audio.delta": {**_STREAM, "delta": "AAAA"},
    "response.audio.done": dict(_STREAM),
    "response.audio_transcript.delta": {**_STREAM, "delta": "Hel"},
    "response.audio_transcript.done": {**_STREAM, "transcript": "Hello"},
    "response.function_call_arguments.done": {**_ARGS, "arguments": "{}"},
}


def _with_event_ids(bodies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {"event_id": f"event_{i}", **body} for i, (name, body) in enumerate(bodies.items())}


SERVER_MINIMAL: dict[str, dict[str, dict[str, Any]]] = {
    "ga": {
        **_with_event_ids({**_SHARED_SERVER, **_GA_ONLY_SERVER}),
        # The only server event without an `event_id` in the published schema.
        "input_audio_buffer.dtmf_event_received": {"event": "5", "received_at": 1700000000},
    },
    "beta": _with_event_ids({**_SHARED_SERVER, **_BETA_ONLY_SERVER}),
}
SERVER_TYPES = {"ga": GA_SERVER_EVENT_TYPES, "beta": BETA_SERVER_EVENT_TYPES}


def _event(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": name, **body}


def _drop_cases(table: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return [(name, key) for name, body in table.items() for key in body]


def _server_cases() -> list[tuple[str, str]]:
    return [(proto, name) for proto, table in SERVER_MINIMAL.items() for name in table]


def _server_drop_cases() -> list[tuple[str, str, str]]:
    return [(proto, name, key) for proto, table in SERVER_MINIMAL.items() for name, key in _drop_cases(table)]


# --- client events -----------------------------------------------------------------


def test_client_table_covers_every_client_type() -> None:
    assert set(CLIENT_MINIMAL) == CLIENT_EVENT_TYPES


@pytest.mark.parametrize("name", sorted(CLIENT_MINIMAL))
def test_minimal_client_event_validates(name: str) -> None:
    model = validate_client_event(_event(name, CLIENT_MINIMAL[name]))
    assert model.type == name
    assert model.event_id is None
    assert type(model) is events.CLIENT_EVENT_MODELS[name]


@pytest.mark.parametrize(("name", "key"), _drop_cases(CLIENT_MINIMAL))
def test_client_event_missing_required_field_fails(name: str, key: str) -> None:
    event = _event(name, CLIENT_MINIMAL[name])
    del event[key]
    with pytest.raises(ValidationError):
        validate_client_event(event)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "input_audio_buffer.append", "audio": 123},
        {
            "type": "conversation.item.truncate",
            "item_id": "i",
            "content_index": 0,
            "audio_end_ms": "x",
        },
        {"type": "conversation.item.create", "item": "not an object"},
        {"type": "session.update", "session": {"type": "bogus"}},
        {"type": "session.update", "session": None},
        {"type": "response.create", "response": {"input": "not a list"}},
        {"type": "input_audio_buffer.commit", "event_id": 7},
    ],
)
def test_client_event_with_wrong_field_type_fails(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate_client_event(event)


@pytest.mark.parametrize("event", [{"type": "no.such.event"}, {}, {"type": ["x"]}, [], "x"])
def test_unknown_or_malformed_client_event_is_a_value_error(event: Any) -> None:
    with pytest.raises(ValueError, match="client event"):
        validate_client_event(event)


def test_client_extra_fields_are_kept_at_every_level() -> None:
    event = {
        "type": "conversation.item.create",
        "event_id": "evt_1",
        "future_field": {"a": 1},
        "item": {**MESSAGE, "new_item_field": True, "content": [{"type": "input_text", "x": 2}]},
    }
    model = validate_client_event(event)
    assert model.model_extra == {"future_field": {"a": 1}}
    dumped = model.model_dump(exclude_none=True)
    assert dumped["future_field"] == {"a": 1}
    assert dumped["item"]["new_item_field"] is True
    assert dumped["item"]["content"][0]["x"] == 2
    assert dumped["event_id"] == "evt_1"


def test_session_update_picks_ga_or_beta_session_shape() -> None:
    ga = validate_client_event(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"voice": "marin"}}},
        }
    )
    assert isinstance(ga.session, events.RealtimeSession)
    assert ga.session.audio.output.voice == "marin"

    transcription = validate_client_event({"type": "session.update", "session": {"type": "transcription"}})
    assert isinstance(transcription.session, events.TranscriptionSession)

    beta = validate_client_event(
        {"type": "session.update", "session": {"voice": "alloy", "modalities": ["text"]}}
    )
    assert isinstance(beta.session, events.BetaSession)
    assert beta.session.voice == "alloy"


def test_client_items_are_loose_for_both_protocols() -> None:
    # A beta-style item with only some fields, and an item type we have never heard of.
    for item in ({"type": "function_call_output", "call_id": "c"}, {"type": "brand_new"}, {}):
        model = validate_client_event({"type": "conversation.item.create", "item": item})
        assert isinstance(model.item, events.ConversationItem)


def test_response_create_accepts_ga_and_beta_parameters() -> None:
    model = validate_client_event(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "output_modalities": ["audio"],
                "modalities": ["text", "audio"],
                "max_output_tokens": "inf",
                "tool_choice": {"type": "function", "name": "f"},
                "tools": [{"type": "function", "name": "f", "parameters": {}}],
                "input": [{"type": "item_reference", "id": "item_1"}],
            },
        }
    )
    assert model.response.max_output_tokens == "inf"
    assert model.response.input[0].id == "item_1"


# --- server events -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["ga", "beta"])
def test_server_table_covers_every_server_type(protocol: str) -> None:
    assert set(SERVER_MINIMAL[protocol]) == SERVER_TYPES[protocol]


@pytest.mark.parametrize(("protocol", "name"), _server_cases())
def test_minimal_server_event_validates(protocol: str, name: str) -> None:
    model = validate_server_event(_event(name, SERVER_MINIMAL[protocol][name]), protocol)
    assert model.type == name


@pytest.mark.parametrize(("protocol", "name", "key"), _server_drop_cases())
def test_server_event_missing_required_field_fails(protocol: str, name: str, key: str) -> None:
    event = _event(name, SERVER_MINIMAL[protocol][name])
    del event[key]
    with pytest.raises(ValidationError):
        validate_server_event(event, protocol)


@pytest.mark.parametrize(
    ("protocol", "name"),
    [
        ("ga", "response.text.delta"),
        ("ga", "response.audio.delta"),
        ("ga", "response.audio_transcript.done"),
        ("beta", "response.output_text.delta"),
        ("beta", "response.output_audio.delta"),
        ("beta", "conversation.item.added"),
        ("beta", "response.mcp_call.completed"),
    ],
)
def test_server_event_of_the_other_protocol_is_rejected(protocol: str, name: str) -> None:
    with pytest.raises(ValueError, match="server event type"):
        validate_server_event({"type": name, "event_id": "e"}, protocol)


def test_unknown_protocol_is_rejected() -> None:
    with pytest.raises(ValueError, match="protocol"):
        validate_server_event({"type": "error", "event_id": "e"}, "v2")


def test_error_event_round_trip() -> None:
    event = {
        "type": "error",
        "event_id": "event_9",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Invalid value",
            "param": "session.voice",
            "event_id": "client_evt_1",
            "extra": "kept",
        },
    }
    for protocol in ("ga", "beta"):
        model = validate_server_event(event, protocol)
        assert isinstance(model, events.ErrorEvent)
        assert isinstance(model.error, events.ErrorDetail)
        assert model.error.param == "session.voice"
        assert model.model_dump(exclude_none=True) == event
    built = events.ErrorEvent(
        type="error", event_id="e", error=events.ErrorDetail(type="server_error", message="boom")
    )
    assert validate_server_event(built.model_dump(), "ga") == built


def test_ga_items_are_typed_with_a_loose_fallback() -> None:
    base = {
        "type": "response.output_item.done",
        "event_id": "e",
        "response_id": "r",
        "output_index": 0,
    }
    call = {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"}
    model = validate_server_event({**base, "item": call}, "ga")
    assert isinstance(model.item, events.FunctionCallItem)
    assert model.item.name == "f"

    unknown = validate_server_event({**base, "item": {"type": "future_item", "x": 1}}, "ga")
    assert isinstance(unknown.item, events.ConversationItem)
    assert unknown.item.model_extra == {"x": 1}

    for broken in (
        {"type": "function_call", "arguments": "{}"},
        {"type": "message", "content": []},
    ):
        with pytest.raises(ValidationError):
            validate_server_event({**base, "item": broken}, "ga")
        # The beta item shape has no required fields.
        assert validate_server_event({**base, "item": broken}, "beta")


def test_response_done_keeps_typed_output_and_usage() -> None:
    event = {
        "type": "response.done",
        "event_id": "e",
        "response": {
            "id": "resp_1",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "hi"}],
                }
            ],
            "usage": {"total_tokens": 3, "input_token_details": {"cached_tokens": 1}},
        },
    }
    model = validate_server_event(event, "ga")
    assert model.response.output[0].role == "assistant"
    assert model.response.usage.input_token_details.cached_tokens == 1


def test_transcription_usage_variants() -> None:
    base = _event(
        "conversation.item.input_audio_transcription.completed",
        SERVER_MINIMAL["ga"]["conversation.item.input_audio_transcription.completed"],
    )
    tokens = {"type": "tokens", "input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    model = validate_server_event({**base, "usage": tokens}, "ga")
    assert isinstance(model.usage, events.TranscriptionTokenUsage)
    with pytest.raises(ValidationError):
        validate_server_event({**base, "usage": {"type": "tokens"}}, "ga")
    with pytest.raises(ValidationError):
        validate_server_event({**base, "usage": {"type": "minutes", "seconds": 1}}, "ga")


def test_ga_session_events_need_a_session_type() -> None:
    with pytest.raises(ValidationError):
        validate_server_event({"type": "session.created", "event_id": "e", "session": {}}, "ga")
    assert validate_server_event({"type": "session.created", "event_id": "e", "session": {}}, "beta")


def test_model_tables_are_consistent() -> None:
    for table in (
        events.CLIENT_EVENT_MODELS,
        events.GA_SERVER_EVENT_MODELS,
        events.BETA_SERVER_EVENT_MODELS,
    ):
        for name, model in table.items():
            assert model.model_config.get("extra") == "allow"
            assert typing.get_args(model.model_fields["type"].annotation) == (name,)
    for name in events.__all__:
        assert getattr(events, name) is not None


# --- parity with the openai SDK ----------------------------------------------------------


def _sdk_models(alias: Any) -> dict[str, type]:
    """Event type name -> SDK model for the members of an SDK event union."""
    if typing.get_origin(alias) is typing.Annotated:
        alias = typing.get_args(alias)[0]
    table: dict[str, type] = {}
    for member in typing.get_args(alias):
        for name in typing.get_args(member.model_fields["type"].annotation):
            table[name] = member
    return table


def _sdk() -> dict[str, dict[str, type]]:
    pytest.importorskip("openai")
    ga_client = pytest.importorskip("openai.types.realtime.realtime_client_event")
    ga_server = pytest.importorskip("openai.types.realtime.realtime_server_event")
    beta_client = pytest.importorskip("openai.types.beta.realtime.realtime_client_event")
    beta_server = pytest.importorskip("openai.types.beta.realtime.realtime_server_event")
    return {
        "ga_client": _sdk_models(ga_client.RealtimeClientEvent),
        "beta_client": _sdk_models(beta_client.RealtimeClientEvent),
        "ga": _sdk_models(ga_server.RealtimeServerEvent),
        "beta": _sdk_models(beta_server.RealtimeServerEvent),
    }


def test_every_sdk_ga_server_event_is_known() -> None:
    sdk = set(_sdk()["ga"])
    assert sdk - GA_SERVER_EVENT_TYPES == set()
    assert GA_SERVER_EVENT_TYPES - sdk <= LEGACY_GA_SERVER_TYPES


def test_every_sdk_beta_server_event_is_known() -> None:
    sdk = set(_sdk()["beta"])
    assert sdk - BETA_SERVER_EVENT_TYPES == set()
    assert BETA_SERVER_EVENT_TYPES - sdk <= LEGACY_BETA_SERVER_TYPES


def test_every_sdk_client_event_is_known() -> None:
    sdk = _sdk()
    assert set(sdk["ga_client"]) | set(sdk["beta_client"]) == CLIENT_EVENT_TYPES


def _sdk_accepts(model: type, event: dict[str, Any]) -> bool:
    try:
        model.model_validate(event)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(CLIENT_MINIMAL))
def test_client_required_fields_match_sdk(name: str) -> None:
    sdk = _sdk()
    models = [t[name] for t in (sdk["ga_client"], sdk["beta_client"]) if name in t]
    assert models
    event = _event(name, CLIENT_MINIMAL[name])
    for model in models:
        assert _sdk_accepts(model, event), model
        for key in CLIENT_MINIMAL[name]:
            partial = {k: v for k, v in event.items() if k != key}
            assert not _sdk_accepts(model, partial), (model, key)


@pytest.mark.parametrize(("protocol", "name"), _server_cases())
def test_server_required_fields_match_sdk(protocol: str, name: str) -> None:
    model = _sdk()[protocol].get(name)
    if model is None:
        pytest.skip(f"{name} is not in the SDK's {protocol} union")
    event = _event(name, SERVER_MINIMAL[protocol][name])
    assert _sdk_accepts(model, event)
    for key in SERVER_MINIMAL[protocol][name]:
        partial = {k: v for k, v in event.items() if k != key}
        assert not _sdk_accepts(model, partial), key


# --- GPT-Live and realtime translation: parity with the SDK's types -------------------------------

_LIVE_SESSION = {"model": "gpt-live-1"}
# Minimal valid events of every Live vocabulary: every key besides `type` is required.
LIVE_MINIMAL: dict[str, dict[str, Any]] = {
    "session.start": {"session": _LIVE_SESSION},
    "session.update": {"session": {}},
    "session.input_audio.append": {"audio": "AAAA"},
    "session.input_audio.mute": {},
    "session.input_audio.unmute": {},
    "session.output_audio.fixture.play": {"audio": "AAAA"},
    "session.instructions.append": {"content": "c"},
    "session.thinking.append": {"content": "c"},
    "session.commentary.append": {"content": "c"},
    "decision.create": {"event_id": "evt_1"},
    "decision.item.create": {"item": {"type": "message", "role": "user", "content": "hi"}},
    "decision.item.delete": {"item_id": "item_1"},
    "response.item.create": {"item": {"type": "message", "role": "user", "content": "hi"}},
    "response.create": {},
    "session.close": {},
    "transport.dtmf.send": {"event": "5"},
}
# What differs on a fork: its session.start carries overrides only (none required).
LIVE_FORK_MINIMAL = {**LIVE_MINIMAL, "session.start": {"session": {}}}
TRANSLATION_MINIMAL: dict[str, dict[str, Any]] = {
    "session.update": {"session": {}},
    "session.input_audio_buffer.append": {"audio": "AAAA"},
    "session.close": {},
}


def _live_tables() -> list[tuple[str, dict[str, type], dict[str, dict[str, Any]], Any]]:
    live = pytest.importorskip("openai.types.live")
    realtime = pytest.importorskip("openai.types.realtime")
    return [
        ("primary", events.LIVE_CLIENT_EVENT_MODELS, LIVE_MINIMAL, live.ClientEvent),
        ("sideband", events.LIVE_SIDEBAND_CLIENT_EVENT_MODELS, LIVE_MINIMAL, live.ConnectClientEvent),
        ("fork", events.LIVE_FORK_CLIENT_EVENT_MODELS, LIVE_FORK_MINIMAL, live.ForkClientEvent),
        (
            "translation",
            events.TRANSLATION_CLIENT_EVENT_MODELS,
            TRANSLATION_MINIMAL,
            realtime.RealtimeTranslationClientEvent,
        ),
    ]


@pytest.mark.parametrize("vocabulary", ["primary", "sideband", "fork", "translation"])
def test_every_sdk_client_event_of_live_and_translation_is_known(vocabulary: str) -> None:
    (ours, _, sdk_union) = next((t[1], t[2], t[3]) for t in _live_tables() if t[0] == vocabulary)
    assert set(ours) == set(_sdk_models(sdk_union))


def _live_cases() -> list[tuple[str, str]]:
    return [
        (vocabulary, name)
        for vocabulary, table, minimal in (
            ("primary", events.LIVE_CLIENT_EVENT_MODELS, LIVE_MINIMAL),
            ("sideband", events.LIVE_SIDEBAND_CLIENT_EVENT_MODELS, LIVE_MINIMAL),
            ("fork", events.LIVE_FORK_CLIENT_EVENT_MODELS, LIVE_FORK_MINIMAL),
            ("translation", events.TRANSLATION_CLIENT_EVENT_MODELS, TRANSLATION_MINIMAL),
        )
        for name in table
        if name in minimal
    ]


@pytest.mark.parametrize(("vocabulary", "name"), _live_cases())
def test_live_and_translation_required_fields_match_sdk(vocabulary: str, name: str) -> None:
    _, ours, minimal, sdk_union = next(t for t in _live_tables() if t[0] == vocabulary)
    sdk = _sdk_models(sdk_union)[name]
    event = _event(name, minimal[name])
    assert _sdk_accepts(sdk, event)
    assert ours[name].model_validate(event)
    for key in minimal[name]:
        partial = {k: v for k, v in event.items() if k != key}
        assert not _sdk_accepts(sdk, partial), key
        with pytest.raises(ValidationError):
            ours[name].model_validate(partial)


@pytest.mark.parametrize(
    ("vocabulary", "event"),
    [
        ("primary", {"type": "session.start", "session": {"model": 1}}),
        (
            "primary",
            {
                "type": "session.start",
                "session": {"model": "m", "audio": {"format": {"type": "audio/pcm", "rate": 8000}}},
            },
        ),
        (
            "primary",
            {"type": "session.start", "session": {"model": "m", "audio": {"format": {"type": "audio/opus"}}}},
        ),
        (
            "primary",
            {"type": "session.start", "session": {"model": "m", "delegation": {"type": "responses"}}},
        ),
        (
            "primary",
            {"type": "session.start", "session": {"model": "m", "input": [{"role": "tool", "content": []}]}},
        ),
        ("primary", {"type": "session.start", "session": {"model": "m", "store": [1]}}),
        ("primary", {"type": "session.instructions.append", "content": ["not", "a", "string"]}),
        ("primary", {"type": "session.update", "session": {"delegation": {"type": "elsewhere"}}}),
        ("fork", {"type": "session.start", "session": {"delegation": {"type": "decisions"}}}),
        (
            "translation",
            {
                "type": "session.update",
                "session": {"audio": {"input": {"noise_reduction": {"type": "loud"}}}},
            },
        ),
        ("translation", {"type": "session.update", "session": {"audio": {"input": {"transcription": {}}}}}),
    ],
)
def test_live_and_translation_wrong_shapes_are_refused_as_the_sdk_refuses_them(
    vocabulary: str, event: dict[str, Any]
) -> None:
    _, ours, _, sdk_union = next(t for t in _live_tables() if t[0] == vocabulary)
    with pytest.raises(ValidationError):
        ours[event["type"]].model_validate(event)
    assert not _sdk_accepts(_sdk_models(sdk_union)[event["type"]], event)


def test_live_accepts_what_the_sdk_sends_for_a_full_session_start() -> None:
    session = {
        "model": "gpt-live-1.1",
        "audio": {"format": {"type": "audio/pcm", "rate": 16000}, "output": {"voice": {"id": "voice_1"}}},
        "delegation": {
            "type": "responses",
            "responses": {"model": "gpt-5", "tools": [{"type": "web_search"}]},
        },
        "input": [
            {"role": "developer", "content": [{"text": "Be brief."}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Hi."}]},
        ],
        "instructions": "Sois bref.",
        "store": True,
        "triggers": [
            {
                "type": "decisions",
                "event_type": "session.input_transcript.delta",
                "decisions": {"questions": []},
            }
        ],
    }
    event = {"type": "session.start", "event_id": "go", "session": session}
    assert _sdk_accepts(
        _sdk_models(pytest.importorskip("openai.types.live").ClientEvent)["session.start"], event
    )
    model = events.LIVE_CLIENT_EVENT_MODELS["session.start"].model_validate(event)
    assert model.model_dump(exclude_none=True) == event
