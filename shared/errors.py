"""Error events in the OpenAI shapes, and the close codes the gateway uses.

Every failure the gateway sees reaches the client as an ``error`` event in its endpoint's shape
(Realtime's, or GPT-Live's with ``client_event_id``), then, where the session cannot go on, a close
whose code says why. Messages are written here, never copied from an exception, so no key or token
can leak through them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import IntEnum


class CloseCode(IntEnum):
    """RFC 6455 close codes the gateway sends."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


# Codes a peer may put on the wire (RFC 6455 7.4): 1005, 1006 and 1015 are reserved for reporting.
_SENDABLE_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code


def sendable_close_code(code: int | None, fallback: int = CloseCode.INTERNAL_ERROR) -> int:
    """The code to pass on for a close seen with ``code`` (reserved or invalid: ``fallback``)."""
    if code is None:
        return fallback
    if code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999:
        return code
    if code in (0, 1005):  # no code in the close frame (websockets says 1005, aiohttp and some hosts 0)
        return CloseCode.NORMAL
    return fallback


def close_reason(text: str) -> str:
    """``text`` cut to what fits in a close frame, on a character boundary."""
    encoded = text.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return text
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


@dataclass(frozen=True, slots=True)
class GatewayError:
    """An error to report to the client as an ``error`` event."""

    code: str
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    client_event_id: str | None = None  # the event_id of the client event at fault, if any

    def to_event(self) -> str:
        """Realtime's ``error`` event (also realtime translation's): the client's id as ``event_id``."""
        return json.dumps(
            {
                "type": "error",
                "event_id": new_event_id(),
                "error": {
                    "type": self.type,
                    "code": self.code,
                    "message": self.message,
                    "param": self.param,
                    "event_id": self.client_event_id,
                },
            },
            separators=(",", ":"),
        )

    def to_live_event(self) -> str:
        """GPT-Live's ``error`` event: the client's id as ``client_event_id``, on the event and its error."""
        return json.dumps(
            {
                "type": "error",
                "event_id": new_event_id(),
                "client_event_id": self.client_event_id,
                "error": {
                    "type": self.type,
                    "code": self.code,
                    "message": self.message,
                    "param": self.param,
                    "client_event_id": self.client_event_id,
                },
            },
            separators=(",", ":"),
        )


def new_event_id() -> str:
    """A server event id in OpenAI's style (``event_`` and 20 random hex digits)."""
    return "event_" + os.urandom(10).hex()
