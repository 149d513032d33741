"""The simulated conversation: ordered items, bounded, with no audio kept.

A session can run for hours, so only the last :data:`MAX_ITEMS` items are kept, each as its GA
item without audio data and with long texts cut, plus the token and audio-length figures the
simulator needs for usage, truncation and its replies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .replies import Heard, text_tokens

MAX_ITEMS = 200
MAX_TEXT_CHARS = 2000
_TEXT_FIELDS = ("text", "transcript")


@dataclass(slots=True)
class StoredItem:
    item: dict[str, Any]  # the GA item as conversation.item.retrieved shows it (no audio)
    audio_ms: float = 0.0  # length of its audio content, if any
    text_tokens: int = 0
    audio_tokens: int = 0


def _cut(text: Any) -> Any:
    return text[:MAX_TEXT_CHARS] if isinstance(text, str) and len(text) > MAX_TEXT_CHARS else text


def slim(item: dict[str, Any], audio_ms: float = 0.0) -> StoredItem:
    """What is kept of ``item``: audio and large image URLs dropped, texts cut, tokens estimated."""
    kept = {k: _cut(v) for k, v in item.items() if k != "content"}
    tokens = 0
    for key in ("output", "arguments", "name"):
        if isinstance(item.get(key), str):
            tokens += text_tokens(item[key])
    content = item.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                continue
            kept_part = {k: _cut(v) for k, v in part.items() if k != "audio"}
            if isinstance(kept_part.get("image_url"), str) and len(kept_part["image_url"]) > MAX_TEXT_CHARS:
                del kept_part["image_url"]
            if part.get("type") not in ("input_audio", "output_audio", "audio"):
                tokens += sum(text_tokens(part[f]) for f in _TEXT_FIELDS if isinstance(part.get(f), str))
            parts.append(kept_part)
        kept["content"] = parts
    per_token_ms = 50 if item.get("role") == "assistant" else 100  # OpenAI's audio token rates
    return StoredItem(kept, audio_ms, tokens, math.ceil(audio_ms / per_token_ms))


class Conversation:
    """The default conversation's items in order (the oldest dropped beyond :data:`MAX_ITEMS`)."""

    def __init__(self, conversation_id: str) -> None:
        self.id = conversation_id
        self._items: dict[str, StoredItem] = {}
        self._order: list[str] = []

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._order)

    def get(self, item_id: str) -> StoredItem | None:
        return self._items.get(item_id)

    def last_id(self) -> str | None:
        return self._order[-1] if self._order else None

    def insert(self, stored: StoredItem, after: str | None = None) -> str | None:
        """Add ``stored`` after item ``after`` ("root": first; None: last); returns its predecessor."""
        item_id = stored.item["id"]
        if after is None or after not in self._items:
            index = 0 if after == "root" else len(self._order)
        else:
            index = self._order.index(after) + 1
        self._order.insert(index, item_id)
        self._items[item_id] = stored
        while len(self._order) > MAX_ITEMS:
            del self._items[self._order.pop(0)]
        index = self._order.index(item_id) if item_id in self._items else 0
        return self._order[index - 1] if index > 0 else None

    def replace(self, stored: StoredItem) -> None:
        """Update an item in place (a response finished it); ignored if it is gone."""
        item_id = stored.item["id"]
        if item_id in self._items:
            self._items[item_id] = stored

    def delete(self, item_id: str) -> bool:
        if self._items.pop(item_id, None) is None:
            return False
        self._order.remove(item_id)
        return True

    def tokens(self) -> tuple[int, int]:
        """(text, audio) tokens of everything in the conversation: a response's input."""
        text = audio = 0
        for stored in self._items.values():
            text += stored.text_tokens
            audio += stored.audio_tokens
        return text, audio

    def latest_heard(self) -> Heard | None:
        """The most recent user input or function output, which the next response answers."""
        for item_id in reversed(self._order):
            heard = heard_in(self._items[item_id])
            if heard is not None:
                return heard
        return None


def heard_in(stored: StoredItem) -> Heard | None:
    """The input ``stored`` gives a response, if it is a user message or a function output."""
    item = stored.item
    if item.get("type") == "function_call_output":
        return Heard("tool_output", text=str(item.get("output") or ""))
    if item.get("type") != "message" or item.get("role") != "user":
        return None
    parts = [p for p in item.get("content") or [] if isinstance(p, dict)]
    texts = [p["text"] for p in parts if p.get("type") == "input_text" and isinstance(p.get("text"), str)]
    if texts:
        return Heard("text", text=" ".join(texts))
    if any(p.get("type") == "input_audio" for p in parts):
        return Heard("audio", audio_ms=stored.audio_ms)
    return Heard("text", text="")
