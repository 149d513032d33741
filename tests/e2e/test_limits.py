"""Limits on a real gateway process: session length and idleness, session counts, pings, backpressure.

Session limits and counts run on both runtimes; pings and backpressure are standalone only (workerd
exposes neither ping frames nor a write buffer to a Worker). Over a limit, the client gets an
``error`` event with the limit's code and a close code that says why, and the gateway logs the hit
with its running total. Models are named ``limits-...-<runtime>`` so the shared fake provider's
records of these tests are their own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from aiohttp import ClientSession, WSMsgType, web
from conftest import OPERATOR_KEY
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess, start_gateway

from shared.tokens import mint

GATEWAY_SECRET = "e2e-limits-secret-0123456789abcdef-4567"
IDLE_SECONDS = 1.0
MAX_SESSION_SECONDS = 2.5
SILENCE = json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA"})


# -- helpers -----------------------------------------------------------------------------------------------


def model(name: str, gateway: GatewayProcess) -> str:
    return f"limits-{name}-{gateway.runtime}"


def token(subject: str) -> dict[str, str]:
    credential = mint(GATEWAY_SECRET, subject=subject, now=time.time(), ttl_seconds=600)
    return {"Authorization": f"Bearer {credential}"}


async def recv_json(socket: websockets.ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def until_closed(
    socket: websockets.ClientConnection, timeout: float = 8.0
) -> tuple[list[dict[str, Any]], int, str]:
    """Every event until the gateway closes; the close code and reason."""
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                events.append(json.loads(await socket.recv()))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None, "the gateway must close with a code, not drop the connection"
        return events, closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("unreachable")


def assert_error(event: dict[str, Any], code: str) -> dict[str, Any]:
    assert event["type"] == "error", event
    assert event["event_id"].startswith("event_")
    assert event["error"]["code"] == code, event
    assert event["error"]["message"]
    return event["error"]


async def admitted(url: str, headers: dict[str, str] | None = None) -> websockets.ClientConnection:
    """Open a session that must be admitted: its first event is the provider's session.created."""
    socket = await websockets.connect(url, additional_headers=headers or {})
    event = await recv_json(socket)
    assert event["type"] == "session.created", event
    return socket


async def refused(url: str, code: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Open a session over a limit: accepted, then exactly an error event ``code`` and a close 1013."""
    async with websockets.connect(url, additional_headers=headers or {}) as socket:
        events, close, reason = await until_closed(socket)
    assert len(events) == 1, events
    error = assert_error(events[0], code)
    assert close == 1013
    assert reason
    return error


async def admitted_soon(url: str, headers: dict[str, str] | None = None) -> websockets.ClientConnection:
    """Open a session once a slot is free again (the gateway sees a client's close a moment later)."""
    deadline = time.monotonic() + 5
    while True:
        socket = await websockets.connect(url, additional_headers=headers or {})
        event = await recv_json(socket)
        if event["type"] == "session.created":
            return socket
        await socket.close()
        assert time.monotonic() < deadline, f"no slot freed within 5 s: {event}"
        await asyncio.sleep(0.1)


def log_count(gateway: GatewayProcess, reason: str) -> int:
    """The last running total the gateway logged for ``reason`` (0 if none)."""
    totals = re.findall(rf"limit hit reason={reason} total=(\d+)", gateway.log())
    return int(totals[-1]) if totals else 0


def never_reached_upstream(fake_upstream: FakeUpstream, name: str) -> bool:
    return all(name != connection.query.get("model") for connection in fake_upstream.connections)


def rss_mib(gateway: GatewayProcess) -> float:
    with open(f"/proc/{gateway.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# -- gateways ----------------------------------------------------------------------------------------------


def _started(
    runtime: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[GatewayProcess]:
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"{runtime}-limits-{name}") / "gateway.log")
    yield process
    process.stop()


def _base_env(fake_upstream: FakeUpstream) -> dict[str, str]:
    return {
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
    }


@pytest.fixture(scope="module")
def timed_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {
        **_base_env(fake_upstream),
        "IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
        "MAX_SESSION_SECONDS": str(MAX_SESSION_SECONDS),
    }
    yield from _started(runtime, env, tmp_path_factory, "timed")


@pytest.fixture(scope="module")
def capped_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    yield from _started(
        runtime, {**_base_env(fake_upstream), "MAX_SESSIONS": "2"}, tmp_path_factory, "capped"
    )


@pytest.fixture(scope="module")
def subject_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    env = {
        **_base_env(fake_upstream),
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "AUTH_MODE": "both",  # tokens (with a subject) and provider keys (without) side by side
        "MAX_SESSIONS_PER_SUBJECT": "2",
        "SESSIONS_PER_MINUTE_PER_SUBJECT": "3",
    }
    yield from _started(runtime, env, tmp_path_factory, "subject")


# -- session length and idleness (both runtimes) -----------------------------------------------------------


async def test_a_silent_client_gets_idle_timeout_and_1008(
    timed_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    name = model("idle", timed_gateway)
    started = time.monotonic()
    async with websockets.connect(timed_gateway.url(model=name)) as socket:
        events, close, _ = await until_closed(socket)
    elapsed = time.monotonic() - started
    assert [event["type"] for event in events] == ["session.created", "error"]
    error = assert_error(events[-1], "idle_timeout")
    assert "IDLE_TIMEOUT_SECONDS" in error["message"]
    assert close == 1008
    assert IDLE_SECONDS - 0.1 <= elapsed < IDLE_SECONDS + 2
    assert fake_upstream.connection_for(name).closed.wait(5)  # the provider side is closed too


async def test_an_idle_simulator_session_is_closed_too(timed_gateway: GatewayProcess) -> None:
    async with websockets.connect(timed_gateway.url(provider="simulator")) as socket:
        events, close, _ = await until_closed(socket)
    assert events[0]["type"] == "session.created"
    assert_error(events[-1], "idle_timeout")
    assert close == 1008


async def test_a_talking_client_is_closed_at_max_session_seconds(
    timed_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    name = model("max-session", timed_gateway)
    started = time.monotonic()
    events: list[dict[str, Any]] = []
    async with websockets.connect(timed_gateway.url(model=name)) as socket:

        async def talk() -> None:  # more often than IDLE_SECONDS: never idle
            while True:
                await socket.send(SILENCE)
                await asyncio.sleep(IDLE_SECONDS / 4)

        talking = asyncio.create_task(talk())
        try:
            events, close, _ = await until_closed(socket)
        finally:
            talking.cancel()
    elapsed = time.monotonic() - started
    assert events[0]["type"] == "session.created"
    error = assert_error(events[-1], "session_expired")
    assert f"{MAX_SESSION_SECONDS:g} s (MAX_SESSION_SECONDS)" in error["message"]
    assert close == 1008
    assert MAX_SESSION_SECONDS - 0.1 <= elapsed < MAX_SESSION_SECONDS + 2
    assert not [event for event in events if event.get("error", {}).get("code") == "idle_timeout"]
    assert fake_upstream.connection_for(name).closed.wait(5)


def test_timer_limits_are_counted_in_the_log(timed_gateway: GatewayProcess) -> None:
    """Runs after the tests above."""
    assert log_count(timed_gateway, "idle_timeout") >= 2
    assert log_count(timed_gateway, "session_expired") >= 1


# -- session counts (both runtimes) ------------------------------------------------------------------------


async def test_max_sessions_gives_too_many_sessions_and_1013(
    capped_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    first = await admitted(capped_gateway.url(model=model("cap-1", capped_gateway)))
    second = await admitted(capped_gateway.url(provider="simulator"))
    try:
        third = model("cap-3", capped_gateway)
        error = await refused(capped_gateway.url(model=third), "too_many_sessions")
        assert "MAX_SESSIONS" in error["message"]
        await refused(capped_gateway.url(provider="simulator"), "too_many_sessions")
        assert never_reached_upstream(fake_upstream, third)  # refused before any provider connection
        await first.close()
        await (await admitted_soon(capped_gateway.url(model=model("cap-4", capped_gateway)))).close()
    finally:
        await first.close()
        await second.close()
    assert log_count(capped_gateway, "too_many_sessions") >= 2
    assert "limit=MAX_SESSIONS" in capped_gateway.log()


async def test_max_sessions_per_subject(subject_gateway: GatewayProcess) -> None:
    url = subject_gateway.url(model=model("per-subject", subject_gateway))
    alice = token("limits-alice")
    held = [await admitted(url, alice), await admitted(url, alice)]
    try:
        error = await refused(url, "too_many_sessions", alice)
        assert "MAX_SESSIONS_PER_SUBJECT" in error["message"]
        await (await admitted(url, token("limits-bob"))).close()  # another subject
        await (await admitted(url, {"Authorization": "Bearer sk-limits-own-key"})).close()  # no subject
        await held.pop().close()
        held.append(await admitted_soon(url, alice))
    finally:
        for socket in held:
            await socket.close()
    assert "limit=MAX_SESSIONS_PER_SUBJECT subject='limits-alice'" in subject_gateway.log()


async def test_sessions_per_minute_per_subject(subject_gateway: GatewayProcess) -> None:
    url = subject_gateway.url(model=model("per-minute", subject_gateway))
    carol = token("limits-carol")
    for _ in range(3):
        await (await admitted(url, carol)).close()
    error = await refused(url, "rate_limited", carol)
    assert "SESSIONS_PER_MINUTE_PER_SUBJECT" in error["message"]
    assert re.search(r"try again in \d+ s", error["message"])
    await (await admitted(url, token("limits-dave"))).close()  # another subject is not held back
    assert log_count(subject_gateway, "rate_limited") >= 1
    assert "limit=SESSIONS_PER_MINUTE_PER_SUBJECT subject='limits-carol'" in subject_gateway.log()


# -- standalone only: a scripted provider ------------------------------------------------------------------

FRAME_PAD = "x" * (64 * 1024)
AUDIO = base64.b64encode(bytes(48 * 1024)).decode()  # 64 KiB of base64 per client frame
CREATED = json.dumps({"type": "session.created", "event_id": "event_limits", "session": {"type": "realtime"}})


class ScriptedProvider:
    """A provider on its own thread and loop, scripted by the model:

    - ``limits-deaf``: sends ``session.created``, then reads on but never answers a ping;
    - ``limits-stream-<n>``: sends ``session.created`` and ``n`` numbered 64 KiB events as fast as
      the gateway takes them (``sent`` counts them);
    - ``limits-sink``: sends ``session.created``, reads nothing until ``resume`` is set, then
      records every frame (``received``).
    """

    def __init__(self) -> None:
        self.sent = 0
        self.received: list[str] = []
        self.resume = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def start(self) -> ScriptedProvider:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        self.resume.set()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("model", "")
        socket = web.WebSocketResponse(autoping=name != "limits-deaf", max_msg_size=0)
        await socket.prepare(request)
        await socket.send_str(CREATED)
        if name.startswith("limits-stream-"):
            for seq in range(int(name.removeprefix("limits-stream-"))):
                await socket.send_str(json.dumps({"type": "test.stream", "seq": seq, "pad": FRAME_PAD}))
                self.sent += 1
        if name == "limits-sink":
            await asyncio.get_running_loop().run_in_executor(None, self.resume.wait)
        async for message in socket:  # a deaf provider gets the gateway's pings here, and ignores them
            if message.type is WSMsgType.TEXT:
                self.received.append(message.data)
        return socket


@pytest.fixture(scope="module")
def scripted_provider() -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def ping_gateway(
    fake_upstream: FakeUpstream, scripted_provider: ScriptedProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """OpenAI is the scripted provider, Azure the fake one; pings every 0.5 s, answered within 0.5 s."""
    env = {
        "OPENAI_REALTIME_URL": scripted_provider.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "AZURE_OPENAI_ENDPOINT": fake_upstream.http_base,
        "AZURE_OPENAI_API_KEY": OPERATOR_KEY,
        "PING_INTERVAL_SECONDS": "0.5",
        "PING_TIMEOUT_SECONDS": "0.5",
    }
    yield from _started("standalone", env, tmp_path_factory, "ping")


@pytest.fixture(scope="module")
def backpressure_gateway(
    scripted_provider: ScriptedProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The scripted provider, default MAX_BUFFERED_BYTES (1 MiB) and pings (20 s)."""
    env = {"OPENAI_REALTIME_URL": scripted_provider.url, "OPENAI_API_KEY": OPERATOR_KEY}
    yield from _started("standalone", env, tmp_path_factory, "backpressure")


# -- standalone: pings -------------------------------------------------------------------------------------


async def test_a_provider_that_stops_answering_pings(ping_gateway: GatewayProcess) -> None:
    started = time.monotonic()
    async with websockets.connect(ping_gateway.url(model="limits-deaf")) as socket:  # answers pings
        events, close, reason = await until_closed(socket)
    assert [event["type"] for event in events] == ["session.created", "error"]
    error = assert_error(events[-1], "upstream_unresponsive")
    assert error["type"] == "server_error"
    assert close == 1014
    assert reason
    # A ping after 0.5 s of silence, then PING_TIMEOUT_SECONDS (0.5 s) for the pong: at least 1 s
    # (aiohttp on its own would wait half the interval, 0.25 s).
    assert 1.0 <= time.monotonic() - started < 4
    assert log_count(ping_gateway, "upstream_unresponsive") >= 1


async def test_a_client_that_stops_answering_pings(
    ping_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    name = "limits-deaf-client"
    async with (
        ClientSession() as http,
        http.ws_connect(ping_gateway.url(provider="azure", model=name), autoping=False) as socket,
    ):
        first = await socket.receive(timeout=5)
        assert json.loads(first.data)["type"] == "session.created"
        seen = fake_upstream.connection_for(name)
        # Never answer the gateway's pings: it drops this socket and closes the provider's.
        assert await asyncio.to_thread(seen.closed.wait, 5)
    assert seen.close_code == 1001
    assert log_count(ping_gateway, "client_unresponsive") >= 1


async def test_clients_and_providers_that_answer_pings_stay_connected(
    ping_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    name = "limits-ping-ok"
    async with websockets.connect(ping_gateway.url(provider="azure", model=name)) as socket:
        assert (await recv_json(socket))["type"] == "session.created"
        await asyncio.sleep(3)  # six ping intervals, nothing said
        await socket.send(
            json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}})
        )
        while (await recv_json(socket))["type"] != "response.done":
            pass
    assert fake_upstream.connection_for(name).closed.wait(5)


# -- standalone: backpressure ------------------------------------------------------------------------------

FRAMES = 3000  # 3000 x 64 KiB: about 190 MiB through the gateway each way
STALL_SECONDS = 3.0
RSS_GROWTH_LIMIT_MIB = 48.0


async def test_a_client_that_stops_reading_holds_the_provider_back_and_loses_nothing(
    backpressure_gateway: GatewayProcess, scripted_provider: ScriptedProvider
) -> None:
    # Warm up (first-use allocations are not growth), then measure.
    async with websockets.connect(
        backpressure_gateway.url(model="limits-stream-50"), max_size=None
    ) as socket:
        for _ in range(51):
            await recv_json(socket)
    baseline = rss_mib(backpressure_gateway)
    scripted_provider.sent = 0
    url = backpressure_gateway.url(model=f"limits-stream-{FRAMES}")
    async with websockets.connect(url, max_size=None, max_queue=4) as socket:
        assert (await recv_json(socket))["type"] == "session.created"
        await asyncio.sleep(STALL_SECONDS)  # read nothing: every buffer on the way fills, then holds
        stalled_at = scripted_provider.sent
        growth = rss_mib(backpressure_gateway) - baseline
        await asyncio.sleep(0.5)
        assert scripted_provider.sent - stalled_at < 20, "the provider was not held back"
        print(f"\nprovider held at {stalled_at} of {FRAMES} frames; gateway RSS +{growth:.1f} MiB")
        assert stalled_at < FRAMES / 4
        assert growth < RSS_GROWTH_LIMIT_MIB
        seqs = []
        for _ in range(FRAMES):  # reading again: everything arrives, in order
            event = await recv_json(socket, timeout=10)
            assert event["type"] == "test.stream"
            seqs.append(event["seq"])
        assert seqs == list(range(FRAMES))
    assert rss_mib(backpressure_gateway) - baseline < RSS_GROWTH_LIMIT_MIB


async def test_a_provider_that_stops_reading_holds_the_client_back_and_loses_nothing(
    backpressure_gateway: GatewayProcess, scripted_provider: ScriptedProvider
) -> None:
    scripted_provider.received.clear()
    scripted_provider.resume.clear()
    baseline = rss_mib(backpressure_gateway)
    sent = 0
    async with websockets.connect(backpressure_gateway.url(model="limits-sink"), max_size=None) as socket:
        assert (await recv_json(socket))["type"] == "session.created"

        async def flood() -> None:
            nonlocal sent
            for seq in range(FRAMES):
                frame = {"type": "input_audio_buffer.append", "event_id": f"evt_{seq}", "audio": AUDIO}
                await socket.send(json.dumps(frame))
                sent += 1

        flooding = asyncio.create_task(flood())
        try:
            await asyncio.sleep(STALL_SECONDS)
            stalled_at = sent
            growth = rss_mib(backpressure_gateway) - baseline
            await asyncio.sleep(0.5)
            print(f"\nclient held at {stalled_at} of {FRAMES} frames; gateway RSS +{growth:.1f} MiB")
            assert sent - stalled_at < 20, "the client was not held back"
            assert stalled_at < FRAMES / 4
            assert growth < RSS_GROWTH_LIMIT_MIB
            scripted_provider.resume.set()  # the provider reads again
            await asyncio.wait_for(flooding, 60)
        finally:
            flooding.cancel()
            scripted_provider.resume.set()
        deadline = time.monotonic() + 30
        while len(scripted_provider.received) < FRAMES and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the provider thread appends: no event to wait on here
    ids = [json.loads(frame)["event_id"] for frame in scripted_provider.received]
    assert ids == [f"evt_{seq}" for seq in range(FRAMES)]
