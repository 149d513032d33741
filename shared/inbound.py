"""Checks on client frames: what is relayed, and the error event for what is not.

The hot path is ``input_audio_buffer.append`` (one every ~100 ms per speaking client): it is checked
with ``json.loads`` and a strict base64 decode, both in C. Every other event is validated against
its pydantic model. A valid frame is relayed as the very bytes the client sent.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from pydantic import ValidationError

from .errors import GatewayError
from .events import CLIENT_EVENT_TYPES, validate_client_event

APPEND = "input_audio_buffer.append"


class RejectedFrame(Exception):
    """A client frame the gateway will not relay; ``error`` tells the client why."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def _reject(code: str, message: str, *, param: str | None = None, event_id: Any = None) -> RejectedFrame:
    event_id = event_id if isinstance(event_id, str) else None
    return RejectedFrame(GatewayError(code, message, param=param, client_event_id=event_id))


def binary_frame_error() -> GatewayError:
    return GatewayError(
        "binary_frame_unsupported",
        "Binary frames are not supported: send each event as a JSON text frame "
        "(audio goes base64-encoded in input_audio_buffer.append).",
    )


def too_large_error(size: int, limit: int) -> GatewayError:
    return GatewayError(
        "message_too_large",
        f"Event of {size} bytes exceeds this gateway's limit of {limit} bytes "
        "(MAX_CLIENT_MESSAGE_BYTES); split audio into smaller input_audio_buffer.append events.",
    )


def oversize(text: str, limit: int) -> int | None:
    """The UTF-8 size of ``text`` if it exceeds ``limit``, else None.

    Encoding is skipped when even 4 bytes a character stays within the limit: the common case.
    """
    if len(text) * 4 <= limit:
        return None
    size = len(text.encode())
    return size if size > limit else None


def parse_client_event(data: str) -> dict[str, Any]:
    """The client event in ``data`` as a dict, or :class:`RejectedFrame` saying what is wrong."""
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
    if event_type == APPEND:
        _check_append(event)
        return event
    if not isinstance(event_type, str) or event_type not in CLIENT_EVENT_TYPES:
        raise _reject(
            "unknown_event_type",
            f"Unknown client event type {event_type!r}.",
            param="type",
            event_id=event_id,
        )
    try:
        validate_client_event(event)
    except ValidationError as exc:
        raise _validation_rejection(exc, event_id) from None
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
