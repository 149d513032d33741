"""From a client's HTTP upgrade request to a session plan: endpoint, provider, model, key, protocol.

Adapters hand over the path, the query, the headers and the time; everything the request means is
decided here, identically on every runtime, from the endpoint table (:mod:`shared.endpoints`): a
:class:`SessionPlan` to carry out on the upgraded socket, or an :class:`HttpAnswer` refusing the
upgrade (origin, gateway token).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl

from .answers import HttpAnswer, error_body
from .auth import authorize, origin_refusal, refusal
from .config import RETIRED_MODEL_SUCCESSORS, Settings
from .endpoints import EXACT_ROUTES, REALTIME, Endpoint, Target, UpstreamBuilder, match_route, valid_id
from .errors import CloseCode, GatewayError
from .providers import (
    Credential,
    Protocol,
    UpstreamRequest,
    configured_key,
    display_name,
    registry_request,
    upstream_protocol,
)
from .registry import ProviderSpec
from .tokens import TokenClaims, TokenError, check_scope

# The paths of ``/v1/realtime`` (the endpoint table's, :mod:`shared.endpoints`): Azure's make Azure
# the default provider.
REALTIME_PATHS = frozenset(path for path, route in EXACT_ROUTES.items() if route.endpoint is REALTIME)
AZURE_PATHS = frozenset(path for path in REALTIME_PATHS if EXACT_ROUTES[path].default_provider == "azure")
OPENAI_PATHS = REALTIME_PATHS - AZURE_PATHS

# With AUTH_MODE=token, a provider's ephemeral key (``ek_…``) is taken as the client's own key for
# that provider; it does not open the simulator, which needs no key and so would need no token.
SIMULATOR_NEEDS_TOKEN = TokenError(
    "invalid_token",
    "The simulator on this gateway needs a gateway token (an ephemeral ek_ key is the provider's).",
    401,
)

SUBPROTOCOL_REALTIME = "realtime"
SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
SUBPROTOCOL_BETA = "openai-beta.realtime-v1"


@dataclass(frozen=True, slots=True)
class Fallback:
    """A provider to try when the one before it fails at connect (FALLBACK_PROVIDERS)."""

    provider: str
    model: str
    upstream_protocol: Protocol
    upstream: UpstreamRequest


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
    endpoint: Endpoint = REALTIME
    target: Target = field(default_factory=lambda: Target(""))  # model, session or call id, query
    # A gateway token's models, checked where the client names its model later (GPT-Live's
    # ``session.start``); empty: no limit, or checked already.
    model_scope: tuple[str, ...] = ()
    token_id: str | None = None  # the gateway token's nonce (``nce``), by which it is revoked
    # Where to go, in order, if the provider fails before its first event (FALLBACK_PROVIDERS).
    fallbacks: tuple[Fallback, ...] = ()
    max_cost_usd: float | None = None  # the token's per-session budget (shared.usage.budget)


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
    query: Mapping[str, str], headers: Mapping[str, str], subprotocols: list[str], model: str = ""
) -> Protocol:
    """``beta`` when the client asks for the Realtime beta interface, else ``ga``.

    A client that says neither (no ``OpenAI-Beta``, beta subprotocol or ``protocol=``) but asks for
    a preview model (``model``, as requested, before aliases) speaks beta: those models only ever
    had the beta interface, and the first clients of this gateway connected that way, relying on
    the gateway to add the beta header upstream. OpenAI refuses preview models to GA clients, so
    no GA client names one; ``protocol=ga`` overrides the guess.
    """
    if "realtime=v1" in headers.get("openai-beta", "").replace(" ", "").split(","):
        return "beta"
    marker = query.get("protocol")
    if SUBPROTOCOL_BETA in subprotocols or marker == "beta":
        return "beta"
    if marker != "ga" and is_preview_model(model):
        return "beta"
    return "ga"


def is_preview_model(model: str) -> bool:
    """Whether ``model`` is one of OpenAI's beta-era realtime models (``*-realtime-preview*``)."""
    return model in RETIRED_MODEL_SUCCESSORS or "-realtime-preview" in model


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
    """Decide the session an upgrade request to one of the endpoints asks for, or refuse the upgrade.

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
    matched = match_route(path)
    if matched is None:
        return HttpAnswer(404, error_body("not_found", f"No such endpoint: {path}."))
    route, target_id = matched
    endpoint = route.endpoint
    query = parse_query(query_string)
    if route.by_query is not None and route.by_query[0] in query:
        name, endpoint = route.by_query
        target_id = query[name]
    subprotocols = offered_subprotocols(headers)
    access = authorize(client_credential(query, headers, subprotocols), settings, now)
    if isinstance(access, HttpAnswer):
        return access
    claims = access.claims
    answer = SUBPROTOCOL_REALTIME if SUBPROTOCOL_REALTIME in subprotocols else None
    provider = query.get("provider") or route.default_provider or settings.default_provider
    spec = settings.registry.get(provider)
    kind = spec.kind if spec is not None else None
    requested = model = ""
    if endpoint.model_in == "query":
        requested = model = query.get("model") or query.get("deployment") or ""
        if not model and endpoint.model_default:
            requested = model = settings.default_model
        if kind != "azure":  # Azure deployments carry the operator's own names
            model = settings.model_aliases.get(model, model)
        if spec is not None:  # then the provider's own names for OpenAI's models
            model = spec.aliases.get(model, model)
    if claims is not None:
        try:
            _check_token_scope(claims, provider, endpoint, (requested, model))
        except TokenError as error:
            return refusal(error)
    if endpoint.realtime_interface:
        guess_from = requested if kind != "azure" else ""
        protocol, speaks = (
            client_protocol(query, headers, subprotocols, guess_from),
            upstream_protocol(settings, provider),
        )
    else:
        protocol = speaks = "ga"
    subject = claims.subject if claims is not None else None
    limit = claims.max_session_seconds if claims is not None else None
    scope = tuple(claims.models) if claims is not None and endpoint.model_in == "session" else ()
    extra = {name: query[name] for name in endpoint.forwarded_query if query.get(name)}
    target = Target(model, target_id, extra, now or 0.0, requested)
    token_id = claims.nonce if claims is not None else None
    max_cost = claims.max_cost_usd if claims is not None else None

    def planned(upstream: UpstreamRequest | None, error: GatewayError | None = None) -> SessionPlan:
        return SessionPlan(
            provider,
            model,
            protocol,
            speaks,
            answer,
            upstream,
            error,
            subject,
            limit,
            endpoint=endpoint,
            target=target,
            model_scope=scope,
            token_id=token_id,
            max_cost_usd=max_cost,
        )

    def failed(error: GatewayError) -> SessionPlan:
        return planned(None, error)

    if target_id is not None and not valid_id(target_id):
        return failed(
            GatewayError(
                "invalid_value",
                "Invalid 'call_id': expected 1 to 128 letters, digits, '_' or '-'.",
                param="call_id",
            )
        )
    if endpoint.model_in == "query" and not model:
        return failed(
            GatewayError("missing_required_parameter", "Missing required parameter: 'model'.", param="model")
        )
    if spec is None:
        return failed(
            GatewayError(
                "unknown_provider",
                f"Unknown provider {provider!r}: use one of {', '.join(settings.registry)}.",
                param="provider",
            )
        )
    if spec.kind == "simulator":
        if claims is None and settings.effective_auth_mode == "token":
            return refusal(SIMULATOR_NEEDS_TOKEN)  # an ek_ key was let through: it is OpenAI's
        return failed(endpoint.simulator) if isinstance(endpoint.simulator, GatewayError) else planned(None)
    build = endpoint.providers.get(provider) if spec.builtin else None
    if spec.reached_by_url and endpoint.registry_providers:
        build = _registry_builder(spec)
    if build is None:
        supported = ", ".join(f"provider={name}" for name in endpoint.providers)
        return failed(
            GatewayError(
                "endpoint_not_supported",
                f"{spec.title} does not document {endpoint.title}; use {supported}.",
                param="provider",
            )
        )
    if spec.kind == "azure" and spec.builtin and not settings.azure_openai_endpoint:
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
                    f"This gateway has no key of its own for {display_name(settings, provider)} to use with "
                    "gateway tokens.",
                    type="server_error",
                    param="provider",
                )
            )
        if key is None:
            return failed(
                GatewayError(
                    "missing_api_key",
                    f"No API key for {display_name(settings, provider)}: send one (Authorization: Bearer, "
                    "api-key header, the openai-insecure-api-key subprotocol or ?api_key=), or ask "
                    "the operator to configure one. provider=simulator needs none.",
                )
            )
        credential = Credential(key, bearer=False)
    upstream = build(settings, target, credential, speaks)
    if isinstance(upstream, GatewayError):
        return failed(upstream)
    primary = planned(upstream)
    if not endpoint.registry_providers or provider not in settings.fallback_providers:
        return primary
    fallbacks = _fallbacks(settings, provider, endpoint, requested, target, claims)
    return replace(primary, fallbacks=fallbacks) if fallbacks else primary


def _fallbacks(
    settings: Settings,
    provider: str,
    endpoint: Endpoint,
    requested: str,
    target: Target,
    claims: TokenClaims | None,
) -> tuple[Fallback, ...]:
    """The providers FALLBACK_PROVIDERS names after ``provider`` that this session may use: each with
    the operator's key for it (a client's own key is never sent to another provider), and one a
    gateway token allows; the model as that provider names it."""
    found = []
    for name in settings.fallback_providers[provider]:
        spec = settings.registry[name]
        if spec.kind == "simulator" or spec.key is None or name == provider:
            continue
        if spec.kind == "azure" and spec.builtin and not settings.azure_openai_endpoint:
            continue
        model = settings.model_aliases.get(requested, requested) if spec.kind != "azure" else requested
        model = spec.aliases.get(model, model)
        if claims is not None:
            try:
                check_scope(claims, name, (requested, model))
            except TokenError:
                continue
        build = endpoint.providers.get(name) if spec.builtin else None
        if spec.reached_by_url:
            build = _registry_builder(spec)
        if build is None:
            continue
        fallback_target = replace(target, model=model)
        upstream = build(settings, fallback_target, Credential(spec.key, bearer=False), spec.protocol)
        if not isinstance(upstream, GatewayError):
            found.append(Fallback(name, model, spec.protocol, upstream))
    return tuple(found)


def _registry_builder(spec: ProviderSpec) -> UpstreamBuilder:
    """How a provider of the registry is reached (at its URL, its key sent as it asks)."""

    def build(
        settings: Settings, target: Target, credential: Credential, protocol: Protocol
    ) -> UpstreamRequest:
        return registry_request(spec, target.model, credential, protocol, target.query)

    return build


def _check_token_scope(
    claims: TokenClaims, provider: str, endpoint: Endpoint, models: tuple[str, str]
) -> None:
    """Refuse (403) what the token does not allow. Where the client names its model later (Live's
    ``session.start``), the relay checks it then; where no model is named at all (a sideband, a
    fork, a call), a token limited to some models cannot vouch for the session's and is refused."""
    if endpoint.model_in == "query":
        check_scope(claims, provider, models)
        return
    check_scope(claims, provider, None)
    if endpoint.model_in == "none" and claims.models:
        raise TokenError(
            "token_scope_denied",
            f"This token is limited to models ({', '.join(claims.models)}), and {endpoint.title} names "
            "no model the gateway could check: mint one without a model limit for it.",
            403,
            claims.subject,
        )
