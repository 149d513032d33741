"""Gateway tokens and origins on a real gateway process, both runtimes.

The gateway holds the operator's key and a GATEWAY_SECRET (so AUTH_MODE is ``token``); tokens are
minted over ``POST /v1/tokens`` with the admin key. A token presented as a key (bearer header,
browser subprotocol, the SDK's ``api_key``) opens a session whose provider connection carries the
operator's key and never the token; a bad token, scope or origin is refused with an HTTP answer
before the upgrade. Models are named ``auth-...-<runtime>`` so the fake provider's records of these
tests are their own.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from conftest import OPERATOR_KEY
from openai import AsyncOpenAI
from support.fake_upstream import FakeUpstream, UpstreamConnection
from support.gateway_process import GatewayProcess, start_gateway

from shared.tokens import mint

GATEWAY_SECRET = "e2e-gateway-secret-fedcba9876543210-0123"
OTHER_SECRET = "e2e-other-secret-0123456789abcdef-fedcba"
ADMIN_KEY = "e2e-admin-key-7a41c0"
ALLOWED_ORIGIN = "https://app.example.test"
CLIENT_KEY = "sk-client-key-auth-24680"


@dataclass
class AuthGateway:
    process: GatewayProcess
    tokens: list[str] = field(default_factory=list)  # every token a test used: none may be logged

    def model(self, name: str) -> str:
        return f"auth-{name}-{self.process.runtime}"

    def mint(self, subject: str = "e2e-user", **body: Any) -> str:
        status, answer = post_token(self.process, {"subject": subject, **body})
        assert status == 200, answer
        assert answer["subject"] == subject
        assert answer["expires_at"] > time.time()
        self.tokens.append(answer["token"])
        return answer["token"]

    def local_token(self, secret: str = GATEWAY_SECRET, now: float | None = None, **claims: Any) -> str:
        """A token minted here (the test knows the secret), e.g. one that expired an hour ago."""
        token = mint(
            secret,
            subject="e2e-local",
            now=time.time() if now is None else now,
            ttl_seconds=claims.pop("ttl_seconds", 600),
            **claims,
        )
        self.tokens.append(token)
        return token


@pytest.fixture(scope="module")
def auth_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthGateway]:
    env = {
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "GATEWAY_ADMIN_KEY": ADMIN_KEY,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "ALLOWED_ORIGINS": f"{ALLOWED_ORIGIN}, http://localhost:5173",
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
    }
    log = tmp_path_factory.mktemp(f"{runtime}-auth") / "gateway.log"
    process = start_gateway(runtime, env, log)
    yield AuthGateway(process)
    process.stop()


def post_token(
    gateway: GatewayProcess,
    body: Any,
    admin_key: str | None = ADMIN_KEY,
    method: str = "POST",
    path: str = "/v1/tokens",
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if admin_key is not None:
        headers["Authorization"] = f"Bearer {admin_key}"
    data = json.dumps(body).encode() if method == "POST" else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.port}{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def recv_json(socket: websockets.ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def refused(url: str, status: int, code: str, **connect: Any) -> dict[str, Any]:
    """Connect, expect the upgrade refused with ``status`` and an OpenAI-shaped JSON body; return it."""
    with pytest.raises(websockets.InvalidStatus) as raised:
        async with websockets.connect(url, open_timeout=10, **connect):
            pass
    response = raised.value.response
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


async def events_until_closed(url: str, **connect: Any) -> tuple[list[dict[str, Any]], int]:
    """Connect, collect every event until the gateway closes; return them and the close code."""
    events: list[dict[str, Any]] = []
    async with websockets.connect(url, **connect) as socket:
        try:
            while True:
                events.append(await recv_json(socket, timeout=5))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "the gateway must close with a code, not drop the connection"
            return events, closed.rcvd.code
    raise AssertionError("connection did not close")


def assert_operator_key_only(seen: UpstreamConnection, token: str) -> None:
    """The provider got the operator's key, and the token nowhere."""
    assert seen.headers["authorization"] == f"Bearer {OPERATOR_KEY}"
    assert all(token not in value for value in seen.headers.values())
    assert all(token not in value for value in seen.query.values())


def never_reached_upstream(fake_upstream: FakeUpstream, model: str) -> bool:
    return all(
        model not in (c.query.get("model"), c.query.get("deployment")) for c in fake_upstream.connections
    )


# -- minting ---------------------------------------------------------------------------------------------


def test_minting_needs_the_admin_key(auth_gateway: AuthGateway) -> None:
    for admin_key in (None, "wrong-admin-key", GATEWAY_SECRET):
        status, body = post_token(auth_gateway.process, {"subject": "u"}, admin_key=admin_key)
        assert status == 401
        assert body["error"]["code"] == "invalid_admin_key"
    status, body = post_token(auth_gateway.process, None, method="GET")
    assert status == 405


def test_bad_token_requests_are_refused(auth_gateway: AuthGateway) -> None:
    for body, code in (
        ({}, "missing_required_parameter"),
        ({"subject": "u", "ttl_seconds": 86400}, "invalid_value"),  # over TOKEN_MAX_TTL_SECONDS
        ({"subject": "u", "providers": ["elsewhere"]}, "invalid_value"),
    ):
        status, answer = post_token(auth_gateway.process, body)
        assert status == 400
        assert answer["error"]["code"] == code


# -- sessions with a token -------------------------------------------------------------------------------


async def test_a_bearer_token_opens_a_session_with_the_operator_key(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("bearer")
    token = auth_gateway.mint(providers=["openai"], models=[model])
    url = auth_gateway.process.url(model=model)
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        created = await recv_json(socket)
        assert created["type"] == "session.created"
        assert created["session"]["model"] == model
    assert_operator_key_only(fake_upstream.connection_for(model), token)


async def test_a_subprotocol_token_opens_a_session_as_a_browser_would(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("subprotocol")
    token = auth_gateway.mint(models=[model])
    async with websockets.connect(
        auth_gateway.process.url(model=model),
        subprotocols=["realtime", f"openai-insecure-api-key.{token}"],  # type: ignore[list-item]
        origin=ALLOWED_ORIGIN,  # type: ignore[arg-type]
    ) as socket:
        assert socket.subprotocol == "realtime"
        assert (await recv_json(socket))["type"] == "session.created"
    assert_operator_key_only(fake_upstream.connection_for(model), token)


async def test_the_openai_sdk_takes_a_token_as_its_api_key(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("sdk")
    token = auth_gateway.mint(models=[model])
    client = AsyncOpenAI(api_key=token, websocket_base_url=f"{auth_gateway.process.base}/v1")
    async with client.realtime.connect(model=model) as connection:
        event = await asyncio.wait_for(connection.recv(), 5)
        assert event.type == "session.created"
    assert_operator_key_only(fake_upstream.connection_for(model), token)


async def test_max_session_seconds_ends_the_session(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("max-session")
    token = auth_gateway.mint(models=[model], max_session_seconds=1)
    started = time.monotonic()
    url = auth_gateway.process.url(model=model)
    events, close = await events_until_closed(url, additional_headers={"Authorization": f"Bearer {token}"})
    assert close == 1008
    assert 0.9 <= time.monotonic() - started < 4
    assert events[0]["type"] == "session.created"
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "session_expired"
    assert fake_upstream.connection_for(model).closed.wait(5)  # the provider side is closed too


# -- refusals before the upgrade -------------------------------------------------------------------------


async def test_no_token_and_a_provider_key_are_refused(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("no-token")
    url = auth_gateway.process.url(model=model)
    await refused(url, 401, "missing_token")
    body = await refused(
        url, 401, "invalid_token", additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert CLIENT_KEY not in json.dumps(body)
    await refused(auth_gateway.process.url(provider="simulator"), 401, "missing_token")
    assert never_reached_upstream(fake_upstream, model)


async def test_expired_and_forged_tokens_are_refused(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("bad-token")
    url = auth_gateway.process.url(model=model)
    expired = auth_gateway.local_token(now=time.time() - 3600)
    forged = auth_gateway.local_token(secret=OTHER_SECRET)
    genuine = auth_gateway.local_token(models=["auth-something-else"])
    signature = genuine.rpartition(".")[2]
    tampered = auth_gateway.local_token(models=[model]).rpartition(".")[0] + "." + signature
    for token, code in ((expired, "token_expired"), (forged, "invalid_token"), (tampered, "invalid_token")):
        body = await refused(url, 401, code, additional_headers={"Authorization": f"Bearer {token}"})
        assert token not in json.dumps(body)
    # The subprotocol form is refused the same way (a browser sees only a failed connection).
    await refused(url, 401, "token_expired", subprotocols=["realtime", f"openai-insecure-api-key.{expired}"])
    assert never_reached_upstream(fake_upstream, model)


async def test_a_token_outside_its_scope_is_forbidden(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    allowed, other = auth_gateway.model("scope-allowed"), auth_gateway.model("scope-other")
    token = auth_gateway.mint(providers=["openai"], models=[allowed])
    bearer = {"Authorization": f"Bearer {token}"}
    await refused(auth_gateway.process.url(model=other), 403, "token_scope_denied", additional_headers=bearer)
    await refused(
        auth_gateway.process.url(provider="simulator"), 403, "token_scope_denied", additional_headers=bearer
    )
    assert never_reached_upstream(fake_upstream, other)


async def test_a_page_on_another_origin_is_forbidden(
    auth_gateway: AuthGateway, fake_upstream: FakeUpstream
) -> None:
    model = auth_gateway.model("origin")
    token = auth_gateway.mint(models=[model])
    url = auth_gateway.process.url(model=model)
    protocols = ["realtime", f"openai-insecure-api-key.{token}"]
    await refused(url, 403, "origin_not_allowed", subprotocols=protocols, origin="https://evil.example.test")
    assert never_reached_upstream(fake_upstream, model)
    async with websockets.connect(url, subprotocols=protocols, origin="http://localhost:5173") as socket:  # type: ignore[arg-type]
        assert (await recv_json(socket))["type"] == "session.created"


# -- last: the log ---------------------------------------------------------------------------------------


async def test_stats_count_open_sessions_for_the_admin_only(auth_gateway: AuthGateway) -> None:
    gateway = auth_gateway.process

    def stats(admin_key: str | None = ADMIN_KEY, method: str = "GET") -> tuple[int, dict[str, Any]]:
        return post_token(gateway, None, admin_key, method, path="/debug/stats")

    assert stats(admin_key=None)[0] == 401
    assert stats(admin_key="not-the-admin-key")[1]["error"]["code"] == "invalid_admin_key"
    assert stats(method="POST")[0] == 405

    async def idle() -> dict[str, Any]:
        """The stats once no session is open (those of earlier tests end within a moment)."""
        for _ in range(100):
            status, answer = await asyncio.to_thread(stats)
            assert status == 200, answer
            if answer["sessions_open"] == 0:
                return answer
            await asyncio.sleep(0.05)
        raise AssertionError(f"sessions still open: {answer}")

    before = await idle()
    assert before["runtime"] == gateway.runtime
    assert isinstance(before["limit_hits"], dict)
    model = auth_gateway.model("stats")
    token = auth_gateway.mint(models=[model])
    url = gateway.url(model=model)
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        await recv_json(socket)
        _, during = await asyncio.to_thread(stats)
        assert during["sessions_open"] == 1
    after = await idle()  # counted out once both of its sockets are closed
    if gateway.runtime == "standalone":
        assert after["asyncio_tasks"] >= 1
        assert after["open_fds"] > 0
        assert after["rss_bytes"] > 0
        assert after["asyncio_tasks"] <= before["asyncio_tasks"] + 1  # none left behind by the session


def test_tokens_and_keys_never_logged(auth_gateway: AuthGateway) -> None:
    """Runs after the other tests of this module, which used tokens every way a client can."""
    log = auth_gateway.process.log()
    assert "subject='e2e-user'" in log  # sessions and minting are logged by subject
    assert "token_expired" in log
    assert len(auth_gateway.tokens) >= 8
    for secret in (*auth_gateway.tokens, GATEWAY_SECRET, ADMIN_KEY, OPERATOR_KEY, CLIENT_KEY, "rgw_"):
        assert secret not in log
