"""The relayed WebSocket endpoints, described once, and the table the adapters route by.

Each :class:`Endpoint` says how a request to it is planned (where the model is named, how each
provider is reached, what the simulator does), which client events it checks and how its errors
look (its :class:`~shared.inbound.Vocabulary`), and whether the provider speaks first. The
handshake (:mod:`shared.handshake`), the relay and the router (:mod:`shared.routes`) read it; no
runtime decides any of it.

- ``realtime``: ``/v1/realtime?model=`` (``client.realtime.connect``)
- ``realtime_call``: ``/v1/realtime?call_id=`` (``client.realtime.connect(call_id=...)``)
- ``live``: ``/v1/live/sessions`` (``client.live.connect``)
- ``live_attach``: ``/v1/live/sessions/{id}/attach`` (``client.live.sideband.connect``)
- ``live_fork``: ``/v1/live/sessions/{id}/fork`` (``client.live.forks.connect``)
- ``translations``: ``/v1/realtime/translations?model=`` (``client.realtime.translations.connect``)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .base import Endpoint, SimulatedSession, SimulatorFactory, Target, UpstreamBuilder
from .live import LIVE, LIVE_ATTACH, LIVE_FORK
from .realtime import REALTIME, REALTIME_CALL
from .translations import TRANSLATIONS

__all__ = [
    "ENDPOINTS",
    "LIVE",
    "LIVE_ATTACH",
    "LIVE_FORK",
    "REALTIME",
    "REALTIME_CALL",
    "TRANSLATIONS",
    "Endpoint",
    "Route",
    "SimulatedSession",
    "SimulatorFactory",
    "Target",
    "UpstreamBuilder",
    "match_route",
    "websocket_endpoint_for",
]

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.name: endpoint
    for endpoint in (REALTIME, REALTIME_CALL, LIVE, LIVE_ATTACH, LIVE_FORK, TRANSLATIONS)
}

# A session or call id as it may appear in a path or a query: it is put into the provider's URL,
# so nothing that could change the URL's meaning (``/``, ``..``, ``?``, ``%``) gets through.
ID_PATTERN = "[A-Za-z0-9_-]{1,128}"
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Route:
    """A path that opens ``endpoint``. ``default_provider`` overrides DEFAULT_PROVIDER (the Azure
    paths); ``by_query`` names a query parameter whose presence makes the request another endpoint,
    with that parameter's value as its target (``/v1/realtime?call_id=``)."""

    endpoint: Endpoint
    default_provider: str | None = None
    by_query: tuple[str, Endpoint] | None = None


_REALTIME_ROUTE = Route(REALTIME, by_query=("call_id", REALTIME_CALL))
_AZURE_ROUTE = Route(REALTIME, default_provider="azure", by_query=("call_id", REALTIME_CALL))

# ``/`` keeps the first release's bare endpoint working; ``/realtime`` is where the SDKs land when
# their base URL lacks ``/v1``; the Azure paths let the AzureOpenAI SDK, pointed at the gateway,
# work unchanged.
EXACT_ROUTES: Mapping[str, Route] = {
    "/": _REALTIME_ROUTE,
    "/v1/realtime": _REALTIME_ROUTE,
    "/realtime": _REALTIME_ROUTE,
    "/openai/realtime": _AZURE_ROUTE,
    "/openai/v1/realtime": _AZURE_ROUTE,
    "/v1/live/sessions": Route(LIVE),
    "/v1/realtime/translations": Route(TRANSLATIONS),
}
# Paths with a session id in them: (pattern, route); the id is the pattern's one group.
ID_ROUTES: tuple[tuple[re.Pattern[str], Route], ...] = (
    (re.compile(f"/v1/live/sessions/({ID_PATTERN})/attach"), Route(LIVE_ATTACH)),
    (re.compile(f"/v1/live/sessions/({ID_PATTERN})/fork"), Route(LIVE_FORK)),
)


def match_route(path: str) -> tuple[Route, str | None] | None:
    """The route ``path`` opens and the session id in it, or None for a path that opens none."""
    route = EXACT_ROUTES.get(path)
    if route is not None:
        return route, None
    for pattern, route in ID_ROUTES:
        found = pattern.fullmatch(path)
        if found is not None:
            return route, found.group(1)
    return None


def websocket_endpoint_for(path: str) -> Endpoint | None:
    """The endpoint a WebSocket upgrade of ``path`` opens (whatever its query), or None."""
    matched = match_route(path)
    return matched[0].endpoint if matched is not None else None


def valid_id(value: str) -> bool:
    """Whether ``value`` may name a session or call in the provider's URL."""
    return _ID.fullmatch(value) is not None
