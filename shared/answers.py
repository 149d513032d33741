"""A plain HTTP answer (status, JSON body, headers): what a request gets when no WebSocket is opened.

:class:`RawAnswer` is the same with a body of bytes, for the relayed HTTP endpoints.

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


def error_body(
    code: str, message: str, *, type: str = "invalid_request_error", param: str | None = None
) -> dict[str, object]:
    """An OpenAI-shaped error body: ``{"error": {"type", "code", "message", "param"}}``."""
    return {"error": {"type": type, "code": code, "message": message, "param": param}}


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """An HTTP response carried as bytes: a provider's answer relayed, or an :class:`HttpAnswer` encoded.

    ``headers`` hold ``Content-Type`` whenever ``body`` is not empty.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def of(cls, answer: HttpAnswer, extra_headers: dict[str, str] | None = None) -> RawAnswer:
        headers = {"Content-Type": "application/json", **answer.headers, **(extra_headers or {})}
        return cls(answer.status, headers, answer.json().encode())
