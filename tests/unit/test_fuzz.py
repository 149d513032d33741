"""Fuzzing the client-event checks, the relay and the beta <-> GA translation with hypothesis.

Properties:

- ``Relay.client_text`` never raises, whatever the client sends, in a GA session and a beta-client
  session against a GA provider (open and still connecting) and in simulator sessions; every frame
  it emits is JSON text that UTF-8 can carry;
- every frame it rejects gets exactly one OpenAI-shaped ``error`` event and nothing is relayed; the
  verdict (accept, or which code) is decided here independently, from JSON, the type table and
  the pydantic models;
- valid client events, generated from the pydantic models in ``shared/events``, are relayed byte
  for byte when client and provider speak the same protocol (GA and beta);
- ``Translator.to_client`` never raises on arbitrary frames nor on mutated valid server events
  (generated from the server models), in both directions, over a sequence (it keeps state);
- beta -> GA -> beta of generated ``session.update`` (and ``transcription_session.update``)
  sessions keeps every field the two protocols share.

Deterministic (``derandomize=True``, no example database), so CI sees the same cases every run.
"""

from __future__ import annotations

import binascii
import copy
import json
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.actions import Action, SendToClient, SendToUpstream
from shared.config import Settings
from shared.events import (
    BETA_SERVER_EVENT_MODELS,
    CLIENT_EVENT_MODELS,
    CLIENT_EVENT_TYPES,
    GA_SERVER_EVENT_MODELS,
    BetaSession,
    BetaTranscriptionSession,
    validate_client_event,
)
from shared.handshake import plan_session
from shared.relay import Relay
from shared.translation import CLIENT_TYPES_TRANSLATED, Translator
from shared.translation.server import BetaToGa, GaToBeta

NOW = 1000.0
SMALL_LIMIT = 512  # MAX_CLIENT_MESSAGE_BYTES in the robustness sessions: message_too_large is reachable
APPEND = "input_audio_buffer.append"
# Codes for a frame whose event is known but whose fields are wrong.
FIELD_CODES = frozenset({"missing_required_parameter", "invalid_type", "invalid_value", "invalid_audio"})
BAD_FRAME_CODES = FIELD_CODES | {"invalid_json", "invalid_event", "unknown_event_type", "message_too_large"}
FIELD = "<a field code>"
# Every code an error event to a client frame can carry (notices of dropped beta fields included).
ALL_CODES = FIELD_CODES | {
    "message_too_large",
    "invalid_json",
    "invalid_event",
    "unknown_event_type",
    "field_dropped",
}
GA_UPSTREAM_TYPES = CLIENT_EVENT_TYPES - {"transcription_session.update"}

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)


# -- strategies: JSON, and events built from the pydantic models ----------------------------------------

# Strings inside events may hold any code point, lone surrogates too: JSON carries them as
# ``\udXXX`` escapes, which the gateway must never turn back into text UTF-8 cannot encode.
TEXT = st.text(st.characters(exclude_categories=()), max_size=8)
KEYS = st.text(max_size=6)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
KNOWN_FORMATS = (None, "pcm16", "g711_ulaw", "g711_alaw")
FORMATS = st.sampled_from(KNOWN_FORMATS[1:]) | TEXT
MODALITIES = st.sampled_from([["text"], ["audio"], ["text", "audio"], ["audio", "text"], []])
# Fields whose meaning the translation maps: their realistic values, besides arbitrary ones.
FIELD_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "input_audio_format": FORMATS,
    "output_audio_format": FORMATS,
    "modalities": st.none() | MODALITIES,
}


def for_annotation(annotation: Any, loose: bool = False) -> st.SearchStrategy[Any]:
    """JSON values that ``annotation`` (a pydantic field's type) accepts; ``loose``: at any depth, a
    value may be any JSON instead (a provider sending the wrong shape)."""
    strategy = _for_annotation(annotation, loose)
    return strategy | JSON if loose else strategy


def _for_annotation(annotation: Any, loose: bool) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if annotation is Any or annotation is object:
        return JSON
    if annotation is type(None) or annotation is None:
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-(2**31), 2**31)
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000)
    if annotation is str:
        return TEXT
    if origin is Annotated:
        return _for_annotation(get_args(annotation)[0], loose)  # a discriminated union: any member
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is Union or origin is types.UnionType:
        return st.one_of([_for_annotation(member, loose) for member in get_args(annotation)])
    if origin is list:
        (item,) = get_args(annotation)
        return st.lists(st.deferred(lambda: for_annotation(item, loose)), max_size=2)
    if origin is dict:
        _, value = get_args(annotation)
        return st.dictionaries(KEYS, for_annotation(value, loose), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return for_model(annotation, loose=loose)
    raise TypeError(f"no strategy for {annotation!r}")


_MODELS: dict[tuple[type[BaseModel], frozenset[str] | None, bool], st.SearchStrategy[dict[str, Any]]] = {}


def for_model(
    model: type[BaseModel],
    only: frozenset[str] | None = None,
    overrides: dict[str, Any] | None = None,
    loose: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts that validate as ``model`` (unless ``loose``): its required fields, and any of its
    optional ones (``only`` those, when given). ``type`` comes first, as providers send it."""
    key = (model, only, loose)
    if key in _MODELS and overrides is None:
        return _MODELS[key]
    hints = typing.get_type_hints(model, include_extras=True)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in sorted(model.model_fields.items(), key=lambda item: item[0] != "type"):
        if only is not None and name not in only:
            continue
        if overrides is not None and name in overrides:
            strategy = overrides[name]
        elif name in FIELD_OVERRIDES:
            strategy = FIELD_OVERRIDES[name]
        elif name == "type" or not loose:
            strategy = _for_annotation(hints[name], loose)
        else:
            strategy = for_annotation(hints[name], loose)
        (required if info.is_required() else optional)[info.alias or name] = strategy
    built = st.fixed_dictionaries(required, optional=optional)
    if overrides is None:
        _MODELS[key] = built
    return built


def strict_base64(text: str) -> bool:
    try:
        binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True


AUDIO = st.binary(max_size=48).map(lambda raw: binascii.b2a_base64(raw, newline=False).decode())
CLIENT_EVENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    name: for_model(model, overrides={"audio": AUDIO} if name == APPEND else None)
    for name, model in sorted(CLIENT_EVENT_MODELS.items())
}
VALID_CLIENT_EVENTS = st.one_of(list(CLIENT_EVENTS.values()))
GA_SERVER_EVENTS = st.one_of([for_model(model) for _, model in sorted(GA_SERVER_EVENT_MODELS.items())])
BETA_SERVER_EVENTS = st.one_of([for_model(model) for _, model in sorted(BETA_SERVER_EVENT_MODELS.items())])
# Server events of the right type whose fields, at any depth, may have the wrong shape.
LOOSE_SERVER_EVENTS = st.one_of(
    [
        for_model(model, loose=True)
        for _, model in sorted({**GA_SERVER_EVENT_MODELS, **BETA_SERVER_EVENT_MODELS}.items())
    ]
)


def dumps_styled(event: Any, style: str) -> str:
    """``event`` as JSON text, as different clients write it."""
    if style == "compact":
        return json.dumps(event, separators=(",", ":"))
    if style == "unicode":
        return (
            json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        )
    if style == "indented":
        return json.dumps(event, indent=1)
    return json.dumps(event)


STYLES = st.sampled_from(["compact", "spaced", "unicode", "indented"])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return value
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return out


def mutations(event: dict[str, Any]) -> st.SearchStrategy[str]:
    """Frames a little off ``event``: a value replaced, a key removed, the type swapped, the text
    cut short or with a character slipped in."""
    paths = _paths(event)
    text = json.dumps(event)
    return st.one_of(
        st.tuples(st.sampled_from(paths), JSON).map(lambda change: json.dumps(_set(event, *change))),
        st.sampled_from(paths).map(lambda path: json.dumps(_delete(event, path))),
        st.sampled_from(
            sorted(CLIENT_EVENT_TYPES | set(GA_SERVER_EVENT_MODELS) | set(BETA_SERVER_EVENT_MODELS))
        ).map(lambda kind: json.dumps({**event, "type": kind})),
        st.integers(0, len(text)).map(lambda cut: text[:cut]),
        st.tuples(st.integers(0, len(text)), st.characters()).map(
            lambda at: text[: at[0]] + at[1] + text[at[0] :]
        ),
    )


EVENTISH = st.builds(
    lambda kind, extra, event_id: {"type": kind, **extra, **event_id},
    st.sampled_from(sorted(CLIENT_EVENT_TYPES)) | JSON,
    st.dictionaries(KEYS, JSON, max_size=3),
    st.fixed_dictionaries({}, optional={"event_id": TEXT | JSON}),
).map(json.dumps)
CLIENT_FRAMES = st.one_of(
    st.text(max_size=40),
    JSON.map(json.dumps),
    EVENTISH,
    st.tuples(VALID_CLIENT_EVENTS, STYLES).map(lambda pair: dumps_styled(*pair)),
    VALID_CLIENT_EVENTS.flatmap(mutations),
)
SERVER_FRAMES = st.one_of(
    st.text(max_size=40),
    JSON.map(json.dumps),
    st.tuples(GA_SERVER_EVENTS | BETA_SERVER_EVENTS, STYLES).map(lambda pair: dumps_styled(*pair)),
    st.tuples(LOOSE_SERVER_EVENTS, STYLES).map(lambda pair: dumps_styled(*pair)),
    GA_SERVER_EVENTS.flatmap(mutations),
    BETA_SERVER_EVENTS.flatmap(mutations),
)

# -- sessions ---------------------------------------------------------------------------------------------

SESSION_CREATED = json.dumps(
    {"type": "session.created", "event_id": "event_1", "session": {"type": "realtime"}}
)
SESSIONS: dict[str, dict[str, str]] = {
    "ga": {"model": "gpt-realtime"},  # GA client, GA provider, open
    "ga-connecting": {"model": "gpt-realtime"},  # the same, provider handshake still under way
    "beta": {"model": "gpt-realtime", "protocol": "beta"},  # beta client, GA provider: translated
    "beta-connecting": {"model": "gpt-realtime", "protocol": "beta"},
    "simulator": {"provider": "simulator"},
    "simulator-beta": {"provider": "simulator", "protocol": "beta"},
}


def make_settings(**values: str) -> Settings:
    return Settings.from_mapping({"OPENAI_API_KEY": "sk-fuzz", "SIMULATOR_PACE": "0", **values})


ROBUST = make_settings(MAX_CLIENT_MESSAGE_BYTES=str(SMALL_LIMIT))
DEFAULT = make_settings()
BETA_PROVIDER = make_settings(OPENAI_PROTOCOL="beta")


def open_session(kind: str, settings_: Settings) -> tuple[Relay, list[Action]]:
    """A relay for ``kind`` with the client connected (and the provider too unless connecting)."""
    plan = plan_session("/v1/realtime", urlencode(SESSIONS[kind]), {}, settings_, NOW)
    relay = Relay(plan, settings_, NOW)
    actions = relay.client_connected(NOW)
    if not kind.endswith("connecting") and not kind.startswith("simulator"):
        actions += relay.upstream_connected(NOW)
        actions += relay.upstream_frame(SESSION_CREATED)  # what a provider says first
    return relay, actions


def verdict(frame: str, limit: int) -> str | None:
    """What the gateway must answer ``frame`` with: an error code (FIELD: any of FIELD_CODES), or
    None when it must accept it. Decided from JSON, the type table and the models alone."""
    if len(frame.encode(errors="surrogatepass")) > limit:
        return "message_too_large"
    try:
        event = json.loads(frame)
    except (ValueError, RecursionError):
        return "invalid_json"
    if not isinstance(event, dict):
        return "invalid_event"
    kind = event.get("type")
    if kind is None:
        return "missing_required_parameter"
    if kind == APPEND:
        audio = event.get("audio")
        return None if isinstance(audio, str) and strict_base64(audio) else FIELD
    if not isinstance(kind, str) or kind not in CLIENT_EVENT_TYPES:
        return "unknown_event_type"
    try:
        validate_client_event(event)
    except ValidationError:
        return FIELD
    return None


def client_event_id(frame: str) -> str | None:
    try:
        event = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    event_id = event.get("event_id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


def check_error_event(data: str | bytes, codes: frozenset[str]) -> dict[str, Any]:
    """``data`` is an OpenAI-shaped error event whose code is in ``codes``; its ``error``."""
    assert isinstance(data, str)
    event = json.loads(data)
    assert event["type"] == "error"
    assert isinstance(event["event_id"], str)
    assert event["event_id"].startswith("event_")
    error = event["error"]
    assert set(error) == {"type", "code", "message", "param", "event_id"}, error
    assert error["type"] == "invalid_request_error"
    assert error["code"] in codes, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["param"] is None or isinstance(error["param"], str)
    return error


def check_sendable(actions: list[Action], kind: str) -> None:
    """Every frame is text a WebSocket can carry: str, UTF-8 encodable, a JSON object with a type."""
    for action in actions:
        if isinstance(action, SendToClient | SendToUpstream):
            assert isinstance(action.data, str), action
            if kind != "simulator":  # see test_lone_surrogate_escapes_never_reach_the_wire
                action.data.encode("utf-8")
            event = json.loads(action.data)
            assert isinstance(event, dict), action.data
            assert isinstance(event.get("type"), str), action.data


def check_client_text(relay: Relay, kind: str, frame: str, limit: int) -> None:
    """Feed ``frame``; check the answer against :func:`verdict`."""
    actions = relay.client_text(frame, NOW)
    check_sendable(actions, kind)
    expected = verdict(frame, limit)
    if expected is not None and kind.endswith("connecting"):
        assert actions == [], (frame, actions)  # the error waits for the provider's first event
        return
    if expected is not None:
        assert len(actions) == 1, (frame, actions)
        (action,) = actions
        assert isinstance(action, SendToClient), action
        codes = FIELD_CODES if expected == FIELD else frozenset({expected})
        error = check_error_event(action.data, codes)
        if expected not in ("message_too_large", "invalid_json", "invalid_event"):
            assert error["event_id"] == client_event_id(frame), (frame, error)
        return
    upstream = [action.data for action in actions if isinstance(action, SendToUpstream)]
    to_client = [action for action in actions if isinstance(action, SendToClient)]
    assert len(upstream) + len(to_client) == len(actions), actions  # nothing is closed
    if kind == "ga":
        assert len(upstream) == 1, actions
        assert upstream[0] is frame  # the very bytes
        assert to_client == []
    elif kind in ("ga-connecting", "beta-connecting"):
        assert actions == [], actions  # held for the provider, notices for the client
    elif kind == "beta":
        assert len(upstream) == 1, actions
        assert json.loads(upstream[0])["type"] in GA_UPSTREAM_TYPES
        for action in to_client:  # one notice per field the provider's protocol lacks
            assert check_error_event(action.data, frozenset({"field_dropped"}))["event_id"] is None
    else:  # the simulator answers as a provider would: anything, errors included, nothing upstream
        assert upstream == [], actions


# -- the relay: never raises, one error per rejected frame -------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SESSIONS))
@fuzz(150)
@given(frames=st.lists(CLIENT_FRAMES, min_size=1, max_size=4))
def test_client_text_never_raises_and_answers_each_rejected_frame_once(kind: str, frames: list[str]) -> None:
    relay, opening = open_session(kind, ROBUST)
    check_sendable(opening, kind)
    for frame in frames:
        check_client_text(relay, kind, frame, SMALL_LIMIT)
    if kind.endswith("connecting"):
        # Held, then released in order once the provider accepts; the errors reach the client
        # after the provider's first event, one per rejected frame, in order.
        released = relay.upstream_connected(NOW)
        assert all(isinstance(action, SendToUpstream) for action in released)
        verdicts = [verdict(frame, SMALL_LIMIT) for frame in frames]
        if kind == "ga-connecting":
            valid = [frame for frame, code in zip(frames, verdicts, strict=True) if code is None]
            assert [action.data for action in released] == valid
        spoke = relay.upstream_frame(SESSION_CREATED)
        assert all(isinstance(action, SendToClient) for action in spoke)
        assert json.loads(spoke[0].data)["type"] == "session.created"
        errors = [check_error_event(action.data, ALL_CODES) for action in spoke[1:]]
        codes = [error["code"] for error in errors if error["code"] != "field_dropped"]
        expected = [code for code in verdicts if code is not None]
        assert len(codes) == len(expected), (frames, errors)
        for code, wanted in zip(codes, expected, strict=True):
            assert code in (FIELD_CODES if wanted == FIELD else {wanted}), (frames, errors)


EDGE_FRAMES = [
    "",
    " ",
    "null",
    "[" * 100_000,  # deeper than the parser's stack
    '{"a":' * 50_000,
    '{"type":"input_audio_buffer.append","audio":"%%%not base64"}',
    '{"type":"input_audio_buffer.append","audio":"AAAA","event_id":"\\udfff"}',
    '{"type":"response.create","response":null}',
    '{"type":"response.create","response":{"input":[{"type":"message","role":"assistant","content":[null]}]}}',
    '{"type":"session.update","session":{"type":"realtime","audio":{"input":{"format":"\\ud800"}}}}',
    '{"type":"session.update","session":{"modalities":"audio","voice":{"id":"x"}}}',
    '{"type":"transcription_session.update","session":{"input_audio_format":{"type":"audio/pcm"}}}',
    '{"type":"conversation.item.create","item":{"type":"message","role":"assistant","content":"text"}}',
    '{"type":"' + "x" * 600 + '"}',
    "\x00",
    '{"type":"\\u0069nput_audio_buffer.append","audio":"AAAA"}',
]


@pytest.mark.parametrize("kind", sorted(SESSIONS))
@pytest.mark.parametrize("frame", EDGE_FRAMES, ids=range(len(EDGE_FRAMES)))
def test_edge_frames(kind: str, frame: str) -> None:
    for settings_, limit in ((ROBUST, SMALL_LIMIT), (DEFAULT, DEFAULT.max_client_message_bytes)):
        relay, _ = open_session(kind, settings_)
        check_client_text(relay, kind, frame, limit)


SURROGATE_TEXT = (
    '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
    '"content":[{"type":"input_text","text":"a\\ud800b"}]}}'
)


@pytest.mark.parametrize("kind", sorted(SESSIONS))
def test_lone_surrogate_escapes_never_reach_the_wire(request: pytest.FixtureRequest, kind: str) -> None:
    """A ``\\ud800`` escape is valid JSON; what the gateway sends must still be valid UTF-8 (aiohttp's
    send_str encodes it, and fails)."""
    relay, _ = open_session(kind, DEFAULT)
    for action in relay.client_text(SURROGATE_TEXT, NOW):
        if isinstance(action, SendToClient | SendToUpstream):
            assert isinstance(action.data, str)
            action.data.encode("utf-8")


# -- same protocol: relayed byte for byte ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "settings_"), [("ga", DEFAULT), ("beta", BETA_PROVIDER)], ids=["ga", "beta"]
)
@fuzz(150)
@given(event=VALID_CLIENT_EVENTS, style=STYLES)
def test_valid_events_are_relayed_unchanged_in_same_protocol_sessions(
    kind: str, settings_: Settings, event: dict[str, Any], style: str
) -> None:
    validate_client_event(event)  # the strategy makes valid events, or this test means nothing
    frame = dumps_styled(event, style)
    relay, _ = open_session(kind, settings_)
    assert relay.plan.client_protocol == relay.plan.upstream_protocol == kind
    actions = relay.client_text(frame, NOW)
    assert len(actions) == 1, (frame, actions)
    assert isinstance(actions[0], SendToUpstream), (frame, actions)
    assert actions[0].data is frame


# -- provider events on their way to a client of the other protocol ------------------------------------


ALL_SERVER_MODELS = {**GA_SERVER_EVENT_MODELS, **BETA_SERVER_EVENT_MODELS}


def handled_events(translator: type[GaToBeta | BetaToGa]) -> st.SearchStrategy[str]:
    """The event types ``translator`` rewrites, with fields of any shape at any depth, as frames."""
    models = [ALL_SERVER_MODELS[kind] for kind in sorted(translator.handled) if kind in ALL_SERVER_MODELS]
    events = st.one_of([for_model(model, loose=True) for model in models])
    return st.tuples(events, STYLES).map(lambda pair: dumps_styled(*pair))


HANDLED = {"ga": handled_events(GaToBeta), "beta": handled_events(BetaToGa)}  # by provider protocol


@pytest.mark.parametrize(("client", "upstream"), [("beta", "ga"), ("ga", "beta")])
@fuzz(150)
@given(data=st.data())
def test_translator_to_client_never_raises(client: str, upstream: str, data: st.DataObject) -> None:
    translator = Translator(client, upstream)  # type: ignore[arg-type]
    frames = data.draw(
        st.lists(SERVER_FRAMES | HANDLED[upstream] | HANDLED[upstream], min_size=1, max_size=6)
    )
    for frame in frames:
        out = translator.to_client(frame)
        assert isinstance(out, list)
        for translated in out:
            assert isinstance(translated, str)
            translated.encode("utf-8")
        try:
            parsed = json.loads(frame)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
            for translated in out:  # a JSON event stays one (the frame itself, or a translation)
                event = json.loads(translated)
                assert isinstance(event, dict)
                assert isinstance(event.get("type"), str)
        elif not isinstance(parsed, dict):
            assert len(out) == 1  # not an event: relayed (a stream delta renamed in place at most)
    assert translator.to_client(b"\x00binary") == [b"\x00binary"]  # type: ignore[arg-type]


# -- every field of every translated event, of the wrong shape -----------------------------------------------

# Values of the wrong shape for whatever field they replace.
WRONG = [None, 0, 1.5, "x", [None], {}, {"type": 0}]


def maximal(annotation: Any) -> Any:
    """A value of ``annotation`` with every optional field present, one item in every list."""
    origin = get_origin(annotation)
    if annotation is Any or annotation is object:
        return {"k": ["v"]}
    if annotation is type(None) or annotation is None:
        return None
    if annotation in (bool, int, float, str):
        return {bool: True, int: 1, float: 1.5, str: "s"}[annotation]
    if origin is Annotated:
        return maximal(get_args(annotation)[0])
    if origin is Literal:
        return get_args(annotation)[0]
    if origin is Union or origin is types.UnionType:
        members = [member for member in get_args(annotation) if member is not type(None)]
        structured = [
            m
            for m in members
            if get_origin(m) in (list, dict) or (isinstance(m, type) and issubclass(m, BaseModel))
        ]
        return maximal((structured or members)[0])
    if origin is list:
        return [maximal(get_args(annotation)[0])]
    if origin is dict:
        return {"k": maximal(get_args(annotation)[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        hints = typing.get_type_hints(annotation, include_extras=True)
        ordered = sorted(annotation.model_fields.items(), key=lambda item: item[0] != "type")
        return {info.alias or name: maximal(hints[name]) for name, info in ordered}
    raise TypeError(f"no value for {annotation!r}")


def with_part_types(value: Any, part_type: str) -> Any:
    """``value`` with every free-form ``type`` (``"s"`` in :func:`maximal`'s output: content parts,
    tools, formats...) set to ``part_type``, so the parts the translation renames are there."""
    if isinstance(value, dict):
        return {
            k: part_type if k == "type" and v == "s" else with_part_types(v, part_type)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [with_part_types(item, part_type) for item in value]
    return value


def shape_confused(kinds: set[str]) -> list[str]:
    """Each event of ``kinds`` at its fullest, with each field in turn given each WRONG value or removed."""
    frames = []
    for kind in sorted(kinds):
        for part_type in ("output_text", "text"):
            event = with_part_types(maximal(ALL_SERVER_MODELS[kind]), part_type)
            for path in _paths(event)[1:]:
                if path == ("type",):
                    continue
                frames.append(json.dumps(_delete(event, path)))
                frames += [json.dumps(_set(event, path, wrong)) for wrong in WRONG]
    return frames


@pytest.mark.parametrize(("client", "upstream"), [("beta", "ga"), ("ga", "beta")])
def test_translator_survives_every_field_of_the_wrong_shape(client: str, upstream: str) -> None:
    """Deterministic and exhaustive where the fuzz above samples: every event type the translator
    rewrites, every field, every WRONG value, in one session (it keeps state)."""
    server = GaToBeta if upstream == "ga" else BetaToGa
    kinds = {kind for kind in server.handled | set(server.renames) if kind in ALL_SERVER_MODELS}
    translator = Translator(client, upstream)  # type: ignore[arg-type]
    frames = shape_confused(kinds)
    assert len(frames) > 500
    for frame in frames:
        for out in translator.to_client(frame):
            event = json.loads(out)
            assert isinstance(event, dict), out
            assert isinstance(event.get("type"), str), out


def client_shape_confused() -> list[str]:
    frames = []
    for kind in sorted(CLIENT_TYPES_TRANSLATED):
        for part_type in ("output_text", "text"):
            event = with_part_types(maximal(CLIENT_EVENT_MODELS[kind]), part_type)
            for path in _paths(event)[1:]:
                frames.append(json.dumps(_delete(event, path)))
                frames += [json.dumps(_set(event, path, wrong)) for wrong in WRONG]
    return frames


@pytest.mark.parametrize("kind", ["beta", "simulator-beta"])
def test_client_events_with_every_field_of_the_wrong_shape(kind: str) -> None:
    """Every client event the translation rewrites, every field, every WRONG value: accepted as
    the verdict says, or answered with exactly one error event."""
    frames = client_shape_confused()
    assert len(frames) > 500
    for start in range(0, len(frames), 100):  # a new session now and then: held events are bounded
        relay, _ = open_session(kind, DEFAULT)
        for frame in frames[start : start + 100]:
            check_client_text(relay, kind, frame, DEFAULT.max_client_message_bytes)


# -- beta -> GA -> beta keeps the shared fields --------------------------------------------------------------

# A beta realtime session.update's fields (openai's beta SessionUpdateEvent.Session) and a beta
# transcription_session.update's; those with no GA counterpart are dropped on the way (one notice each).
BETA_SESSION_FIELDS = frozenset(
    [
        "client_secret",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "instructions",
        "max_response_output_tokens",
        "modalities",
        "model",
        "output_audio_format",
        "speed",
        "temperature",
        "tool_choice",
        "tools",
        "tracing",
        "turn_detection",
        "voice",
    ]
)
BETA_ONLY = {
    "session.update": {"temperature", "client_secret"},
    "transcription_session.update": {"modalities", "client_secret"},
}
BETA_TRANSCRIPTION_FIELDS = frozenset(
    [
        "client_secret",
        "include",
        "input_audio_format",
        "input_audio_noise_reduction",
        "input_audio_transcription",
        "modalities",
        "turn_detection",
    ]
)


def modalities_back(value: Any) -> Any:
    """What beta ``modalities`` come back as: GA has only ["text"] or ["audio"] (with transcript)."""
    if not isinstance(value, list):
        return value
    if "audio" in value:
        return ["text", "audio"]
    return ["text"] if "text" in value else value


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


SESSION_UPDATES: list[tuple[str, type[BaseModel], frozenset[str], Callable[[Any], Any]]] = [
    ("session.update", BetaSession, BETA_SESSION_FIELDS, modalities_back),
    (
        "transcription_session.update",
        BetaTranscriptionSession,
        BETA_TRANSCRIPTION_FIELDS,
        lambda value: value,
    ),
]


@pytest.mark.parametrize(
    ("kind", "model", "fields", "modalities"), SESSION_UPDATES, ids=lambda v: str(v)[:30]
)
@fuzz(200)
@given(data=st.data())
def test_beta_session_round_trip_keeps_shared_fields(
    kind: str,
    model: type[BaseModel],
    fields: frozenset[str],
    modalities: Callable[[Any], Any],
    data: st.DataObject,
) -> None:
    session = data.draw(for_model(model, only=fields))
    event = {"type": kind, "session": session}
    validate_client_event(event)
    frames, notices = Translator("beta", "ga").to_upstream(event)
    (frame,) = frames
    ga = json.loads(frame)
    assert ga["type"] == "session.update"
    assert ga["session"]["type"] == ("realtime" if kind == "session.update" else "transcription")
    if all(session.get(name) in KNOWN_FORMATS for name in ("input_audio_format", "output_audio_format")):
        validate_client_event(ga)  # an unknown format is relayed as it is, for the provider to judge
    dropped = sorted(json.loads(notice)["error"]["param"] for notice in notices)
    assert dropped == sorted(f"session.{name}" for name in session if name in BETA_ONLY[kind])
    frames, notices = Translator("ga", "beta").to_upstream(ga)
    assert notices == [], [json.loads(notice)["error"]["param"] for notice in notices]
    back = json.loads(frames[0])
    assert back["type"] == kind
    expected = {name: value for name, value in session.items() if name not in BETA_ONLY[kind]}
    if "modalities" in expected:
        expected["modalities"] = modalities(expected["modalities"])
    assert same(back["session"], expected), (session, ga, back)
