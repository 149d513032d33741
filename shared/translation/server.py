"""Provider events on their way to a client that speaks the other protocol.

A :class:`ServerTranslator` maps one parsed provider event to the events the client should get:
``None`` when the event needs no change (the caller then relays the original frame), else a list
(empty when the event has no counterpart). The stream renames (``response.output_audio.delta`` and
its kin) are frame-level and live in :data:`STREAM_RENAMES_TO_BETA` / :data:`STREAM_RENAMES_TO_GA`.

Conversation item lifecycle differs: beta announces an item once (``conversation.item.created``);
GA twice (``conversation.item.added`` when it enters the conversation, ``conversation.item.done``
when it is final). GA -> beta: ``added`` becomes ``created`` and the ``done`` that follows it is
dropped (a beta client learns an assistant item's final form from ``response.output_item.done``,
which it still gets; a ``done`` for an item never announced becomes ``created``). Beta -> GA:
``created`` becomes ``added``, followed at once by ``done`` when the item is already final, or, for
an item still ``in_progress`` (a response's output), by ``done`` right after that item's
``response.output_item.done`` (or before ``response.done`` at the latest), as GA orders them.
"""

from __future__ import annotations

from typing import Any

from ..errors import new_event_id
from .items import PART_TYPES_TO_BETA, PART_TYPES_TO_GA, map_part, with_item
from .shapes import REALTIME_SESSION, RESPONSE, TRANSCRIPTION_SESSION, Shape, to_beta, to_ga

Event = dict[str, Any]

STREAM_RENAMES_TO_BETA: dict[str, str] = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}
STREAM_RENAMES_TO_GA: dict[str, str] = {beta: ga for ga, beta in STREAM_RENAMES_TO_BETA.items()}

# Item ids remembered between an item's two lifecycle events; a bound on a misbehaving provider.
MAX_TRACKED_ITEMS = 4096


class ServerTranslator:
    """Per-session state and the per-type handlers of one direction."""

    renames: dict[str, str]
    handled: frozenset[str]

    def translate(self, event: Event) -> list[Event] | None:
        raise NotImplementedError


def _track(table: dict[str, Any], key: Any, value: Any) -> None:
    if not isinstance(key, str):
        return
    if len(table) >= MAX_TRACKED_ITEMS:
        del table[next(iter(table))]
    table[key] = value


def _item_id(event: Event) -> Any:
    item = event.get("item")
    return item.get("id") if isinstance(item, dict) else None


def _with_object(event: Event, key: str, shape: Shape, convert: Any) -> Event | None:
    value = event.get(key)
    if not isinstance(value, dict):
        return None
    return {**event, key: convert(value, shape, prefix=key, dropped=None)}


class GaToBeta(ServerTranslator):
    """GA provider -> beta client."""

    renames = STREAM_RENAMES_TO_BETA
    handled = frozenset(
        {
            "session.created",
            "session.updated",
            "transcription_session.created",
            "transcription_session.updated",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.created",
            "conversation.item.retrieved",
            "response.output_item.added",
            "response.output_item.done",
            "response.created",
            "response.done",
            "response.content_part.added",
            "response.content_part.done",
            "conversation.item.deleted",
        }
    )

    def __init__(self) -> None:
        self._announced: dict[str, None] = {}  # items sent as ``created`` whose ``done`` is due

    def translate(self, event: Event) -> list[Event] | None:
        kind = event["type"]
        if kind in ("session.created", "session.updated"):
            session = event.get("session")
            if not isinstance(session, dict):
                return None
            if session.get("type") == "transcription":
                beta = to_beta(session, TRANSCRIPTION_SESSION, prefix="session", dropped=None)
                return [{**event, "type": "transcription_" + kind, "session": beta}]
            return [{**event, "session": to_beta(session, REALTIME_SESSION, prefix="session", dropped=None)}]
        if kind.startswith("transcription_session."):
            session = event.get("session")
            if not isinstance(session, dict) or not ("audio" in session or "type" in session):
                return None  # already beta-shaped
            beta = to_beta(session, TRANSCRIPTION_SESSION, prefix="session", dropped=None)
            return [{**event, "session": beta}]
        if kind == "conversation.item.added":
            _track(self._announced, _item_id(event), None)
            return [{**with_item(event, "item", PART_TYPES_TO_BETA), "type": "conversation.item.created"}]
        if kind == "conversation.item.done":
            item_id = _item_id(event)
            if isinstance(item_id, str) and item_id in self._announced:
                del self._announced[item_id]
                return []
            return [{**with_item(event, "item", PART_TYPES_TO_BETA), "type": "conversation.item.created"}]
        if kind in ("response.created", "response.done"):
            return _list(_with_object(event, "response", RESPONSE, to_beta))
        if kind in ("response.content_part.added", "response.content_part.done"):
            part = event.get("part")
            mapped = map_part(part, PART_TYPES_TO_BETA)
            return None if mapped is part else [{**event, "part": mapped}]
        if kind == "conversation.item.deleted":
            item_id = event.get("item_id")
            if isinstance(item_id, str):
                self._announced.pop(item_id, None)
            return None
        # conversation.item.created / .retrieved, response.output_item.added / .done
        mapped_event = with_item(event, "item", PART_TYPES_TO_BETA)
        return None if mapped_event is event else [mapped_event]


class BetaToGa(ServerTranslator):
    """Beta provider -> GA client."""

    renames = STREAM_RENAMES_TO_GA
    handled = frozenset(
        {
            "session.created",
            "session.updated",
            "transcription_session.created",
            "transcription_session.updated",
            "conversation.item.created",
            "conversation.item.retrieved",
            "conversation.item.deleted",
            "response.output_item.added",
            "response.output_item.done",
            "response.created",
            "response.done",
        }
    )

    def __init__(self) -> None:
        # Items announced as ``added`` while in progress: id -> their ``previous_item_id``.
        self._open_items: dict[str, Any] = {}

    def translate(self, event: Event) -> list[Event] | None:
        kind = event["type"]
        if kind in ("session.created", "session.updated"):
            session = event.get("session")
            if not isinstance(session, dict) or "type" in session:
                return None  # not a beta session: leave it be
            return [{**event, "session": to_ga(session, REALTIME_SESSION, prefix="session", dropped=None)}]
        if kind.startswith("transcription_session."):
            session = event.get("session")
            if not isinstance(session, dict):
                return None
            ga = to_ga(session, TRANSCRIPTION_SESSION, prefix="session", dropped=None)
            return [{**event, "type": kind.replace("transcription_session.", "session.", 1), "session": ga}]
        if kind == "conversation.item.created":
            return self._created(event)
        if kind == "response.output_item.done":
            mapped = with_item(event, "item", PART_TYPES_TO_GA)
            closing = self._close_item(mapped.get("item"))
            return None if mapped is event and not closing else [mapped, *closing]
        if kind == "response.done":
            return self._response_done(event)
        if kind == "response.created":
            return _list(_with_object(event, "response", RESPONSE, to_ga))
        if kind == "conversation.item.deleted":
            item_id = event.get("item_id")
            if isinstance(item_id, str):
                self._open_items.pop(item_id, None)
            return None
        # conversation.item.retrieved, response.output_item.added
        mapped_event = with_item(event, "item", PART_TYPES_TO_GA)
        return None if mapped_event is event else [mapped_event]

    def _created(self, event: Event) -> list[Event]:
        added = {**with_item(event, "item", PART_TYPES_TO_GA), "type": "conversation.item.added"}
        item = added.get("item")
        if isinstance(item, dict) and item.get("status") == "in_progress":
            _track(self._open_items, item.get("id"), event.get("previous_item_id"))
            return [added]
        return [added, _item_done(item, event.get("previous_item_id"))]

    def _close_item(self, item: Any) -> list[Event]:
        item_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item_id, str) or item_id not in self._open_items:
            return []
        return [_item_done(item, self._open_items.pop(item_id))]

    def _response_done(self, event: Event) -> list[Event] | None:
        done = _with_object(event, "response", RESPONSE, to_ga)
        if done is None:
            return None
        output = done["response"].get("output")
        closing: list[Event] = []
        if isinstance(output, list) and self._open_items:
            for item in output:
                closing += self._close_item(item)
        return [*closing, done]


def _item_done(item: Any, previous_item_id: Any) -> Event:
    return {
        "type": "conversation.item.done",
        "event_id": new_event_id(),
        "previous_item_id": previous_item_id,
        "item": item,
    }


def _list(event: Event | None) -> list[Event] | None:
    return None if event is None else [event]
