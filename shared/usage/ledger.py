"""The ledger's SQL, the same for the standalone server's SQLite file and the Worker's D1 database.

Two tables: ``usage_sessions`` (a row per session, :class:`~shared.usage.record.UsageRecord`'s
fields, written by session id: a checkpoint and then the final row replace each other) and
``usage_responses`` (a row per response, by session id and sequence number). ``usage_schema``
holds the schema's version; :data:`MIGRATIONS` takes any earlier version to the current one, and
both runtimes run them when they open the ledger. Times are ISO 8601 UTC text
(``2026-12-03T13:35:59.123Z``), which sorts as time does.

Nothing here does I/O: the statements and their parameters are built here and run by the adapter
(``sqlite3`` on a writer thread, D1's ``prepare().bind().run()``) and by ``realtime-gateway usage``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from .record import LEDGER_FIELDS, RESPONSE_FIELDS, ResponseRecord, UsageRecord

SCHEMA_VERSION = 1

_SESSION_COLUMNS = """
    session_id TEXT PRIMARY KEY,
    subject TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    client_protocol TEXT NOT NULL,
    provider_protocol TEXT NOT NULL,
    provider_session_id TEXT,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    day TEXT NOT NULL,
    duration_seconds REAL NOT NULL,
    closed_by TEXT,
    close_code INTEGER,
    outcome TEXT,
    error_codes TEXT NOT NULL,
    client_frames INTEGER NOT NULL,
    client_bytes INTEGER NOT NULL,
    provider_frames INTEGER NOT NULL,
    provider_bytes INTEGER NOT NULL,
    responses INTEGER NOT NULL,
    input_text_tokens INTEGER NOT NULL,
    input_audio_tokens INTEGER NOT NULL,
    input_image_tokens INTEGER NOT NULL,
    input_cached_tokens INTEGER NOT NULL,
    output_text_tokens INTEGER NOT NULL,
    output_audio_tokens INTEGER NOT NULL,
    input_audio_seconds REAL NOT NULL,
    output_audio_seconds REAL NOT NULL,
    live_seconds REAL,
    cost_usd REAL,
    max_cost_usd REAL,
    upstream_connect_seconds REAL,
    final INTEGER NOT NULL
"""
_RESPONSE_COLUMNS = """
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    response_id TEXT,
    status TEXT,
    requested_at TEXT NOT NULL,
    first_delta_seconds REAL,
    done_seconds REAL NOT NULL,
    input_text_tokens INTEGER NOT NULL,
    input_audio_tokens INTEGER NOT NULL,
    input_image_tokens INTEGER NOT NULL,
    input_cached_tokens INTEGER NOT NULL,
    output_text_tokens INTEGER NOT NULL,
    output_audio_tokens INTEGER NOT NULL,
    cost_usd REAL,
    PRIMARY KEY (session_id, seq)
"""

# MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"CREATE TABLE IF NOT EXISTS usage_sessions ({_SESSION_COLUMNS})",
        "CREATE INDEX IF NOT EXISTS usage_sessions_subject_day ON usage_sessions (subject, day)",
        "CREATE INDEX IF NOT EXISTS usage_sessions_started_at ON usage_sessions (started_at)",
        f"CREATE TABLE IF NOT EXISTS usage_responses ({_RESPONSE_COLUMNS})",
    ),
)
CREATE_SCHEMA_TABLE = "CREATE TABLE IF NOT EXISTS usage_schema (version INTEGER NOT NULL)"
READ_VERSION = "SELECT MAX(version) AS version FROM usage_schema"
WRITE_VERSION = "INSERT INTO usage_schema (version) VALUES (?)"


def migrations_from(version: int | None) -> list[tuple[int, tuple[str, ...]]]:
    """The migrations a ledger at ``version`` (None: new) needs: (version reached, statements)."""
    current = version or 0
    if current > SCHEMA_VERSION:
        raise ValueError(
            f"the ledger's schema is version {current}, newer than this gateway's ({SCHEMA_VERSION})"
        )
    return [(index + 1, MIGRATIONS[index]) for index in range(current, SCHEMA_VERSION)]


def _upsert(table: str, columns: Sequence[str], key: Sequence[str], when: str = "") -> str:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in key)
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}{when}"
    )


# A checkpoint written late (writes are not ordered across a Worker's requests) never replaces the
# final row.
UPSERT_SESSION = _upsert(
    "usage_sessions", LEDGER_FIELDS, ("session_id",), " WHERE usage_sessions.final = 0 OR excluded.final = 1"
)
UPSERT_RESPONSE = _upsert("usage_responses", RESPONSE_FIELDS, ("session_id", "seq"))

Value = str | int | float | None


def session_values(record: UsageRecord) -> tuple[Value, ...]:
    values: list[Value] = []
    for name in LEDGER_FIELDS:
        value = getattr(record, name)
        if name == "error_codes":
            value = json.dumps(value, separators=(",", ":"), sort_keys=True)
        elif isinstance(value, bool):
            value = int(value)
        values.append(value)
    return tuple(values)


def response_values(response: ResponseRecord) -> tuple[Value, ...]:
    return tuple(getattr(response, name) for name in RESPONSE_FIELDS)


def record_statements(record: UsageRecord) -> list[tuple[str, tuple[Value, ...]]]:
    """What writing ``record`` runs, in one transaction: the session's row, then its new responses'."""
    statements = [(UPSERT_SESSION, session_values(record))]
    statements += [(UPSERT_RESPONSE, response_values(response)) for response in record.new_responses]
    return statements


# -- reading --------------------------------------------------------------------------------------------

SPENT_TODAY = "SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM usage_sessions WHERE subject = ? AND day = ?"


def utc_day(unix_seconds: float) -> str:
    """The UTC date of ``unix_seconds``, as the ledger's ``day`` column holds it."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%d")


Grouping = Literal["session", "subject", "model", "day"]
GROUPINGS: tuple[str, ...] = ("session", "subject", "model", "day")
# The key fields of each grouping, before the sums.
GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "session": ("session_id", "started_at", "subject", "provider", "model", "endpoint", "outcome"),
    "subject": ("subject",),
    "model": ("provider", "model"),
    "day": ("day",),
}
# The numeric fields summed per group, in the order `realtime-gateway usage` prints them.
SUM_FIELDS: tuple[str, ...] = (
    "sessions",
    "duration_seconds",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "input_audio_seconds",
    "output_audio_seconds",
    "live_seconds",
    "cost_usd",
)
_INTEGER_SUMS = frozenset(
    {
        "sessions",
        "input_text_tokens",
        "input_audio_tokens",
        "input_cached_tokens",
        "output_text_tokens",
        "output_audio_tokens",
    }
)


def summary_query(by: str, since: str | None = None, until: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The query summing the ledger per ``by`` group, for sessions started in [``since``, ``until``).

    ``since`` / ``until`` are ISO texts (:func:`normalize_bound`). A sum over nothing but NULLs is
    NULL: a group whose models all lack a price has no cost, rather than a cost of zero.
    """
    if by not in GROUP_KEYS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    keys = GROUP_KEYS[by]
    sums = []
    for name in SUM_FIELDS:
        if name == "sessions":
            sums.append("COUNT(*) AS sessions")
        elif name in ("live_seconds", "cost_usd"):
            sums.append(f"SUM({name}) AS {name}")
        else:
            sums.append(f"TOTAL({name}) AS {name}")
    where, parameters = [], []
    if since is not None:
        where.append("started_at >= ?")
        parameters.append(since)
    if until is not None:
        where.append("started_at < ?")
        parameters.append(until)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    group = " GROUP BY session_id" if by == "session" else f" GROUP BY {', '.join(keys)}"
    order = "started_at, session_id" if by == "session" else ", ".join(keys)
    columns = ", ".join([*keys, *sums])
    return f"SELECT {columns} FROM usage_sessions{clause}{group} ORDER BY {order}", tuple(parameters)


def summary_rows(rows: Sequence[Sequence[Value]], by: str) -> list[dict[str, Value]]:
    """The query's rows as objects: key fields, then sums (counts as integers, the rest rounded)."""
    names = [*GROUP_KEYS[by], *SUM_FIELDS]
    result = []
    for row in rows:
        item: dict[str, Value] = dict(zip(names, row, strict=True))
        for name in SUM_FIELDS:
            value = item[name]
            if value is None:
                continue
            if name in _INTEGER_SUMS:
                item[name] = int(value)
            elif name == "cost_usd":
                item[name] = round(float(value), 9)
            else:
                item[name] = round(float(value), 3)
        result.append(item)
    return result


def normalize_bound(text: str) -> str:
    """An ISO date or date-time (``2026-12-03``, ``2026-12-03T10:00``, with an offset or ``Z``) as the
    ledger's UTC text, so it compares with ``started_at``; ValueError if it is neither."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r}") from None
    if moment.tzinfo is not None:  # naive times are UTC already
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
