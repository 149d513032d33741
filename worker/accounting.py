"""The Worker's accounting: the prices, and the usage ledger in a D1 database bound as ``USAGE_DB``.

The meter, the budgets and the records are the core's (:mod:`shared.usage`); this module holds what
the isolate has: the price table (PRICES_FILE is read when the bundle is built, a Worker having no
files: ``worker/build_bundle.py``), and the D1 binding, where records are written with D1's
``prepare().bind()`` in one ``batch`` (a transaction) each, in order, and a subject's spend is read
back at admission. Without a binding the Worker keeps no ledger: the per-session log line
(always JSON on the Worker, for Workers Logs and Logpush) is then the record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from shared.config import Settings
from shared.handshake import SessionPlan
from shared.usage.budget import budget_plan, needs_spend
from shared.usage.ledger import (
    CREATE_SCHEMA_TABLE,
    READ_VERSION,
    SPENT_TODAY,
    WRITE_VERSION,
    migrations_from,
    record_statements,
    utc_day,
)
from shared.usage.meter import UsageMeter, start_meter
from shared.usage.prices import PriceTable
from shared.usage.record import UsageRecord

logger = logging.getLogger("realtime_gateway")

LEDGER_BINDING = "USAGE_DB"


def bundled_prices() -> PriceTable:
    """The shipped prices, with the PRICES_FILE the bundle was built with, if any."""
    try:
        from shared.usage.bundled_prices import PRICES_TOML  # written by worker/build_bundle.py
    except ImportError:
        return PriceTable()
    return PriceTable.with_overrides(PRICES_TOML)


class D1Ledger:
    """The ledger in D1, through one request's binding.

    workerd ties every promise to the request that made it, so nothing here is shared between
    requests but a flag: the isolate's first use creates or migrates the tables (idempotently: two
    requests racing to do it both succeed), and each session writes its records one after the other
    (:class:`SessionRecords`).
    """

    migrated = False  # per isolate, once the schema is known to be current

    def __init__(self, database: Any) -> None:
        self._db = database

    async def ready(self) -> None:
        if D1Ledger.migrated:
            return
        db = self._db
        await db.prepare(CREATE_SCHEMA_TABLE).run()
        version = await db.prepare(READ_VERSION).first("version")
        for reached, statements in migrations_from(version):
            await db.batch(
                [
                    *(db.prepare(statement) for statement in statements),
                    db.prepare(WRITE_VERSION).bind(reached),
                ]
            )
        D1Ledger.migrated = True

    async def write(self, record: UsageRecord) -> None:
        """Write ``record`` in one batch (a transaction); a failure is logged, never raised."""
        try:
            await self.ready()
            db = self._db
            await db.batch([db.prepare(sql).bind(*values) for sql, values in record_statements(record)])
        except Exception as error:  # a JsException from D1: its text is D1's, with no secret in it
            logger.error("usage ledger: record of session %s not written: %s", record.session_id, error)

    async def spent_today(self, subject: str, day: str) -> float:
        await self.ready()
        spent = await self._db.prepare(SPENT_TODAY).bind(subject, day).first("spent")
        return float(spent or 0)


class SessionRecords:
    """One session's records, written in the order the relay handed them over, each kept alive by
    the request's ``ctx.waitUntil`` (a session's events all run in its request's context)."""

    def __init__(self, ledger: D1Ledger, wait_until: Callable[[Any], None]) -> None:
        self._ledger = ledger
        self._wait_until = wait_until
        self._last: asyncio.Future[None] | None = None

    def write(self, record: UsageRecord) -> None:
        self._last = asyncio.ensure_future(self._after(self._last, record))
        self._wait_until(self._last)

    async def _after(self, previous: asyncio.Future[None] | None, record: UsageRecord) -> None:
        if previous is not None:
            await previous
        await self._ledger.write(record)


class WorkerAccounting:
    """The isolate's prices; its ledger is the request's ``USAGE_DB`` binding, when there is one."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.prices = bundled_prices()

    @staticmethod
    def ledger(env: Any) -> D1Ledger | None:
        binding = getattr(env, LEDGER_BINDING, None)
        if binding is None or isinstance(binding, str):  # not bound (a string is a var, not D1)
            return None
        return D1Ledger(binding)

    async def admit(self, plan: SessionPlan, ledger: D1Ledger | None) -> tuple[SessionPlan, float]:
        """``plan`` under its budgets (or refused by them), and its subject's spend today so far."""
        spent = 0.0
        if ledger is not None and needs_spend(plan, self._settings):
            assert plan.subject is not None
            spent = await ledger.spent_today(plan.subject, utc_day(time.time()))
        return budget_plan(plan, self._settings, self.prices, spent), spent

    def meter(self, plan: SessionPlan, now: float, spent_today: float) -> UsageMeter:
        return start_meter(plan, self._settings, now, time.time(), self.prices, spent_today=spent_today)
