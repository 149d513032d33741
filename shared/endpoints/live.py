"""GPT-Live: a session (``/v1/live/sessions``), a sideband attached to one, and a fork of a stored one.

The client speaks first (``session.start``, answered by ``session.started``), names the model there,
not in the URL, and gets GPT-Live's ``error`` event (with ``client_event_id``). OpenAI serves it;
Azure OpenAI documents no Live endpoint.
"""

from __future__ import annotations

from ..config import Settings
from ..errors import GatewayError
from ..inbound import LIVE as LIVE_VOCABULARY
from ..inbound import LIVE_FORK as LIVE_FORK_VOCABULARY
from ..inbound import LIVE_SIDEBAND
from ..providers import Credential, Protocol, UpstreamRequest, openai_websocket
from ..simulator.live import LiveSimulator
from .base import Endpoint, SimulatedSession, Target

# Passed on to the provider by a sideband (the SDK's ``graceful_close``).
SIDEBAND_QUERY = ("graceful_close",)


def _openai_live(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest:
    return openai_websocket(settings, "/live/sessions", target.query, credential)


def _openai_attach(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest:
    return openai_websocket(settings, f"/live/sessions/{target.id}/attach", target.query, credential)


def _openai_fork(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest:
    return openai_websocket(settings, f"/live/sessions/{target.id}/fork", target.query, credential)


def _simulator(target: Target, pace: float, now: float) -> SimulatedSession:
    return LiveSimulator(pace=pace, now=now, opened_at=target.opened_at)


LIVE = Endpoint(
    name="live",
    title="GPT-Live sessions (/v1/live/sessions)",
    vocabulary=LIVE_VOCABULARY,
    providers={"openai": _openai_live},
    simulator=_simulator,
    model_in="session",
    model_default=False,
    greets=False,
    realtime_interface=False,
    forwarded_query=(),
    how_to_connect="open ws(s)://<host>/v1/live/sessions, then send session.start.",
    sdk_call="client.live.connect()",
)

LIVE_ATTACH = Endpoint(
    name="live_attach",
    title="the GPT-Live sideband (/v1/live/sessions/{id}/attach)",
    vocabulary=LIVE_SIDEBAND,
    providers={"openai": _openai_attach},
    simulator=GatewayError(
        "session_not_found",
        "The simulator keeps no Live sessions to attach to: a sideband needs provider=openai.",
        param="session_id",
    ),
    model_in="none",
    model_default=False,
    greets=False,
    realtime_interface=False,
    forwarded_query=SIDEBAND_QUERY,
    how_to_connect="open ws(s)://<host>/v1/live/sessions/<session id>/attach.",
    sdk_call="client.live.sideband.connect(session_id=...)",
)

LIVE_FORK = Endpoint(
    name="live_fork",
    title="GPT-Live forks (/v1/live/sessions/{id}/fork)",
    vocabulary=LIVE_FORK_VOCABULARY,
    providers={"openai": _openai_fork},
    simulator=GatewayError(
        "session_not_found",
        "The simulator stores no Live sessions to fork: a fork needs provider=openai.",
        param="session_id",
    ),
    model_in="none",
    model_default=False,
    greets=False,
    realtime_interface=False,
    forwarded_query=(),
    how_to_connect="open ws(s)://<host>/v1/live/sessions/<session id>/fork, then send session.start.",
    sdk_call="client.live.forks.connect(session_id=...)",
)
