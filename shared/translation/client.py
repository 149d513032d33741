"""Client events on their way to a provider that speaks the other protocol.

Each function takes a validated client event and returns the event to send (the same object when
nothing changes) and, through ``dropped``, the parameter paths it had to leave out.

Shape, not the session's protocol, decides: a ``session.update`` whose ``session`` has no ``type``
is beta-shaped and one with a ``type`` GA-shaped (as ``shared.events.SessionConfig`` tells them
apart), so a client that already sends the provider's shape is relayed unchanged.
"""

from __future__ import annotations

from typing import Any

from .items import PART_TYPES_TO_BETA, PART_TYPES_TO_GA, with_item
from .shapes import REALTIME_SESSION, RESPONSE_PARAMS, TRANSCRIPTION_SESSION, to_beta, to_ga

Event = dict[str, Any]


def beta_to_ga(event: Event, dropped: list[str]) -> Event:
    """A beta client event in its GA form."""
    kind = event.get("type")
    if kind == "session.update":
        session = event.get("session")
        if isinstance(session, dict) and "type" not in session:
            return {**event, "session": to_ga(session, REALTIME_SESSION, prefix="session", dropped=dropped)}
    elif kind == "transcription_session.update":
        session = event.get("session")
        if isinstance(session, dict):
            ga = to_ga(session, TRANSCRIPTION_SESSION, prefix="session", dropped=dropped)
            return {**event, "type": "session.update", "session": ga}
    elif kind == "response.create":
        return _response_create(event, to_ga, dropped)
    elif kind == "conversation.item.create":
        return with_item(event, "item", PART_TYPES_TO_GA)
    return event


def ga_to_beta(event: Event, dropped: list[str]) -> Event:
    """A GA client event in its beta form."""
    kind = event.get("type")
    if kind == "session.update":
        session = event.get("session")
        if isinstance(session, dict):
            session_type = session.get("type")
            if session_type == "realtime":
                beta = to_beta(session, REALTIME_SESSION, prefix="session", dropped=dropped)
                return {**event, "session": beta}
            if session_type == "transcription":
                beta = to_beta(session, TRANSCRIPTION_SESSION, prefix="session", dropped=dropped)
                return {**event, "type": "transcription_session.update", "session": beta}
    elif kind == "response.create":
        return _response_create(event, to_beta, dropped)
    elif kind == "conversation.item.create":
        return with_item(event, "item", PART_TYPES_TO_BETA)
    return event


def _response_create(event: Event, convert: Any, dropped: list[str]) -> Event:
    params = event.get("response")
    if not isinstance(params, dict):
        return event
    mapped = convert(params, RESPONSE_PARAMS, prefix="response", dropped=dropped)
    return event if mapped == params else {**event, "response": mapped}
