"""What each HTTP request gets before any WebSocket is involved, the same on every runtime."""

from __future__ import annotations

from . import __version__
from .answers import HttpAnswer, error_body
from .auth import TOKENS_PATH
from .endpoints import websocket_endpoint_for

__all__ = ["HEALTH_PATH", "TOKENS_PATH", "HttpAnswer", "http_answer"]

HEALTH_PATH = "/healthz"


def http_answer(method: str, path: str, wants_websocket: bool) -> HttpAnswer | None:
    """The HTTP answer for a request, or None when it is a realtime upgrade to carry out."""
    if path == HEALTH_PATH:
        return HttpAnswer(200, {"status": "ok", "version": __version__})
    endpoint = websocket_endpoint_for(path)
    if endpoint is None:
        return HttpAnswer(
            404,
            error_body("not_found", f"No such endpoint: {path}. Connect a WebSocket to /v1/realtime."),
        )
    if method != "GET" or not wants_websocket:
        return HttpAnswer(
            426,
            error_body(
                "upgrade_required",
                f"This is a WebSocket endpoint ({endpoint.name}): {endpoint.how_to_connect}",
            ),
            {"Upgrade": "websocket"},  # RFC 9110 15.5.22: a 426 names the protocol to switch to
        )
    return None
