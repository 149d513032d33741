"""Revoking a gateway token: ``POST /v1/tokens/revoke`` and ``realtime-gateway token revoke``.

A token is revoked by its nonce (the ``nce`` claim, :mod:`shared.tokens`), which is what the
fleet store keeps (:mod:`shared.fleet`): never the token itself. A revoked token is refused at
the handshake as an invalid one is (HTTP 401, ``token_revoked``), and the sessions it opened are
ended (``token_revoked``, close 1008) at the next revocation poll (REVOCATION_POLL_SECONDS).

A revocation is kept as long as a session opened with the token can last: until the token's
expiry plus the longest session it may hold (its ``max_session_seconds``, MAX_SESSION_SECONDS,
the shorter; a day when neither limits it). An expired token can be revoked too, since a token
only has to be valid when a session opens, and its sessions may still be open.

Nothing here reads a clock or does I/O: ``now`` is Unix seconds, and the adapter hands the
:class:`Revocation` to the fleet gate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .answers import HttpAnswer, error_body
from .auth import MAX_SESSION_SECONDS_LIMIT, admin_key_matches, refusal
from .config import Settings
from .tokens import MAX_TOKEN_CHARS, TokenClaims, TokenError, verify

logger = logging.getLogger("realtime_gateway")

REVOKE_PATH = "/v1/tokens/revoke"
# A revocation request is a token in a small JSON object.
MAX_REVOKE_REQUEST_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked token: its nonce, its subject (the Durable Object's key), and until when to keep it."""

    token_id: str
    subject: str
    expires_at: int  # the token's own expiry (Unix seconds), for the answer
    keep_until: float  # Unix seconds: no session opened with the token can outlast this


def revocation_for(claims: TokenClaims, settings: Settings) -> Revocation:
    """The revocation of the token carrying ``claims``, kept as long as its sessions can last."""
    limits = [float(claims.max_session_seconds or 0), settings.max_session_seconds]
    allowance = min((limit for limit in limits if limit > 0), default=float(MAX_SESSION_SECONDS_LIMIT))
    return Revocation(claims.nonce, claims.subject, claims.expires_at, claims.expires_at + allowance)


class RevokeRequest(BaseModel):
    """The body of ``POST /v1/tokens/revoke``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)


def revoke_request(
    method: str, headers: Mapping[str, str], body: bytes | str, settings: Settings, now: float
) -> Revocation | HttpAnswer:
    """Read ``POST /v1/tokens/revoke`` (admin key, ``{"token": "<token>"}``): the revocation to
    carry out, or the answer refusing the request. ``headers`` must have lower-case names."""
    if method != "POST":
        return HttpAnswer(
            405,
            error_body("method_not_allowed", f"Revoke a token with POST {REVOKE_PATH}."),
            {"Allow": "POST"},
        )
    if settings.gateway_secret is None or settings.gateway_admin_key is None:
        missing = "GATEWAY_SECRET" if settings.gateway_secret is None else "GATEWAY_ADMIN_KEY"
        return HttpAnswer(
            501, error_body("tokens_disabled", f"This gateway does not revoke tokens: {missing} is not set.")
        )
    if not admin_key_matches(headers, settings.gateway_admin_key.get_secret_value()):
        return refusal(
            TokenError(
                "invalid_admin_key",
                f"POST {REVOKE_PATH} needs Authorization: Bearer <GATEWAY_ADMIN_KEY>.",
                401,
            )
        )
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_REVOKE_REQUEST_BYTES:
        return HttpAnswer(
            413,
            error_body(
                "request_too_large", f"A revocation request is at most {MAX_REVOKE_REQUEST_BYTES} bytes."
            ),
        )
    try:
        request = RevokeRequest.model_validate(json.loads(raw))
    except (ValueError, UnicodeDecodeError) as error:
        if isinstance(error, ValidationError):
            first = error.errors(include_input=False, include_url=False)[0]
            code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return HttpAnswer(400, error_body(code, f"{where}: {first['msg']}."))
        return HttpAnswer(
            400, error_body("invalid_json", 'The body must be a JSON object: {"token": "<token>"}.')
        )
    try:
        claims = verify(request.token, settings.gateway_secret.get_secret_value(), now, check_expiry=False)
    except TokenError as error:  # not a token this gateway signed: nothing to revoke
        return HttpAnswer(400, error_body(error.code, error.message))
    return revocation_for(claims, settings)


def revoked_answer(revocation: Revocation) -> HttpAnswer:
    """The answer once ``revocation`` is recorded (logged by subject, never by token)."""
    logger.warning("token revoked subject=%r expires_at=%d", revocation.subject, revocation.expires_at)
    return HttpAnswer(
        200, {"revoked": True, "subject": revocation.subject, "expires_at": revocation.expires_at}
    )


class RevocationList:
    """The revocations this process (or isolate) knows of itself: all of them without a fleet
    store, and those made through it with one (so they hold here even while the store is down)."""

    def __init__(self) -> None:
        self._keep_until: dict[str, float] = {}

    def add(self, revocation: Revocation, now: float) -> None:
        if revocation.keep_until <= now:
            return
        self._keep_until[revocation.token_id] = revocation.keep_until
        # Bounded by the tokens revoked within a token's lifetime: expired entries go on each add.
        for token_id in [name for name, until in self._keep_until.items() if until <= now]:
            del self._keep_until[token_id]

    def revoked(self, token_id: str, now: float) -> bool:
        until = self._keep_until.get(token_id)
        return until is not None and now < until

    def __len__(self) -> int:
        return len(self._keep_until)
