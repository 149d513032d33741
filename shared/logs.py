"""Log lines: plain text, or one JSON object a line with LOG_FORMAT=json, the same on both runtimes.

A JSON line has ``time`` (ISO 8601 UTC), ``level``, ``logger`` and ``message``, then the fields of a
:class:`Structured` message (the per-session usage line carries the ledger's fields), and
``exception`` when there is a traceback. As text, a structured message is its message followed by
its fields as JSON. Nothing logged anywhere holds a key or a token (only a token's subject).

On Cloudflare, the per-session usage line (logger ``realtime_gateway.usage``) is JSON whatever
LOG_FORMAT says: Workers Logs and Logpush read a JSON line's fields.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .config import Settings

USAGE_LOGGER = "realtime_gateway.usage"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class Structured:
    """A log message with fields: ``logger.info(Structured("session usage", {...}))``."""

    __slots__ = ("fields", "message")

    def __init__(self, message: str, fields: dict[str, Any]) -> None:
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return f"{self.message} {json.dumps(self.fields, separators=(',', ':'), ensure_ascii=False)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
        }
        message = record.msg
        if isinstance(message, Structured) and not record.args:
            line["message"] = message.message
            for name, value in message.fields.items():
                line.setdefault(name, value)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str)


def configure_logging(
    settings: Settings, text_format: str = TEXT_FORMAT, *, usage_as_json: bool = False
) -> None:
    """Set up the root logger from LOG_LEVEL and LOG_FORMAT; ``usage_as_json`` keeps the usage line JSON
    even in text mode (the Worker)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(text_format))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    usage = logging.getLogger(USAGE_LOGGER)
    for old in list(usage.handlers):
        usage.removeHandler(old)
    usage.propagate = True
    if usage_as_json and settings.log_format != "json":
        json_handler = logging.StreamHandler()
        json_handler.setFormatter(JsonFormatter())
        usage.addHandler(json_handler)
        usage.propagate = False
