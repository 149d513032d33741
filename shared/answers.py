"""A plain HTTP answer (status, JSON body, headers): what a request gets when no WebSocket is opened.

Its own module so that both :mod:`shared.routes` and the handshake (:mod:`shared.auth`) can build
one without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A plain HTTP response: ``status`` and a JSON ``body``."""

    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


def error_body(code: str, message: str) -> dict[str, object]:
    """An OpenAI-shaped error body: ``{"error": {"type", "code", "message"}}``."""
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}
