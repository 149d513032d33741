"""Conversation items and content parts: assistant content part types differ.

Beta assistant message content is ``text`` / ``audio``; GA's is ``output_text`` / ``output_audio``.
User and system content (``input_text``, ``input_audio``, ...) is named alike in both.

Functions here copy on write: they return the very object they were given when nothing changes,
so callers can tell (``is``) whether a frame needs re-serialising.
"""

from __future__ import annotations

from typing import Any

PART_TYPES_TO_GA = {"text": "output_text", "audio": "output_audio"}
PART_TYPES_TO_BETA = {"output_text": "text", "output_audio": "audio"}


def map_part(part: Any, table: dict[str, str]) -> Any:
    """A content part with its ``type`` renamed by ``table`` (the same object if not renamed)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in table:
        return part
    return {**part, "type": table[kind]}


def map_item(item: Any, table: dict[str, str]) -> Any:
    """An item with its message content part types renamed by ``table``."""
    if not isinstance(item, dict):
        return item
    content = item.get("content")
    if not isinstance(content, list):
        return item
    mapped = [map_part(part, table) for part in content]
    if all(new is old for new, old in zip(mapped, content, strict=True)):
        return item
    return {**item, "content": mapped}


def map_items(items: Any, table: dict[str, str]) -> Any:
    """A list of items, each mapped by :func:`map_item`."""
    if not isinstance(items, list):
        return items
    mapped = [map_item(item, table) for item in items]
    if all(new is old for new, old in zip(mapped, items, strict=True)):
        return items
    return mapped


def with_item(event: dict[str, Any], key: str, table: dict[str, str]) -> dict[str, Any]:
    """``event`` with ``event[key]`` (an item) mapped; the same object if nothing changes."""
    item = event.get(key)
    mapped = map_item(item, table)
    return event if mapped is item else {**event, key: mapped}
