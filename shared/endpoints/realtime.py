"""``/v1/realtime``: a Realtime session (``?model=``), or the sideband of a WebRTC or SIP call
(``?call_id=``)."""

from __future__ import annotations

from ..config import Settings
from ..errors import GatewayError
from ..inbound import REALTIME as REALTIME_VOCABULARY
from ..providers import (
    FORWARDED_QUERY,
    Credential,
    Protocol,
    UpstreamRequest,
    azure_request,
    azure_websocket,
    openai_realtime_call,
    openai_request,
)
from ..simulator import Simulator
from .base import Endpoint, SimulatedSession, Target


def _openai(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest:
    return openai_request(settings, target.model, credential, protocol, target.query)


def _azure(settings: Settings, target: Target, credential: Credential, protocol: Protocol) -> UpstreamRequest:
    return azure_request(settings, target.model, credential, protocol, target.query)


def _simulator(target: Target, pace: float, now: float) -> SimulatedSession:
    return Simulator(target.model, pace=pace, now=now)


REALTIME = Endpoint(
    name="realtime",
    title="realtime sessions (/v1/realtime)",
    vocabulary=REALTIME_VOCABULARY,
    providers={"openai": _openai, "azure": _azure},
    simulator=_simulator,
    model_in="query",
    model_default=True,
    greets=True,
    realtime_interface=True,
    forwarded_query=FORWARDED_QUERY,
    how_to_connect="open ws(s)://<host>/v1/realtime?model=...&provider=openai|azure|xai|gemini|simulator.",
    sdk_call="client.realtime.connect(model=...)",
    registry_providers=True,
)


def _openai_call(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest:
    assert target.id is not None
    return openai_realtime_call(settings, target.id, credential)


def _azure_call(
    settings: Settings, target: Target, credential: Credential, protocol: Protocol
) -> UpstreamRequest | GatewayError:
    assert target.id is not None
    if settings.azure_openai_api_version:  # the preview path has no calls
        return GatewayError(
            "endpoint_not_supported",
            "Azure OpenAI's preview realtime path (AZURE_OPENAI_API_VERSION is set) has no call sideband; "
            "Azure documents it on /openai/v1/realtime only.",
            param="call_id",
        )
    return azure_websocket(settings, "/openai/v1/realtime", {"call_id": target.id}, credential)


REALTIME_CALL = Endpoint(
    name="realtime_call",
    title="the sideband of a WebRTC or SIP call (/v1/realtime?call_id=)",
    vocabulary=REALTIME_VOCABULARY,
    providers={"openai": _openai_call, "azure": _azure_call},
    simulator=GatewayError(
        "call_not_found",
        "The simulator has no WebRTC or SIP calls to attach to: a call sideband (?call_id=) needs "
        "provider=openai or azure.",
        param="call_id",
    ),
    model_in="none",
    model_default=False,
    greets=False,
    realtime_interface=False,  # GA only: calls postdate the beta interface
    forwarded_query=(),
    how_to_connect="open ws(s)://<host>/v1/realtime?call_id=<the call's id>.",
    sdk_call="client.realtime.connect(call_id=...)",
)
