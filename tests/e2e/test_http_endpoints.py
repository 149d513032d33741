"""OpenAI's realtime HTTP endpoints through a real gateway process, both runtimes, with the official SDK.

Every row of :data:`shared.http_routes.HTTP_ENDPOINTS` is called with the SDK method the table names
(``client.realtime.client_secrets.create``, ``client.realtime.calls.*``, ``client.live.create``,
``client.live.sessions.*``, ``client.realtime.translations.client_secrets.create``), through a gateway
that takes gateway tokens, to a fake of OpenAI's HTTP endpoints that is as strict as the SDK's types
(:mod:`support.fake_openai_http`). The fake asserts the key it received: the operator's, never the
token. Then the guarantees around them: a token's models and lifetime, the subject's rate, ALLOWED_ORIGINS
and CORS, the body limit, an ``ek_`` key minted through the gateway and presented to it later, Azure,
the simulator, and every provider failure (refused, 401, 429, 5xx, an HTML 502, dropped, hanging)
reaching the client in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
import pytest
import websockets
from conftest import OPERATOR_KEY
from openai import AsyncOpenAI
from support.fake_openai_http import FakeOpenAIHttp, HttpRequest, recording_bytes
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess, refused_port, start_gateway

from shared.http_routes import HTTP_ENDPOINTS
from shared.tokens import mint

GATEWAY_SECRET = "e2e-http-gateway-secret-0123456789abcdef"
AZURE_OPERATOR_KEY = "azure-operator-http-e2e-97531"
CLIENT_KEY = "sk-client-http-e2e-86420"
ORIGIN = "https://app.example.test"
RATE_LIMIT = 5
TIMEOUT_SECONDS = 2.0
OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sctp-port:5000\r\n"
)


@dataclass
class HttpGateway:
    process: GatewayProcess
    fake: FakeOpenAIHttp
    secrets: list[str] = field(default_factory=list)  # every key and token used: none may be logged

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.process.port}"

    def token(self, subject: str | None = None, ttl: int = 600, **claims: Any) -> str:
        """A token for a subject of its own (unless named): each test's starts count apart."""
        subject = subject or f"http-user-{next(SUBJECTS)}"
        issued = mint(GATEWAY_SECRET, subject=subject, now=time.time(), ttl_seconds=ttl, **claims)
        self.secrets.append(issued)
        return issued

    def client(self, key: str, path: str = "/v1", **options: Any) -> AsyncOpenAI:
        client = AsyncOpenAI(base_url=f"{self.origin}{path}", api_key=key, max_retries=0, **options)
        OPEN_CLIENTS.append(client)
        return client


SUBJECTS = itertools.count(1)
OPEN_CLIENTS: list[AsyncOpenAI] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Each test's SDK clients are closed on its own event loop."""
    yield
    while OPEN_CLIENTS:
        await OPEN_CLIENTS.pop().close()


@pytest.fixture(scope="module")
def fake_http() -> Iterator[FakeOpenAIHttp]:
    fake = FakeOpenAIHttp((OPERATOR_KEY, AZURE_OPERATOR_KEY, CLIENT_KEY)).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def http_gateway(
    runtime: str,
    fake_http: FakeOpenAIHttp,
    fake_upstream: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HttpGateway]:
    """A production gateway: tokens only, the operator's keys, one allowed origin, a small rate."""
    env = {
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "OPENAI_BASE_URL": fake_http.base,
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "AZURE_OPENAI_ENDPOINT": fake_http.origin,
        "AZURE_OPENAI_API_KEY": AZURE_OPERATOR_KEY,
        "ALLOWED_ORIGINS": ORIGIN,
        "SESSIONS_PER_MINUTE_PER_SUBJECT": str(RATE_LIMIT),
        "UPSTREAM_HTTP_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "SIMULATOR_PACE": "0",
    }
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-http") / "gateway.log")
    gateway = HttpGateway(process, fake_http, [OPERATOR_KEY, AZURE_OPERATOR_KEY, GATEWAY_SECRET])
    yield gateway
    process.stop()
    log = process.log()
    for secret in gateway.secrets:
        assert secret not in log


@pytest.fixture(scope="module")
def open_gateway(
    runtime: str, fake_http: FakeOpenAIHttp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpGateway]:
    """``make run``: the simulator by default, no key of its own, clients may send theirs."""
    env = {"DEFAULT_PROVIDER": "simulator", "OPENAI_BASE_URL": fake_http.base, "SIMULATOR_PACE": "0"}
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-http-open") / "gateway.log")
    yield HttpGateway(process, fake_http)
    process.stop()
    assert CLIENT_KEY not in process.log()


def the_one(requests: list[HttpRequest]) -> HttpRequest:
    assert len(requests) == 1, [(request.method, request.path) for request in requests]
    return requests[0]


def error_of(raised: pytest.ExceptionInfo[openai.APIStatusError], status: int, code: str) -> dict[str, Any]:
    """The gateway's (or the provider's) error, in OpenAI's shape, with ``status`` and ``code``."""
    error = raised.value
    assert error.status_code == status, error
    body = error.response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(body)
    assert body["code"] == code, body
    assert body["message"]
    return body


# -- every row of the table, with its SDK call -----------------------------------------------------------

Scenario = Callable[[AsyncOpenAI, FakeOpenAIHttp], Awaitable[Any]]


async def mint_secret(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> Any:
    secret = await client.realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
    )
    assert secret.value.startswith("ek_")
    assert secret.session.model == "gpt-realtime"
    assert secret.expires_at > time.time()
    return secret


async def mint_translation_secret(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> Any:
    secret = await client.realtime.translations.client_secrets.create(
        session={"model": "gpt-realtime-translate", "audio": {"output": {"language": "fr"}}},
        expires_after={"anchor": "created_at", "seconds": 300},
    )
    assert secret.value.startswith("ek_")
    assert secret.session.type == "translation"
    return secret


async def create_call(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> Any:
    answer = await client.realtime.calls.with_raw_response.create(
        sdp=OFFER, session={"type": "realtime", "model": "gpt-realtime"}
    )
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/sdp"
    location = answer.headers["location"]
    assert location.startswith("/v1/realtime/calls/rtc_")
    sdp = answer.content.decode()
    assert sdp.startswith("v=0\r\n")
    assert "a=mid:0" in sdp
    assert "a=mid:1" in sdp
    return location.rsplit("/", 1)[1]


async def accept_call(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    call_id = fake.incoming_call()
    await client.realtime.calls.accept(call_id, type="realtime", model="gpt-realtime", instructions="Hi.")
    assert fake.calls[call_id].state == "active"


async def hang_up_call(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    call_id = fake.incoming_call()
    fake.calls[call_id].state = "active"
    await client.realtime.calls.hangup(call_id)
    assert fake.calls[call_id].state == "ended"


async def refer_call(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    call_id = fake.incoming_call()
    fake.calls[call_id].state = "active"
    await client.realtime.calls.refer(call_id, target_uri="tel:+14155550123")


async def reject_call(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    call_id = fake.incoming_call()
    await client.realtime.calls.reject(call_id, status_code=486)
    assert fake.calls[call_id].state == "rejected"


async def create_live(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> Any:
    created = await client.live.create(
        session={"model": "gpt-live-1", "store": True, "instructions": "Hello."},
        transport={"type": "webrtc", "sdp": OFFER},
    )
    assert created.session.id.startswith("sess_live_")
    assert created.transport.type == "webrtc"
    assert created.transport.sdp.startswith("v=0")
    return created.session.id


async def accept_live(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    session_id = fake.incoming_call(live=True)
    await client.live.sessions.accept(session_id, session={"model": "gpt-live-1", "type": "live"})
    assert fake.calls[session_id].state == "active"


async def fork_live(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    session_id = fake.incoming_call(live=True, store=True)
    fake.calls[session_id].state = "active"
    fork = await client.live.sessions.fork(
        session_id, transport={"type": "webrtc", "sdp": OFFER}, session={"store": True}
    )
    assert fork.session.id != session_id
    assert fork.transport.sdp.startswith("v=0")


async def hang_up_live(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    session_id = fake.incoming_call(live=True)
    fake.calls[session_id].state = "active"
    await client.live.sessions.hangup(session_id)
    assert fake.calls[session_id].state == "ended"


async def refer_live(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    session_id = fake.incoming_call(live=True)
    fake.calls[session_id].state = "active"
    await client.live.sessions.refer(session_id, target_uri="sip:agent@example.com")


async def reject_live(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    session_id = fake.incoming_call(live=True)
    await client.live.sessions.reject(session_id, status_code=603)
    assert fake.calls[session_id].state == "rejected"


async def download_recording(client: AsyncOpenAI, fake: FakeOpenAIHttp) -> None:
    session_id = fake.incoming_call(live=True, store=True)
    fake.calls[session_id].state = "ended"
    recording = await client.live.sessions.download_recording(session_id)
    # Three times MAX_HTTP_BODY_BYTES: a provider's answer is streamed through, not held.
    assert recording.content == recording_bytes(session_id)


SCENARIOS: dict[str, Scenario] = {
    "realtime.client_secrets.create": mint_secret,
    "realtime.translations.client_secrets.create": mint_translation_secret,
    "realtime.calls.create": create_call,
    "realtime.calls.accept": accept_call,
    "realtime.calls.hangup": hang_up_call,
    "realtime.calls.refer": refer_call,
    "realtime.calls.reject": reject_call,
    "live.create": create_live,
    "live.sessions.accept": accept_live,
    "live.sessions.fork": fork_live,
    "live.sessions.hangup": hang_up_live,
    "live.sessions.refer": refer_live,
    "live.sessions.reject": reject_live,
    "live.sessions.download_recording": download_recording,
}


def test_every_endpoint_has_its_sdk_scenario() -> None:
    assert set(SCENARIOS) == {endpoint.name for endpoint in HTTP_ENDPOINTS}


@pytest.mark.parametrize("endpoint", HTTP_ENDPOINTS, ids=lambda endpoint: endpoint.name)
async def test_the_sdk_call_works_through_the_gateway_with_the_operators_key(
    http_gateway: HttpGateway, endpoint: Any
) -> None:
    fake = http_gateway.fake
    token = http_gateway.token(subject=f"row-{endpoint.name}")
    mark = fake.mark()
    await SCENARIOS[endpoint.name](http_gateway.client(token), fake)
    request = the_one(fake.requests_after(mark))
    assert request.method == endpoint.method
    assert request.path.startswith("/v1" + endpoint.path.split("{id}")[0])
    assert request.path.endswith(endpoint.path.split("{id}")[-1])
    assert 200 <= request.status < 300
    assert request.key == OPERATOR_KEY
    seen = json.dumps(request.headers) + json.dumps(request.query) + request.body.decode(errors="replace")
    assert token not in seen


# -- client secrets and a token's constraints ---------------------------------------------------------------


async def test_a_secret_for_a_model_outside_the_tokens_allowlist_is_refused_before_the_provider(
    http_gateway: HttpGateway,
) -> None:
    fake = http_gateway.fake
    client = http_gateway.client(http_gateway.token(models=["gpt-realtime"]))
    mark = fake.mark()
    with pytest.raises(openai.PermissionDeniedError) as raised:
        await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime-mini"}
        )
    assert "gpt-realtime-mini" in error_of(raised, 403, "token_scope_denied")["message"]
    with pytest.raises(openai.PermissionDeniedError):
        await client.live.create(session={"model": "gpt-live-1"}, transport={"type": "webrtc", "sdp": OFFER})
    assert fake.requests_after(mark) == []
    await client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
    assert the_one(fake.requests_after(mark)).key == OPERATOR_KEY


async def test_a_secret_lives_no_longer_than_the_token_that_minted_it(http_gateway: HttpGateway) -> None:
    fake = http_gateway.fake
    token = http_gateway.token(ttl=120)
    expires = time.time() + 120
    mark = fake.mark()
    secret = await http_gateway.client(token).realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime"},
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    asked = the_one(fake.requests_after(mark)).json()["expires_after"]
    assert asked["anchor"] == "created_at"
    assert 110 <= asked["seconds"] <= 120
    assert secret.expires_at <= expires + 1


async def test_minting_counts_against_the_subjects_rate(http_gateway: HttpGateway) -> None:
    client = http_gateway.client(http_gateway.token(subject="http-rate"))
    for _ in range(RATE_LIMIT):
        await client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
    with pytest.raises(openai.RateLimitError) as raised:
        await client.realtime.calls.create(sdp=OFFER)
    error_of(raised, 429, "rate_limited")
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= 60


async def test_an_ephemeral_key_minted_through_the_gateway_is_relayed_as_the_clients_own(
    http_gateway: HttpGateway, fake_upstream: FakeUpstream
) -> None:
    fake = http_gateway.fake
    token = http_gateway.token()
    secret = await http_gateway.client(token).realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime"}
    )
    http_gateway.secrets.append(secret.value)
    mark = fake.mark()
    answer = await http_gateway.client(secret.value).realtime.calls.with_raw_response.create(sdp=OFFER)
    assert answer.status_code == 201
    assert the_one(fake.requests_after(mark)).key == secret.value
    model = f"http-ek-{http_gateway.process.runtime}"
    url = http_gateway.process.url(model=model)
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {secret.value}"}
    ) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "session.created"
    assert fake_upstream.connection_for(model).headers["authorization"] == f"Bearer {secret.value}"


# -- refusals ---------------------------------------------------------------------------------------------


async def test_a_provider_key_is_refused_where_only_tokens_are_taken(http_gateway: HttpGateway) -> None:
    mark = http_gateway.fake.mark()
    with pytest.raises(openai.AuthenticationError) as raised:
        await http_gateway.client(CLIENT_KEY).realtime.calls.hangup("rtc_x")
    error_of(raised, 401, "invalid_token")
    assert http_gateway.fake.requests_after(mark) == []


async def test_a_body_over_the_limit_is_refused(http_gateway: HttpGateway) -> None:
    client = http_gateway.client(http_gateway.token())
    with pytest.raises(openai.APIStatusError) as raised:
        await client.realtime.calls.create(sdp=OFFER + "a=x-padding:" + "x" * (1024 * 1024) + "\r\n")
    error_of(raised, 413, "request_too_large")


async def test_browser_pages_need_a_listed_origin_and_get_cors_answers(http_gateway: HttpGateway) -> None:
    token = http_gateway.token()
    url = f"{http_gateway.origin}/v1/realtime/client_secrets"
    body = {"session": {"type": "realtime", "model": "gpt-realtime"}}
    async with httpx2.AsyncClient(timeout=10) as client:
        preflight = await client.options(
            url,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
        allowed = await client.post(
            url, json=body, headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        other = await client.post(
            url, json=body, headers={"Origin": "https://evil.test", "Authorization": f"Bearer {token}"}
        )
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in other.headers


# -- Azure -------------------------------------------------------------------------------------------------


async def test_azure_serves_client_secrets_and_calls_on_its_own_path_with_its_key(
    http_gateway: HttpGateway,
) -> None:
    fake = http_gateway.fake
    client = http_gateway.client(http_gateway.token(), path="/openai/v1")
    mark = fake.mark()
    await client.realtime.client_secrets.create(session={"type": "realtime", "model": "my-deployment"})
    minted = the_one(fake.requests_after(mark))
    assert minted.path == "/openai/v1/realtime/client_secrets"
    assert minted.headers["api-key"] == AZURE_OPERATOR_KEY
    assert "authorization" not in minted.headers
    answer = await client.realtime.calls.with_raw_response.create(sdp=OFFER)
    assert answer.status_code == 201
    assert answer.headers["location"].startswith("/openai/v1/realtime/calls/rtc_")  # Azure's was absolute
    with pytest.raises(openai.APIStatusError) as raised:
        await http_gateway.client(http_gateway.token()).live.create(
            session={"model": "gpt-live-1"},
            transport={"type": "webrtc", "sdp": OFFER},
            extra_query={"provider": "azure"},
        )
    assert "Azure" in error_of(raised, 501, "provider_unsupported")["message"]


# -- the simulator -----------------------------------------------------------------------------------------


async def test_make_run_mints_a_simulator_secret_that_opens_a_simulator_session(
    open_gateway: HttpGateway,
) -> None:
    client = open_gateway.client("unused-by-the-simulator")
    secret = await client.realtime.client_secrets.create(session={"type": "realtime", "instructions": "Hi."})
    assert secret.value.startswith("ek_sim_")
    assert secret.session.instructions == "Hi."
    url = open_gateway.process.url()
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {secret.value}"}
    ) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "session.created"
    with pytest.raises(openai.APIStatusError) as raised:
        await client.realtime.calls.create(sdp=OFFER)
    assert "provider=openai" in error_of(raised, 501, "provider_unsupported")["message"]


async def test_make_run_relays_a_clients_own_key_to_openai(open_gateway: HttpGateway) -> None:
    fake = open_gateway.fake
    mark = fake.mark()
    client = open_gateway.client(CLIENT_KEY)
    await client.realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime"}, extra_query={"provider": "openai"}
    )
    request = the_one(fake.requests_after(mark))
    assert request.key == CLIENT_KEY
    assert request.query == {}  # provider= is the gateway's


async def test_with_tokens_the_simulators_secret_is_signed_and_a_foreign_ek_opens_nothing(
    http_gateway: HttpGateway,
) -> None:
    client = http_gateway.client(http_gateway.token(models=["gpt-realtime"]))
    secret = await client.realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime"}, extra_query={"provider": "simulator"}
    )
    http_gateway.secrets.append(secret.value)
    assert secret.value.startswith("ek_sim_rgw_")
    url = http_gateway.process.url(provider="simulator", model="gpt-realtime")
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {secret.value}"}
    ) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "session.created"
    with pytest.raises(websockets.InvalidStatus) as raised:
        async with websockets.connect(
            url, additional_headers={"Authorization": "Bearer ek_not_a_gateway_one"}
        ):
            pass
    assert raised.value.response.status_code == 401


# -- provider failures ---------------------------------------------------------------------------------------


FAULTS = [
    pytest.param("fault-401", 502, {"upstream_unauthorized"}, id="401"),
    pytest.param("fault-403", 403, {"scripted"}, id="403"),
    pytest.param("fault-429", 429, {"scripted"}, id="429"),
    pytest.param("fault-500", 500, {"scripted"}, id="500"),
    pytest.param("fault-503", 503, {"scripted"}, id="503"),
    pytest.param("fault-html", 502, {"upstream_error"}, id="html-502"),
    # workerd's fetch says only that it failed: a dropped connection reads as a refused one there.
    pytest.param("fault-drop", 502, {"upstream_connection_lost", "upstream_unreachable"}, id="dropped"),
    pytest.param("fault-hang", 504, {"upstream_timeout"}, id="hang"),
]


@pytest.mark.parametrize(("fault", "status", "codes"), FAULTS)
@pytest.mark.parametrize("where", ["client_secrets", "hangup"])
async def test_every_provider_failure_reaches_the_client_in_openais_shape(
    http_gateway: HttpGateway, fault: str, status: int, codes: set[str], where: str
) -> None:
    client = http_gateway.client(http_gateway.token())
    started = time.monotonic()
    if where == "client_secrets":
        call = client.realtime.client_secrets.create(session={"type": "realtime", "model": fault})
    else:
        call = client.realtime.calls.hangup(fault)
    with pytest.raises(openai.APIStatusError) as raised:
        await call
    elapsed = time.monotonic() - started
    error = raised.value
    assert error.status_code == status
    body = error.response.json()["error"]
    assert body["code"] in codes, body
    assert OPERATOR_KEY not in error.response.text
    if fault == "fault-429":
        assert error.response.headers["retry-after"] == "7"
    if fault == "fault-hang":
        assert TIMEOUT_SECONDS <= elapsed < TIMEOUT_SECONDS + 5


async def test_a_refused_connection_is_a_502(runtime: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{refused_port()}/v1", "OPENAI_API_KEY": OPERATOR_KEY}
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-http-refused") / "gateway.log")
    try:
        client = AsyncOpenAI(
            base_url=f"http://127.0.0.1:{process.port}/v1", api_key=CLIENT_KEY, max_retries=0
        )
        with pytest.raises(openai.InternalServerError) as raised:
            await client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
        assert "Could not reach OpenAI" in error_of(raised, 502, "upstream_unreachable")["message"]
    finally:
        process.stop()


async def test_a_recording_cut_off_midway_is_not_passed_off_as_whole(http_gateway: HttpGateway) -> None:
    client = http_gateway.client(http_gateway.token())
    with pytest.raises(openai.APIConnectionError):
        await client.live.sessions.download_recording("fault-cut")


async def test_the_provider_refuses_out_of_order_commands_and_the_client_reads_why(
    http_gateway: HttpGateway,
) -> None:
    fake = http_gateway.fake
    client = http_gateway.client(http_gateway.token())
    call_id = await create_call(client, fake)  # a WebRTC call: active, not SIP
    with pytest.raises(openai.BadRequestError) as raised:
        await client.realtime.calls.accept(call_id, type="realtime")
    error_of(raised, 400, "invalid_call_state")
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.hangup("rtc_unknown")
    with pytest.raises(openai.BadRequestError) as unknown:
        await client.realtime.calls.accept(fake.incoming_call(), type="realtime", extra_body={"voices": "x"})
    assert error_of(unknown, 400, "unknown_parameter")["param"] == "voices"
