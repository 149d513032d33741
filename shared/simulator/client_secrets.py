"""``POST /v1/realtime/client_secrets`` answered by the simulator, in OpenAI's shape.

The answer is ``{"value": "ek_sim_…", "expires_at": …, "session": {…}}``: the session is the
simulator's default session with the request's ``session`` applied, checked as strictly as a
``session.update`` (an unknown field is a 400 ``unknown_parameter``). The key opens simulator
sessions on this gateway (``/v1/realtime?provider=simulator``); the session configuration is not
carried over to them (send ``session.update``), and the simulator has no WebRTC, so the key's use
is trying the flow offline up to a WebSocket session.
"""

from __future__ import annotations

from typing import Any

from ..ephemeral import simulator_secret
from ..tokens import TokenClaims, new_claims
from .config import SessionUpdateError, apply_update, default_session
from .ids import IdMaker


def simulated_client_secret(
    session_request: Any,
    model: str,
    seconds: int,
    claims: TokenClaims | None,
    gateway_secret: str | None,
    now: float,
) -> dict[str, Any]:
    """The minted secret for a request whose ``session`` is ``session_request`` (None: defaults).

    ``seconds`` is the secret's lifetime (already checked and capped); ``claims`` the gateway token
    it was minted with, if any. Raises :class:`SessionUpdateError` for a session the simulator
    cannot take.
    """
    if session_request is not None and not isinstance(session_request, dict):
        raise SessionUpdateError("invalid_type", "session must be an object.", "session")
    session = default_session(IdMaker().new("sess"), model)
    apply_update(session, session_request or {})
    expires_at = int(now) + seconds
    session["expires_at"] = expires_at
    minted = None
    if claims is not None:
        minted = new_claims(
            subject=claims.subject,
            now=now,
            ttl_seconds=seconds,
            providers=("simulator",),
            models=(model,),
            max_session_seconds=claims.max_session_seconds,
        )
    return {"value": simulator_secret(minted, gateway_secret), "expires_at": expires_at, "session": session}
