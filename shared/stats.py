"""``GET /debug/stats``: what a running gateway holds right now, for its operator.

Authorized like ``POST /v1/tokens`` (``Authorization: Bearer <GATEWAY_ADMIN_KEY>``), and off when
that key is not set. The answer is a flat JSON object: the session count and limit hits, which
the core keeps, and what the runtime adds (the standalone server: asyncio tasks, descriptors,
RSS; the Worker: nothing more, its figures are per isolate). No subject, token or key is in it.
"""

from __future__ import annotations

from collections.abc import Mapping

from .admission import Admission
from .answers import HttpAnswer, error_body
from .auth import admin_key_matches, refusal
from .config import Settings
from .limits import LIMIT_COUNTERS, LimitCounters
from .tokens import TokenError

STATS_PATH = "/debug/stats"

Figure = int | float | str | None


def stats_answer(
    method: str,
    headers: Mapping[str, str],
    settings: Settings,
    admission: Admission,
    runtime: Mapping[str, Figure],
    counters: LimitCounters = LIMIT_COUNTERS,
) -> HttpAnswer:
    """Answer ``GET /debug/stats``; ``headers`` must have lower-case names."""
    if method != "GET":
        return HttpAnswer(
            405, error_body("method_not_allowed", f"Read the stats with GET {STATS_PATH}."), {"Allow": "GET"}
        )
    if settings.gateway_admin_key is None:
        return HttpAnswer(
            501, error_body("stats_disabled", f"{STATS_PATH} is off: GATEWAY_ADMIN_KEY is not set.")
        )
    if not admin_key_matches(headers, settings.gateway_admin_key.get_secret_value()):
        message = f"{STATS_PATH} needs Authorization: Bearer <GATEWAY_ADMIN_KEY>."
        return refusal(TokenError("invalid_admin_key", message, 401))
    body: dict[str, object] = {
        "sessions_open": admission.live,
        "limit_hits": counters.totals(),
        **runtime,
    }
    return HttpAnswer(200, body)


METRICS_PATH = "/metrics"


def metrics_refusal(method: str, headers: Mapping[str, str], settings: Settings) -> HttpAnswer | None:
    """Why ``GET /metrics`` is refused (a wrong or missing admin key when GATEWAY_ADMIN_KEY is set, a
    method other than GET), or None to serve it. Without the key set the metrics are open, as
    Prometheus endpoints usually are: they name no subject, session, token or key."""
    if method != "GET":
        return HttpAnswer(
            405,
            error_body("method_not_allowed", f"Read the metrics with GET {METRICS_PATH}."),
            {"Allow": "GET"},
        )
    key = settings.gateway_admin_key
    if key is not None and not admin_key_matches(headers, key.get_secret_value()):
        message = f"{METRICS_PATH} needs Authorization: Bearer <GATEWAY_ADMIN_KEY>."
        return refusal(TokenError("invalid_admin_key", message, 401))
    return None
