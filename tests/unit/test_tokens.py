"""Gateway tokens, AUTH_MODE, ALLOWED_ORIGINS and ``POST /v1/tokens``, without sockets.

Time is a number the test passes in; nothing here sleeps or opens a socket.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from pydantic import ValidationError

from shared import auth, tokens
from shared.actions import CloseClient, CloseUpstream, SendToClient
from shared.answers import HttpAnswer
from shared.auth import origin_allowed, token_answer
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.relay import Relay, State
from shared.routes import TOKENS_PATH, http_answer
from shared.tokens import TokenClaims, TokenError, check_scope, mint, new_claims, sign, verify
from standalone.cli import main as cli_main

SECRET = "unit-gateway-secret-0123456789abcdef"
OTHER_SECRET = "another-gateway-secret-0123456789abcd"
ADMIN_KEY = "unit-admin-key-5f2c9e"
OPERATOR_KEY = "sk-operator-unit-tokens-8642"
CLIENT_KEY = "sk-client-unit-tokens-1357"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TOKEN_SHAPE = re.compile(r"^rgw_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$")  # 32-byte MAC, unpadded


def settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {"OPENAI_REALTIME_URL": "wss://api.openai.test/v1/realtime", "OPENAI_API_KEY": OPERATOR_KEY, **values}
    )


def token_settings(**values: str) -> Settings:
    return settings(GATEWAY_SECRET=SECRET, GATEWAY_ADMIN_KEY=ADMIN_KEY, **values)


def a_token(secret: str = SECRET, now: float = NOW, ttl: int = 600, **scope: Any) -> str:
    return mint(secret, subject="alice", now=now, ttl_seconds=ttl, **scope)


def payload_of(token: str) -> dict[str, Any]:
    payload = token[len("rgw_") :].partition(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(token: str, secret: str = SECRET, now: float = NOW) -> TokenError:
    with pytest.raises(TokenError) as raised:
        verify(token, secret, now)
    if token:
        assert token not in raised.value.message
    assert secret not in raised.value.message
    return raised.value


# -- the format ------------------------------------------------------------------------------------------


def test_mint_then_verify_gives_back_the_claims() -> None:
    token = a_token(providers=["openai"], models=["gpt-realtime"], max_session_seconds=900)
    claims = verify(token, SECRET, NOW + 10)
    assert claims.subject == "alice"
    assert claims.issued_at == int(NOW)
    assert claims.expires_at == int(NOW) + 600
    assert claims.providers == ("openai",)
    assert claims.models == ("gpt-realtime",)
    assert claims.max_session_seconds == 900


def test_the_format_is_prefix_payload_dot_signature() -> None:
    token = a_token(providers=["openai"], models=["gpt-realtime"], max_session_seconds=900)
    assert TOKEN_SHAPE.match(token), token
    payload = payload_of(token)
    assert list(payload) == ["v", "sub", "iat", "exp", "nce", "prv", "mdl", "mss"]
    assert payload["v"] == 1
    assert (payload["sub"], payload["iat"], payload["exp"]) == ("alice", int(NOW), int(NOW) + 600)
    assert len(base64.urlsafe_b64decode(payload["nce"] + "==")) == tokens.NONCE_BYTES
    # The signature is HMAC-SHA256 of "rgw_<payload>" keyed with the secret, unpadded base64url.
    signed, _, signature = token.rpartition(".")
    assert signature == b64(hmac.new(SECRET.encode(), signed.encode(), "sha256").digest())


def test_unrestricted_claims_are_left_out_of_the_payload() -> None:
    assert list(payload_of(a_token())) == ["v", "sub", "iat", "exp", "nce"]


def test_a_token_fits_every_place_a_key_goes() -> None:
    token = a_token(providers=["openai", "azure"], models=["gpt-realtime*"], max_session_seconds=60)
    tchar = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 7230: a subprotocol is a token
    assert tchar.match("openai-insecure-api-key." + token)
    assert "=" not in token
    assert urlencode({"api_key": token}) == f"api_key={token}"


def test_two_tokens_minted_in_the_same_second_differ() -> None:
    assert a_token() != a_token()


def test_the_nonce_can_be_given_and_then_the_token_is_deterministic() -> None:
    claims = new_claims(subject="alice", now=NOW, ttl_seconds=60, nonce=b"\0" * 12)
    assert sign(claims, SECRET) == sign(claims, SECRET)
    assert verify(sign(claims, SECRET), SECRET, NOW).nonce == "A" * 16


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "x" * 129}, "subject"),
        ({"subject": "line\nbreak"}, "subject"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"max_session_seconds": 0}, "max_session_seconds"),
        ({"models": [""]}, "models"),
        ({"providers": ["openai"] * 33}, "providers"),
    ],
)
def test_claims_out_of_bounds_are_refused_at_minting(changes: dict[str, Any], error: str) -> None:
    arguments: dict[str, Any] = {"subject": "alice", "now": NOW, "ttl_seconds": 60, **changes}
    with pytest.raises(ValueError, match=error):
        mint(SECRET, **arguments)


# -- verification ----------------------------------------------------------------------------------------


def test_a_token_is_valid_until_just_before_it_expires() -> None:
    token = a_token(ttl=600)
    assert verify(token, SECRET, NOW + 599.9).subject == "alice"
    error = refused(token, now=NOW + 600)
    assert (error.code, error.status, error.subject) == ("token_expired", 401, "alice")


def test_a_token_from_the_future_is_refused() -> None:
    token = a_token(now=NOW + tokens.CLOCK_SKEW_SECONDS + 60)
    assert verify(token, SECRET, NOW + 120).subject == "alice"  # small clock differences are fine
    assert (refused(token).code, refused(token).status) == ("invalid_token", 401)


def test_a_tampered_payload_is_refused() -> None:
    token = a_token(providers=["simulator"])
    signature = token.rpartition(".")[2]
    payload = payload_of(token)
    for change in ({"prv": ["openai"]}, {"exp": payload["exp"] + 86400}, {"sub": "mallory"}):
        forged_payload = b64(json.dumps({**payload, **change}, separators=(",", ":")).encode())
        error = refused(f"rgw_{forged_payload}.{signature}")
        assert (error.code, error.status, error.subject) == ("invalid_token", 401, None)


def test_a_tampered_signature_is_refused() -> None:
    token = a_token()
    signed, _, signature = token.rpartition(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert refused(f"{signed}.{flipped}").code == "invalid_token"
    assert refused(f"{signed}.{signature[:-2]}").code == "invalid_token"  # truncated
    assert refused(f"{signed}.").code == "invalid_token"


def test_a_token_signed_with_another_secret_is_refused() -> None:
    error = refused(a_token(secret=OTHER_SECRET))
    assert (error.code, error.status) == ("invalid_token", 401)
    assert "signature" in error.message


@pytest.mark.parametrize(
    "token",
    [
        "",
        "rgw_",
        "rgw_.",
        "rgw_abc",
        "rgw_a.b.c",
        "sk-not-a-token",
        "rgw_eyJ2IjoxfQ.sig=",
        "rgw_eyJ2IjoxfQ.s!g",
        "rgw_" + "A" * 5000 + ".AAAA",
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    error = refused(token)
    assert (error.code, error.status) == ("invalid_token", 401)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        b'{"v": 2, "sub": "a", "iat": 1, "exp": 9999999999, "nce": "n"}',
        b'{"v": 1, "sub": "a", "iat": 1, "nce": "n"}',
        b'{"v": 1, "sub": 7, "iat": 1, "exp": 9999999999, "nce": "n"}',
        b'{"v": 1, "sub": "a", "iat": 1, "exp": "later", "nce": "n"}',
        b'{"v": 1, "sub": "a", "iat": 1, "exp": 9999999999, "nce": "n", "prv": "openai"}',
        b'{"v": 1, "sub": "a", "iat": 1, "exp": 9999999999, "nce": "n", "mss": -5}',
    ],
)
def test_a_genuine_signature_over_a_payload_that_is_not_ours_is_refused(payload: bytes) -> None:
    signed = "rgw_" + b64(payload)
    token = f"{signed}.{b64(hmac.new(SECRET.encode(), signed.encode(), 'sha256').digest())}"
    assert refused(token).code == "invalid_token"


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    verify(a_token(), SECRET, NOW)
    refused(a_token(secret=OTHER_SECRET))
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)


# -- scope -----------------------------------------------------------------------------------------------


def claims(**scope: Any) -> TokenClaims:
    return new_claims(subject="alice", now=NOW, ttl_seconds=60, **scope)


def test_an_unrestricted_token_allows_any_provider_and_model() -> None:
    check_scope(claims(), "azure", ("anything",))


def test_a_provider_outside_the_scope_is_forbidden() -> None:
    check_scope(claims(providers=["openai", "simulator"]), "simulator", ("m",))
    with pytest.raises(TokenError) as raised:
        check_scope(claims(providers=["openai"]), "azure", ("m",))
    assert (raised.value.code, raised.value.status, raised.value.subject) == (
        "token_scope_denied",
        403,
        "alice",
    )
    assert "azure" in raised.value.message


def test_a_model_outside_the_scope_is_forbidden() -> None:
    scoped = claims(models=["gpt-realtime", "gpt-realtime-mini-*"])
    check_scope(scoped, "openai", ("gpt-realtime",))
    check_scope(scoped, "openai", ("gpt-realtime-mini-2025-10-06",))
    # Either name of an aliased model is enough: as asked, or as the provider is asked.
    check_scope(scoped, "openai", ("gpt-4o-realtime-preview", "gpt-realtime"))
    for model in ("gpt-realtime-2", "gpt-realtime-mini", "o3"):
        with pytest.raises(TokenError) as raised:
            check_scope(scoped, "openai", (model,))
        assert (raised.value.code, raised.value.status) == ("token_scope_denied", 403)


# -- settings --------------------------------------------------------------------------------------------


def test_auth_mode_defaults_to_token_with_a_secret_and_passthrough_without() -> None:
    assert settings().effective_auth_mode == "passthrough"
    assert settings(GATEWAY_SECRET=SECRET).effective_auth_mode == "token"
    assert settings(GATEWAY_SECRET=SECRET, AUTH_MODE="both").effective_auth_mode == "both"
    assert settings(GATEWAY_SECRET=SECRET, AUTH_MODE="passthrough").effective_auth_mode == "passthrough"
    assert settings(GATEWAY_SECRET="", AUTH_MODE="").effective_auth_mode == "passthrough"


@pytest.mark.parametrize(
    "values",
    [
        {"AUTH_MODE": "token"},
        {"AUTH_MODE": "both"},
        {"AUTH_MODE": "tokens", "GATEWAY_SECRET": SECRET},
        {"GATEWAY_SECRET": "too-short"},
        {"TOKEN_DEFAULT_TTL_SECONDS": "7200"},
        {"TOKEN_MAX_TTL_SECONDS": "0"},
    ],
)
def test_inconsistent_auth_settings_are_refused(values: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)


def test_secrets_do_not_show_in_repr() -> None:
    text = repr(token_settings())
    assert SECRET not in text
    assert ADMIN_KEY not in text


def test_allowed_origins_are_parsed_and_normalised() -> None:
    parsed = settings(ALLOWED_ORIGINS=" https://App.Example.com/ ,, http://localhost:3000,*").allowed_origins
    assert parsed == ("https://app.example.com", "http://localhost:3000", "*")
    assert settings(ALLOWED_ORIGINS="").allowed_origins == ()


# -- the handshake in each AUTH_MODE ---------------------------------------------------------------------


def handshake(
    config: Settings,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    now: float | None = NOW,
) -> SessionPlan | HttpAnswer:
    return plan_session(
        "/v1/realtime", urlencode(query or {"model": "gpt-realtime"}), headers or {}, config, now
    )


def upstream_of(outcome: SessionPlan | HttpAnswer) -> tuple[dict[str, str], dict[str, str]]:
    """(query, headers) of the provider handshake a plan asks for."""
    assert isinstance(outcome, SessionPlan), outcome
    assert outcome.error is None, outcome.error
    assert outcome.upstream is not None
    return dict(parse_qsl(urlsplit(outcome.upstream.url).query)), outcome.upstream.headers


def refusal_of(outcome: SessionPlan | HttpAnswer, status: int, code: str) -> dict[str, Any]:
    assert isinstance(outcome, HttpAnswer), outcome
    assert outcome.status == status
    body = json.loads(outcome.json())
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    if status == 401:
        assert outcome.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def token_forms(token: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(headers, query) for each way a client can present a credential."""
    return [
        ({"authorization": f"Bearer {token}"}, {}),
        ({"api-key": token}, {}),
        ({"sec-websocket-protocol": f"realtime, openai-insecure-api-key.{token}"}, {}),
        ({}, {"api_key": token}),
        ({}, {"apiKey": token}),
    ]


@pytest.mark.parametrize("form", range(5), ids=["bearer", "api-key", "subprotocol", "api_key", "apiKey"])
@pytest.mark.parametrize("mode", ["token", "both"])
def test_a_token_in_any_key_form_opens_a_session_with_the_operator_key(form: int, mode: str) -> None:
    token = a_token(max_session_seconds=300)
    headers, query = token_forms(token)[form]
    outcome = handshake(token_settings(AUTH_MODE=mode), headers, {"model": "gpt-realtime", **query})
    upstream_query, upstream_headers = upstream_of(outcome)
    assert upstream_headers == {"Authorization": f"Bearer {OPERATOR_KEY}"}
    assert upstream_query == {"model": "gpt-realtime"}
    assert token not in repr(outcome)
    assert isinstance(outcome, SessionPlan)
    assert (outcome.subject, outcome.max_session_seconds) == ("alice", 300)
    if form == 2:
        assert outcome.subprotocol == "realtime"  # never the token back


def test_token_mode_refuses_a_session_without_a_token() -> None:
    refusal_of(handshake(token_settings()), 401, "missing_token")
    refusal_of(handshake(token_settings(), query={"provider": "simulator"}), 401, "missing_token")


def test_token_mode_refuses_a_provider_key() -> None:
    body = refusal_of(
        handshake(token_settings(), {"authorization": f"Bearer {CLIENT_KEY}"}), 401, "invalid_token"
    )
    assert CLIENT_KEY not in json.dumps(body)


@pytest.mark.parametrize("mode", ["token", "both"])
def test_bad_tokens_are_refused_before_the_upgrade(mode: str) -> None:
    config = token_settings(AUTH_MODE=mode)
    for token, code in (
        (a_token(now=NOW - 601), "token_expired"),
        (a_token(secret=OTHER_SECRET), "invalid_token"),
        ("rgw_garbage", "invalid_token"),
    ):
        body = refusal_of(handshake(config, {"authorization": f"Bearer {token}"}), 401, code)
        assert token not in json.dumps(body)


@pytest.mark.parametrize("mode", ["token", "both"])
def test_a_token_outside_its_scope_is_forbidden(mode: str) -> None:
    config = token_settings(AUTH_MODE=mode)
    token = a_token(providers=["openai"], models=["gpt-realtime"])
    bearer = {"authorization": f"Bearer {token}"}
    refusal_of(handshake(config, bearer, {"model": "gpt-realtime-mini"}), 403, "token_scope_denied")
    refusal_of(handshake(config, bearer, {"provider": "simulator"}), 403, "token_scope_denied")
    refusal_of(handshake(config, bearer, {"provider": "nope"}), 403, "token_scope_denied")
    # The default model, aliased to its GA successor, is the same model as far as the scope goes.
    upstream_of(handshake(config, bearer, {"model": "gpt-4o-realtime-preview"}))


def test_a_token_opens_the_simulator_without_any_provider_key() -> None:
    config = Settings.from_mapping({"GATEWAY_SECRET": SECRET})
    outcome = handshake(config, {"authorization": f"Bearer {a_token()}"}, {"provider": "simulator"})
    assert isinstance(outcome, SessionPlan)
    assert (outcome.provider, outcome.error, outcome.upstream) == ("simulator", None, None)


def test_a_token_for_a_provider_the_operator_has_no_key_for_is_an_error_event() -> None:
    config = Settings.from_mapping({"GATEWAY_SECRET": SECRET})
    outcome = handshake(config, {"authorization": f"Bearer {a_token()}"})
    assert isinstance(outcome, SessionPlan)
    assert outcome.error is not None
    assert outcome.error.code == "provider_not_configured"


def test_both_mode_passes_a_provider_key_on() -> None:
    config = token_settings(AUTH_MODE="both")
    for headers, query in token_forms(CLIENT_KEY):
        outcome = handshake(config, headers, {"model": "gpt-realtime", **query})
        assert upstream_of(outcome)[1] == {"Authorization": f"Bearer {CLIENT_KEY}"}
        assert isinstance(outcome, SessionPlan)
        assert (outcome.subject, outcome.max_session_seconds) == (None, None)


def test_both_mode_refuses_a_request_with_no_credential() -> None:
    refusal_of(handshake(token_settings(AUTH_MODE="both")), 401, "missing_token")


def test_passthrough_mode_is_unchanged() -> None:
    config = settings()
    assert upstream_of(handshake(config, {"authorization": f"Bearer {CLIENT_KEY}"}))[1] == {
        "Authorization": f"Bearer {CLIENT_KEY}"
    }
    assert upstream_of(handshake(config))[1] == {"Authorization": f"Bearer {OPERATOR_KEY}"}
    assert isinstance(plan_session("/v1/realtime", "model=m", {}, config), SessionPlan)  # no time needed


def test_passthrough_mode_refuses_a_token_instead_of_passing_it_on() -> None:
    for config in (settings(), token_settings(AUTH_MODE="passthrough")):
        refusal_of(handshake(config, {"authorization": f"Bearer {a_token()}"}), 401, "tokens_not_accepted")


def test_verifying_a_token_needs_the_time() -> None:
    with pytest.raises(ValueError, match="now"):
        handshake(token_settings(), {"authorization": f"Bearer {a_token()}"}, now=None)


def test_the_log_names_the_subject_never_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime_gateway")
    good, expired = a_token(), a_token(now=NOW - 3600)
    config = token_settings()
    outcome = handshake(config, {"authorization": f"Bearer {good}"})
    assert isinstance(outcome, SessionPlan)
    Relay(outcome, config, 0.0).client_connected(0.0)
    handshake(config, {"authorization": f"Bearer {expired}"})
    handshake(config, {"authorization": f"Bearer {a_token(secret=OTHER_SECRET)}"})
    assert "subject='alice'" in caplog.text
    assert "token_expired" in caplog.text
    for secret in (good, expired, SECRET, OPERATOR_KEY, "rgw_"):
        assert secret not in caplog.text


# -- origins ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        ("https://app.example.com", ("https://app.example.com",), True),
        ("HTTPS://App.Example.com", ("https://app.example.com",), True),
        ("https://app.example.com", ("*",), True),
        ("https://evil.example", ("https://app.example.com",), False),
        ("http://app.example.com", ("https://app.example.com",), False),
        ("https://app.example.com:8443", ("https://app.example.com",), False),
        ("https://app.example.com.evil.test", ("https://app.example.com",), False),
        ("https://eu.app.example.com", ("https://*.example.com",), True),
        ("https://example.com", ("https://*.example.com",), False),
        ("https://evilexample.com", ("https://*.example.com",), False),
        ("http://eu.example.com", ("https://*.example.com",), False),
        ("null", ("https://app.example.com",), False),
    ],
)
def test_origin_matching(origin: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert origin_allowed(origin, allowed) is expected


def test_a_disallowed_origin_is_forbidden_before_the_upgrade() -> None:
    config = settings(ALLOWED_ORIGINS="https://app.example.com")
    bearer = {"authorization": f"Bearer {CLIENT_KEY}"}
    refusal_of(handshake(config, {**bearer, "origin": "https://evil.example"}), 403, "origin_not_allowed")
    upstream_of(handshake(config, {**bearer, "origin": "https://app.example.com"}))
    upstream_of(handshake(config, bearer))  # no Origin: not a browser


def test_without_allowed_origins_any_origin_may_connect() -> None:
    upstream_of(handshake(settings(), {"origin": "https://anywhere.example"}))


def test_the_origin_is_checked_before_the_token() -> None:
    config = token_settings(ALLOWED_ORIGINS="https://app.example.com")
    refusal_of(handshake(config, {"origin": "https://evil.example"}), 403, "origin_not_allowed")
    bearer = {"authorization": f"Bearer {a_token()}"}
    refusal_of(handshake(config, {**bearer, "origin": "https://evil.example"}), 403, "origin_not_allowed")
    upstream_of(handshake(config, {**bearer, "origin": "https://app.example.com"}))


# -- max session seconds in the relay --------------------------------------------------------------------


def token_relay(now: float, provider: str = "openai", max_session: int = 30) -> Relay:
    config = token_settings(UPSTREAM_CONNECT_TIMEOUT_SECONDS="10", SIMULATOR_PACE="0")
    token = a_token(max_session_seconds=max_session)
    outcome = handshake(config, {"authorization": f"Bearer {token}"}, {"provider": provider, "model": "m"})
    assert isinstance(outcome, SessionPlan)
    return Relay(outcome, config, now)


def assert_session_expired(actions: list[Any], close_upstream: bool = True) -> None:
    *sends, close = actions
    assert close == CloseClient(1008, close.reason)
    events = [json.loads(action.data) for action in sends if isinstance(action, SendToClient)]
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "session_expired"
    assert "30 s" in events[-1]["error"]["message"]
    assert any(isinstance(action, CloseUpstream) for action in sends) is close_upstream


def test_max_session_seconds_ends_an_open_session() -> None:
    relay = token_relay(now=100.0)
    relay.client_connected(100.0)
    assert relay.upstream_connected(100.5) == []
    relay.upstream_frame('{"type":"session.created"}')
    assert relay.next_deadline() == 130.0
    assert relay.tick(129.9) == []
    actions = relay.tick(130.0)
    assert_session_expired(actions)
    assert relay.state is State.CLOSED
    assert relay.next_deadline() is None
    assert relay.tick(200.0) == []


def test_max_session_seconds_while_connecting_comes_before_the_connect_timeout() -> None:
    relay = token_relay(now=0.0, max_session=30)
    relay.client_connected(0.0)
    assert relay.next_deadline() == 10.0  # the connect timeout comes first
    relay = token_relay(now=0.0, max_session=5)
    relay.client_connected(0.0)
    assert relay.next_deadline() == 5.0


def test_max_session_seconds_ends_a_simulator_session() -> None:
    relay = token_relay(now=0.0, provider="simulator")
    relay.client_connected(0.0)
    assert relay.next_deadline() == 30.0  # nothing else to wait for: the simulator is idle
    actions = relay.tick(30.0)
    assert_session_expired(actions)


def test_a_session_without_a_token_has_no_length_limit() -> None:
    # Only the gateway's own limits, turned off here (tests/unit/test_limits.py covers them).
    config = settings(
        UPSTREAM_CONNECT_TIMEOUT_SECONDS="10", MAX_SESSION_SECONDS="0", IDLE_TIMEOUT_SECONDS="0"
    )
    outcome = handshake(config, {"authorization": f"Bearer {CLIENT_KEY}"})
    assert isinstance(outcome, SessionPlan)
    relay = Relay(outcome, config, 0.0)
    relay.client_connected(0.0)
    relay.upstream_connected(1.0)
    relay.upstream_frame('{"type":"session.created"}')
    assert relay.next_deadline() is None


# -- POST /v1/tokens -------------------------------------------------------------------------------------

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}


def post(
    body: Any,
    headers: dict[str, str] | None = None,
    config: Settings | None = None,
    method: str = "POST",
) -> HttpAnswer:
    raw = body if isinstance(body, bytes | str) else json.dumps(body).encode()
    return token_answer(
        method, TOKENS_PATH, ADMIN if headers is None else headers, raw, config or token_settings(), NOW
    )


def error_code(answer: HttpAnswer, status: int) -> str:
    assert answer.status == status, answer
    body = json.loads(answer.json())
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"]
    return body["error"]["code"]


def test_minting_over_http() -> None:
    answer = post(
        {
            "subject": "user-42",
            "ttl_seconds": 120,
            "providers": ["openai"],
            "models": ["gpt-realtime"],
            "max_session_seconds": 900,
        }
    )
    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = json.loads(answer.json())
    assert body["expires_at"] == int(NOW) + 120
    assert body["subject"] == "user-42"
    assert TOKEN_SHAPE.match(body["token"])
    claims = verify(body["token"], SECRET, NOW)
    assert (claims.subject, claims.expires_at) == ("user-42", int(NOW) + 120)
    assert (claims.providers, claims.models, claims.max_session_seconds) == (
        ("openai",),
        ("gpt-realtime",),
        900,
    )


def test_minting_defaults_to_an_unrestricted_token_for_the_default_ttl() -> None:
    answer = post('{"subject": "u"}', config=token_settings(TOKEN_DEFAULT_TTL_SECONDS="42"))
    claims = verify(json.loads(answer.json())["token"], SECRET, NOW)
    assert claims.expires_at == int(NOW) + 42
    assert (claims.providers, claims.models, claims.max_session_seconds) == ((), (), None)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-admin-key"},
        {"authorization": f"Basic {ADMIN_KEY}"},
        {"authorization": f"Bearer {ADMIN_KEY}x"},
        {"authorization": f"Bearer {SECRET}"},
    ],
)
def test_minting_needs_the_admin_key(headers: dict[str, str]) -> None:
    answer = post({"subject": "u"}, headers)
    assert error_code(answer, 401) == "invalid_admin_key"
    assert ADMIN_KEY not in answer.json()


def test_the_admin_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert post({"subject": "u"}, {"authorization": "Bearer nope"}).status == 401
    assert post({"subject": "u"}).status == 200
    assert calls[:2] == [b"nope", ADMIN_KEY.encode()]


def test_minting_without_a_secret_or_an_admin_key_is_not_available() -> None:
    answer = post({"subject": "u"}, config=settings(GATEWAY_ADMIN_KEY=ADMIN_KEY))
    assert error_code(answer, 501) == "tokens_disabled"
    assert "GATEWAY_SECRET" in answer.json()
    answer = post({"subject": "u"}, config=settings(GATEWAY_SECRET=SECRET))
    assert error_code(answer, 501) == "tokens_disabled"
    assert "GATEWAY_ADMIN_KEY" in answer.json()


def test_minting_takes_only_post() -> None:
    answer = post({"subject": "u"}, method="GET")
    assert error_code(answer, 405) == "method_not_allowed"
    assert answer.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ([], "invalid_value"),
        ({}, "missing_required_parameter"),
        ({"subject": ""}, "invalid_value"),
        ({"subject": "u", "ttl_seconds": 0}, "invalid_value"),
        ({"subject": "u", "ttl_seconds": 3601}, "invalid_value"),
        ({"subject": "u", "providers": ["elsewhere"]}, "invalid_value"),
        ({"subject": "u", "models": [""]}, "invalid_value"),
        ({"subject": "u", "max_session_seconds": -1}, "invalid_value"),
        ({"subject": "u", "max_session_seconds": 86401}, "invalid_value"),
        ({"subject": "u", "scopes": ["admin"]}, "invalid_value"),
        ({"subject": "bad\nsubject"}, "invalid_value"),
    ],
)
def test_bad_token_requests_are_refused(body: Any, code: str) -> None:
    assert error_code(post(body), 400) == code


def test_a_huge_token_request_is_refused() -> None:
    assert error_code(post({"subject": "u", "pad": "x" * 20000}), 413) == "request_too_large"


def test_minting_logs_the_subject_not_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime_gateway")
    token = json.loads(post({"subject": "user-42"}).json())["token"]
    post({"subject": "u"}, {"authorization": "Bearer wrong-admin-key"})
    assert "token minted subject='user-42'" in caplog.text
    for secret in (token, ADMIN_KEY, "wrong-admin-key", SECRET):
        assert secret not in caplog.text


def test_the_tokens_path_is_not_a_realtime_endpoint() -> None:
    answer = http_answer("GET", TOKENS_PATH, wants_websocket=True)
    assert answer is not None
    assert answer.status == 404


# -- the CLI ---------------------------------------------------------------------------------------------


def test_the_cli_prints_a_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GATEWAY_SECRET", SECRET)
    argv = ["token", "--subject", "ops", "--ttl", "60", "--provider", "openai", "--model", "gpt-realtime"]
    assert cli_main([*argv, "--max-session-seconds", "30"]) == 0
    token = capsys.readouterr().out.strip()
    assert TOKEN_SHAPE.match(token)
    claims = verify(token, SECRET, payload_of(token)["iat"])
    assert claims.subject == "ops"
    assert claims.expires_at - claims.issued_at == 60
    assert (claims.providers, claims.models, claims.max_session_seconds) == (
        ("openai",),
        ("gpt-realtime",),
        30,
    )


def test_the_cli_needs_the_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GATEWAY_SECRET", raising=False)
    with pytest.raises(SystemExit) as raised:
        cli_main(["token", "--subject", "ops"])
    assert raised.value.code == 2
    assert "GATEWAY_SECRET" in capsys.readouterr().err
