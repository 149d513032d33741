"""Ephemeral keys (``ek_…``): the client secrets a provider mints, and the simulator's own.

OpenAI's (and Azure's) ``POST /v1/realtime/client_secrets`` answers a short-lived key, ``ek_…``, that
a browser uses in place of an API key. The gateway relays such a key as the client's own in every
``AUTH_MODE``: only the provider can tell a valid one, and with it the client pays with the key
that minted it, never with the operator's (a gateway token holder minting through the gateway
used the operator's key then, within the token's scope and life; see :mod:`shared.http_relay`).

The simulator mints ``ek_sim_…`` keys. Minted for a gateway token, such a key wraps a gateway token
the gateway signs (``ek_sim_rgw_…``: the subject, ``prv`` the simulator only, the model, and the
secret's expiry), so a gateway that takes only tokens still takes it; otherwise it is random, as
any key opens a simulator session on a gateway that takes provider keys.
"""

from __future__ import annotations

import os

from .tokens import TokenClaims, looks_like_token, sign

EPHEMERAL_PREFIX = "ek_"
SIMULATOR_PREFIX = "ek_sim_"


def is_ephemeral_key(secret: str) -> bool:
    """A provider's ephemeral key (``ek_…``), not the simulator's signed one."""
    return secret.startswith(EPHEMERAL_PREFIX) and simulator_token(secret) is None


def simulator_token(secret: str) -> str | None:
    """The gateway token an ``ek_sim_rgw_…`` key wraps, else None."""
    if secret.startswith(SIMULATOR_PREFIX) and looks_like_token(secret[len(SIMULATOR_PREFIX) :]):
        return secret[len(SIMULATOR_PREFIX) :]
    return None


def simulator_secret(claims: TokenClaims | None, gateway_secret: str | None) -> str:
    """A simulator client secret: wrapping a signed token for ``claims``, else random."""
    if claims is not None and gateway_secret is not None:
        return SIMULATOR_PREFIX + sign(claims, gateway_secret)
    return SIMULATOR_PREFIX + os.urandom(16).hex()
