"""The endpoint table (:mod:`shared.endpoints`), sans I/O: routing, planning, the Live and translation
vocabularies, and what the relay does differently where the client speaks first."""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.live import ErrorEvent as LiveErrorEvent
from openai.types.realtime import RealtimeErrorEvent
from pydantic import ValidationError

from shared.actions import CloseClient, CloseUpstream, SendToClient, SendToUpstream
from shared.answers import HttpAnswer
from shared.config import Settings
from shared.endpoints import ENDPOINTS, LIVE, REALTIME, websocket_endpoint_for
from shared.events import (
    LIVE_CLIENT_EVENT_MODELS,
    LIVE_FORK_CLIENT_EVENT_MODELS,
    LIVE_SIDEBAND_CLIENT_EVENT_MODELS,
    TRANSLATION_CLIENT_EVENT_MODELS,
)
from shared.handshake import SessionPlan, plan_session
from shared.inbound import LIVE as LIVE_VOCABULARY
from shared.inbound import LIVE_FORK, LIVE_SIDEBAND, TRANSLATION, RejectedFrame, Vocabulary
from shared.relay import Relay, State
from shared.routes import http_answer
from shared.tokens import mint

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECRET = "unit-endpoints-secret-0123456789abcdef-0123"
NOW = 1_800_000_000.0


def make_settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {
            "OPENAI_API_KEY": "sk-unit-operator",
            "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
            "AZURE_OPENAI_API_KEY": "az-unit-operator",
            "SIMULATOR_PACE": "0",
            **values,
        }
    )


SETTINGS = make_settings()


def plan(
    path: str, query: dict[str, str] | None = None, headers: dict[str, str] | None = None, **env: str
) -> Any:
    return plan_session(
        path, urlencode(query or {}), headers or {}, make_settings(**env) if env else SETTINGS, NOW
    )


# -- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "endpoint"),
    [
        ("/v1/realtime", {"model": "m"}, "realtime"),
        ("/", {}, "realtime"),
        ("/openai/v1/realtime", {"call_id": "rtc_1"}, "realtime_call"),
        ("/v1/realtime", {"call_id": "rtc_1", "model": "m"}, "realtime_call"),
        ("/v1/live/sessions", {}, "live"),
        ("/v1/live/sessions/sess_AZ-09_x/attach", {}, "live_attach"),
        ("/v1/live/sessions/sess_1/fork", {}, "live_fork"),
        ("/v1/realtime/translations", {"model": "t"}, "translations"),
    ],
)
def test_each_path_opens_its_endpoint(path: str, query: dict[str, str], endpoint: str) -> None:
    planned = plan(path, query)
    assert isinstance(planned, SessionPlan)
    assert planned.endpoint is ENDPOINTS[endpoint]
    assert http_answer("GET", path, wants_websocket=True) is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/live/sessions/../attach",
        "/v1/live/sessions/a.b/attach",
        "/v1/live/sessions/a%2Fb/attach",
        "/v1/live/sessions//attach",
        "/v1/live/sessions/" + "x" * 129 + "/fork",
        "/v1/live/sessions/sess_1/hangup",
        "/v1/live",
        "/v1/realtime/translation",
    ],
)
def test_other_paths_are_404(path: str) -> None:
    answer = http_answer("GET", path, wants_websocket=True)
    assert answer is not None
    assert answer.status == 404
    assert websocket_endpoint_for(path) is None
    refused = plan_session(path, "", {}, SETTINGS, NOW)
    assert isinstance(refused, HttpAnswer)
    assert refused.status == 404


@pytest.mark.parametrize(
    "path", ["/v1/live/sessions", "/v1/live/sessions/s/fork", "/v1/realtime/translations"]
)
def test_a_websocket_endpoint_not_upgraded_is_426(path: str) -> None:
    for method, upgrade in (("GET", False), ("POST", True)):
        answer = http_answer(method, path, wants_websocket=upgrade)
        assert answer is not None
        assert answer.status == 426
        assert answer.headers == {"Upgrade": "websocket"}
        assert websocket_endpoint_for(path).how_to_connect in answer.body["error"]["message"]  # type: ignore[union-attr,index]


# -- planning --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "env", "url"),
    [
        ("/v1/live/sessions", {}, {}, "wss://api.openai.com/v1/live/sessions"),
        (
            "/v1/live/sessions/sess_1/attach",
            {"graceful_close": "true", "model": "ignored", "intent": "ignored"},
            {},
            "wss://api.openai.com/v1/live/sessions/sess_1/attach?graceful_close=true",
        ),
        (
            "/v1/live/sessions/sess_1/fork",
            {"graceful_close": "true"},
            {},
            "wss://api.openai.com/v1/live/sessions/sess_1/fork",
        ),
        (
            "/v1/realtime/translations",
            {"model": "tr"},
            {},
            "wss://api.openai.com/v1/realtime/translations?model=tr",
        ),
        ("/v1/realtime", {"call_id": "rtc_9"}, {}, "wss://api.openai.com/v1/realtime?call_id=rtc_9"),
        (
            "/v1/live/sessions",
            {},
            {"OPENAI_BASE_URL": "http://proxy.internal:8000/openai/v1"},
            "ws://proxy.internal:8000/openai/v1/live/sessions",
        ),
        (  # OPENAI_REALTIME_URL wins for /v1/realtime, a call's sideband included
            "/v1/realtime",
            {"call_id": "rtc_9"},
            {"OPENAI_REALTIME_URL": "ws://127.0.0.1:9/v1/realtime"},
            "ws://127.0.0.1:9/v1/realtime?call_id=rtc_9",
        ),
        (
            "/v1/realtime",
            {"call_id": "rtc_9", "provider": "azure"},
            {},
            "wss://res.openai.azure.com/openai/v1/realtime?call_id=rtc_9",
        ),
    ],
)
def test_the_provider_is_reached_where_it_serves_the_endpoint(
    path: str, query: dict[str, str], env: dict[str, str], url: str
) -> None:
    planned = plan(path, query, **env)
    assert planned.error is None
    assert planned.upstream.url == url
    assert (
        planned.client_protocol
        == planned.upstream_protocol
        == ("ga" if planned.endpoint is not REALTIME else planned.client_protocol)
    )


def test_openai_gets_the_key_as_a_bearer_token_on_every_endpoint() -> None:
    for path, query in (
        ("/v1/live/sessions", {"api_key": "sk-q"}),
        ("/v1/live/sessions/s/attach", {"api_key": "sk-q"}),
        ("/v1/realtime/translations", {"model": "t", "api_key": "sk-q"}),
        ("/v1/realtime", {"call_id": "rtc_1", "api_key": "sk-q"}),
    ):
        planned = plan(path, query)
        assert planned.upstream.headers == {"Authorization": "Bearer sk-q"}
        assert "sk-q" not in planned.upstream.url
        assert "sk-q" not in repr(planned)


def test_beta_is_a_realtime_matter_only() -> None:
    headers = {"openai-beta": "realtime=v1"}
    for path, query in (("/v1/live/sessions", {}), ("/v1/realtime", {"call_id": "rtc_1"})):
        planned = plan(path, {**query, "protocol": "beta"}, headers, OPENAI_PROTOCOL="beta")
        assert (planned.client_protocol, planned.upstream_protocol) == ("ga", "ga")
        assert "OpenAI-Beta" not in planned.upstream.headers


@pytest.mark.parametrize(
    ("path", "query", "env", "code"),
    [
        ("/v1/live/sessions", {"provider": "azure"}, {}, "endpoint_not_supported"),
        ("/v1/live/sessions/s/attach", {"provider": "azure"}, {}, "endpoint_not_supported"),
        ("/v1/live/sessions/s/fork", {"provider": "azure"}, {}, "endpoint_not_supported"),
        ("/v1/realtime/translations", {"provider": "azure", "model": "t"}, {}, "endpoint_not_supported"),
        (
            "/v1/realtime",
            {"provider": "azure", "call_id": "rtc_1"},
            {"AZURE_OPENAI_API_VERSION": "2024-10-01-preview"},
            "endpoint_not_supported",
        ),
        ("/v1/realtime", {"provider": "simulator", "call_id": "rtc_1"}, {}, "call_not_found"),
        ("/v1/live/sessions/s/attach", {"provider": "simulator"}, {}, "session_not_found"),
        ("/v1/realtime/translations", {"provider": "simulator", "model": "t"}, {}, "endpoint_not_supported"),
        ("/v1/realtime/translations", {}, {}, "missing_required_parameter"),
        ("/v1/realtime", {"call_id": ""}, {}, "invalid_value"),
        ("/v1/realtime", {"call_id": "a?b=c"}, {}, "invalid_value"),
        ("/v1/live/sessions", {"provider": "elsewhere"}, {}, "unknown_provider"),
    ],
)
def test_what_cannot_be_served_is_an_error_on_the_socket(
    path: str, query: dict[str, str], env: dict[str, str], code: str
) -> None:
    planned = plan(path, query, **env)
    assert planned.upstream is None
    assert planned.error is not None
    assert planned.error.code == code
    assert planned.error_close_code == 1008


def test_a_live_session_with_the_simulator_needs_no_key() -> None:
    planned = plan_session("/v1/live/sessions", "provider=simulator", {}, Settings.from_mapping({}), NOW)
    assert planned.error is None
    assert planned.upstream is None


def _token(**claims: Any) -> dict[str, str]:
    return {"authorization": "Bearer " + mint(SECRET, subject="unit", now=NOW, ttl_seconds=60, **claims)}


@pytest.mark.parametrize(
    ("path", "query", "claims", "allowed"),
    [
        ("/v1/live/sessions", {}, {"models": ["gpt-live-1"]}, True),  # checked at session.start
        ("/v1/live/sessions", {}, {"providers": ["azure"]}, False),
        ("/v1/live/sessions/s/attach", {}, {"models": ["gpt-live-1"]}, False),  # no model to check
        ("/v1/live/sessions/s/attach", {}, {"providers": ["openai"]}, True),
        ("/v1/realtime", {"call_id": "rtc_1"}, {"models": ["gpt-realtime"]}, False),
        ("/v1/realtime/translations", {"model": "tr-1"}, {"models": ["tr-*"]}, True),
        ("/v1/realtime/translations", {"model": "tr-1"}, {"models": ["gpt-realtime"]}, False),
    ],
)
def test_a_tokens_scope_on_each_endpoint(
    path: str, query: dict[str, str], claims: dict[str, Any], allowed: bool
) -> None:
    planned = plan(path, query, _token(**claims), GATEWAY_SECRET=SECRET)
    if allowed:
        assert isinstance(planned, SessionPlan)
        assert planned.upstream.headers == {"Authorization": "Bearer sk-unit-operator"}
    else:
        assert isinstance(planned, HttpAnswer)
        assert (planned.status, planned.body["error"]["code"]) == (403, "token_scope_denied")  # type: ignore[index]


# -- the vocabularies ---------------------------------------------------------------------------------

LIVE_TABLES: list[tuple[Vocabulary, dict[str, Any]]] = [
    (LIVE_VOCABULARY, LIVE_CLIENT_EVENT_MODELS),
    (LIVE_SIDEBAND, LIVE_SIDEBAND_CLIENT_EVENT_MODELS),
    (LIVE_FORK, LIVE_FORK_CLIENT_EVENT_MODELS),
    (TRANSLATION, TRANSLATION_CLIENT_EVENT_MODELS),
]


def oracle(vocabulary: Vocabulary, models: dict[str, Any], frame: str) -> bool:
    """Whether ``frame`` must be relayed: JSON, a known type, a strict base64 audio append or a
    valid model. Decided without the parser."""
    try:
        event = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or event["type"] not in models:
        return False
    if event["type"] == vocabulary.append:
        try:
            binascii.a2b_base64(event["audio"], strict_mode=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            return False
        return True
    try:
        models[event["type"]].model_validate(event)
    except ValidationError:
        return False
    return True


_VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_AUDIO = st.binary(max_size=24).map(lambda raw: base64.b64encode(raw).decode()) | st.text(
    "AQgw=+/%", max_size=9
)


def event_like(models: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda kind, fields: {**fields, "type": kind},
        st.sampled_from(sorted(models)) | st.text(max_size=12),
        st.fixed_dictionaries(
            {},
            optional={
                "event_id": st.text(max_size=6) | _VALUES,
                "audio": _AUDIO | _VALUES,
                "content": st.text(max_size=6) | _VALUES,
                "item_id": _VALUES,
                "event": _VALUES,
                "item": st.just({"type": "message"}) | _VALUES,
                "session": st.sampled_from([{}, {"model": "gpt-live-1"}, {"model": 1}, {"audio": {}}])
                | _VALUES,
            },
        ),
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("vocabulary", "models"), LIVE_TABLES, ids=lambda v: getattr(v, "name", ""))
@PROPERTY
@given(data=st.data(), spaced=st.booleans())
def test_each_vocabulary_accepts_exactly_what_its_models_do(
    vocabulary: Vocabulary, models: dict[str, Any], data: st.DataObject, spaced: bool
) -> None:
    """The audio append's fast path and the models' general path give one verdict, on any frame."""
    event = data.draw(event_like(models))
    frame = json.dumps(event, separators=None if spaced else (",", ":"))
    try:
        parsed = vocabulary.parse(frame)
    except RejectedFrame as rejected:
        assert not oracle(vocabulary, models, frame), frame
        error = json.loads(vocabulary.error_event(rejected.error))
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if vocabulary is TRANSLATION:
            assert RealtimeErrorEvent.model_validate(error).error.event_id in (None, event_id)
        else:
            live = LiveErrorEvent.model_validate(error)
            assert live.client_event_id == live.error.client_event_id
            assert live.client_event_id in (None, event_id)
    else:
        assert oracle(vocabulary, models, frame), frame
        assert parsed == event


def test_lives_audio_append_takes_the_fast_path() -> None:
    audio = base64.b64encode(bytes(range(256)) * 10).decode()
    frame = json.dumps({"type": "session.input_audio.append", "event_id": "a1", "audio": audio})
    event = LIVE_VOCABULARY.parse(frame)
    assert event == {"type": "session.input_audio.append", "event_id": "a1", "audio": audio}
    with pytest.raises(RejectedFrame) as rejected:
        LIVE_VOCABULARY.parse(frame.replace(audio[:4], "!!!!"))
    assert rejected.value.error.code == "invalid_audio"
    assert rejected.value.error.client_event_id == "a1"


def test_the_error_messages_speak_of_each_vocabularys_audio() -> None:
    assert "session.input_audio.append" in LIVE_VOCABULARY.too_large_error(10, 5).message
    assert "session.input_audio_buffer.append" in TRANSLATION.binary_frame_error().message
    assert "append" not in LIVE_SIDEBAND.binary_frame_error().message  # a sideband sends no audio


# -- the relay where the client speaks first -------------------------------------------------------


def open_live(
    query: dict[str, str] | None = None, headers: dict[str, str] | None = None, **env: str
) -> Relay:
    settings_ = make_settings(**env)
    relay = Relay(
        plan_session("/v1/live/sessions", urlencode(query or {}), headers or {}, settings_, NOW),
        settings_,
        0.0,
    )
    relay.client_connected(0.0)
    return relay


def test_lives_errors_are_not_held_while_the_provider_connects() -> None:
    relay = open_live()
    (action,) = relay.client_text('{"type":"session.close","event_id":7}', 0.1)
    assert isinstance(action, SendToClient)
    assert LiveErrorEvent.model_validate_json(action.data).error.code == "invalid_value"
    assert relay.client_text('{"type":"session.start","session":{"model":"m"}}', 0.2) == []  # held
    assert relay.upstream_connected(0.3) == [
        SendToUpstream('{"type":"session.start","session":{"model":"m"}}')
    ]


def test_lives_connect_deadline_ends_with_the_handshake() -> None:
    relay = open_live(UPSTREAM_CONNECT_TIMEOUT_SECONDS="2", MAX_SESSION_SECONDS="0", IDLE_TIMEOUT_SECONDS="0")
    assert relay.next_deadline() == 2.0
    relay.upstream_connected(1.0)
    assert relay.next_deadline() is None  # a quiet provider waits for session.start, as it should
    assert relay.tick(60.0) == []
    assert relay.state is State.OPEN


def test_a_slow_live_handshake_times_out_in_lives_shape() -> None:
    relay = open_live(UPSTREAM_CONNECT_TIMEOUT_SECONDS="2")
    close_upstream, error, close = relay.tick(2.0)
    assert isinstance(close_upstream, CloseUpstream)
    assert isinstance(error, SendToClient)
    assert LiveErrorEvent.model_validate_json(error.data).error.code == "upstream_timeout"
    assert close == CloseClient(1014, close.reason)


def test_too_many_held_events_get_lives_buffer_full() -> None:
    relay = open_live(MAX_PENDING_CLIENT_MESSAGES="1")
    assert relay.client_text('{"type":"session.start","session":{"model":"m"}}', 0.1) == []
    (action,) = relay.client_text('{"type":"session.input_audio.mute","event_id":"m2"}', 0.2)
    error = LiveErrorEvent.model_validate_json(action.data)  # type: ignore[union-attr]
    assert (error.error.code, error.client_event_id) == ("buffer_full", "m2")


def test_a_tokens_models_bound_session_start() -> None:
    headers = _token(models=["gpt-live-1*"])
    relay = open_live(headers=headers, GATEWAY_SECRET=SECRET)
    relay.upstream_connected(0.1)
    refused = '{"type":"session.start","event_id":"s1","session":{"model":"gpt-live-2"}}'
    (action,) = relay.client_text(refused, 0.2)
    error = LiveErrorEvent.model_validate_json(action.data)  # type: ignore[union-attr]
    assert (error.error.code, error.error.param, error.client_event_id) == (
        "token_scope_denied",
        "session.model",
        "s1",
    )
    allowed = '{"type":"session.start","session":{"model":"gpt-live-1.1"}}'
    assert relay.client_text(allowed, 0.3) == [SendToUpstream(allowed)]
    audio = '{"type":"session.input_audio.append","audio":"AAAA"}'
    assert relay.client_text(audio, 0.4) == [SendToUpstream(audio)]


def test_the_live_simulator_ends_the_session_after_session_closed() -> None:
    relay = open_live({"provider": "simulator"})
    assert relay.plan.endpoint is LIVE
    (started,) = relay.client_text('{"type":"session.start","session":{"model":"gpt-live-1"}}', 0.1)
    assert json.loads(started.data)["type"] == "session.started"  # type: ignore[union-attr]
    closed, close = relay.client_text('{"type":"session.close"}', 0.2)
    assert json.loads(closed.data)["type"] == "session.closed"  # type: ignore[union-attr]
    assert close == CloseClient(1000, "session closed")
    assert relay.closed


# -- the README ------------------------------------------------------------------------------------


def _readme_rows() -> dict[str, str]:
    """``| WebSocket `path` | `sdk call` | ...`` rows of README's endpoint table, path -> SDK call."""
    return dict(re.findall(r"^\| WebSocket `([^`]+)` \| `([^`]+)` \|", README, flags=re.MULTILINE))


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_readme_lists_every_websocket_endpoint_with_its_sdk_call(endpoint: str) -> None:
    rows = _readme_rows()
    assert ENDPOINTS[endpoint].sdk_call in rows.values(), rows
    path = next(path for path, call in rows.items() if call == ENDPOINTS[endpoint].sdk_call)
    example = path.replace("{id}", "sess_1").replace("...", "rtc_1")
    planned = plan_session(example.partition("?")[0], example.partition("?")[2], {}, SETTINGS, NOW)
    assert isinstance(planned, SessionPlan)
    assert planned.endpoint is ENDPOINTS[endpoint], path
