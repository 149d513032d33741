"""The rest of the realtime surface through the gateway, both runtimes: the sideband of a call
(``client.realtime.connect(call_id=...)``), realtime translation
(``client.realtime.translations.connect(model=...)``), and every guarantee ``/v1/realtime`` has,
on every WebSocket endpoint: gateway tokens (the operator's key goes upstream, never the token),
their scopes and session limits, ALLOWED_ORIGINS, admission, provider failures in the endpoint's
own error shape, pings (standalone), and no key in any log.

The call sideband and translation speak Realtime's error shape (``error.event_id``); the GPT-Live
endpoints their own (``client_event_id``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from clients.harness import speech_pcm16
from conftest import OPERATOR_KEY
from openai import AsyncOpenAI
from openai.types.live import ErrorEvent as LiveErrorEvent
from openai.types.realtime import RealtimeErrorEvent
from support.fake_live import HEARD, TRANSLATION
from support.fake_upstream import REPLY_TEXT, FakeUpstream
from support.fault_upstream import FaultUpstream
from support.gateway_process import GatewayProcess, start_gateway

from shared.tokens import mint

CLIENT_KEY = "sk-endpoints-client-key-8642"
LIVE_MODEL = "gpt-live-1"
TRANSLATE_MODEL = "gpt-realtime-translate"
CALL_ID = "rtc_e2e_call_42"
EVENT_TIMEOUT = 10.0
AUDIO_CHUNK_BYTES = 4800
GATEWAY_SECRET = "e2e-endpoints-secret-0123456789abcdef-fedc"
ALLOWED_ORIGIN = "https://app.example.test"
PING_SECONDS = 1.0


def sdk(gateway: GatewayProcess, key: str = CLIENT_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, websocket_base_url=f"{gateway.base}/v1", max_retries=0)


async def events_until(connection: Any, last: str, timeout: float = EVENT_TIMEOUT) -> list[Any]:
    events = []
    async with asyncio.timeout(timeout):
        while True:
            events.append(await connection.recv())
            if events[-1].type == last:
                return events


async def until_closed(connection: Any, timeout: float = EVENT_TIMEOUT) -> tuple[list[Any], int | None]:
    events = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                events.append(await connection.recv())
        except websockets.ConnectionClosed as closed:
            return events, closed.rcvd.code if closed.rcvd else None


async def raw_until_closed(socket: websockets.ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    events = []
    async with asyncio.timeout(EVENT_TIMEOUT):
        try:
            while True:
                events.append(json.loads(await socket.recv()))
        except websockets.ConnectionClosed as closed:
            return events, closed.rcvd.code if closed.rcvd else None


def assert_realtime_error(event: Any, code: str, client_event_id: str | None = None) -> None:
    """Realtime's ``error`` event (the SDK's type): the client's id as ``error.event_id``."""
    event = RealtimeErrorEvent.model_validate(event if isinstance(event, dict) else event.model_dump())
    assert event.error.code == code, event
    assert event.error.message
    assert event.error.event_id == client_event_id
    assert event.event_id.startswith("event_")


def assert_live_error(event: Any, code: str, client_event_id: str | None = None) -> None:
    event = LiveErrorEvent.model_validate(event if isinstance(event, dict) else event.model_dump())
    assert event.error.code == code, event
    assert event.error.message
    assert event.error.client_event_id == client_event_id
    assert event.client_event_id == client_event_id


def speech_chunks() -> list[str]:
    pcm = speech_pcm16()
    return [
        base64.b64encode(pcm[i : i + AUDIO_CHUNK_BYTES]).decode()
        for i in range(0, len(pcm), AUDIO_CHUNK_BYTES)
    ]


# -- the sideband of a call ------------------------------------------------------------------------


async def test_a_call_sideband_controls_the_call(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    async with sdk(gateway).realtime.connect(call_id=CALL_ID) as call:
        await call.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        (updated,) = await events_until(call, "session.updated")
        await call.response.create()
        events = await events_until(call, "response.done")
    upstream = fake_upstream.connection_after(mark)
    upstream.closed.wait(5)
    assert updated.session.output_modalities == ["text"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == REPLY_TEXT
    assert upstream.path == "/v1/realtime"
    assert upstream.query == {"call_id": CALL_ID}  # no model: the call has one
    assert upstream.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert upstream.errors == []


async def test_a_call_sideband_on_azure(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    mark = fake_upstream.mark()
    url = gateway.url("/v1/realtime", call_id=CALL_ID, provider="azure")
    async with websockets.connect(url, additional_headers={"api-key": CLIENT_KEY}) as socket:
        await socket.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT))["type"] == "session.updated"
    upstream = fake_upstream.connection_after(mark)
    assert upstream.path == "/openai/v1/realtime"
    assert upstream.query == {"call_id": CALL_ID}
    assert upstream.headers["api-key"] == CLIENT_KEY


CALL_ERRORS = {"c1": "missing_required_parameter", "c2": "unknown_event_type", "c3": "invalid_audio"}


async def test_bad_input_on_a_call_gets_realtimes_error(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    async with sdk(gateway).realtime.connect(call_id=CALL_ID) as call:
        for event in (
            {"type": "session.update", "event_id": "c1"},
            {"type": "response.nonsense", "event_id": "c2"},
            {"type": "input_audio_buffer.append", "audio": "!!", "event_id": "c3"},
        ):
            await call.send_raw(json.dumps(event))
            (error,) = await events_until(call, "error")
            assert_realtime_error(error, CALL_ERRORS[event["event_id"]], event["event_id"])
    upstream = fake_upstream.connection_after(mark)
    upstream.closed.wait(5)
    assert upstream.frames == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"call_id": "rtc_x", "provider": "simulator"}, "call_not_found"),
        ({"call_id": "rtc/../x"}, "invalid_value"),
        ({"call_id": "rtc_x", "provider": "azure", "protocol": "beta"}, None),  # beta asks change nothing
    ],
)
async def test_what_a_call_sideband_cannot_be(
    gateway: GatewayProcess, fake_upstream: FakeUpstream, query: dict[str, str], code: str | None
) -> None:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with websockets.connect(gateway.url("/v1/realtime", **query), additional_headers=headers) as socket:
        if code is None:
            await socket.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            assert (
                json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT))["type"] == "session.updated"
            )
            return
        events, close = await raw_until_closed(socket)
    (error,) = events
    assert_realtime_error(error, code)
    assert close == 1008


async def test_a_call_the_provider_does_not_know(gateway: GatewayProcess) -> None:
    async with sdk(gateway).realtime.connect(call_id="call_unknown") as call:
        events, close = await until_closed(call)
    (error,) = events
    assert_realtime_error(error, "upstream_not_found")
    assert close == 1008


# -- realtime translation ------------------------------------------------------------------------------


async def test_a_translation(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    mark = fake_upstream.mark()
    async with sdk(gateway).realtime.translations.connect(model=TRANSLATE_MODEL) as translation:
        (created,) = await events_until(translation, "session.created")
        await translation.session.update(
            session={
                "audio": {
                    "input": {"transcription": {"model": "gpt-4o-transcribe"}},
                    "output": {"language": "es"},
                }
            }
        )
        (updated,) = await events_until(translation, "session.updated")
        for chunk in speech_chunks():
            await translation.session.input_audio_buffer.append(audio=chunk)
        await translation.session.close()  # the provider flushes what it heard first
        events, close = await until_closed(translation)
    upstream = fake_upstream.connection_after(mark)
    assert created.session.type == "translation"
    assert created.session.model == TRANSLATE_MODEL
    assert updated.session.audio.input.transcription.model == "gpt-4o-transcribe"
    assert "".join(e.delta for e in events if e.type == "session.input_transcript.delta") == HEARD
    said = "".join(e.delta for e in events if e.type == "session.output_transcript.delta")
    assert said.strip() == TRANSLATION
    assert events[-1].type == "session.closed"
    assert any(e.type == "session.output_audio.delta" for e in events)
    assert close == 1000
    assert upstream.path == "/v1/realtime/translations"
    assert upstream.query == {"model": TRANSLATE_MODEL}
    assert upstream.errors == []


async def test_bad_translation_input_gets_realtimes_error(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    async with sdk(gateway).realtime.translations.connect(model=TRANSLATE_MODEL) as translation:
        await events_until(translation, "session.created")
        for event, code in (
            (
                {"type": "session.input_audio_buffer.append", "audio": "@@@@", "event_id": "t1"},
                "invalid_audio",
            ),
            ({"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "t2"}, "unknown_event_type"),
            (
                {
                    "type": "session.update",
                    "session": {"audio": {"output": {"language": 7}}},
                    "event_id": "t3",
                },
                "invalid_value",
            ),
        ):
            await translation.send_raw(json.dumps(event))
            (error,) = await events_until(translation, "error")
            assert_realtime_error(error, code, event["event_id"])
    upstream = fake_upstream.connection_after(mark)
    upstream.closed.wait(5)
    assert upstream.frames == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"model": TRANSLATE_MODEL, "provider": "azure"}, "endpoint_not_supported"),
        ({"model": TRANSLATE_MODEL, "provider": "simulator"}, "endpoint_not_supported"),
        ({}, "missing_required_parameter"),
    ],
)
async def test_what_a_translation_cannot_be(
    gateway: GatewayProcess, query: dict[str, str], code: str
) -> None:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    url = gateway.url("/v1/realtime/translations", **query)
    async with websockets.connect(url, additional_headers=headers) as socket:
        events, close = await raw_until_closed(socket)
    (error,) = events
    assert_realtime_error(error, code)
    assert close == 1008


# -- provider failures, each endpoint in its own shape -------------------------------------------------


def _opener(endpoint: str, client: AsyncOpenAI) -> Any:
    return {
        "live": lambda: client.live.connect(),
        "live_attach": lambda: client.live.sideband.connect(session_id="sess_any"),
        "live_fork": lambda: client.live.forks.connect(session_id="sess_any"),
        "realtime_call": lambda: client.realtime.connect(call_id=CALL_ID),
        "translations": lambda: client.realtime.translations.connect(model="reject-429"),
    }[endpoint]()


@pytest.mark.parametrize("endpoint", ["live", "live_attach", "live_fork", "realtime_call", "translations"])
async def test_a_rate_limited_provider_in_each_endpoints_shape(
    gateway: GatewayProcess, endpoint: str
) -> None:
    async with _opener(endpoint, sdk(gateway, key="scenario-reject-429")) as connection:
        events, close = await until_closed(connection)
    (error,) = events
    check = assert_live_error if endpoint.startswith("live") else assert_realtime_error
    check(error, "upstream_rate_limited")
    assert "HTTP 429" in error.error.message
    assert close == 1013


@pytest.mark.parametrize("endpoint", ["live_attach", "realtime_call", "translations"])
async def test_an_unreachable_provider_in_each_endpoints_shape(
    unreachable_gateway: GatewayProcess, endpoint: str
) -> None:
    client = sdk(unreachable_gateway)
    opener = (
        client.realtime.translations.connect(model=TRANSLATE_MODEL)
        if endpoint == "translations"
        else _opener(endpoint, client)
    )
    async with opener as connection:
        events, close = await until_closed(connection)
    (error,) = events
    check = assert_live_error if endpoint.startswith("live") else assert_realtime_error
    check(error, "upstream_unreachable")
    assert close == 1014


def test_plain_http_to_each_websocket_endpoint_is_told_to_upgrade(gateway: GatewayProcess) -> None:
    base = f"http://127.0.0.1:{gateway.port}"
    for path in ("/v1/live/sessions", "/v1/live/sessions/sess_1/attach", "/v1/realtime/translations"):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(base + path)
        assert raised.value.code == 426, path
        assert raised.value.headers["Upgrade"] == "websocket"
        assert "WebSocket" in json.load(raised.value)["error"]["message"]
    for path in ("/v1/live/sessions/a.b/attach", "/v1/live/sessions/sess_1/nope", "/v1/live"):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(base + path)
        assert raised.value.code == 404, path


# -- tokens, origins, limits -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A public gateway: gateway tokens only, the operator's key, one browser origin, one session at
    a time per subject."""
    env = {
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "OPENAI_BASE_URL": fake_upstream.openai_base,
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        "MAX_SESSIONS_PER_SUBJECT": "1",
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
    }
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-guarded") / "gateway.log")
    yield process
    process.stop()


TOKENS: list[str] = []  # every token minted here: none may be logged or reach the provider


def token(subject: str, **claims: Any) -> str:
    minted = mint(GATEWAY_SECRET, subject=subject, now=time.time(), ttl_seconds=600, **claims)
    TOKENS.append(minted)
    return minted


async def test_a_token_opens_every_endpoint_with_the_operators_key(
    guarded_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    # A subject each: MAX_SESSIONS_PER_SUBJECT is 1 on this gateway.
    async with sdk(guarded_gateway, key=token("tok-live")).live.connect() as live:
        await live.session.start(session={"model": LIVE_MODEL})
        (started,) = await events_until(live, "session.started")
        side = sdk(guarded_gateway, key=token("tok-sideband"))
        async with side.live.sideband.connect(session_id=started.session.id) as sideband:
            await sideband.session.input_audio.mute()
            await events_until(sideband, "session.input_audio.muted")
    async with sdk(guarded_gateway, key=token("tok-call")).realtime.connect(call_id=CALL_ID) as call:
        await call.session.update(session={"type": "realtime"})
        await events_until(call, "session.updated")
    translations = sdk(guarded_gateway, key=token("tok-translation")).realtime.translations
    async with translations.connect(model=TRANSLATE_MODEL) as translation:
        await events_until(translation, "session.created")
    upstreams = fake_upstream.wait_for(lambda c: c[mark:] if len(c) >= mark + 4 else None)
    assert [c.path for c in upstreams] == [
        "/v1/live/sessions",
        f"/v1/live/sessions/{started.session.id}/attach",
        "/v1/realtime",
        "/v1/realtime/translations",
    ]
    for upstream in upstreams:
        assert upstream.headers["authorization"] == f"Bearer {OPERATOR_KEY}"
        assert all(minted not in json.dumps(upstream.headers) for minted in TOKENS)


async def test_a_tokens_model_scope_applies_to_session_start(
    guarded_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    async with sdk(guarded_gateway, key=token("tok-scope", models=["gpt-live-1*"])).live.connect() as live:
        await live.session.start(session={"model": "gpt-live-2"}, event_id="no")
        (refused,) = await events_until(live, "error")
        await live.session.start(session={"model": "gpt-live-1.1"}, event_id="yes")
        (started,) = await events_until(live, "session.started")
    assert_live_error(refused, "token_scope_denied", "no")
    assert refused.error.param == "session.model"
    assert started.session.model == "gpt-live-1.1"
    upstream = fake_upstream.connection_after(mark)
    assert [event["session"]["model"] for event in upstream.received] == ["gpt-live-1.1"]


@pytest.mark.parametrize(
    ("path", "claims", "code"),
    [
        ("/v1/live/sessions/sess_1/attach", {"models": ["gpt-live-1"]}, "token_scope_denied"),
        ("/v1/live/sessions", {"providers": ["simulator"]}, "token_scope_denied"),
        (
            "/v1/realtime/translations?model=gpt-realtime-translate",
            {"models": ["gpt-realtime"]},
            "token_scope_denied",
        ),
        ("/v1/live/sessions", None, "missing_token"),
    ],
)
async def test_refusals_before_the_upgrade(
    guarded_gateway: GatewayProcess, path: str, claims: dict[str, Any] | None, code: str
) -> None:
    headers = {} if claims is None else {"Authorization": f"Bearer {token('tok-refused', **claims)}"}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(guarded_gateway.base + path, additional_headers=headers):
            pass
    answer = refused.value.response
    assert answer.status_code == (401 if claims is None else 403)
    assert json.loads(answer.body)["error"]["code"] == code


@pytest.mark.parametrize(
    "path",
    [
        "/v1/live/sessions",
        "/v1/live/sessions/sess_1/fork",
        "/v1/realtime?call_id=rtc_1",
        "/v1/realtime/translations?model=m",
    ],
)
async def test_origins_apply_to_every_endpoint(guarded_gateway: GatewayProcess, path: str) -> None:
    headers = {"Authorization": f"Bearer {token('tok-origin')}", "Origin": "https://evil.example.test"}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(guarded_gateway.base + path, additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"]["code"] == "origin_not_allowed"
    headers["Origin"] = ALLOWED_ORIGIN
    async with websockets.connect(guarded_gateway.base + path, additional_headers=headers):
        pass


async def test_a_tokens_session_limit_ends_a_live_session(guarded_gateway: GatewayProcess) -> None:
    started = time.monotonic()
    async with sdk(guarded_gateway, key=token("tok-short", max_session_seconds=1)).live.connect() as live:
        await live.session.start(session={"model": LIVE_MODEL})
        events, close = await until_closed(live)
    assert [event.type for event in events] == ["session.started", "error"]
    assert_live_error(events[1], "session_expired")
    assert close == 1008
    assert 1 <= time.monotonic() - started < 5


async def test_one_session_at_a_time_per_subject_on_live(guarded_gateway: GatewayProcess) -> None:
    client = sdk(guarded_gateway, key=token("tok-one"))
    async with client.live.connect() as first:
        await first.session.start(session={"model": LIVE_MODEL})
        await events_until(first, "session.started")
        async with client.live.connect() as second:
            events, close = await until_closed(second)
    (error,) = events
    assert_live_error(error, "too_many_sessions")
    assert close == 1013


def test_no_key_or_token_in_the_logs(gateway: GatewayProcess, guarded_gateway: GatewayProcess) -> None:
    for process in (gateway, guarded_gateway):
        log = process.log()
        assert "endpoint=realtime_call " in log
        assert "endpoint=translations " in log
        for secret in (OPERATOR_KEY, CLIENT_KEY, GATEWAY_SECRET, *TOKENS):
            assert secret not in log


# -- pings (standalone) --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_upstream() -> Iterator[FaultUpstream]:
    upstream = FaultUpstream().start()
    yield upstream
    upstream.release()
    upstream.stop()


async def test_a_live_provider_that_stops_answering_pings(
    runtime: str, fault_upstream: FaultUpstream, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """PING_INTERVAL_SECONDS and PING_TIMEOUT_SECONDS hold on GPT-Live too: a provider that stops
    reading (so answers no ping) is dropped, and the client told in Live's shape."""
    if runtime == "worker":
        pytest.skip("README: the Worker cannot send pings")
    env = {
        "OPENAI_BASE_URL": f"http://127.0.0.1:{fault_upstream.port}/v1",
        "OPENAI_API_KEY": OPERATOR_KEY,
        "PING_INTERVAL_SECONDS": str(PING_SECONDS),
        "PING_TIMEOUT_SECONDS": str(PING_SECONDS),
    }
    process = start_gateway(runtime, env, tmp_path_factory.mktemp("live-pings") / "gateway.log")
    try:
        async with sdk(process, key="scenario-stall").live.connect() as live:
            started = time.monotonic()
            events, close = await until_closed(live, timeout=PING_SECONDS * 4 + 5)
            elapsed = time.monotonic() - started
    finally:
        fault_upstream.release()
        process.stop()
    assert_live_error(events[-1], "upstream_unresponsive")
    assert close == 1014
    assert elapsed < PING_SECONDS * 4 + 2
