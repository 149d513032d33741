"""Client frame checks: what `parse_client_event` accepts and rejects, and the relay's contract for
any text frame: relayed unchanged or answered with exactly one OpenAI-shaped error event."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.realtime import RealtimeErrorEvent

from shared.actions import SendToClient, SendToUpstream
from shared.config import Settings
from shared.events import CLIENT_EVENT_TYPES
from shared.handshake import plan_session
from shared.inbound import RejectedFrame, oversize, parse_client_event
from shared.relay import Relay

MESSAGE = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


def rejection(frame: str) -> dict[str, Any]:
    """The error event the client gets for ``frame``, which must be rejected."""
    with pytest.raises(RejectedFrame) as raised:
        parse_client_event(frame)
    return json.loads(raised.value.error.to_event())["error"]


def assert_openai_error_event(data: str | bytes) -> None:
    """``data`` is an error event as OpenAI sends it, and the SDK parses it as one."""
    event = json.loads(data)
    assert set(event) == {"type", "event_id", "error"}
    assert event["type"] == "error"
    assert isinstance(event["event_id"], str)
    assert event["event_id"].startswith("event_")
    error = event["error"]
    assert set(error) == {"type", "code", "message", "param", "event_id"}
    assert error["type"] in {"invalid_request_error", "server_error"}
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["event_id"] is None or isinstance(error["event_id"], str)
    RealtimeErrorEvent.model_validate(event)


# -- valid frames --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"type": "input_audio_buffer.append", "audio": "AAAA"},
        {"type": "input_audio_buffer.append", "audio": ""},
        {"type": "input_audio_buffer.commit", "event_id": "evt_1"},
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
        {"type": "session.update", "session": {"modalities": ["text"]}},  # beta
        {"type": "conversation.item.create", "item": MESSAGE},
        {"type": "response.create"},
        {"type": "response.create", "response": {"output_modalities": ["audio"]}, "x_unknown": [1, None]},
    ],
    ids=lambda event: event["type"],
)
def test_valid_frame_is_returned_as_its_dict(event: dict[str, Any]) -> None:
    assert parse_client_event(json.dumps(event)) == event


# -- rejected frames -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        pytest.param("not json {", "invalid_json", None, id="not-json"),
        pytest.param("", "invalid_json", None, id="empty"),
        pytest.param('{"type": "response.create"} trailing', "invalid_json", None, id="trailing-garbage"),
        pytest.param("[1, 2]", "invalid_event", None, id="array"),
        pytest.param('"text"', "invalid_event", None, id="string"),
        pytest.param("42", "invalid_event", None, id="number"),
        pytest.param("null", "invalid_event", None, id="null"),
        pytest.param("{}", "missing_required_parameter", "type", id="no-type"),
        pytest.param('{"type": null}', "missing_required_parameter", "type", id="null-type"),
        pytest.param('{"type": "no.such.event"}', "unknown_event_type", "type", id="unknown-type"),
        pytest.param('{"type": 7}', "unknown_event_type", "type", id="number-type"),
        pytest.param('{"type": ["response.create"]}', "unknown_event_type", "type", id="array-type"),
        pytest.param(
            '{"type": "input_audio_buffer.append"}',
            "missing_required_parameter",
            "audio",
            id="append-no-audio",
        ),
        pytest.param(
            '{"type": "input_audio_buffer.append", "audio": null}',
            "missing_required_parameter",
            "audio",
            id="append-null-audio",
        ),
        pytest.param(
            '{"type": "input_audio_buffer.append", "audio": 12}', "invalid_type", "audio", id="audio-number"
        ),
        pytest.param(
            '{"type": "input_audio_buffer.append", "audio": "%%%"}',
            "invalid_audio",
            "audio",
            id="audio-not-base64",
        ),
        pytest.param(
            '{"type": "input_audio_buffer.append", "audio": "AAA"}',
            "invalid_audio",
            "audio",
            id="audio-bad-padding",
        ),
        pytest.param(
            '{"type": "input_audio_buffer.append", "audio": "AAAé"}',
            "invalid_audio",
            "audio",
            id="audio-non-ascii",
        ),
        pytest.param(
            '{"type": "conversation.item.create"}', "missing_required_parameter", "item", id="no-item"
        ),
        pytest.param('{"type": "session.update"}', "missing_required_parameter", "session", id="no-session"),
        pytest.param(
            '{"type": "conversation.item.truncate", "item_id": "x", "content_index": "a", "audio_end_ms": 5}',
            "invalid_value",
            "content_index",
            id="wrong-field-type",
        ),
        pytest.param(
            '{"type": "response.create", "event_id": 5}', "invalid_value", "event_id", id="event-id-number"
        ),
    ],
)
def test_rejected_frame_gets_its_code_and_param(frame: str, code: str, param: str | None) -> None:
    error = rejection(frame)
    assert error["code"] == code
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "no.such.event", "event_id": %s}',
        '{"event_id": %s}',
        '{"type": "input_audio_buffer.append", "audio": "%%%%", "event_id": %s}',
        '{"type": "session.update", "event_id": %s}',
    ],
    ids=["unknown-type", "no-type", "bad-audio", "missing-field"],
)
@pytest.mark.parametrize(
    ("event_id", "echoed"),
    [
        ('"evt_42"', "evt_42"),
        ('""', ""),
        ("42", None),
        ("null", None),
        ('["evt_42"]', None),
        ('{"a": 1}', None),
    ],
)
def test_event_id_is_echoed_only_when_a_string(frame: str, event_id: str, echoed: str | None) -> None:
    assert rejection(frame % event_id)["event_id"] == echoed


def test_rejection_is_an_openai_error_event() -> None:
    with pytest.raises(RejectedFrame) as raised:
        parse_client_event('{"type": "no.such.event", "event_id": "evt_1"}')
    assert_openai_error_event(raised.value.error.to_event())


def test_rejection_message_does_not_repeat_the_audio() -> None:
    audio = "%%%secret-looking-audio%%%"
    assert (
        audio not in rejection(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))["message"]
    )


# -- any text frame through the relay -------------------------------------------------------------

SETTINGS = Settings.from_mapping({"OPENAI_API_KEY": "sk-inbound-unit-key"})


def open_relay() -> Relay:
    relay = Relay(plan_session("/v1/realtime", "model=m", {}, SETTINGS), SETTINGS, 0.0)
    relay.client_connected(0.0)
    relay.upstream_connected(0.0)
    relay.upstream_frame('{"type":"session.created","event_id":"event_1","session":{}}')
    return relay


def assert_relayed_or_one_error(frame: str) -> None:
    actions = open_relay().client_text(frame, 0.0)
    if actions == [SendToUpstream(frame)]:
        return
    assert len(actions) == 1, actions
    assert isinstance(actions[0], SendToClient), actions
    assert_openai_error_event(actions[0].data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=20,
)
known_types = st.sampled_from(sorted(CLIENT_EVENT_TYPES))
base64_audio = st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode())
# Objects that look like client events: mostly a known type, fields either plausible or arbitrary.
event_like = st.builds(
    lambda event_type, fields, extra: {**extra, **fields, "type": event_type},
    st.integers(0, 4).flatmap(lambda n: known_types if n else st.text(max_size=30) | json_values),
    st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.text(max_size=10) | json_values,
            "audio": base64_audio | st.text(alphabet="AQgw=+/%é", max_size=12) | json_values,
            "session": st.sampled_from([{"type": "realtime"}, {"type": "transcription"}, {}]) | json_values,
            "item": st.just(MESSAGE) | json_values,
            "item_id": st.text(max_size=10) | json_values,
            "content_index": st.integers() | json_values,
            "audio_end_ms": st.integers() | json_values,
            "response": st.just({}) | json_values,
        },
    ),
    st.dictionaries(st.text(max_size=10), json_values, max_size=3),
)

RELAY_PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RELAY_PROPERTY
@given(st.text())
def test_any_text_frame_is_relayed_or_gets_one_error_event(frame: str) -> None:
    assert_relayed_or_one_error(frame)


@RELAY_PROPERTY
@given(json_values)
def test_any_json_value_is_relayed_or_gets_one_error_event(value: Any) -> None:
    assert_relayed_or_one_error(json.dumps(value))


@RELAY_PROPERTY
@given(event_like, st.booleans())
def test_any_event_like_object_is_relayed_or_gets_one_error_event(
    event: dict[str, Any], compact: bool
) -> None:
    separators = (",", ":") if compact else None
    assert_relayed_or_one_error(json.dumps(event, separators=separators, ensure_ascii=compact))


@RELAY_PROPERTY
@given(event_like)
def test_relay_forwards_exactly_what_parse_client_event_accepts(event: dict[str, Any]) -> None:
    frame = json.dumps(event)
    try:
        parse_client_event(frame)
    except RejectedFrame:
        accepted = False
    else:
        accepted = True
    assert (open_relay().client_text(frame, 0.0) == [SendToUpstream(frame)]) is accepted


@pytest.mark.parametrize("frame", ["[" * 100_000, '{"type": "response.create", "x": ' + "[" * 100_000 + "}"])
def test_deeply_nested_frame_gets_an_error_event(frame: str) -> None:
    assert_relayed_or_one_error(frame)


def test_oversize_counts_a_lone_surrogate_instead_of_raising() -> None:
    # No WebSocket text frame holds one (it is not UTF-8), but the relay's input is any str.
    assert oversize("\ud800" * 200, 512) == 600
    assert oversize("\ud800" * 100, 512) is None
