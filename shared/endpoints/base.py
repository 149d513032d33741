"""What an endpoint is: the data the handshake, the relay and the router read, the same on every runtime."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..config import Settings
from ..errors import GatewayError
from ..inbound import Vocabulary
from ..providers import Credential, UpstreamRequest
from ..providers import Protocol as Interface
from ..simulator import SimulatedSession


@dataclass(frozen=True, slots=True)
class Target:
    """What a request names besides its provider: the model, the session or call it reaches, and the
    query parameters passed on to the provider."""

    model: str  # "" where the URL names none (GPT-Live names it in ``session.start``)
    id: str | None = None  # the Live session (sideband, fork) or the call (``call_id``)
    query: dict[str, str] = field(default_factory=dict)
    opened_at: float = 0.0  # Unix time of the request (the simulator's expiry times)
    requested: str = ""  # the model as the client named it, before aliases ("" where none is)


# How the provider's socket is reached for one endpoint: the handshake to make, or why it cannot be.
UpstreamBuilder = Callable[[Settings, Target, Credential, Interface], "UpstreamRequest | GatewayError"]


SimulatorFactory = Callable[[Target, float, float], SimulatedSession]  # (target, pace, now)


@dataclass(frozen=True, slots=True, eq=False)
class Endpoint:
    """One relayed WebSocket endpoint, described once.

    ``name`` is what logs and usage records call it. ``providers`` says how each relayed provider
    is reached; a provider missing there does not document the endpoint (``endpoint_not_supported``).
    ``simulator`` makes the in-process provider's session, or is the error it answers with.
    """

    name: str
    title: str  # what messages call it ("GPT-Live sessions (/v1/live/sessions)")
    vocabulary: Vocabulary
    providers: Mapping[str, UpstreamBuilder]
    simulator: SimulatorFactory | GatewayError
    # Where the model is named: the URL's query (``model``), the client's ``session.start``, or
    # nowhere (the session or call reached already has one).
    model_in: Literal["query", "session", "none"]
    # A query naming no model gets DEFAULT_MODEL (else it is refused: missing_required_parameter).
    model_default: bool
    # The provider speaks first (``session.created``): the gateway's own events wait for it, and the
    # connect timeout runs until it arrives. Where the client speaks first, neither.
    greets: bool
    # The Realtime interface, GA or beta, which the gateway translates between where they differ.
    realtime_interface: bool
    forwarded_query: tuple[str, ...]
    how_to_connect: str  # for a plain HTTP request to the endpoint (426)
    sdk_call: str  # the official SDK's method that opens it (README's endpoint table)
    # The registry's providers reached at their own URL (xAI, Gemini, PROVIDERS_FILE's) serve it too.
    registry_providers: bool = False

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r})"
