"""Gateway tokens: short-lived credentials the gateway signs itself, so clients never hold a provider key.

With ``GATEWAY_SECRET`` set, an operator (``POST /v1/tokens`` or ``realtime-gateway token``) mints a
token for a subject; a client presents it wherever it would put a provider key, and the gateway,
having verified it, opens the provider connection with the operator's own key.

Format
------
::

    rgw_<payload>.<signature>

- ``rgw_`` marks a gateway token (provider keys never start with it), and is signed too.
- ``<payload>``: base64url, unpadded, of compact JSON (keys in this order, no spaces)::

      {"v":1,"sub":"alice","iat":1767225600,"exp":1767226200,"nce":"<16 base64url chars>",
       "prv":["openai"],"mdl":["gpt-realtime"],"mss":900,"mcu":0.5}

  ``v`` format version (1); ``sub`` the subject (who the token is for: logged, never the token);
  ``iat`` / ``exp`` issued-at and expiry, Unix seconds; ``nce`` 12 random bytes, so two tokens
  minted in the same second differ; ``prv`` / ``mdl`` the providers and models the token may open
  (absent: any; a model ending in ``*`` matches by prefix); ``mss`` the longest session it may
  hold, in seconds (absent: no limit); ``mcu`` the most a session may cost, in USD (absent: no
  limit; see :mod:`shared.usage.budget`).
- ``<signature>``: base64url, unpadded, of HMAC-SHA256 keyed with ``GATEWAY_SECRET`` (UTF-8) over
  the ASCII text ``rgw_<payload>``. Compared with :func:`hmac.compare_digest`.

Every character is base64url, ``_`` or ``.``, all valid in an HTTP header, a query value and a
WebSocket subprotocol (``openai-insecure-api-key.<token>``, what browsers send).

Verification checks, in order: the shape (401 ``invalid_token``), the signature (401
``invalid_token``: forged, tampered or signed with another secret), the payload (401
``invalid_token``), the expiry (401 ``token_expired``). :func:`check_scope` then refuses a provider
or model the token does not allow (403 ``token_scope_denied``). Time is always passed in: this
module reads no clock. Nothing here puts a token or a secret in a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

TOKEN_PREFIX = "rgw_"
TOKEN_VERSION = 1
NONCE_BYTES = 12
# Bounds that keep a token small enough for a header or a subprotocol, and verification cheap.
MAX_TOKEN_CHARS = 4096
MAX_SUBJECT_CHARS = 128
MAX_SCOPE_ENTRIES = 32
MAX_SCOPE_ENTRY_CHARS = 128
# A token issued this far in the future is refused: clocks of two gateways may differ a little.
CLOCK_SKEW_SECONDS = 300


class TokenError(Exception):
    """A token that cannot be used: ``code`` and ``message`` are for the client, ``status`` the HTTP one.

    ``subject`` is set once the signature has been verified (for the log), else None.
    """

    def __init__(self, code: str, message: str, status: int, subject: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.subject = subject


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a token says. ``providers`` / ``models`` empty: any."""

    subject: str
    issued_at: int
    expires_at: int
    nonce: str
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    max_session_seconds: int | None = None
    max_cost_usd: float | None = None

    def payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "v": TOKEN_VERSION,
            "sub": self.subject,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "nce": self.nonce,
        }
        if self.providers:
            payload["prv"] = list(self.providers)
        if self.models:
            payload["mdl"] = list(self.models)
        if self.max_session_seconds is not None:
            payload["mss"] = self.max_session_seconds
        if self.max_cost_usd is not None:
            payload["mcu"] = self.max_cost_usd
        return payload


def new_claims(
    *,
    subject: str,
    now: float,
    ttl_seconds: int,
    providers: Sequence[str] = (),
    models: Sequence[str] = (),
    max_session_seconds: int | None = None,
    max_cost_usd: float | None = None,
    nonce: bytes | None = None,
) -> TokenClaims:
    """The claims of a token issued at ``now`` (Unix seconds) for ``ttl_seconds``."""
    if not subject or len(subject) > MAX_SUBJECT_CHARS or not subject.isprintable():
        raise ValueError(f"subject must be 1 to {MAX_SUBJECT_CHARS} printable characters")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    if max_session_seconds is not None and max_session_seconds <= 0:
        raise ValueError("max_session_seconds must be positive")
    if max_cost_usd is not None and not (math.isfinite(max_cost_usd) and max_cost_usd > 0):
        raise ValueError("max_cost_usd must be a positive number")
    for name, entries in (("providers", providers), ("models", models)):
        if len(entries) > MAX_SCOPE_ENTRIES:
            raise ValueError(f"at most {MAX_SCOPE_ENTRIES} {name}")
        if any(not entry or len(entry) > MAX_SCOPE_ENTRY_CHARS for entry in entries):
            raise ValueError(f"{name} must be 1 to {MAX_SCOPE_ENTRY_CHARS} characters each")
    issued_at = int(now)
    return TokenClaims(
        subject=subject,
        issued_at=issued_at,
        expires_at=issued_at + int(ttl_seconds),
        nonce=_b64encode(nonce if nonce is not None else os.urandom(NONCE_BYTES)),
        providers=tuple(providers),
        models=tuple(models),
        max_session_seconds=max_session_seconds,
        max_cost_usd=None if max_cost_usd is None else float(max_cost_usd),
    )


def sign(claims: TokenClaims, secret: str) -> str:
    """The token carrying ``claims``, signed with ``secret``."""
    payload = _b64encode(json.dumps(claims.payload(), separators=(",", ":")).encode())
    signed = TOKEN_PREFIX + payload
    return f"{signed}.{_b64encode(_mac(secret, signed))}"


def mint(
    secret: str,
    *,
    subject: str,
    now: float,
    ttl_seconds: int,
    providers: Sequence[str] = (),
    models: Sequence[str] = (),
    max_session_seconds: int | None = None,
    max_cost_usd: float | None = None,
) -> str:
    """A new token for ``subject``, valid from ``now`` (Unix seconds) for ``ttl_seconds``."""
    claims = new_claims(
        subject=subject,
        now=now,
        ttl_seconds=ttl_seconds,
        providers=providers,
        models=models,
        max_session_seconds=max_session_seconds,
        max_cost_usd=max_cost_usd,
    )
    return sign(claims, secret)


def looks_like_token(credential: str) -> bool:
    """Whether ``credential`` is meant as a gateway token (rather than a provider key)."""
    return credential.startswith(TOKEN_PREFIX)


def verify(token: str, secret: str, now: float, *, check_expiry: bool = True) -> TokenClaims:
    """The claims of a genuine, unexpired token; else :class:`TokenError` (HTTP 401).

    ``check_expiry=False`` takes an expired one too (to revoke it: its sessions may still be open).
    """
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX) or token.count(".") != 1:
        raise _invalid("The token is malformed.")
    signed, _, signature_text = token.rpartition(".")
    try:
        signature = _b64decode(signature_text)
    except ValueError:
        raise _invalid("The token is malformed.") from None
    if not hmac.compare_digest(_mac(secret, signed), signature):
        raise _invalid("The token's signature is not valid.")
    try:
        claims = _claims(json.loads(_b64decode(signed[len(TOKEN_PREFIX) :])))
    except (ValueError, TypeError, KeyError):
        raise _invalid("The token's payload is not valid.") from None
    if claims.issued_at > now + CLOCK_SKEW_SECONDS:
        raise TokenError("invalid_token", "The token is not valid yet.", 401, claims.subject)
    if check_expiry and now >= claims.expires_at:
        raise TokenError("token_expired", "The token has expired: ask for a new one.", 401, claims.subject)
    return claims


def check_scope(claims: TokenClaims, provider: str, models: Sequence[str] | None) -> None:
    """Refuse (HTTP 403) a provider, or a model, the token does not allow.

    ``models`` are the names the session is known by (as asked and after ``MODEL_ALIASES``); one
    allowed name is enough. None: no model is known yet (only the provider is checked).
    """
    if claims.providers and provider not in claims.providers:
        raise TokenError(
            "token_scope_denied",
            f"This token does not allow provider {provider!r}; it allows: {', '.join(claims.providers)}.",
            403,
            claims.subject,
        )
    if models is not None and claims.models and not any(model_allowed(claims.models, m) for m in models):
        raise TokenError(
            "token_scope_denied",
            f"This token does not allow model {models[0]!r}; it allows: {', '.join(claims.models)}.",
            403,
            claims.subject,
        )


def model_allowed(allowed: Sequence[str], model: str) -> bool:
    """``model`` is named in ``allowed``, or starts with an entry's text before its final ``*``."""
    for entry in allowed:
        if entry.endswith("*") and model.startswith(entry[:-1]):
            return True
        if entry == model:
            return True
    return False


# -- encoding -------------------------------------------------------------------------------------------


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode("ascii"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url (no padding, no stray characters) -> bytes, else ValueError."""
    if "=" in text:
        raise ValueError("padded")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
    if _b64encode(data) != text:  # refuses characters outside the alphabet and non-canonical ends
        raise ValueError("not canonical base64url")
    return data


def _claims(payload: object) -> TokenClaims:
    """Claims from a verified payload; ValueError/TypeError/KeyError when it is not one of ours."""
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        raise ValueError("unknown version")
    subject, issued_at, expires_at, nonce = payload["sub"], payload["iat"], payload["exp"], payload["nce"]
    providers, models = payload.get("prv", []), payload.get("mdl", [])
    max_session = payload.get("mss")
    max_cost = payload.get("mcu")
    if not (isinstance(subject, str) and isinstance(nonce, str)):
        raise TypeError("sub, nce")
    if not all(type(value) is int for value in (issued_at, expires_at)):
        raise TypeError("iat, exp")
    if max_session is not None and (type(max_session) is not int or max_session <= 0):
        raise TypeError("mss")
    if max_cost is not None and (
        type(max_cost) not in (int, float) or not math.isfinite(max_cost) or max_cost <= 0
    ):
        raise TypeError("mcu")
    for entries in (providers, models):
        if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
            raise TypeError("prv, mdl")
    return TokenClaims(
        subject=subject,
        issued_at=issued_at,
        expires_at=expires_at,
        nonce=nonce,
        providers=tuple(providers),
        models=tuple(models),
        max_session_seconds=max_session,
        max_cost_usd=None if max_cost is None else float(max_cost),
    )


def _invalid(message: str) -> TokenError:
    return TokenError("invalid_token", message, 401)
