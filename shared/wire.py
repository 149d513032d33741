"""Serialising events for the wire, once, for every part of the core that builds frames."""

from __future__ import annotations

import json
from typing import Any


def dumps(event: Any) -> str:
    """Compact JSON. Non-ASCII text stays as is unless it holds a lone surrogate (from a
    ``\\udXXX`` escape), which cannot be sent as UTF-8 and is escaped instead."""
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = json.dumps(event, separators=(",", ":"))
    return text
