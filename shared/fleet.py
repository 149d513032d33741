"""Limits that hold across a fleet: sessions per subject, sessions per minute per subject, revoked tokens.

One gateway process (on Cloudflare: one isolate) counts its own sessions (:mod:`shared.admission`).
Limits that must hold across processes and machines go through a :class:`FleetStore`, one small
async interface with three implementations:

- none (the default): the process's own :class:`~shared.admission.Admission` and
  :class:`~shared.revocation.RevocationList`; every limit is per process (per isolate);
- Redis (``REDIS_URL``, :mod:`standalone.redis_fleet`): one sorted set of places and one of
  starts per subject, one key per revoked token, every decision a Lua script run by Redis;
- the ``FLEET`` Durable Object on Cloudflare (:mod:`worker.fleet`): one object per subject, whose
  state is a :class:`SubjectLedger` (here, without I/O, so it is tested like the rest of the core).

:class:`SessionGate` is what adapters use: :meth:`~SessionGate.admit_plan` once the upgrade is
planned, :meth:`~SessionGate.release` when the session ends, :meth:`~SessionGate.poll` on a timer
(REVOCATION_POLL_SECONDS) to refresh the session's places and learn which tokens were revoked.
The relay never waits on the store per frame.

**Places.** A session with a subject holds a *place* in that subject's set, named by a random
slot id and valued with an expiry, refreshed by each poll. A session that ends gives its place
back; a process that dies stops refreshing, and its places expire (FLEET_SLOT_TTL_SECONDS).
MAX_SESSIONS stays per process: it protects the process, not a subject's share of the fleet.

**Failures.** Every store call is bounded in time. A failure or a timeout marks the store
unavailable: it is logged once per outage, counted (``fleet_failures`` in ``/debug/stats``),
and not tried again for REVOCATION_POLL_SECONDS, so connects never queue behind a dead store.
Meanwhile, REDIS_FAILURE_MODE decides: ``open`` serves with the process's own limits; ``closed``
refuses sessions with a subject (``fleet_unavailable``, close 1013). Sessions already open go on.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TypeVar

from .admission import Admission, Refusal, Ticket
from .answers import HttpAnswer, error_body
from .auth import refusal as token_refusal
from .config import Settings
from .errors import CloseCode, GatewayError
from .handshake import SessionPlan
from .limits import LIMIT_COUNTERS, LimitCounters
from .revocation import Revocation, RevocationList
from .tokens import TokenError

logger = logging.getLogger("realtime_gateway")

WINDOW_SECONDS = 60.0  # the sliding window of SESSIONS_PER_MINUTE_PER_SUBJECT
Outcome = Literal["admitted", "too_many_sessions", "rate_limited", "revoked"]
T = TypeVar("T")


def new_slot_id() -> str:
    """A place's name: random, so that places from every process can share one set."""
    return os.urandom(9).hex()


@dataclass(frozen=True, slots=True)
class SubjectLimits:
    """The per-subject limits a store applies (from the settings of the process asking)."""

    max_sessions: int  # MAX_SESSIONS_PER_SUBJECT (0: none)
    per_minute: int  # SESSIONS_PER_MINUTE_PER_SUBJECT (0: none)
    slot_ttl: float  # FLEET_SLOT_TTL_SECONDS

    @classmethod
    def of(cls, settings: Settings) -> SubjectLimits:
        return cls(
            settings.max_sessions_per_subject,
            settings.sessions_per_minute_per_subject,
            settings.fleet_slot_ttl_seconds,
        )


@dataclass(frozen=True, slots=True)
class Slot:
    """A session's place in its subject's count, and the token it was opened with.

    ``slot_id`` None: the session holds no place in the store (it was admitted by the process
    alone while the store was down) but its token is still checked for revocation.
    """

    subject: str
    slot_id: str | None
    token_id: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A store's answer to an admission; ``limit`` or ``retry_after`` (seconds) say why it refused."""

    outcome: Outcome
    limit: int = 0
    retry_after: float = 0.0

    def to_wire(self) -> dict[str, object]:
        return {"outcome": self.outcome, "limit": self.limit, "retry_after": self.retry_after}

    @classmethod
    def from_wire(cls, data: object) -> Verdict:
        if not isinstance(data, dict) or data.get("outcome") not in (
            "admitted",
            "too_many_sessions",
            "rate_limited",
            "revoked",
        ):
            raise ValueError("not a verdict")
        return cls(data["outcome"], int(data.get("limit", 0)), float(data.get("retry_after", 0.0)))


class FleetStore(Protocol):
    """Where the fleet's per-subject places, starts and revocations live (Redis, Durable Objects).

    Calls may fail or hang: :class:`SessionGate` bounds each by ``timeout`` and treats any
    exception as the store being unavailable.
    """

    name: str  # for the stats and the log: "redis", "durable_object"
    timeout: float  # seconds a call may take

    async def admit(self, slot: Slot, limits: SubjectLimits) -> Verdict:
        """Take a place for ``slot`` unless its subject is at a limit or its token is revoked."""
        ...

    async def release(self, slot: Slot) -> None:
        """Give ``slot``'s place back (its start still counts in the per-minute window)."""
        ...

    async def check(self, slots: Sequence[Slot], limits: SubjectLimits) -> set[str]:
        """Refresh the places of ``slots`` that hold one; answer which of their tokens are revoked."""
        ...

    async def revoke(self, revocation: Revocation) -> None:
        """Record ``revocation`` for every process using the store."""
        ...

    async def close(self) -> None: ...


# -- one subject's state, as a Durable Object keeps it ----------------------------------------------


@dataclass(eq=False)
class SubjectLedger:
    """One subject's places (slot id -> expiry), recent starts and revoked tokens (-> keep until).

    The same decisions as the Redis scripts (:mod:`standalone.redis_fleet`), without I/O: times
    are Unix seconds passed in. Everything expired is dropped as it is met, so the ledger stays as
    small as the subject's limits.
    """

    places: dict[str, float] = field(default_factory=dict)
    starts: list[float] = field(default_factory=list)  # ascending
    revoked: dict[str, float] = field(default_factory=dict)

    def admit(self, slot_id: str, token_id: str | None, now: float, limits: SubjectLimits) -> Verdict:
        self._purge(now)
        if token_id is not None and token_id in self.revoked:
            return Verdict("revoked")
        if limits.max_sessions and len(self.places) >= limits.max_sessions:
            return Verdict("too_many_sessions", limit=limits.max_sessions)
        if limits.per_minute:
            if len(self.starts) >= limits.per_minute:
                oldest = self.starts[-limits.per_minute]
                return Verdict(
                    "rate_limited", limit=limits.per_minute, retry_after=oldest + WINDOW_SECONDS - now
                )
            bisect.insort(self.starts, now)
        self.places[slot_id] = now + limits.slot_ttl
        return Verdict("admitted")

    def release(self, slot_id: str) -> None:
        self.places.pop(slot_id, None)

    def check(
        self, slot_ids: Iterable[str], token_ids: Iterable[str], now: float, slot_ttl: float
    ) -> list[str]:
        """Refresh the places still held (an expired one is not brought back); the revoked tokens."""
        self._purge(now)
        for slot_id in slot_ids:
            if slot_id in self.places:
                self.places[slot_id] = now + slot_ttl
        return [token_id for token_id in dict.fromkeys(token_ids) if token_id in self.revoked]

    def revoke(self, token_id: str, keep_until: float, now: float) -> None:
        self._purge(now)
        if keep_until > now:
            self.revoked[token_id] = keep_until

    @property
    def empty(self) -> bool:
        return not (self.places or self.starts or self.revoked)

    def to_json(self) -> str:
        return json.dumps({"places": self.places, "starts": self.starts, "revoked": self.revoked})

    @classmethod
    def from_json(cls, text: str | None) -> SubjectLedger:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(dict(data["places"]), list(data["starts"]), dict(data["revoked"]))

    def _purge(self, now: float) -> None:
        for table in (self.places, self.revoked):
            for name in [name for name, until in table.items() if until <= now]:
                del table[name]
        del self.starts[: bisect.bisect_right(self.starts, now - WINDOW_SECONDS)]


# -- the adapters' view ------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Pass:
    """An admitted session: its place in the process's count, and in the fleet's (if any)."""

    ticket: Ticket
    slot: Slot | None  # None: no gateway token (no subject, nothing to revoke)
    released: bool = False

    @property
    def token_id(self) -> str | None:
        return self.slot.token_id if self.slot is not None else None


class FleetStatus:
    """Whether the store answers; its failures, each counted, logged once per outage."""

    def __init__(self, store_name: str, retry_seconds: float) -> None:
        self.store_name = store_name
        self.available = True
        self.failures = 0
        self._retry_seconds = retry_seconds
        self._retry_at = 0.0

    def may_try(self, now: float) -> bool:
        """Whether to call the store at ``now`` (monotonic seconds): up, or down long enough to retry."""
        return self.available or now >= self._retry_at

    def failed(self, what: str, error: BaseException, now: float, fallback: str) -> None:
        self.failures += 1
        self._retry_at = now + self._retry_seconds
        if self.available:
            self.available = False
            detail = str(error)[:200] or "no answer in time"
            logger.error(
                "fleet store %s unavailable (%s failed: %s: %s); %s until it answers again",
                self.store_name,
                what,
                type(error).__name__,
                detail,
                fallback,
            )

    def succeeded(self) -> None:
        if not self.available:
            self.available = True
            logger.warning(
                "fleet store %s available again (%d failed calls since start-up); fleet-wide limits apply",
                self.store_name,
                self.failures,
            )


class FleetUnavailable(Exception):
    """The store could not record a revocation (it is down); the process has recorded it."""


class SessionGate:
    """Admission at the upgrade, release at the end, revocation polls: the process's count
    (MAX_SESSIONS) always, the subject's limits through the store when there is one."""

    def __init__(
        self,
        settings: Settings,
        admission: Admission,
        store: FleetStore | None = None,
        counters: LimitCounters = LIMIT_COUNTERS,
    ) -> None:
        self.settings = settings
        self.admission = admission
        self.store = store
        self.revocations = RevocationList()
        self.status = FleetStatus(store.name if store else "process", settings.revocation_poll_seconds)
        self._limits = SubjectLimits.of(settings)
        self._counters = counters
        self._closed_mode = settings.redis_failure_mode == "closed"

    @property
    def scope(self) -> str:
        """Where the per-subject limits are kept: ``process`` or the store's name."""
        return self.store.name if self.store is not None else "process"

    def figures(self) -> dict[str, int | float | str | None]:
        """What ``GET /debug/stats`` shows of the fleet (no subject, no token)."""
        return {
            "fleet": self.scope,
            "fleet_available": self.store is None or self.status.available,
            "fleet_failures": self.status.failures,
        }

    async def admit_plan(
        self, plan: SessionPlan, now: float, wall: float
    ) -> tuple[SessionPlan, Pass | None] | HttpAnswer:
        """Admit the session ``plan`` describes at ``now`` (monotonic) / ``wall`` (Unix seconds).

        A revoked token gets an :class:`HttpAnswer` (401 ``token_revoked``) instead of the upgrade.
        Otherwise, as :meth:`Admission.admit_plan`: the plan and a pass to release at the end, or a
        plan carrying the refusal (reported on the accepted socket, close 1013) and no pass.
        """
        token_id, subject = plan.token_id, plan.subject
        if subject is None or token_id is None:  # no gateway token: the process's count alone
            plan, ticket = self.admission.admit_plan(plan, now)
            return plan, (Pass(ticket, None) if ticket is not None else None)
        if self.revocations.revoked(token_id, wall):
            return revoked_at_connect(subject)
        store = self.store
        if plan.error is not None:  # the session ends at once; only a revocation would change that
            if store is not None and self.status.may_try(now):
                revoked = await self._call(
                    store.check([Slot(subject, None, token_id)], self._limits), "check", now
                )
                if revoked:
                    return revoked_at_connect(subject)
            return plan, None
        # The process's own count first: the subject's sessions here are among its sessions in the
        # fleet, so what this refuses the store would refuse too, and it is the count that applies
        # while the store is down (REDIS_FAILURE_MODE=open).
        local = self.admission.admit(subject, now)
        if isinstance(local, Refusal):
            return _refused(plan, local), None
        if store is None:
            return plan, Pass(local, Slot(subject, None, token_id))
        if not self.status.may_try(now):
            return self._without_store(plan, local)
        slot = Slot(subject, new_slot_id(), token_id)
        try:
            verdict = await self._bounded(store.admit(slot, self._limits))
        except Exception as error:  # an I/O boundary: whatever the store raised, it did not answer
            self.status.failed("admit", error, now, self._fallback)
            return self._without_store(plan, local)
        self.status.succeeded()
        if verdict.outcome == "admitted":
            return plan, Pass(local, slot)
        self.admission.withdraw(local)
        if verdict.outcome == "revoked":
            return revoked_at_connect(subject)
        return _refused(plan, self._refusal(verdict, subject)), None

    async def release(self, admitted: Pass | None, now: float) -> None:
        """The session holding ``admitted`` ended (twice, or None, does nothing)."""
        if admitted is None or admitted.released:
            return
        admitted.released = True
        self.admission.release(admitted.ticket)
        slot = admitted.slot
        if (
            slot is not None
            and slot.slot_id is not None
            and self.store is not None
            and self.status.may_try(now)
        ):
            # Not retried: a place not given back expires (FLEET_SLOT_TTL_SECONDS).
            await self._call(self.store.release(slot), "release", now)

    async def poll(self, passes: Iterable[Pass], now: float, wall: float) -> set[str]:
        """Refresh the places of ``passes``; answer the ids of their tokens that were revoked."""
        slots = [admitted.slot for admitted in passes if admitted.slot is not None and not admitted.released]
        revoked = {
            slot.token_id for slot in slots if slot.token_id and self.revocations.revoked(slot.token_id, wall)
        }
        if self.store is not None and self.status.may_try(now):
            found = await self._call(self.store.check(slots, self._limits), "check", now)
            revoked |= found or set()
        return revoked

    async def revoke(self, revocation: Revocation, now: float, wall: float) -> None:
        """Record ``revocation`` here at once and in the store; :class:`FleetUnavailable` if the
        store could not take it (the other processes do not know of it then)."""
        self.revocations.add(revocation, wall)
        if self.store is None:
            return
        try:
            await self._bounded(self.store.revoke(revocation))
        except Exception as error:  # an I/O boundary, as in admit_plan
            self.status.failed("revoke", error, now, self._fallback)
            raise FleetUnavailable from None
        self.status.succeeded()

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    # -- helpers -------------------------------------------------------------------------------------

    @property
    def _fallback(self) -> str:
        if self._closed_mode:
            return "refusing sessions with a gateway token (REDIS_FAILURE_MODE=closed)"
        return "serving with per-process limits (REDIS_FAILURE_MODE=open)"

    async def _bounded(self, call: Awaitable[T]) -> T:
        assert self.store is not None
        return await asyncio.wait_for(call, self.store.timeout)

    async def _call(self, call: Awaitable[T], what: str, now: float) -> T | None:
        """``call`` bounded in time; None (and the failure noted) if it failed."""
        try:
            result = await self._bounded(call)
        except Exception as error:  # an I/O boundary, as in admit_plan
            self.status.failed(what, error, now, self._fallback)
            return None
        self.status.succeeded()
        return result

    def _without_store(self, plan: SessionPlan, local: Ticket) -> tuple[SessionPlan, Pass | None]:
        """The store is down: refuse (closed) or keep the process's own admission (open)."""
        assert plan.subject is not None
        if not self._closed_mode:
            return plan, Pass(local, Slot(plan.subject, None, plan.token_id))
        self.admission.withdraw(local)
        self._counters.hit("fleet_unavailable", f"fleet={self.scope} subject={plan.subject!r}")
        error = GatewayError(
            "fleet_unavailable",
            "The gateway cannot reach the store that keeps its fleet-wide limits, and does not open "
            "sessions without it (REDIS_FAILURE_MODE=closed); try again later.",
            type="server_error",
        )
        return _refused(plan, Refusal(error, CloseCode.TRY_AGAIN_LATER)), None

    def _refusal(self, verdict: Verdict, subject: str) -> Refusal:
        if verdict.outcome == "too_many_sessions":
            setting = "MAX_SESSIONS_PER_SUBJECT"
            message = (
                f"You already have {verdict.limit} sessions open across this gateway's fleet, the most "
                f"allowed at once ({setting}); close one and try again."
            )
        else:
            setting = "SESSIONS_PER_MINUTE_PER_SUBJECT"
            wait = max(1, -int(-verdict.retry_after // 1))
            message = (
                f"You opened {verdict.limit} sessions in the last {WINDOW_SECONDS:g} s, the most allowed "
                f"({setting}); try again in {wait} s."
            )
        self._counters.hit(verdict.outcome, f"limit={setting} subject={subject!r} fleet={self.scope}")
        return Refusal(GatewayError(verdict.outcome, message), CloseCode.TRY_AGAIN_LATER)


def _refused(plan: SessionPlan, refusal: Refusal) -> SessionPlan:
    return replace(plan, upstream=None, error=refusal.error, error_close_code=refusal.close_code)


def revoked_at_connect(subject: str) -> HttpAnswer:
    """401 ``token_revoked``, as an invalid token is refused (logged by subject, never by token)."""
    return token_refusal(
        TokenError("token_revoked", "This gateway token has been revoked: ask for a new one.", 401, subject)
    )


def unavailable_answer() -> HttpAnswer:
    """503 for a revocation the store could not take (this process has it; the others do not)."""
    return HttpAnswer(
        503,
        error_body(
            "fleet_unavailable",
            "The token is revoked in this gateway process, but the store shared by the fleet could not be "
            "reached; retry to revoke it everywhere.",
        ),
    )
