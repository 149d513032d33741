"""Checks on client frames: what is relayed, and the error event for what is not.

Each endpoint speaks a :class:`Vocabulary`: its client events (Realtime, GPT-Live and its sideband
and forks, realtime translation), how a frame is checked, and the shape of its ``error`` event.
The hot path is the audio append (``input_audio_buffer.append``, Live's
``session.input_audio.append``, one every ~100 ms per speaking client): it is checked with
``json.loads`` and a strict base64 decode, both in C. Every other event is validated against its
pydantic model. A valid frame is relayed as the very bytes the client sent.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .errors import GatewayError
from .events import (
    CLIENT_EVENT_MODELS,
    LIVE_CLIENT_EVENT_MODELS,
    LIVE_FORK_CLIENT_EVENT_MODELS,
    LIVE_SIDEBAND_CLIENT_EVENT_MODELS,
    TRANSLATION_CLIENT_EVENT_MODELS,
    EventModel,
)

APPEND = "input_audio_buffer.append"
LIVE_APPEND = "session.input_audio.append"
TRANSLATION_APPEND = "session.input_audio_buffer.append"
Parser = Callable[[str], dict[str, Any]]


class RejectedFrame(Exception):
    """A client frame the gateway will not relay; ``error`` tells the client why."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def _reject(code: str, message: str, *, param: str | None = None, event_id: Any = None) -> RejectedFrame:
    event_id = event_id if isinstance(event_id, str) else None
    return RejectedFrame(GatewayError(code, message, param=param, client_event_id=event_id))


def binary_frame_error(append: str | None = APPEND) -> GatewayError:
    audio = f" (audio goes base64-encoded in {append})" if append else ""
    return GatewayError(
        "binary_frame_unsupported",
        f"Binary frames are not supported: send each event as a JSON text frame{audio}.",
    )


def too_large_error(size: int, limit: int, append: str | None = APPEND) -> GatewayError:
    advice = f"; split audio into smaller {append} events" if append else ""
    return GatewayError(
        "message_too_large",
        f"Event of {size} bytes exceeds this gateway's limit of {limit} bytes "
        f"(MAX_CLIENT_MESSAGE_BYTES){advice}.",
    )


def oversize(text: str, limit: int) -> int | None:
    """The UTF-8 size of ``text`` if it exceeds ``limit``, else None.

    Encoding is skipped when even 4 bytes a character stays within the limit: the common case. A lone
    surrogate (no WebSocket text holds one, but a str may) counts its 3 bytes rather than raising.
    """
    if len(text) * 4 <= limit:
        return None
    size = len(text.encode(errors="surrogatepass"))
    return size if size > limit else None


def client_event_parser(append: str | None, models: dict[str, type[EventModel]]) -> Parser:
    """The check of one vocabulary's client frames: the client event in a frame as a dict, or
    :class:`RejectedFrame` saying what is wrong. ``append`` is the audio append's type (the hot
    path), None where the vocabulary has none."""
    event_types = frozenset(models)
    fast = _audio_append if append is not None else _no_fast_path

    def parse(data: str) -> dict[str, Any]:
        event = fast(data, append)
        if event is not None:
            return event
        try:
            event = json.loads(data)
        except ValueError as exc:  # JSONDecodeError, and lone surrogates in the text
            raise _reject("invalid_json", f"The frame is not valid JSON: {exc}.") from None
        except RecursionError:  # nesting deeper than the parser's stack: refuse it, don't crash
            raise _reject("invalid_json", "The frame is nested too deeply to parse.") from None
        if not isinstance(event, dict):
            kind = type(event).__name__.replace("dict", "object").replace("list", "array")
            raise _reject("invalid_event", f"An event must be a JSON object, not {kind}.")
        event_type = event.get("type")
        event_id = event.get("event_id")
        if event_type is None:
            raise _reject(
                "missing_required_parameter",
                "Missing required parameter: 'type'.",
                param="type",
                event_id=event_id,
            )
        if event_type == append:
            _check_append(event)
            return event
        if not isinstance(event_type, str) or event_type not in event_types:
            raise _reject(
                "unknown_event_type",
                f"Unknown client event type {event_type!r}.",
                param="type",
                event_id=event_id,
            )
        try:
            models[event_type].model_validate(event)
        except ValidationError as exc:
            raise _validation_rejection(exc, event_id) from None
        return event

    return parse


_AUDIO_KEY = '"audio"'
_JSON_SPACE = " \t\n\r"
# Each byte of the base64 alphabet maps to 0, every other byte to 1.
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(0 if byte in _BASE64_ALPHABET else 1 for byte in range(256))


def _is_base64(text: str) -> bool:
    """Whether ``text`` is strict base64 (the alphabet, whole quanta, padding only at the end).

    Sound, not complete: whatever it accepts, ``binascii.a2b_base64(strict_mode=True)`` accepts;
    the rare odd form it does not accept takes the general path. One table lookup a byte (C's
    ``bytes.translate``) is about four times as fast as decoding.
    """
    if len(text) % 4 or not text.isascii():
        return False
    core = text.rstrip("=")
    return len(text) - len(core) <= 2 and core.encode().translate(_NOT_BASE64) == bytes(len(core))


def _audio_value_span(data: str) -> tuple[int, int] | None:
    """Where the string value of the only ``"audio"`` key in ``data`` starts and ends."""
    key = data.find(_AUDIO_KEY)
    if key < 0 or data.find(_AUDIO_KEY, key + 1) >= 0:
        return None
    index = key + len(_AUDIO_KEY)
    while index < len(data) and data[index] in _JSON_SPACE:
        index += 1
    if data[index : index + 1] != ":":
        return None
    index += 1
    while index < len(data) and data[index] in _JSON_SPACE:
        index += 1
    if data[index : index + 1] != '"':
        return None
    end = data.find('"', index + 1)
    return (index + 1, end) if end > 0 else None


def _no_fast_path(data: str, append: str | None) -> None:
    return None


def _audio_append(data: str, append: str) -> dict[str, Any] | None:
    """The hot path: a well-formed audio append (``append``) checked without parsing its audio.

    Audio is ~97% of such a frame. When the frame has the usual shape (one ``"audio"`` key whose
    value is plain base64), the audio is checked as base64 and the rest of the frame, with an empty
    string in the audio's place, is parsed as JSON: the frame is valid JSON exactly when that rest
    is, since base64 holds no quote or backslash. Anything else returns None and takes the general
    path, which gives the same verdict on every frame, only slower.
    """
    if not data.startswith("{") or append not in data[:128]:
        return None
    span = _audio_value_span(data)
    if span is None:
        return None
    start, end = span
    audio = data[start:end]
    if not _is_base64(audio):
        return None
    try:
        event = json.loads(data[:start] + data[end:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("type") != append or event.get("audio") != "":
        return None  # the one "audio" key was not the event's own: let the general path decide
    event["audio"] = audio
    return event


def _check_append(event: dict[str, Any]) -> None:
    audio = event.get("audio")
    event_id = event.get("event_id")
    if audio is None:
        raise _reject(
            "missing_required_parameter",
            "Missing required parameter: 'audio'.",
            param="audio",
            event_id=event_id,
        )
    if not isinstance(audio, str):
        raise _reject(
            "invalid_type",
            "Invalid 'audio': expected a base64 string.",
            param="audio",
            event_id=event_id,
        )
    try:
        binascii.a2b_base64(audio, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _reject(
            "invalid_audio", "Invalid 'audio': not valid base64.", param="audio", event_id=event_id
        ) from None


def _validation_rejection(exc: ValidationError, event_id: Any) -> RejectedFrame:
    first = exc.errors(include_url=False, include_input=False)[0]
    param = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return _reject(
            "missing_required_parameter",
            f"Missing required parameter: '{param}'.",
            param=param,
            event_id=event_id,
        )
    return _reject("invalid_value", f"Invalid '{param}': {first['msg']}.", param=param, event_id=event_id)


# -- the vocabularies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Vocabulary:
    """The client events an endpoint takes: how its frames are checked, how its errors look."""

    name: str
    parse: Parser
    error_event: Callable[[GatewayError], str]  # the endpoint's ``error`` event, serialised
    append: str | None  # the audio append's type, named in messages; None: the socket takes no audio

    def binary_frame_error(self) -> GatewayError:
        return binary_frame_error(self.append)

    def too_large_error(self, size: int, limit: int) -> GatewayError:
        return too_large_error(size, limit, self.append)


parse_client_event = client_event_parser(APPEND, CLIENT_EVENT_MODELS)
"""Realtime's check (``/v1/realtime``, GA and beta events alike)."""

REALTIME = Vocabulary("realtime", parse_client_event, GatewayError.to_event, APPEND)
LIVE = Vocabulary(
    "live",
    client_event_parser(LIVE_APPEND, LIVE_CLIENT_EVENT_MODELS),
    GatewayError.to_live_event,
    LIVE_APPEND,
)
LIVE_SIDEBAND = Vocabulary(
    "live_sideband",
    client_event_parser(None, LIVE_SIDEBAND_CLIENT_EVENT_MODELS),
    GatewayError.to_live_event,
    None,
)
LIVE_FORK = Vocabulary(
    "live_fork",
    client_event_parser(LIVE_APPEND, LIVE_FORK_CLIENT_EVENT_MODELS),
    GatewayError.to_live_event,
    LIVE_APPEND,
)
TRANSLATION = Vocabulary(
    "translation",
    client_event_parser(TRANSLATION_APPEND, TRANSLATION_CLIENT_EVENT_MODELS),
    GatewayError.to_event,
    TRANSLATION_APPEND,
)
