"""The fleet store on Redis (``REDIS_URL``): per-subject limits and revocations shared by every
process and machine using the same Redis (:mod:`shared.fleet` says what is kept and why).

Keys (``P`` is REDIS_KEY_PREFIX, ``rgw:`` by default):

==============================  ===========  ==========================================================
key                             type         content
==============================  ===========  ==========================================================
``P places:<subject>``          sorted set   one member per open session (its slot id), scored with
                                             its expiry in ms of Redis's clock; refreshed by each
                                             process's poll, removed when the session ends. The key
                                             expires with its last member.
``P starts:<subject>``          sorted set   the slot ids of the subject's session starts, scored
                                             with their start time (ms); entries older than 60 s go.
``P revoked:<token nonce>``     string       the token's subject; expires when no session opened
                                             with the token can last any longer.
==============================  ===========  ==========================================================

Every decision that reads and writes is one Lua script, so it is atomic, and uses Redis's own
clock (``TIME``), so machines whose clocks differ still agree. A session costs one script at its
start, one ``ZREM`` at its end, and its share of one script per process every
REVOCATION_POLL_SECONDS (which refreshes all of the process's places and checks all of its
sessions' tokens at once). A single Redis, or a primary behind Sentinel; not Redis Cluster (a
script touches several subjects' keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared.config import Settings
from shared.fleet import WINDOW_SECONDS, Slot, SubjectLimits, Verdict
from shared.revocation import Revocation

# The clock every script reads: Redis's, in milliseconds.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: places, starts, revoked. ARGV: slot id, MAX_SESSIONS_PER_SUBJECT,
# SESSIONS_PER_MINUTE_PER_SUBJECT, slot TTL (ms), window (ms).
# -> {outcome, limit, retry after (ms)}: shared.fleet.SubjectLedger.admit, in Redis.
ADMIT = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[3]) == 1 then return {'revoked', 0, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max_sessions = tonumber(ARGV[2])
if max_sessions > 0 and redis.call('ZCARD', KEYS[1]) >= max_sessions then
  return {'too_many_sessions', max_sessions, 0}
end
local per_minute = tonumber(ARGV[3])
local window = tonumber(ARGV[5])
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[2])
  if count >= per_minute then
    local due = redis.call('ZRANGE', KEYS[2], count - per_minute, count - per_minute, 'WITHSCORES')
    return {'rate_limited', per_minute, tonumber(due[2]) + window - now}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], window)
end
local ttl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return {'admitted', 0, 0}
"""
)

# KEYS: the places key of each place to refresh, then the revoked key of each token to check.
# ARGV: slot TTL (ms), the number of places, then their slot ids.
# -> the 1-based positions (among the tokens) of the revoked ones. A place that expired is not
# brought back (its session keeps going, uncounted, until it ends).
CHECK = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local places = tonumber(ARGV[2])
for i = 1, places do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ttl, ARGV[i + 2]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
local revoked = {}
for i = places + 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then revoked[#revoked + 1] = i - places end
end
return revoked
"""
)


class RedisFleetStore:
    """:class:`shared.fleet.FleetStore` on one Redis (redis-py's asyncio client and its pool)."""

    name = "redis"

    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        self.timeout = settings.redis_timeout_seconds
        self._prefix = settings.redis_key_prefix
        # No retries: a failure is reported at once and the gate decides (REDIS_FAILURE_MODE).
        self._redis = redis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._admit = self._redis.register_script(ADMIT)
        self._check = self._redis.register_script(CHECK)

    def places_key(self, subject: str) -> str:
        return f"{self._prefix}places:{subject}"

    def starts_key(self, subject: str) -> str:
        return f"{self._prefix}starts:{subject}"

    def revoked_key(self, token_id: str) -> str:
        return f"{self._prefix}revoked:{token_id}"

    async def admit(self, slot: Slot, limits: SubjectLimits) -> Verdict:
        assert slot.slot_id is not None
        assert slot.token_id is not None
        keys = [self.places_key(slot.subject), self.starts_key(slot.subject), self.revoked_key(slot.token_id)]
        args = [
            slot.slot_id,
            limits.max_sessions,
            limits.per_minute,
            _ms(limits.slot_ttl),
            _ms(WINDOW_SECONDS),
        ]
        outcome, limit, retry_after_ms = await self._admit(keys=keys, args=args)
        return Verdict.from_wire(
            {"outcome": outcome, "limit": limit, "retry_after": int(retry_after_ms) / 1000}
        )

    async def release(self, slot: Slot) -> None:
        assert slot.slot_id is not None
        await self._redis.zrem(self.places_key(slot.subject), slot.slot_id)

    async def check(self, slots: Sequence[Slot], limits: SubjectLimits) -> set[str]:
        held = [slot for slot in slots if slot.slot_id is not None]
        tokens = list(dict.fromkeys(slot.token_id for slot in slots if slot.token_id is not None))
        keys = [self.places_key(slot.subject) for slot in held] + [
            self.revoked_key(token) for token in tokens
        ]
        args = [_ms(limits.slot_ttl), len(held), *(slot.slot_id for slot in held)]
        positions = await self._check(keys=keys, args=args)
        return {tokens[int(position) - 1] for position in positions}

    async def revoke(self, revocation: Revocation) -> None:
        await self._redis.set(
            self.revoked_key(revocation.token_id), revocation.subject, pxat=_ms(revocation.keep_until)
        )

    async def close(self) -> None:
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
