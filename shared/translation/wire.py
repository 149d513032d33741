"""Frame-level helpers: find an event's ``type`` without parsing, rename it, serialise compactly.

Providers send ``type`` first (``{"type":"response.output_audio.delta","event_id":...}``), so the
stream-event renames (the audio delta is the hot path: ten a second per speaking session, each
carrying ~6.4 KB of base64) are a slice and a concatenation, with no JSON parse or re-serialise.
"""

from __future__ import annotations

import json
from typing import Any

from ..wire import dumps

__all__ = ["dumps", "leading_type", "parse"]

_LEADING_TYPE = ('{"type":"', '{"type": "')


def leading_type(frame: str) -> tuple[str, int, int] | None:
    """``(type, start, end)`` when ``frame`` opens with its ``type`` member, else None.

    ``frame[start:end]`` is the type's text. None too when that text holds an escape (its raw
    text is then not the name), so callers fall back to parsing.
    """
    for prefix in _LEADING_TYPE:
        if frame.startswith(prefix):
            start = len(prefix)
            end = frame.find('"', start)
            if end < 0:
                return None
            kind = frame[start:end]
            if "\\" in kind:
                return None
            return kind, start, end
    return None


def parse(frame: str) -> Any:
    """The JSON value in ``frame``, or None when it is not JSON (or too deep to parse)."""
    try:
        return json.loads(frame)
    except (ValueError, RecursionError):
        return None
