"""The Redis fleet store against a real ``redis-server``: the same decisions as the ledger a Durable
Object keeps (tests/unit/test_fleet.py), the key layout its module documents, and a Redis that does
not answer failing within REDIS_TIMEOUT_SECONDS."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from support.redis_server import RedisServer, redis_cli, redis_missing

from shared.admission import Admission
from shared.config import Settings
from shared.fleet import SessionGate, Slot, SubjectLimits, Verdict
from shared.limits import LimitCounters
from shared.revocation import Revocation
from standalone.redis_fleet import RedisFleetStore

LIMITS = SubjectLimits(max_sessions=2, per_minute=3, slot_ttl=30.0)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    missing = redis_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    server = RedisServer(tmp_path_factory.mktemp("redis") / "redis.log").start()
    yield server
    server.stop()


@pytest.fixture
async def store(redis_server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[RedisFleetStore]:
    settings = Settings.from_mapping(
        {"REDIS_URL": redis_server.url, "REDIS_KEY_PREFIX": f"test:{request.node.name}:"}
    )
    fleet = RedisFleetStore(settings)
    yield fleet
    await fleet.close()


def slot(subject: str, name: str, token: str = "tok") -> Slot:
    return Slot(subject, name, token)


async def test_places_up_to_the_limit_and_back(store: RedisFleetStore, redis_server: RedisServer) -> None:
    assert await store.admit(slot("amy", "a"), LIMITS) == Verdict("admitted")
    assert await store.admit(slot("amy", "b"), LIMITS) == Verdict("admitted")
    assert await store.admit(slot("amy", "c"), LIMITS) == Verdict("too_many_sessions", limit=2)
    assert await store.admit(slot("ben", "c"), LIMITS) == Verdict("admitted")  # another subject
    key = store.places_key("amy")
    assert key.endswith("places:amy")
    assert redis_cli(redis_server.port, "ZRANGE", key, "0", "-1").split() == ["a", "b"]
    await store.release(slot("amy", "a"))
    assert redis_cli(redis_server.port, "ZRANGE", key, "0", "-1").split() == ["b"]
    assert (await store.admit(slot("amy", "d"), LIMITS)).outcome == "admitted"
    # The fourth start within a minute: the window holds a, b, d (c was refused, and is no start).
    await store.release(slot("amy", "b"))
    verdict = await store.admit(slot("amy", "e"), LIMITS)
    assert verdict.outcome == "rate_limited"
    assert verdict.limit == 3
    assert 55 < verdict.retry_after <= 60
    ttl_ms = int(redis_cli(redis_server.port, "PTTL", store.starts_key("amy")))
    assert 0 < ttl_ms <= 60_000  # the window's key goes with its last start


async def test_places_expire_unless_refreshed_and_are_not_brought_back(store: RedisFleetStore) -> None:
    short = SubjectLimits(max_sessions=2, per_minute=0, slot_ttl=0.6)
    await store.admit(slot("cal", "kept"), short)
    await store.admit(slot("cal", "dead"), short)
    for _ in range(3):  # a live process refreshes its own place, not the other's
        await asyncio.sleep(0.25)
        assert await store.check([slot("cal", "kept")], short) == set()
    # "dead" has expired (0.75 s > 0.6 s): its place is free again; refreshing it now does nothing.
    assert await store.check([slot("cal", "dead")], short) == set()
    assert await store.admit(slot("cal", "new"), short) == Verdict("admitted")
    assert await store.admit(slot("cal", "more"), short) == Verdict("too_many_sessions", limit=2)


async def test_revocations_are_found_by_admission_and_by_polls(
    store: RedisFleetStore, redis_server: RedisServer
) -> None:
    await store.admit(slot("dee", "a", "stolen"), LIMITS)
    keep_until = time.time() + 5
    await store.revoke(Revocation("stolen", "dee", 0, keep_until))
    key = store.revoked_key("stolen")
    assert redis_cli(redis_server.port, "GET", key) == "dee"
    assert 3_000 < int(redis_cli(redis_server.port, "PTTL", key)) <= 5_000
    assert await store.admit(slot("dee", "b", "stolen"), LIMITS) == Verdict("revoked")
    held = [slot("dee", "a", "stolen"), slot("dee", "c", "fine"), Slot("dee", None, "stolen")]
    assert await store.check(held, LIMITS) == {"stolen"}
    assert await store.check([], LIMITS) == set()  # a poll with no sessions: a round trip all the same


async def test_a_redis_that_does_not_answer_fails_within_the_timeout(
    tmp_path: pytest.TempPathFactory,
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings.from_mapping(
        {
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "REDIS_TIMEOUT_SECONDS": "0.2",
            "GATEWAY_SECRET": "redis-store-secret-0123456789abcdef-0123",
        }
    )
    counters = LimitCounters()
    fleet = RedisFleetStore(settings)
    gate = SessionGate(settings, Admission(settings, counters), fleet, counters)
    try:
        started = time.monotonic()
        assert await gate.poll([], 0.0, time.time()) == set()
        elapsed = time.monotonic() - started
        assert gate.status.failures == 1
        assert not gate.status.available
        assert accepted  # it did connect: the silence, not a refusal, is what failed
        assert elapsed < 0.2 + 0.5
    finally:
        await gate.close()
        server.close()
        for writer in accepted:
            writer.close()
