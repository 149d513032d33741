"""How often each limit was hit, counted per process (on Cloudflare: per isolate) and logged.

Every refusal or session end that a limit causes (``too_many_sessions``, ``rate_limited``,
``session_expired``, ``idle_timeout``, ``client_unresponsive``, ``upstream_unresponsive``,
``client_too_slow``, ``budget_exceeded``) is counted under that reason, and each hit is logged with
the running total: ``limit hit reason=too_many_sessions total=3 ...``, so a log search or a
log-based metric shows which limit bites and how often.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("realtime_gateway")


class LimitCounters:
    """Hits per reason since the process (or isolate) started."""

    def __init__(self) -> None:
        self._totals: dict[str, int] = {}

    def hit(self, reason: str, detail: str = "") -> int:
        """Count one hit of ``reason`` and log it with its total; ``detail`` (no secrets) is appended."""
        total = self._totals[reason] = self._totals.get(reason, 0) + 1
        logger.warning("limit hit reason=%s total=%d%s", reason, total, f" {detail}" if detail else "")
        return total

    def total(self, reason: str) -> int:
        return self._totals.get(reason, 0)

    def totals(self) -> dict[str, int]:
        return dict(self._totals)


# The process's (or isolate's) counters: the relay and the admission bookkeeping count here.
LIMIT_COUNTERS = LimitCounters()
