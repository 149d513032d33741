"""``realtime-gateway usage``: the ledger summed per session, subject, model or day, as a table, JSON or CSV.

The query is the core's (:func:`shared.usage.ledger.summary_query`); this reads the SQLite file
(read-only: a running server may be writing it) and lays the rows out. JSON is a list of objects with
the group's key fields and the sums of :data:`shared.usage.ledger.SUM_FIELDS`; a sum with nothing to
add (``cost_usd`` of models without a price, ``live_seconds`` outside GPT-Live) is null.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

from shared.usage.ledger import GROUP_KEYS, SUM_FIELDS, Value, normalize_bound, summary_query, summary_rows

# Column titles of the table (JSON and CSV keep the field names).
_TITLES = {
    "session_id": "session",
    "started_at": "started (UTC)",
    "duration_seconds": "duration s",
    "input_text_tokens": "in text",
    "input_audio_tokens": "in audio",
    "input_cached_tokens": "in cached",
    "output_text_tokens": "out text",
    "output_audio_tokens": "out audio",
    "input_audio_seconds": "audio in s",
    "output_audio_seconds": "audio out s",
    "live_seconds": "live s",
    "cost_usd": "cost USD",
}


def read_summary(path: str | Path, by: str, since: str | None, until: str | None) -> list[dict[str, Value]]:
    """The ledger at ``path`` summed per ``by``; ValueError for a missing file or a bad bound."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"no usage ledger at {file} (USAGE_DB, or --db)")
    sql, parameters = summary_query(
        by,
        normalize_bound(since) if since is not None else None,
        normalize_bound(until) if until is not None else None,
    )
    connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute(sql, parameters).fetchall()
    except sqlite3.OperationalError as error:
        raise ValueError(f"{file} is not a usage ledger ({error})") from None
    finally:
        connection.close()
    return summary_rows(rows, by)


def report(path: str | Path, by: str, since: str | None, until: str | None, output: str) -> str:
    rows = read_summary(path, by, since, until)
    if output == "json":
        return json.dumps(rows, indent=2) + "\n"
    names = [*GROUP_KEYS[by], *SUM_FIELDS]
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([["" if row[name] is None else row[name] for name in names] for row in rows])
        return buffer.getvalue()
    return _table(rows, names, by)


def _cell(name: str, value: Value) -> str:
    if value is None:
        return "-"
    if name == "cost_usd":
        return f"{value:.6f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _table(rows: list[dict[str, Value]], names: list[str], by: str) -> str:
    keys = GROUP_KEYS[by]
    lines = [[_TITLES.get(name, name) for name in names]]
    lines += [[_cell(name, row[name]) for name in names] for row in rows]
    if len(rows) > 1:
        total: list[str] = ["total", *([""] * (len(keys) - 1))]
        for name in SUM_FIELDS:
            values = [row[name] for row in rows if row[name] is not None]
            total.append(_cell(name, sum(values)) if values else "-")  # type: ignore[arg-type]
        lines.append(total)
    widths = [max(len(line[column]) for line in lines) for column in range(len(names))]
    numeric = [False] * len(keys) + [True] * len(SUM_FIELDS)
    out = []
    for index, line in enumerate(lines):
        cells = [
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(line, widths, numeric, strict=True)
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    if not rows:
        out.append("(no sessions)")
    return "\n".join(out) + "\n"
