"""From a client's HTTP upgrade request to a session plan: provider, model, key, protocol.

Adapters hand over the path, the query, the headers and the time; everything the request means is
decided here, identically on every runtime: a :class:`SessionPlan` to carry out on the upgraded
socket, or an :class:`HttpAnswer` refusing the upgrade (origin, gateway token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .answers import HttpAnswer
from .auth import authorize, origin_refusal, refusal
from .config import PROVIDER_NAMES, Settings
from .errors import CloseCode, GatewayError
from .providers import (
    DISPLAY_NAMES,
    FORWARDED_QUERY,
    UPSTREAM_BUILDERS,
    Credential,
    Protocol,
    UpstreamRequest,
    configured_key,
    upstream_protocol,
)
from .tokens import TokenError, check_scope

# Paths that open a realtime session. ``/`` keeps the first release's bare endpoint working;
# ``/realtime`` is where the SDKs land when their base URL lacks ``/v1``; the Azure paths let the
# AzureOpenAI SDK, pointed at the gateway, work unchanged.
OPENAI_PATHS = frozenset({"/", "/v1/realtime", "/realtime"})
AZURE_PATHS = frozenset({"/openai/realtime", "/openai/v1/realtime"})
REALTIME_PATHS = OPENAI_PATHS | AZURE_PATHS

SUBPROTOCOL_REALTIME = "realtime"
SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
SUBPROTOCOL_BETA = "openai-beta.realtime-v1"


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What a client's upgrade request asks for, decided before the upgrade is answered."""

    provider: str
    model: str  # what the provider is asked for, after MODEL_ALIASES
    client_protocol: Protocol
    upstream_protocol: Protocol
    subprotocol: str | None  # the answer to the client's Sec-WebSocket-Protocol offer
    upstream: UpstreamRequest | None  # None for an in-process provider or when ``error`` is set
    error: GatewayError | None = None  # reported on the accepted socket, then the session closes
    subject: str | None = None  # who the gateway token was minted for (for the log); None: no token
    max_session_seconds: int | None = None  # the token's limit on the session's length
    error_close_code: int = CloseCode.POLICY_VIOLATION  # how the session closes after ``error``
    max_cost_usd: float | None = None  # the token's per-session budget (shared.usage.budget)
    endpoint: str = "realtime"  # what the ledger and the metrics call the endpoint


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    """The client's ``Sec-WebSocket-Protocol`` offer, in order."""
    offer = headers.get("sec-websocket-protocol", "")
    return [item.strip() for item in offer.split(",") if item.strip()]


def client_credential(
    query: Mapping[str, str], headers: Mapping[str, str], subprotocols: list[str]
) -> Credential | None:
    """The provider key the client sent, in any of the forms real clients use."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return Credential(token.strip(), bearer=True)
    if headers.get("api-key"):
        return Credential(headers["api-key"], bearer=False)
    for protocol in subprotocols:
        if protocol.startswith(SUBPROTOCOL_KEY_PREFIX) and len(protocol) > len(SUBPROTOCOL_KEY_PREFIX):
            return Credential(protocol[len(SUBPROTOCOL_KEY_PREFIX) :], bearer=False)
    for name in ("apiKey", "api_key", "api-key"):
        if query.get(name):
            return Credential(query[name], bearer=False)
    return None


def client_protocol(
    query: Mapping[str, str], headers: Mapping[str, str], subprotocols: list[str]
) -> Protocol:
    """``beta`` when the client asks for the Realtime beta interface, else ``ga``."""
    if "realtime=v1" in headers.get("openai-beta", "").replace(" ", "").split(","):
        return "beta"
    if SUBPROTOCOL_BETA in subprotocols or query.get("protocol") == "beta":
        return "beta"
    return "ga"


def parse_query(query_string: str) -> dict[str, str]:
    """The first value of each query parameter (as ``URLSearchParams.get`` gives it)."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(name, value)
    return query


def plan_session(
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    settings: Settings,
    now: float | None = None,
) -> SessionPlan | HttpAnswer:
    """Decide the session a realtime upgrade request asks for, or refuse the upgrade.

    ``query_string`` is the raw query (no ``?``); ``headers`` must have lower-case names; ``now`` is
    Unix time in seconds (needed to verify gateway tokens, so adapters always pass it).

    An :class:`HttpAnswer` (sent instead of the 101) refuses a browser origin ALLOWED_ORIGINS does
    not list (403) and, per AUTH_MODE, a missing, forged or expired token (401) or one whose scope
    does not cover the provider or model (403). Errors the client should read as an ``error``
    event (unknown provider, no key) are carried in the plan instead: a browser cannot read a
    refused upgrade's body, and an SDK reports an event better than a failed handshake.
    """
    refused = origin_refusal(headers, settings)
    if refused is not None:
        return refused
    query = parse_query(query_string)
    subprotocols = offered_subprotocols(headers)
    access = authorize(client_credential(query, headers, subprotocols), settings, now)
    if isinstance(access, HttpAnswer):
        return access
    claims = access.claims
    answer = SUBPROTOCOL_REALTIME if SUBPROTOCOL_REALTIME in subprotocols else None
    protocol = client_protocol(query, headers, subprotocols)
    default_provider = "azure" if path in AZURE_PATHS else settings.default_provider
    provider = query.get("provider") or default_provider
    requested = model = query.get("model") or query.get("deployment") or settings.default_model
    if provider != "azure":  # Azure deployments carry the operator's own names
        model = settings.model_aliases.get(model, model)
    if claims is not None:
        try:
            check_scope(claims, provider, (requested, model))
        except TokenError as error:
            return refusal(error)
    speaks = upstream_protocol(settings, provider)
    subject = claims.subject if claims is not None else None
    limit = claims.max_session_seconds if claims is not None else None
    max_cost = claims.max_cost_usd if claims is not None else None

    def planned(upstream: UpstreamRequest | None, error: GatewayError | None = None) -> SessionPlan:
        return SessionPlan(
            provider, model, protocol, speaks, answer, upstream, error, subject, limit, max_cost_usd=max_cost
        )

    def failed(error: GatewayError) -> SessionPlan:
        return planned(None, error)

    if provider not in PROVIDER_NAMES:
        return failed(
            GatewayError(
                "unknown_provider",
                f"Unknown provider {provider!r}: use one of {', '.join(PROVIDER_NAMES)}.",
                param="provider",
            )
        )
    if provider == "simulator":
        return planned(None)
    if provider == "azure" and not settings.azure_openai_endpoint:
        return failed(
            GatewayError(
                "provider_not_configured",
                "Azure OpenAI is not configured on this gateway (AZURE_OPENAI_ENDPOINT is unset).",
                type="server_error",
                param="provider",
            )
        )
    credential = access.credential
    if credential is None:
        key = configured_key(settings, provider)
        if key is None and claims is not None:
            return failed(
                GatewayError(
                    "provider_not_configured",
                    f"This gateway has no key of its own for {DISPLAY_NAMES[provider]} to use with "
                    "gateway tokens.",
                    type="server_error",
                    param="provider",
                )
            )
        if key is None:
            return failed(
                GatewayError(
                    "missing_api_key",
                    f"No API key for {DISPLAY_NAMES[provider]}: send one (Authorization: Bearer, "
                    "api-key header, the openai-insecure-api-key subprotocol or ?api_key=), or ask "
                    "the operator to configure one. provider=simulator needs none.",
                )
            )
        credential = Credential(key, bearer=False)
    extra = {name: query[name] for name in FORWARDED_QUERY if query.get(name)}
    upstream = UPSTREAM_BUILDERS[provider](settings, model, credential, speaks, extra)
    return planned(upstream)
