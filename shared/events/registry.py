"""Event-type tables and the two validation entry points used by the relay and the tests."""

from typing import Any

from .client import CLIENT_EVENT_MODELS
from .common import EventModel
from .server import GA_SERVER_EVENT_MODELS
from .server_beta import BETA_SERVER_EVENT_MODELS

CLIENT_EVENT_TYPES: frozenset[str] = frozenset(CLIENT_EVENT_MODELS)
"""Every client event type name, GA and beta."""

GA_SERVER_EVENT_TYPES: frozenset[str] = frozenset(GA_SERVER_EVENT_MODELS)
"""Every server event type name of the GA protocol."""

BETA_SERVER_EVENT_TYPES: frozenset[str] = frozenset(BETA_SERVER_EVENT_MODELS)
"""Every server event type name of the beta protocol."""

_SERVER_TABLES: dict[str, dict[str, type[EventModel]]] = {
    "ga": GA_SERVER_EVENT_MODELS,
    "beta": BETA_SERVER_EVENT_MODELS,
}


def _model_for(event: Any, table: dict[str, type[EventModel]], what: str) -> type[EventModel]:
    if not isinstance(event, dict):
        raise ValueError(f"a {what} must be a JSON object, not {type(event).__name__}")
    kind = event.get("type")
    model = table.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError(f"unknown {what} type: {kind!r}")
    return model


def validate_client_event(event: dict[str, Any]) -> EventModel:
    """Validate a parsed client event against its type's model.

    Raises `pydantic.ValidationError` if it is malformed and `ValueError` if it is not an
    object or its `type` is not in `CLIENT_EVENT_TYPES` (`ValidationError` is a `ValueError`).
    """
    return _model_for(event, CLIENT_EVENT_MODELS, "client event").model_validate(event)


def validate_server_event(event: dict[str, Any], protocol: str = "ga") -> EventModel:
    """Validate a parsed server event of `protocol` ("ga" or "beta") against its type's model.

    Raises `pydantic.ValidationError` if it is malformed and `ValueError` for an unknown
    protocol, a non-object, or a `type` that protocol does not have.
    """
    table = _SERVER_TABLES.get(protocol)
    if table is None:
        raise ValueError(f"unknown protocol {protocol!r} (expected 'ga' or 'beta')")
    return _model_for(event, table, f"{protocol} server event").model_validate(event)
