"""Strict checks of GA server events: ``shared.events`` and the openai SDK's own union.

The SDK's union is what real clients parse with (the openai-agents SDK validates every server
event with a discriminated ``TypeAdapter``); validated strictly here, into the right class, with no
field the SDK does not declare, so every field name is the protocol's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from openai.types.realtime import RealtimeServerEvent
from pydantic import BaseModel, Field, TypeAdapter

from shared.events import validate_server_event

_GA_SERVER = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])
# Fields the protocol sends that the SDK's models lack (its session models are the request ones).
SDK_GAPS = frozenset({"session.id", "session.object", "session.expires_at"})


def extras(model: Any, path: str = "") -> list[str]:
    """Paths of every field the SDK model tree does not declare."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}.{key}".lstrip(".") for key in model.model_extra or {}]
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, value in enumerate(model):
            found += extras(value, f"{path}[{i}]")
    return found


def check_ga(frame: str) -> dict[str, Any]:
    """``frame`` parsed, after checking it is a valid GA server event both ways; the event."""
    event = json.loads(frame)
    validate_server_event(event, protocol="ga")
    model = _GA_SERVER.validate_python(event)
    assert model.type == event["type"]
    unknown = set(extras(model)) - SDK_GAPS
    assert not unknown, (event["type"], unknown)
    return event
