"""The relayed HTTP endpoints (:mod:`shared.http_routes`): from a client's request to the provider's and back.

Sans-I/O: an adapter hands :func:`plan_http` the method, the raw path and query, the headers (lower-case
names), the body (read up to MAX_HTTP_BODY_BYTES + 1 bytes), the settings and the time. The answer is
either a :class:`RawAnswer` to send as it is (a refusal, a preflight, the simulator's client secret) or
an :class:`HttpExchange`: the :class:`UpstreamHttpRequest` to make, and how to answer the client from
what the provider answers (:meth:`HttpExchange.head`, :meth:`HttpExchange.answer`,
:meth:`HttpExchange.failed`).

Every guarantee of ``/v1/realtime`` holds: the same credential forms and AUTH_MODE (a gateway token
sends the operator's key upstream, never itself; a provider's ``ek_…`` key is the client's own),
ALLOWED_ORIGINS (with CORS answers for the pages it lists, as a browser's ``fetch`` needs them), a
token's scope (provider, and the model the body names, as asked and after MODEL_ALIASES), and
SESSIONS_PER_MINUTE_PER_SUBJECT for every request that starts a session (minting a client secret
included). A client secret minted with a token lives no longer than the token. Errors are OpenAI's
shape, ``{"error": {"message", "type", "param", "code"}}``; no key or token is put in a message or a
log line, and a provider's error body is scrubbed of the keys the gateway sent it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from urllib.parse import parse_qsl, urlencode, urlsplit

from .admission import Admission
from .answers import HttpAnswer, RawAnswer, error_body
from .auth import authorize, origin_allowed, origin_refusal, refusal
from .config import Settings
from .endpoints import websocket_endpoint_for
from .handshake import SIMULATOR_NEEDS_TOKEN, client_credential, parse_query
from .http_bodies import SECRET_MAX_SECONDS, SECRET_MIN_SECONDS, BodyError, ReadBody
from .http_routes import AZURE_PREFIX, OPENAI_PREFIX, HttpEndpoint, HttpRoute, ModelField, match_http_endpoint
from .providers import Credential, configured_key, display_name, openai_url
from .simulator.client_secrets import simulated_client_secret
from .simulator.config import SessionUpdateError
from .tokens import TokenClaims, TokenError, check_scope

logger = logging.getLogger("realtime_gateway")

# Query parameters that are the gateway's own (which provider, a key): never relayed.
GATEWAY_QUERY = frozenset({"provider", "api_key", "apiKey", "api-key"})
# The provider's answer headers a client needs: the body's type, the call's Location, and what the
# SDKs read to retry or to report (OpenAI's request id and rate-limit figures).
RELAYED_HEADERS = frozenset(
    {
        "content-type",
        "content-disposition",
        "location",
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
        "x-request-id",
        "openai-processing-ms",
    }
)
RELAYED_HEADER_PREFIXES = ("x-ratelimit-",)
# Headers a client may send that mean something only with its own key (an OpenAI project of its own).
OWN_KEY_HEADERS = ("openai-organization", "openai-project")
# The most of a provider's error answer the gateway reads (its errors are a few hundred bytes).
MAX_ERROR_BODY_BYTES = 64 * 1024
# How long a browser may cache a CORS preflight's answer.
PREFLIGHT_MAX_AGE_SECONDS = 600
CORS_EXPOSED = "Location, Retry-After, X-Request-Id"
NULL_BODY_STATUSES = frozenset({204, 205, 304})


class UpstreamHttpFailure(Enum):
    """How a relayed request failed before the provider answered, as the adapter saw it."""

    UNREACHABLE = "unreachable"  # refused, DNS, TLS: no connection
    TIMEOUT = "timeout"  # no answer within UPSTREAM_HTTP_TIMEOUT_SECONDS
    DROPPED = "dropped"  # the connection closed before the answer (or its error body) was in


@dataclass(frozen=True, slots=True)
class UpstreamHttpRequest:
    """The request the adapter makes to the provider. ``headers`` carry the key: never logged."""

    method: str
    url: str  # the operator's provider base, the endpoint's path, the client's query minus the gateway's
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    timeout: float  # UPSTREAM_HTTP_TIMEOUT_SECONDS: for the answer's head, and between two reads

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@dataclass(frozen=True, slots=True)
class StreamedAnswer:
    """Send ``status`` and ``headers`` now, then the provider's body as it comes, unchanged."""

    status: int
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class HttpExchange:
    """A request on its way to the provider, and how the client is answered from what comes back."""

    request: UpstreamHttpRequest
    endpoint: HttpEndpoint
    provider: str
    provider_title: str  # what messages call it ("Azure OpenAI")
    subject: str | None  # the gateway token's subject, for the log
    operator_key: bool  # the operator's key went upstream (a token holder's or a keyless request)
    cors: dict[str, str]
    secrets: tuple[str, ...] = field(repr=False, default=())  # scrubbed from relayed error bodies
    upstream_prefix: str = "/v1"  # the provider's base path, before the endpoint's own
    client_prefix: str = "/v1"  # the same for the client: /v1, or Azure's /openai/v1

    def head(self, status: int, headers: Mapping[str, str]) -> StreamedAnswer | None:
        """A success is relayed as it comes (:class:`StreamedAnswer`); for anything else, None: read
        the body (at most :data:`MAX_ERROR_BODY_BYTES` + 1 bytes) and call :meth:`answer`."""
        if not 200 <= status < 300:
            return None
        self._log(status)
        return StreamedAnswer(status, {**self._relayed_headers(headers), **self.cors})

    def answer(self, status: int, headers: Mapping[str, str], body: bytes) -> RawAnswer:
        """The client's answer to the provider's ``status``, ``headers`` (lower-case) and ``body``."""
        if 200 <= status < 300:
            self._log(status)
            return RawAnswer(status, {**self._relayed_headers(headers), **self.cors}, body)
        provider = self.provider_title
        if status < 400:
            return self._gateway_error(
                502, "upstream_error", f"{provider} answered {status}, which the gateway does not follow."
            )
        if status == 401 and self.operator_key:
            # The gateway's own key was refused: the client can do nothing about it, and the
            # provider's message may quote part of that key.
            return self._gateway_error(
                502,
                "upstream_unauthorized",
                f"{provider} refused the gateway's own key (401): the operator must check it.",
            )
        if len(body) <= MAX_ERROR_BODY_BYTES and _is_error_body(body, headers):
            self._log(status)
            relayed = {**self._relayed_headers(headers), **self.cors}
            return RawAnswer(status, relayed, self._scrubbed(body))
        return self._gateway_error(
            status,
            _UPSTREAM_CODES.get(status, "upstream_error"),
            f"{provider} answered {status} without an error of its own.",
        )

    def failed(self, failure: UpstreamHttpFailure) -> RawAnswer:
        """The client's answer when the provider could not be reached or did not answer in time."""
        provider, host = self.provider_title, self.request.host
        if failure is UpstreamHttpFailure.TIMEOUT:
            return self._gateway_error(
                504,
                "upstream_timeout",
                f"{provider} ({host}) did not answer within {self.request.timeout:g} s "
                "(UPSTREAM_HTTP_TIMEOUT_SECONDS).",
            )
        if failure is UpstreamHttpFailure.DROPPED:
            return self._gateway_error(
                502,
                "upstream_connection_lost",
                f"The connection to {provider} ({host}) closed before it answered.",
            )
        return self._gateway_error(502, "upstream_unreachable", f"Could not reach {provider} ({host}).")

    # -- helpers -------------------------------------------------------------------------------------

    def _gateway_error(self, status: int, code: str, message: str) -> RawAnswer:
        logger.warning(
            "http relay failed endpoint=%s provider=%s status=%d code=%s subject=%r",
            self.endpoint.name,
            self.provider,
            status,
            code,
            self.subject,
        )
        return RawAnswer.of(HttpAnswer(status, error_body(code, message, type="server_error")), self.cors)

    def _log(self, status: int) -> None:
        logger.info(
            "http relayed endpoint=%s provider=%s status=%d subject=%r",
            self.endpoint.name,
            self.provider,
            status,
            self.subject,
        )

    def _relayed_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        relayed = {
            name: value
            for name, value in headers.items()
            if name in RELAYED_HEADERS or name.startswith(RELAYED_HEADER_PREFIXES)
        }
        if "location" in relayed:
            relayed["location"] = self._local_location(relayed["location"])
        return relayed

    def _local_location(self, location: str) -> str:
        """A ``Location`` on the provider's own host, made a path on the gateway: the provider's base
        path (``/v1`` of OPENAI_BASE_URL, Azure's ``/openai/v1``) becomes the one the client used."""
        target, upstream = urlsplit(location), urlsplit(self.request.url)
        if target.netloc and (target.scheme, target.netloc) != (upstream.scheme, upstream.netloc):
            return location  # somewhere else altogether: as the provider said
        path = target.path
        if path.startswith(self.upstream_prefix + "/"):
            path = self.client_prefix + path[len(self.upstream_prefix) :]
        return path + (f"?{target.query}" if target.query else "")

    def _scrubbed(self, body: bytes) -> bytes:
        for secret in self.secrets:
            body = body.replace(secret.encode(), b"***")
        return body


_UPSTREAM_CODES = {
    401: "upstream_unauthorized",
    403: "upstream_forbidden",
    404: "upstream_not_found",
    429: "upstream_rate_limited",
}


def _is_error_body(body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether ``body`` is an error in OpenAI's shape (a JSON object with an ``error`` object)."""
    if "json" not in headers.get("content-type", ""):
        return False
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and isinstance(document.get("error"), dict)


# -- planning ------------------------------------------------------------------------------------------


def is_http_endpoint(method: str, raw_path: str, headers: Mapping[str, str]) -> bool:
    """Whether the request is for one of the relayed HTTP endpoints (read its body, then
    :func:`plan_http`). ``/v1/live/sessions`` is both a WebSocket endpoint (``client.live.connect``)
    and an HTTP one (``client.live.create``): an upgrade, or a method no HTTP endpoint there takes,
    is the WebSocket endpoint's (which answers a plain request with 426)."""
    if headers.get("upgrade", "").lower() == "websocket":
        return False
    routes = match_http_endpoint(raw_path)
    if not routes:
        return False
    if websocket_endpoint_for(raw_path) is None:
        return True  # its own 405 for a wrong method
    return any(route.endpoint.method == method for route in routes)


def cors_headers(headers: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The CORS answer headers for a browser page ALLOWED_ORIGINS lists; {} for anyone else."""
    origin = headers.get("origin")
    if origin is None or not settings.allowed_origins or not origin_allowed(origin, settings.allowed_origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSED,
        "Vary": "Origin",
    }


def plan_http(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    settings: Settings,
    now: float,
    admission: Admission | None = None,
    monotonic: float = 0.0,
) -> RawAnswer | HttpExchange:
    """Plan a relayed HTTP request, or answer it here.

    ``raw_path`` is still percent-encoded; ``headers`` have lower-case names; ``now`` is Unix time
    (tokens, client secrets); ``admission`` counts session starts per token subject, at
    ``monotonic`` seconds (the runtime's monotonic clock, as for WebSocket sessions).
    """
    routes = match_http_endpoint(raw_path)
    if not routes:
        return RawAnswer.of(HttpAnswer(404, error_body("not_found", f"No such endpoint: {raw_path[:200]}.")))
    cors = cors_headers(headers, settings)
    if method == "OPTIONS":
        return _preflight(routes, headers, settings, cors)
    route = next((route for route in routes if route.endpoint.method == method), None)
    if route is None:
        allowed = ", ".join(sorted({route.endpoint.method for route in routes}))
        answer = HttpAnswer(
            405, error_body("method_not_allowed", f"{raw_path[:200]} takes {allowed}."), {"Allow": allowed}
        )
        return RawAnswer.of(answer, cors)
    planner = _Planner(route, query_string, headers, settings, now, cors)
    try:
        return planner.plan(body, admission, monotonic)
    except _Refused as refused:
        return RawAnswer.of(refused.answer, cors)


class _Refused(Exception):
    def __init__(self, answer: HttpAnswer) -> None:
        self.answer = answer


def _preflight(
    routes: tuple[HttpRoute, ...], headers: Mapping[str, str], settings: Settings, cors: dict[str, str]
) -> RawAnswer:
    """A browser's CORS preflight: allowed for ALLOWED_ORIGINS' pages (204), else 403."""
    if not cors:
        refused = origin_refusal(headers, settings) or HttpAnswer(
            403,
            error_body(
                "origin_not_allowed",
                "Browser pages may call this endpoint only from an origin ALLOWED_ORIGINS lists.",
            ),
        )
        return RawAnswer.of(refused)
    methods = ", ".join(sorted({route.endpoint.method for route in routes}))
    allowed = {
        **cors,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
    }
    requested = headers.get("access-control-request-headers")
    if requested:
        allowed["Access-Control-Allow-Headers"] = requested
    return RawAnswer(204, allowed)


@dataclass
class _Planner:
    """The checks of one request, in order; each refusal raises :class:`_Refused`."""

    route: HttpRoute
    query_string: str
    headers: Mapping[str, str]
    settings: Settings
    now: float
    cors: dict[str, str]

    @property
    def endpoint(self) -> HttpEndpoint:
        return self.route.endpoint

    def plan(self, raw: bytes, admission: Admission | None, monotonic: float) -> RawAnswer | HttpExchange:
        settings, endpoint = self.settings, self.endpoint
        refused = origin_refusal(self.headers, settings)
        if refused is not None:
            raise _Refused(refused)
        self._check_size(raw)
        query = parse_query(self.query_string)
        access = authorize(client_credential(query, self.headers, []), settings, self.now)
        if isinstance(access, HttpAnswer):
            raise _Refused(access)
        claims = access.claims
        provider = query.get("provider") or ("azure" if self.route.azure_path else settings.default_provider)
        self._check_provider(provider)
        if provider == "simulator" and claims is None and settings.effective_auth_mode == "token":
            raise _Refused(refusal(SIMULATOR_NEEDS_TOKEN))
        try:
            body = ReadBody.read(endpoint.body, raw, self.headers.get("content-type", ""))
        except BodyError as error:
            raise _Refused(
                HttpAnswer(400, error_body(error.code, error.message, param=error.param))
            ) from None
        model = self._model(body, provider, claims)
        seconds = self._secret_seconds(body, claims)
        credential = (
            None if provider == "simulator" else self._credential(access.credential, provider, claims)
        )
        if claims is not None and endpoint.starts_session and admission is not None:
            too_soon = admission.count_start(claims.subject, monotonic)
            if too_soon is not None:
                wait = admission.retry_after(claims.subject, monotonic)
                error = too_soon.error
                answer = HttpAnswer(429, error_body(error.code, error.message), {"Retry-After": str(wait)})
                raise _Refused(answer)
        subject = claims.subject if claims is not None else None
        if credential is None:
            return self._simulate(body, model, seconds, claims)
        request = self._upstream_request(provider, credential, access.credential is not None, body)
        return HttpExchange(
            request=request,
            endpoint=endpoint,
            provider=provider,
            provider_title=display_name(settings, provider),
            subject=subject,
            operator_key=access.credential is None,
            cors=self.cors,
            secrets=tuple({credential.secret, *(key for key in _operator_keys(settings))}),
            upstream_prefix=urlsplit(request.url).path.removesuffix(
                endpoint.upstream_path(self.route.endpoint_id)
            ),
            client_prefix=AZURE_PREFIX if self.route.azure_path else OPENAI_PREFIX,
        )

    # -- the checks ----------------------------------------------------------------------------------

    def _check_size(self, raw: bytes) -> None:
        limit = self.settings.max_http_body_bytes
        declared = self.headers.get("content-length", "")
        if len(raw) > limit or (declared.isdigit() and int(declared) > limit):
            raise _Refused(
                HttpAnswer(
                    413,
                    error_body(
                        "request_too_large",
                        f"The request body is larger than this gateway relays ({limit} bytes, "
                        "MAX_HTTP_BODY_BYTES).",
                    ),
                )
            )

    def _check_provider(self, provider: str) -> None:
        endpoint, settings = self.endpoint, self.settings
        if provider not in settings.registry:
            names = ", ".join(settings.registry)
            message = f"Unknown provider {provider!r}: use one of {names}."
            raise _Refused(HttpAnswer(400, error_body("unknown_provider", message, param="provider")))
        supported = {"openai": True, "azure": endpoint.azure, "simulator": endpoint.simulator}.get(provider)
        if not supported:
            why = {
                "azure": "Azure OpenAI does not document this endpoint",
                "simulator": "the simulator has no WebRTC, SIP, Live or translation sessions; "
                "use provider=openai",
            }.get(provider, "this gateway relays OpenAI's HTTP endpoints to OpenAI and Azure OpenAI only")
            message = f"{endpoint.sdk_call} is not available with provider={provider}: {why}."
            answer = HttpAnswer(
                501, error_body("provider_unsupported", message, type="server_error", param="provider")
            )
            raise _Refused(answer)
        if provider == "azure" and not settings.azure_openai_endpoint:
            message = "Azure OpenAI is not configured on this gateway (AZURE_OPENAI_ENDPOINT is unset)."
            raise _Refused(
                HttpAnswer(
                    501, error_body("provider_not_configured", message, type="server_error", param="provider")
                )
            )

    def _model(self, body: ReadBody, provider: str, claims: TokenClaims | None) -> str | None:
        """The model the body names, after MODEL_ALIASES (renamed in the body), checked against the token."""
        field = self.endpoint.model_field
        requested = body.model(field)
        if requested is None and field is ModelField.CALL:
            requested = parse_query(self.query_string).get("model")  # raw SDP: ``?model=`` if anything
        model = requested
        if requested is not None and provider != "azure":  # Azure names are the operator's deployments
            model = self.settings.model_aliases.get(requested, requested)
            if model != requested and body.model(field) is not None:
                body.rename_model(field, model)
        if claims is None:
            return model
        try:
            if requested is not None:
                check_scope(claims, provider, (requested, model or requested))
            else:
                check_scope(replace(claims, models=()), provider, ())  # the provider only
                if claims.models and field is not ModelField.NONE:
                    raise TokenError(
                        "token_scope_denied",
                        f"This token allows only the models {', '.join(claims.models)}: name one in the "
                        "request (the session's model).",
                        403,
                        claims.subject,
                    )
        except TokenError as error:
            raise _Refused(refusal(error)) from None
        return model

    def _secret_seconds(self, body: ReadBody, claims: TokenClaims | None) -> int | None:
        """A client secret's lifetime: as asked, or capped at the token's remaining life (the body
        then says so). None for an endpoint that mints nothing."""
        if not self.endpoint.mints:
            return None
        try:
            seconds = body.secret_seconds()
        except BodyError as error:
            raise _Refused(
                HttpAnswer(400, error_body(error.code, error.message, param=error.param))
            ) from None
        if claims is None:
            return seconds
        remaining = claims.expires_at - int(self.now)
        if remaining < SECRET_MIN_SECONDS:
            raise _Refused(
                refusal(
                    TokenError(
                        "token_expired",
                        f"The token expires in {max(remaining, 0)} s, sooner than the shortest client "
                        f"secret ({SECRET_MIN_SECONDS} s): ask for a new one.",
                        401,
                        claims.subject,
                    )
                )
            )
        if seconds > remaining:
            logger.info(
                "client secret lifetime capped subject=%r asked=%d capped=%d",
                claims.subject,
                seconds,
                remaining,
            )
            body.cap_secret_seconds(remaining)
            seconds = remaining
        return seconds

    def _credential(self, sent: Credential | None, provider: str, claims: TokenClaims | None) -> Credential:
        if sent is not None:
            return sent
        key = configured_key(self.settings, provider)
        if key is not None:
            return Credential(key, bearer=False)
        name = display_name(self.settings, provider)
        if claims is not None:
            message = f"This gateway has no key of its own for {name} to use with gateway tokens."
            raise _Refused(
                HttpAnswer(
                    501, error_body("provider_not_configured", message, type="server_error", param="provider")
                )
            )
        message = (
            f"No API key for {name}: send one (Authorization: Bearer, the api-key header or ?api_key=), "
            "or ask the operator to configure one."
        )
        raise _Refused(HttpAnswer(401, error_body("missing_api_key", message)))

    # -- the answers ---------------------------------------------------------------------------------

    def _simulate(
        self, body: ReadBody, model: str | None, seconds: int | None, claims: TokenClaims | None
    ) -> RawAnswer:
        """The simulator's answer: only client secrets (the table lets no other endpoint reach it)."""
        assert body.document is not None
        assert seconds is not None
        if not SECRET_MIN_SECONDS <= seconds <= SECRET_MAX_SECONDS:
            message = (
                f"Invalid value: {seconds}. expires_after.seconds must be between {SECRET_MIN_SECONDS} "
                f"and {SECRET_MAX_SECONDS}."
            )
            raise _Refused(
                HttpAnswer(400, error_body("invalid_value", message, param="expires_after.seconds"))
            )
        settings = self.settings
        if model is None:
            default = settings.default_model
            model = settings.model_aliases.get(default, default)
        secret = settings.gateway_secret.get_secret_value() if settings.gateway_secret is not None else None
        try:
            minted = simulated_client_secret(
                body.document.get("session"), model, seconds, claims, secret, self.now
            )
        except SessionUpdateError as error:
            raise _Refused(
                HttpAnswer(400, error_body(error.code, error.message, param=error.param))
            ) from None
        subject = claims.subject if claims is not None else None
        logger.info(
            "http answered endpoint=%s provider=simulator status=200 subject=%r", self.endpoint.name, subject
        )
        return RawAnswer.of(HttpAnswer(200, minted, {"Cache-Control": "no-store"}), self.cors)

    def _upstream_request(
        self, provider: str, credential: Credential, own_key: bool, body: ReadBody
    ) -> UpstreamHttpRequest:
        settings, endpoint = self.settings, self.endpoint
        path = endpoint.upstream_path(self.route.endpoint_id)
        if provider == "azure":
            assert settings.azure_openai_endpoint is not None
            parts = urlsplit(settings.azure_openai_endpoint)
            scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
            url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{AZURE_PREFIX}{path}"
            auth = (
                {"Authorization": f"Bearer {credential.secret}"}
                if credential.bearer
                else {"api-key": credential.secret}
            )
        else:
            url = openai_url(settings, path, websocket=False)
            auth = {"Authorization": f"Bearer {credential.secret}"}
        relayed_query = [
            (name, value)
            for name, value in parse_qsl(self.query_string, keep_blank_values=True)
            if name not in GATEWAY_QUERY
        ]
        if relayed_query:
            url += ("&" if "?" in url else "?") + urlencode(relayed_query)
        headers = {**auth, "Accept-Encoding": "identity"}
        for name in ("content-type", "accept"):
            if name in self.headers:
                headers[name.title()] = self.headers[name]
        if own_key:
            for name in OWN_KEY_HEADERS:
                if name in self.headers:
                    headers[name] = self.headers[name]
        return UpstreamHttpRequest(
            endpoint.method, url, headers, body.body(), settings.upstream_http_timeout_seconds
        )


def _operator_keys(settings: Settings) -> list[str]:
    return [key for key in (configured_key(settings, name) for name in ("openai", "azure")) if key]
