"""The standalone server's accounting: its prices, its ledger (USAGE_DB) and its metrics, per process.

The meter, the budgets and the records are the core's (:mod:`shared.usage`); this module gives them
what only the process has: the clock's date, the PRICES_FILE read from disk, the SQLite ledger the
records go to, the subject's spend read back from it at admission, and Prometheus.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from shared.config import Settings
from shared.handshake import SessionPlan
from shared.usage.budget import budget_plan, needs_spend
from shared.usage.ledger import utc_day
from shared.usage.meter import UsageMeter, start_meter
from shared.usage.prices import PricesError, PriceTable
from shared.usage.record import UsageRecord

from .ledger import SqliteLedger
from .metrics import PrometheusSink


def load_prices(settings: Settings) -> PriceTable:
    """The shipped prices, with PRICES_FILE's models in place; PricesError says what is wrong with it."""
    if settings.prices_file is None:
        return PriceTable()
    path = Path(settings.prices_file)
    try:
        return PriceTable.with_overrides(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PricesError) as error:
        raise PricesError(f"PRICES_FILE {path}: {error}") from None


def open_ledger(settings: Settings) -> SqliteLedger | None:
    """USAGE_DB opened (created, migrated), or None when it is empty; sqlite3.Error says why not."""
    if not settings.usage_db:
        return None
    try:
        return SqliteLedger(settings.usage_db)
    except (sqlite3.Error, ValueError) as error:
        raise sqlite3.Error(f"USAGE_DB {settings.usage_db}: {error}") from None


class Accounting:
    """What every session of the process is metered, priced, budgeted and recorded with."""

    def __init__(self, settings: Settings, open_meters: Callable[[], Iterable[UsageMeter]]) -> None:
        self._settings = settings
        self.prices = load_prices(settings)
        self.ledger = open_ledger(settings)
        self.metrics = PrometheusSink(open_meters)

    async def admit(self, plan: SessionPlan) -> tuple[SessionPlan, float]:
        """``plan`` under its budgets (or refused by them), and its subject's spend today so far."""
        spent = 0.0
        if self.ledger is not None and needs_spend(plan, self._settings):
            assert plan.subject is not None
            spent = await self.ledger.spent_today(plan.subject, utc_day(time.time()))
        return budget_plan(plan, self._settings, self.prices, spent), spent

    def meter(self, plan: SessionPlan, now: float, spent_today: float) -> UsageMeter:
        """A new session's meter; ``now`` is the event loop's time."""
        return start_meter(
            plan, self._settings, now, time.time(), self.prices, spent_today=spent_today, sink=self.metrics
        )

    def record(self, record: UsageRecord) -> None:
        if self.ledger is not None:
            self.ledger.write(record)

    def close(self, timeout: float) -> None:
        if self.ledger is not None:
            self.ledger.close(timeout)
