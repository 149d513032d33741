"""Ids in OpenAI's style, from a per-session random source.

The generator is seeded from ``os.urandom`` when a session starts, never at import: Python
Workers snapshot module state at deploy time, so import-time entropy would repeat across requests.
"""

from __future__ import annotations

import os
import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class IdMaker:
    """Makes ``event_<hex>`` event ids and ``<prefix>_<base62>`` object ids (sess, item, resp, conv)."""

    def __init__(self) -> None:
        self._rng = random.Random(int.from_bytes(os.urandom(16), "big"))

    def event(self) -> str:
        return f"event_{self._rng.getrandbits(80):020x}"

    def new(self, prefix: str, length: int = 21) -> str:
        return prefix + "_" + "".join(self._rng.choices(_ALPHABET, k=length))
