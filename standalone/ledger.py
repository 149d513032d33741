"""The standalone server's usage ledger: a SQLite file (USAGE_DB), written on a thread of its own.

Every statement runs on one writer thread, in order, so the event loop never waits on the disk: a
record is queued and the relay goes on. Reads (a subject's spend today, at admission) are queued
behind the writes before them, so they see every record handed over so far. The file is created and
migrated when the server starts (:mod:`shared.usage.ledger` has the schema), in WAL mode so that
``realtime-gateway usage`` can read it while the server writes. On shutdown the queue is drained
before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from shared.usage.ledger import (
    CREATE_SCHEMA_TABLE,
    READ_VERSION,
    SPENT_TODAY,
    WRITE_VERSION,
    migrations_from,
    record_statements,
)
from shared.usage.record import UsageRecord

logger = logging.getLogger("realtime_gateway")


def open_ledger(path: str | Path) -> sqlite3.Connection:
    """The ledger at ``path``, created or migrated to the current schema; ``check_same_thread`` is off
    because the writer thread, not the one that opened it, uses it."""
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses nothing
    connection.execute("PRAGMA busy_timeout=5000")  # a concurrent reader's lock is waited for
    connection.execute("PRAGMA cache_size=-256")  # KiB: rows are appended, rarely read back
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(CREATE_SCHEMA_TABLE)
        version = connection.execute(READ_VERSION).fetchone()[0]
        for reached, statements in migrations_from(version):
            for statement in statements:
                connection.execute(statement)
            connection.execute(WRITE_VERSION, (reached,))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        connection.close()
        raise
    return connection


class SqliteLedger:
    """USAGE_DB, behind one writer thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connection = open_ledger(self.path)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-ledger")
        self._pending: set[Future[None]] = set()
        self.closed = False

    def write(self, record: UsageRecord) -> None:
        """Queue ``record`` (a checkpoint or a final row); returns at once."""
        if self.closed:
            logger.warning("usage ledger closed: record of session %s not written", record.session_id)
            return
        future = self._writer.submit(self._write, record)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def spent_today(self, subject: str, day: str) -> float:
        """What ``subject``'s sessions started on ``day`` cost, as of every record queued before."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._spent, subject, day)

    def close(self, timeout: float) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then close the file."""
        self.closed = True
        late: set[Future[None]] = set()
        if self._pending:
            _, late = wait(list(self._pending), timeout)
            if late:
                logger.warning("usage ledger: %d records not written within %g s", len(late), timeout)
        self._writer.shutdown(wait=not late, cancel_futures=True)
        if not late:  # else the writer thread may still be using it; the process is ending anyway
            self._connection.close()

    # -- on the writer thread -----------------------------------------------------------------------------

    def _write(self, record: UsageRecord) -> None:
        connection = self._connection
        try:
            connection.execute("BEGIN")
            for statement, values in record_statements(record):
                connection.execute(statement, values)
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            logger.error("usage ledger: record of session %s not written: %s", record.session_id, error)

    def _spent(self, subject: str, day: str) -> float:
        return float(self._connection.execute(SPENT_TODAY, (subject, day)).fetchone()[0])
