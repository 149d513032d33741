"""What each HTTP request gets before any WebSocket is involved, the same on every runtime."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import __version__
from .handshake import REALTIME_PATHS

HEALTH_PATH = "/healthz"


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A plain HTTP response: ``status`` and a JSON ``body``."""

    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


def http_answer(method: str, path: str, wants_websocket: bool) -> HttpAnswer | None:
    """The HTTP answer for a request, or None when it is a realtime upgrade to carry out."""
    if path == HEALTH_PATH:
        return HttpAnswer(200, {"status": "ok", "version": __version__})
    if path not in REALTIME_PATHS:
        return HttpAnswer(
            404,
            _error("not_found", f"No such endpoint: {path}. Connect a WebSocket to /v1/realtime."),
        )
    if method != "GET" or not wants_websocket:
        return HttpAnswer(
            426,
            _error(
                "upgrade_required",
                "This endpoint speaks the OpenAI Realtime protocol over WebSocket: "
                "open ws(s)://<host>/v1/realtime?model=...&provider=openai|azure|simulator.",
            ),
            {"Upgrade": "websocket"},  # RFC 9110 15.5.22: a 426 names the protocol to switch to
        )
    return None


def _error(code: str, message: str) -> dict[str, object]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}
