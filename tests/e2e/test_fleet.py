"""Limits across a fleet, on real processes: two gateways sharing one ``redis-server``, one gateway
with ``--workers 2`` on it, Redis stopped mid-test (``open`` and ``closed``), and on the Worker
host the FLEET Durable Object. Sessions are the simulator's, opened with gateway tokens.

Places are refreshed every REVOCATION_POLL_SECONDS (0.3 s here) and expire after
FLEET_SLOT_TTL_SECONDS (1.5 s here), so a revocation and a dead process's places are seen within
those bounds; the tests allow a few seconds more for a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from support.gateway_process import ROOT, GatewayProcess, start_gateway
from support.redis_server import RedisServer, redis_missing

from shared.tokens import mint

SECRET = "e2e-fleet-secret-0123456789abcdef-0123456"
ADMIN = "e2e-fleet-admin-key"
POLL_SECONDS = 0.3
TTL_SECONDS = 1.5
SLACK_SECONDS = 3.0  # on top of a bound, for a loaded 2-core machine
CAP = 2
PER_MINUTE = 4


# -- helpers -----------------------------------------------------------------------------------------------


def token(subject: str) -> str:
    return mint(SECRET, subject=subject, now=time.time(), ttl_seconds=600)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def first_event(socket: websockets.ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), 10))


async def admitted(gateway: GatewayProcess, credential: str) -> websockets.ClientConnection:
    socket = await websockets.connect(
        gateway.url(provider="simulator"), additional_headers=bearer(credential)
    )
    event = await first_event(socket)
    assert event["type"] == "session.created", event
    return socket


async def refusal(gateway: GatewayProcess, credential: str) -> tuple[dict[str, Any], int]:
    """A session over a limit: accepted, then one error event and a close; the error and the code."""
    async with websockets.connect(
        gateway.url(provider="simulator"), additional_headers=bearer(credential)
    ) as socket:
        event = await first_event(socket)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert event["type"] == "error", event
    assert closed.value.rcvd is not None
    return event["error"], closed.value.rcvd.code


async def outcome(gateway: GatewayProcess, credential: str) -> tuple[str, websockets.ClientConnection | None]:
    """Open a session and say how it went: ``session.created`` (kept open) or the error's code."""
    socket = await websockets.connect(
        gateway.url(provider="simulator"), additional_headers=bearer(credential)
    )
    event = await first_event(socket)
    if event["type"] == "session.created":
        return "admitted", socket
    await socket.close()
    return event["error"]["code"], None


async def admitted_soon(
    gateway: GatewayProcess, credential: str, within: float
) -> websockets.ClientConnection:
    deadline = time.monotonic() + within
    while True:
        code, socket = await outcome(gateway, credential)
        if socket is not None:
            return socket
        assert time.monotonic() < deadline, f"still {code} after {within} s"
        await asyncio.sleep(0.1)


async def revoked_end(socket: websockets.ClientConnection, within: float) -> None:
    """The session ends with ``token_revoked`` and a close 1008, within ``within`` seconds."""
    events = []
    try:
        async with asyncio.timeout(within):
            while True:
                events.append(json.loads(await socket.recv()))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1008
    assert events, "no error event before the close"
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "token_revoked"


async def refused_at_connect(gateway: GatewayProcess, credential: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(gateway.url(provider="simulator"), additional_headers=bearer(credential))
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "token_revoked"


def http(gateway: GatewayProcess, path: str, body: object | None = None, key: str = ADMIN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.port}{path}",
        data=data,
        headers={"Authorization": f"Bearer {key}"},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def stats(gateway: GatewayProcess) -> dict[str, Any]:
    status, body = http(gateway, "/debug/stats")
    assert status == 200, body
    return body


async def close_all(sockets: list[websockets.ClientConnection | None]) -> None:
    for socket in sockets:
        if socket is not None:
            await socket.close()


# -- processes ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from _redis(tmp_path_factory.mktemp("redis") / "redis.log")


def _redis(log: Path) -> Iterator[RedisServer]:
    missing = redis_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    server = RedisServer(log).start()
    yield server
    server.stop()


def fleet_env(redis: RedisServer | None, prefix: str, **extra: str) -> dict[str, str]:
    env = {
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_ADMIN_KEY": ADMIN,
        "AUTH_MODE": "both",  # tokens (with a subject) and provider keys (without) side by side
        "MAX_SESSIONS_PER_SUBJECT": str(CAP),
        "SESSIONS_PER_MINUTE_PER_SUBJECT": str(PER_MINUTE),
        "REVOCATION_POLL_SECONDS": str(POLL_SECONDS),
        "FLEET_SLOT_TTL_SECONDS": str(TTL_SECONDS),
        "SIMULATOR_PACE": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": "3",
        **extra,
    }
    if redis is not None:
        env |= {"REDIS_URL": redis.url, "REDIS_KEY_PREFIX": f"e2e:{prefix}:"}
    return env


def _started(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    env: dict[str, str],
    *args: str,
    runtime: str = "standalone",
) -> Iterator[GatewayProcess]:
    process = start_gateway(runtime, env, tmp_path_factory.mktemp(f"fleet-{name}") / "gateway.log", args=args)
    yield process
    if process.process.poll() is None:
        process.stop()


@pytest.fixture(scope="module")
def first(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from _started(tmp_path_factory, "first", fleet_env(redis_server, "pair"))


@pytest.fixture(scope="module")
def second(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from _started(tmp_path_factory, "second", fleet_env(redis_server, "pair"))


# -- two gateway processes, one Redis ----------------------------------------------------------------------


@pytest.mark.deps  # redis-py at both ends of its range
async def test_the_per_subject_cap_holds_across_two_processes(
    first: GatewayProcess, second: GatewayProcess
) -> None:
    alice = token("fleet-alice")
    held = [await admitted(first, alice), await admitted(second, alice)]
    try:
        for gateway in (first, second):
            error, code = await refusal(gateway, alice)
            assert error["code"] == "too_many_sessions"
            assert "MAX_SESSIONS_PER_SUBJECT" in error["message"]
            assert code == 1013
        held.append(await admitted(second, token("fleet-bob")))  # another subject
        await held.pop(0).close()  # alice's place on the first process is given back ...
        held.append(await admitted_soon(second, alice, within=SLACK_SECONDS))  # ... and taken on the second
    finally:
        await close_all(held)
    assert "limit=MAX_SESSIONS_PER_SUBJECT subject='fleet-alice' fleet=redis" in first.log()
    assert stats(first)["fleet"] == "redis"


async def test_concurrent_connects_across_processes_get_exactly_the_cap(
    first: GatewayProcess, second: GatewayProcess
) -> None:
    credential = token("fleet-crowd")
    results = await asyncio.gather(*(outcome((first, second)[n % 2], credential) for n in range(8)))
    try:
        codes = sorted(code for code, _ in results)
        assert codes == ["admitted"] * CAP + ["too_many_sessions"] * (8 - CAP)
    finally:
        await close_all([socket for _, socket in results])


async def test_the_per_minute_window_holds_across_two_processes(
    first: GatewayProcess, second: GatewayProcess
) -> None:
    carol = token("fleet-carol")
    for n in range(PER_MINUTE):
        await (await admitted((first, second)[n % 2], carol)).close()
    for gateway in (first, second):
        error, code = await refusal(gateway, carol)
        assert error["code"] == "rate_limited"
        assert "SESSIONS_PER_MINUTE_PER_SUBJECT" in error["message"]
        assert code == 1013


async def test_a_token_revoked_from_the_cli_ends_its_sessions_on_both_and_is_refused(
    first: GatewayProcess, second: GatewayProcess, redis_server: RedisServer
) -> None:
    dave = token("fleet-dave")
    kept = token("fleet-dave")  # the same subject's other token is not revoked
    sessions = [await admitted(first, dave), await admitted(second, dave)]
    started = time.monotonic()
    revoke = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "standalone.cli", "token", "revoke", "-"],
        input=dave + "\n",
        cwd=ROOT,
        env={**os.environ, **fleet_env(redis_server, "pair")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert revoke.returncode == 0, revoke.stderr
    assert json.loads(revoke.stdout)["subject"] == "fleet-dave"
    for socket in sessions:
        await revoked_end(socket, within=POLL_SECONDS + SLACK_SECONDS)
    print(f"\nboth sessions ended {time.monotonic() - started:.2f} s after the revocation")
    for gateway in (first, second):
        await refused_at_connect(gateway, dave)
        assert "request refused status=401 code=token_revoked subject='fleet-dave'" in gateway.log()
    await (await admitted_soon(first, kept, within=SLACK_SECONDS)).close()
    for gateway in (first, second):
        assert dave not in gateway.log()


@pytest.mark.deps  # redis-py at both ends of its range
async def test_a_token_revoked_over_http_on_one_process_ends_its_session_on_the_other(
    first: GatewayProcess, second: GatewayProcess
) -> None:
    erin = token("fleet-erin")
    session = await admitted(second, erin)
    status, body = http(first, "/v1/tokens/revoke", {"token": erin})
    assert status == 200, body
    assert body["revoked"] is True
    assert body["subject"] == "fleet-erin"
    await revoked_end(session, within=POLL_SECONDS + SLACK_SECONDS)
    await refused_at_connect(second, erin)
    status, body = http(first, "/v1/tokens/revoke", {"token": erin}, key="not-the-admin-key")
    assert status == 401
    assert body["error"]["code"] == "invalid_admin_key"


async def test_a_killed_process_gives_its_places_back_within_the_ttl(
    first: GatewayProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    doomed = next(_started(tmp_path_factory, "doomed", fleet_env(redis_server, "pair")))
    try:
        await _kill_and_wait_for_places(first, doomed)
    finally:
        if doomed.process.poll() is None:
            doomed.process.kill()


async def _kill_and_wait_for_places(first: GatewayProcess, doomed: GatewayProcess) -> None:
    fay = token("fleet-fay")
    held = [await admitted(doomed, fay), await admitted(doomed, fay)]
    assert (await refusal(first, fay))[0]["code"] == "too_many_sessions"
    doomed.process.kill()  # SIGKILL: no session ends cleanly, no place is given back
    killed = time.monotonic()
    doomed.process.wait(10)
    code, socket = await outcome(first, fay)  # at once: the places are still held
    assert code == "too_many_sessions"
    assert time.monotonic() - killed < TTL_SECONDS, "too slow to see the places held"
    sockets = [await admitted_soon(first, fay, within=TTL_SECONDS + SLACK_SECONDS) for _ in range(CAP)]
    freed = time.monotonic() - killed
    print(f"\nthe killed process's places were free again after {freed:.2f} s (TTL {TTL_SECONDS} s)")
    assert freed >= TTL_SECONDS - POLL_SECONDS  # they expired; nothing gave them back
    await close_all([*sockets, socket])
    for stale in held:
        with pytest.raises(websockets.ConnectionClosed):
            await stale.recv()


# -- --workers 2 on one port, one Redis --------------------------------------------------------------------

WORKERS_CAP = 6  # several sessions, so that both workers get some


@pytest.fixture(scope="module")
def workers(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    env = fleet_env(
        redis_server,
        "workers",
        MAX_SESSIONS_PER_SUBJECT=str(WORKERS_CAP),
        SESSIONS_PER_MINUTE_PER_SUBJECT="0",
    )
    yield from _started(tmp_path_factory, "workers", env, "--workers", "2")


def worker_pids(gateway: GatewayProcess, want: int = 2, within: float = 15.0) -> set[int]:
    """The pids answering /debug/stats, asked until ``want`` distinct ones did (each request lands
    on whichever worker the kernel picks)."""
    seen: set[int] = set()
    deadline = time.monotonic() + within
    while len(seen) < want:
        assert time.monotonic() < deadline, f"only {seen} answered"
        body = stats(gateway)
        assert body["workers"] == 2
        assert body["fleet"] == "redis"
        seen.add(body["pid"])
    return seen


async def test_two_workers_share_the_port(workers: GatewayProcess) -> None:
    pids = worker_pids(workers)
    assert workers.process.pid not in pids  # the supervisor serves nothing itself


async def test_the_per_subject_cap_holds_across_workers(workers: GatewayProcess) -> None:
    gus = token("fleet-gus")
    held = [await admitted(workers, gus) for _ in range(WORKERS_CAP)]
    try:
        # Each worker alone would admit up to WORKERS_CAP: refused, whichever worker takes it.
        for _ in range(3):
            assert (await refusal(workers, gus))[0]["code"] == "too_many_sessions"
    finally:
        await close_all(held)


async def test_a_revoked_token_ends_its_sessions_on_every_worker(workers: GatewayProcess) -> None:
    hal = token("fleet-hal")
    held = [await admitted(workers, hal) for _ in range(WORKERS_CAP)]
    status, _ = http(workers, "/v1/tokens/revoke", {"token": hal})  # reaches one worker
    assert status == 200
    for socket in held:
        await revoked_end(socket, within=POLL_SECONDS + SLACK_SECONDS)
    for _ in range(3):
        await refused_at_connect(workers, hal)


async def test_a_killed_worker_is_restarted_and_its_places_expire(workers: GatewayProcess) -> None:
    ivy = token("fleet-ivy")
    held = [await admitted(workers, ivy) for _ in range(WORKERS_CAP)]
    before = worker_pids(workers)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()

    async def dropped_with_it(socket: websockets.ClientConnection) -> bool:
        try:
            await asyncio.wait_for(socket.recv(), 1.0)
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is None  # without a close frame
            return True
        except TimeoutError:
            return False
        raise AssertionError("an idle session got an event")

    dropped = sum(await asyncio.gather(*(dropped_with_it(socket) for socket in held)))
    after = worker_pids(workers)
    assert victim not in after
    assert len(after - before) == 1  # a new worker took its place
    assert "exited unexpectedly (exit -9); restarting" in workers.log()
    replacements = [
        await admitted_soon(workers, ivy, within=TTL_SECONDS + SLACK_SECONDS) for _ in range(dropped)
    ]
    print(f"\n{dropped} places of the killed worker were free again after {time.monotonic() - killed:.2f} s")
    assert (await refusal(workers, ivy))[0]["code"] == "too_many_sessions"
    await close_all(held + replacements)


# -- Redis stopped mid-test --------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from _redis(tmp_path / "redis.log")


@pytest.mark.deps  # redis-py at both ends of its range
async def test_open_a_gateway_whose_redis_stops_keeps_serving_with_its_own_limits(
    own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gateway = next(_started(tmp_path_factory, "open", fleet_env(own_redis, "open")))
    try:
        jan = token("fleet-jan")
        held = [await admitted(gateway, jan)]
        own_redis.stop()
        held.append(await admitted(gateway, jan))  # served, by the process's own limits
        assert (await refusal(gateway, jan))[0]["code"] == "too_many_sessions"
        await asyncio.sleep(3 * POLL_SECONDS)  # polls fail too, while the sessions go on
        figures = stats(gateway)
        assert figures["fleet_available"] is False
        assert figures["fleet_failures"] >= 2
        await held[0].send(json.dumps({"type": "response.create"}))
        assert (await first_event(held[0]))["type"] == "response.created"
        log = gateway.log()
        assert log.count("fleet store redis unavailable") == 1  # loudly, once per outage
        assert "REDIS_FAILURE_MODE=open" in log
        own_redis.start()
        deadline = time.monotonic() + SLACK_SECONDS + 1
        while not stats(gateway)["fleet_available"]:
            assert time.monotonic() < deadline, "the gateway did not see Redis back"
            await asyncio.sleep(POLL_SECONDS)
        assert "fleet store redis available again" in gateway.log()
        await close_all(held)
    finally:
        gateway.stop()


async def test_closed_a_gateway_whose_redis_stops_refuses_token_sessions_clearly(
    own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = fleet_env(own_redis, "closed", REDIS_FAILURE_MODE="closed")
    gateway = next(_started(tmp_path_factory, "closed", env))
    try:
        kim = token("fleet-kim")
        await (await admitted(gateway, kim)).close()
        own_redis.stop()
        error, code = await refusal(gateway, kim)
        assert error["code"] == "fleet_unavailable"
        assert "REDIS_FAILURE_MODE=closed" in error["message"]
        assert code == 1013
        await (await admitted(gateway, "sk-fleet-own-key")).close()  # no token: nothing to share
        assert "limit hit reason=fleet_unavailable" in gateway.log()
    finally:
        gateway.stop()


# -- without Redis: per process, and the Durable Object on the Worker host --------------------------------


@pytest.fixture(scope="module")
def lone(runtime: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway without Redis: per-process limits on the standalone server, the FLEET Durable
    Object on the Worker host (wrangler.toml binds it)."""
    yield from _started(tmp_path_factory, f"lone-{runtime}", fleet_env(None, "lone"), runtime=runtime)


async def test_where_the_limits_are_kept_is_in_the_stats(lone: GatewayProcess) -> None:
    figures = stats(lone)
    expected = "durable_object" if lone.runtime == "worker" else "process"
    assert figures["fleet"] == expected
    assert figures["fleet_available"] is True


async def test_a_revoked_token_is_refused_and_its_session_ended(lone: GatewayProcess) -> None:
    lou = token("fleet-lou")
    session = await admitted(lone, lou)
    status, body = http(lone, "/v1/tokens/revoke", {"token": lou})
    assert status == 200, body
    await revoked_end(session, within=POLL_SECONDS + SLACK_SECONDS)
    await refused_at_connect(lone, lou)
    await (await admitted(lone, token("fleet-lou"))).close()  # a new token of the same subject


async def test_concurrent_connects_get_exactly_the_cap(lone: GatewayProcess) -> None:
    credential = token(f"fleet-rush-{lone.runtime}")
    results = await asyncio.gather(*(outcome(lone, credential) for _ in range(6)))
    try:
        assert sorted(code for code, _ in results) == ["admitted"] * CAP + ["too_many_sessions"] * (6 - CAP)
    finally:
        await close_all([socket for _, socket in results])
    await (await admitted_soon(lone, credential, within=SLACK_SECONDS)).close()  # places given back


def revoke_with_cli(credential: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("REDIS_", "GATEWAY_"))}
    return subprocess.run(
        [sys.executable, "-m", "standalone.cli", "token", "revoke", "-", *args],
        input=credential + "\n",
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_the_cli_revokes_through_a_running_gateway(lone: GatewayProcess) -> None:
    mia = token("fleet-mia")
    session = await admitted(lone, mia)
    url = f"http://127.0.0.1:{lone.port}"
    done = await asyncio.to_thread(revoke_with_cli, mia, "--url", url, GATEWAY_ADMIN_KEY=ADMIN)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["revoked"] is True
    assert answer["subject"] == "fleet-mia"
    assert answer["expires_at"] > time.time()
    await revoked_end(session, within=POLL_SECONDS + SLACK_SECONDS)
    refused = await asyncio.to_thread(revoke_with_cli, mia, "--url", url, GATEWAY_ADMIN_KEY="wrong-key")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "invalid_admin_key"


def test_the_cli_says_where_a_revocation_can_go() -> None:
    done = revoke_with_cli(token("fleet-ned"), GATEWAY_SECRET=SECRET)
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr
    assert "--url" in done.stderr
    assert done.stdout == ""
