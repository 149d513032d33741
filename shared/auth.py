"""Who may open a session, decided before the upgrade: browser origins, gateway tokens, the token endpoint.

:func:`shared.handshake.plan_session` calls :func:`origin_refusal` and :func:`authorize` on every
upgrade request; a refusal is an :class:`HttpAnswer` (401, 403) the adapter sends instead of the
101. ``POST /v1/tokens`` is :func:`token_answer`. Time is passed in as Unix seconds; nothing here
reads a clock, and no key, token or secret is ever put in a message or a log line (the token's
subject is logged instead).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .answers import HttpAnswer, error_body
from .config import Settings
from .ephemeral import is_ephemeral_key, simulator_token
from .providers import Credential
from .registry import NAME_PATTERN
from .tokens import (
    MAX_SCOPE_ENTRIES,
    MAX_SCOPE_ENTRY_CHARS,
    MAX_SUBJECT_CHARS,
    TOKEN_PREFIX,
    TokenClaims,
    TokenError,
    looks_like_token,
    new_claims,
    sign,
    verify,
)

logger = logging.getLogger("realtime_gateway")

TOKENS_PATH = "/v1/tokens"
# A token request is a few hundred bytes; anything much larger is not one.
MAX_TOKEN_REQUEST_BYTES = 16 * 1024
# The longest session a token may grant (a day); OpenAI's own sessions end after an hour.
MAX_SESSION_SECONDS_LIMIT = 24 * 3600
# The largest per-session budget a token may carry, in USD: a guard against a misplaced digit.
MAX_COST_USD_LIMIT = 10_000.0


# -- browser origins ---------------------------------------------------------------------------------


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Whether the browser origin ``origin`` matches ``allowed`` (ALLOWED_ORIGINS, normalised).

    Entries are exact origins (``https://app.example.com``), ``*`` (any), or a scheme and a
    wildcard subdomain (``https://*.example.com``, which does not match ``https://example.com``).
    """
    origin = origin.strip().lower().rstrip("/")
    for entry in allowed:
        if entry in ("*", origin):
            return True
        scheme, separator, host = entry.partition("://*.")
        if separator and origin.startswith(scheme + "://") and origin.endswith("." + host):
            return True
    return False


def origin_refusal(headers: Mapping[str, str], settings: Settings) -> HttpAnswer | None:
    """403 for a browser whose page's origin ALLOWED_ORIGINS does not list; None to go on.

    Browsers always send ``Origin`` on a WebSocket upgrade, so this is what stops a page on another
    site from opening a session with the user's cookies or the gateway's own key (cross-site
    WebSocket hijacking). Clients that send no ``Origin`` are not browsers and are let through.
    """
    allowed = settings.allowed_origins
    origin = headers.get("origin")
    if not allowed or origin is None or origin_allowed(origin, allowed):
        return None
    logger.warning("request refused status=403 code=origin_not_allowed origin=%r", origin[:200])
    return HttpAnswer(
        403,
        error_body(
            "origin_not_allowed",
            "This page's origin may not open sessions on this gateway (ALLOWED_ORIGINS).",
        ),
    )


# -- credentials at the handshake -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Access:
    """What the handshake's credential allows.

    ``claims`` set: a verified gateway token (the operator's key goes upstream; its scope is
    checked once the provider and model are known). Else ``credential`` is the client's own
    provider key to pass on, or None for the operator's key (passthrough with no key sent).
    """

    credential: Credential | None
    claims: TokenClaims | None = None


def authorize(credential: Credential | None, settings: Settings, now: float | None) -> Access | HttpAnswer:
    """Apply AUTH_MODE to the credential the client sent; an :class:`HttpAnswer` (401) refuses it.

    A provider's ephemeral key (``ek_…``) is passed on as the client's own in every mode; the
    simulator's ``ek_sim_rgw_…`` key is verified as the gateway token it wraps.

    ``now`` is Unix time in seconds, needed whenever a token is verified.
    """
    mode = settings.effective_auth_mode
    if credential is not None:
        wrapped = simulator_token(credential.secret)
        if wrapped is not None:  # the simulator's client secret minted for a token: verified as one
            credential = Credential(wrapped, credential.bearer)
        elif mode != "passthrough" and is_ephemeral_key(credential.secret):
            # A provider's ephemeral key is the client's own (see shared.ephemeral), in every mode.
            return Access(credential)
    is_token = credential is not None and looks_like_token(credential.secret)
    if mode == "passthrough":
        if is_token:
            return refusal(
                TokenError(
                    "tokens_not_accepted",
                    "This gateway does not accept gateway tokens (AUTH_MODE=passthrough): send a "
                    "provider key.",
                    401,
                )
            )
        return Access(credential)
    if credential is None:
        return refusal(
            TokenError(
                "missing_token",
                f"This gateway needs a gateway token ({TOKEN_PREFIX}...): send it as Authorization: "
                "Bearer, the api-key header, the openai-insecure-api-key.<token> subprotocol or "
                "?api_key=.",
                401,
            )
        )
    if not is_token:
        if mode == "both":
            return Access(credential)
        return refusal(
            TokenError(
                "invalid_token",
                f"This gateway takes gateway tokens ({TOKEN_PREFIX}...), not provider keys.",
                401,
            )
        )
    if now is None:
        raise ValueError("now (Unix seconds) is needed to verify a gateway token")
    assert settings.gateway_secret is not None  # Settings refuses token modes without a secret
    try:
        claims = verify(credential.secret, settings.gateway_secret.get_secret_value(), now)
    except TokenError as error:
        return refusal(error)
    logger.debug("token accepted subject=%r expires_at=%d", claims.subject, claims.expires_at)
    return Access(None, claims)


def refusal(error: TokenError) -> HttpAnswer:
    """The HTTP answer refusing a handshake or a token request, logged by subject, never by token."""
    logger.warning("request refused status=%d code=%s subject=%r", error.status, error.code, error.subject)
    headers = {}
    if error.status == 401:  # RFC 9110 11.6.1: a 401 names the scheme it wants
        headers["WWW-Authenticate"] = 'Bearer realm="realtime-gateway"'
    return HttpAnswer(error.status, error_body(error.code, error.message), headers)


# -- POST /v1/tokens ---------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    """The body of ``POST /v1/tokens``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_CHARS)
    ttl_seconds: int | None = Field(None, gt=0)
    providers: list[Annotated[str, Field(pattern=f"^{NAME_PATTERN}$")]] = Field(
        default_factory=list, max_length=MAX_SCOPE_ENTRIES
    )
    models: list[str] = Field(default_factory=list, max_length=MAX_SCOPE_ENTRIES)
    max_session_seconds: int | None = Field(None, gt=0, le=MAX_SESSION_SECONDS_LIMIT)
    max_cost_usd: float | None = Field(None, gt=0, le=MAX_COST_USD_LIMIT, allow_inf_nan=False)


def token_answer(
    method: str, path: str, headers: Mapping[str, str], body: bytes | str, settings: Settings, now: float
) -> HttpAnswer:
    """Answer ``POST /v1/tokens``: mint a token for an operator holding GATEWAY_ADMIN_KEY.

    ``headers`` must have lower-case names; ``now`` is Unix time in seconds. The body is JSON:
    ``subject`` (required), ``ttl_seconds``, ``providers``, ``models``, ``max_session_seconds``,
    ``max_cost_usd``.
    The answer is ``{"token", "expires_at", "subject"}``.
    """
    if path != TOKENS_PATH:
        return HttpAnswer(404, error_body("not_found", f"No such endpoint: {path}."))
    if method != "POST":
        return HttpAnswer(
            405, error_body("method_not_allowed", "Mint a token with POST /v1/tokens."), {"Allow": "POST"}
        )
    if settings.gateway_secret is None:
        return HttpAnswer(
            501,
            error_body("tokens_disabled", "This gateway does not issue tokens: GATEWAY_SECRET is not set."),
        )
    if settings.gateway_admin_key is None:
        return HttpAnswer(
            501,
            error_body(
                "tokens_disabled",
                "This gateway does not issue tokens over HTTP: GATEWAY_ADMIN_KEY is not set.",
            ),
        )
    if not admin_key_matches(headers, settings.gateway_admin_key.get_secret_value()):
        return refusal(
            TokenError(
                "invalid_admin_key",
                "POST /v1/tokens needs Authorization: Bearer <GATEWAY_ADMIN_KEY>.",
                401,
            )
        )
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_TOKEN_REQUEST_BYTES:
        return HttpAnswer(
            413,
            error_body("request_too_large", f"A token request is at most {MAX_TOKEN_REQUEST_BYTES} bytes."),
        )
    try:
        request = TokenRequest.model_validate(json.loads(raw))
    except (ValueError, UnicodeDecodeError) as error:
        if isinstance(error, ValidationError):
            return _invalid_request(error)
        return HttpAnswer(400, error_body("invalid_json", "The body must be a JSON object."))
    ttl = request.ttl_seconds or settings.token_default_ttl_seconds
    if ttl > settings.token_max_ttl_seconds:
        return HttpAnswer(
            400,
            error_body(
                "invalid_value",
                f"ttl_seconds may be at most {settings.token_max_ttl_seconds} (TOKEN_MAX_TTL_SECONDS).",
            ),
        )
    unknown = [name for name in request.providers if name not in settings.registry]
    if unknown:
        return HttpAnswer(
            400,
            error_body(
                "invalid_value",
                f"providers must be some of: {', '.join(settings.registry)} (unknown: {', '.join(unknown)}).",
            ),
        )
    if any(len(model) > MAX_SCOPE_ENTRY_CHARS or not model for model in request.models):
        return HttpAnswer(
            400, error_body("invalid_value", f"models must be 1 to {MAX_SCOPE_ENTRY_CHARS} characters each.")
        )
    try:
        claims = new_claims(
            subject=request.subject,
            now=now,
            ttl_seconds=ttl,
            providers=list(dict.fromkeys(request.providers)),
            models=list(dict.fromkeys(request.models)),
            max_session_seconds=request.max_session_seconds,
            max_cost_usd=request.max_cost_usd,
        )
    except ValueError as error:  # our own messages: they name the rule, not the value
        return HttpAnswer(400, error_body("invalid_value", f"{error}."))
    token = sign(claims, settings.gateway_secret.get_secret_value())
    logger.info(
        "token minted subject=%r expires_at=%d providers=%s models=%s max_session_seconds=%s max_cost_usd=%s",
        claims.subject,
        claims.expires_at,
        ",".join(claims.providers) or "*",
        ",".join(claims.models) or "*",
        claims.max_session_seconds,
        claims.max_cost_usd,
    )
    return HttpAnswer(
        200,
        {"token": token, "expires_at": claims.expires_at, "subject": claims.subject},
        {"Cache-Control": "no-store"},  # a credential: no cache may keep it
    )


def admin_key_matches(headers: Mapping[str, str], admin_key: str) -> bool:
    """``Authorization: Bearer <admin_key>``, compared in constant time."""
    scheme, _, presented = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), admin_key.encode())


def _invalid_request(error: ValidationError) -> HttpAnswer:
    """400 naming the first bad field and what is wrong with it (never echoing the value)."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
    return HttpAnswer(400, error_body(code, f"{where}: {first['msg']}."))
