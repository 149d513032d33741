"""Fleet-wide limits without sockets: one subject's ledger (what a Durable Object keeps), the session
gate over no store and over a store that answers, refuses, fails or hangs, token revocations, and
the relay's input for a revoked token. Time is a number the test passes in."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from shared.actions import CloseClient, CloseUpstream, SendToClient
from shared.admission import Admission, Refusal
from shared.answers import HttpAnswer
from shared.config import Settings
from shared.fleet import (
    WINDOW_SECONDS,
    FleetUnavailable,
    Pass,
    SessionGate,
    Slot,
    SubjectLedger,
    SubjectLimits,
    Verdict,
)
from shared.handshake import SessionPlan, plan_session
from shared.limits import LimitCounters
from shared.relay import Relay
from shared.revocation import Revocation, RevocationList, revocation_for, revoke_request
from shared.tokens import mint, verify

SECRET = "fleet-unit-secret-0123456789abcdef-012345"
ADMIN = "fleet-unit-admin-key"
WALL = 1_800_000_000.0  # Unix time, for tokens and revocations
T0 = 500.0  # monotonic time, for the gate
LIMITS = SubjectLimits(max_sessions=2, per_minute=3, slot_ttl=30.0)


def make_settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {
            "GATEWAY_SECRET": SECRET,
            "GATEWAY_ADMIN_KEY": ADMIN,
            "AUTH_MODE": "both",
            "MAX_SESSIONS_PER_SUBJECT": "2",
            "SESSIONS_PER_MINUTE_PER_SUBJECT": "3",
            "REVOCATION_POLL_SECONDS": "1",
            **values,
        }
    )


def token_for(subject: str, **claims: Any) -> str:
    return mint(SECRET, subject=subject, now=WALL, ttl_seconds=600, **claims)


def make_plan(settings: Settings, token: str | None = None, provider: str = "simulator") -> SessionPlan:
    headers = {"authorization": f"Bearer {token or 'sk-fleet-unit-client-key'}"}
    plan = plan_session("/v1/realtime", urlencode({"provider": provider}), headers, settings, WALL)
    assert isinstance(plan, SessionPlan)
    return plan


def admitted(outcome: tuple[SessionPlan, Pass | None] | HttpAnswer) -> Pass:
    assert not isinstance(outcome, HttpAnswer), outcome
    plan, ticket = outcome
    assert plan.error is None, plan.error
    assert ticket is not None
    return ticket


def refused(outcome: tuple[SessionPlan, Pass | None] | HttpAnswer, code: str) -> str:
    assert not isinstance(outcome, HttpAnswer), outcome
    plan, ticket = outcome
    assert ticket is None
    assert plan.error is not None
    assert plan.error.code == code, plan.error
    assert plan.error_close_code == 1013
    assert plan.upstream is None
    return plan.error.message


def refused_at_connect(outcome: tuple[SessionPlan, Pass | None] | HttpAnswer) -> None:
    assert isinstance(outcome, HttpAnswer), outcome
    assert outcome.status == 401
    assert outcome.body["error"]["code"] == "token_revoked"  # type: ignore[index]


# -- one subject's ledger ---------------------------------------------------------------------------------


def test_the_ledger_holds_a_place_per_session_up_to_the_limit() -> None:
    ledger = SubjectLedger()
    assert ledger.admit("a", "t1", WALL, LIMITS) == Verdict("admitted")
    assert ledger.admit("b", "t1", WALL + 1, LIMITS) == Verdict("admitted")
    assert ledger.admit("c", "t1", WALL + 2, LIMITS) == Verdict("too_many_sessions", limit=2)
    ledger.release("a")
    assert ledger.admit("c", "t1", WALL + 3, LIMITS).outcome == "admitted"


def test_a_place_not_refreshed_expires_and_is_not_brought_back() -> None:
    ledger = SubjectLedger()
    ledger.admit("kept", None, WALL, LIMITS)
    ledger.admit("dead", None, WALL, LIMITS)
    ledger.check(["kept"], [], WALL + 20, LIMITS.slot_ttl)  # its process is alive: refreshed
    assert set(ledger.places) == {"kept", "dead"}
    ledger.check(["kept", "dead"], [], WALL + 31, LIMITS.slot_ttl)  # "dead" expired at WALL + 30
    assert set(ledger.places) == {"kept"}
    assert ledger.places["kept"] == WALL + 31 + LIMITS.slot_ttl


def test_the_ledger_windows_starts_per_minute_and_says_when_to_retry() -> None:
    ledger = SubjectLedger()
    limits = SubjectLimits(max_sessions=0, per_minute=3, slot_ttl=30.0)
    for offset, name in ((0, "a"), (10, "b"), (20, "c")):
        assert ledger.admit(name, None, WALL + offset, limits).outcome == "admitted"
    verdict = ledger.admit("d", None, WALL + 25, limits)
    assert verdict.outcome == "rate_limited"
    assert verdict.limit == 3
    assert verdict.retry_after == pytest.approx(WINDOW_SECONDS - 25)  # when "a" leaves the window
    assert ledger.admit("d", None, WALL + WINDOW_SECONDS, limits).outcome == "admitted"


def test_refused_sessions_do_not_count_as_starts() -> None:
    ledger = SubjectLedger()
    limits = SubjectLimits(max_sessions=1, per_minute=2, slot_ttl=30.0)
    assert ledger.admit("a", None, WALL, limits).outcome == "admitted"
    for offset in range(1, 5):
        assert ledger.admit(f"x{offset}", None, WALL + offset, limits).outcome == "too_many_sessions"
    ledger.release("a")
    assert ledger.admit("b", None, WALL + 6, limits).outcome == "admitted"


def test_a_revoked_token_is_refused_and_reported_until_it_is_kept() -> None:
    ledger = SubjectLedger()
    ledger.admit("a", "stolen", WALL, LIMITS)
    ledger.revoke("stolen", WALL + 100, WALL + 1)
    assert ledger.admit("b", "stolen", WALL + 2, LIMITS) == Verdict("revoked")
    assert ledger.admit("b", "other", WALL + 2, LIMITS).outcome == "admitted"
    assert ledger.check(["a"], ["stolen", "other", "stolen"], WALL + 3, LIMITS.slot_ttl) == ["stolen"]
    assert ledger.check([], ["stolen"], WALL + 100, LIMITS.slot_ttl) == []  # no longer kept
    ledger.revoke("late", WALL + 50, WALL + 60)  # already past: nothing to keep
    assert "late" not in ledger.revoked


def test_the_ledger_round_trips_through_json_and_empties_as_it_expires() -> None:
    ledger = SubjectLedger()
    ledger.admit("a", "t", WALL, LIMITS)
    ledger.revoke("r", WALL + 90, WALL)
    copy = SubjectLedger.from_json(ledger.to_json())
    assert (copy.places, copy.starts, copy.revoked) == (ledger.places, ledger.starts, ledger.revoked)
    assert SubjectLedger.from_json(None).empty
    copy.check([], [], WALL + 91, LIMITS.slot_ttl)
    assert copy.empty


def test_a_verdict_crosses_the_wire_and_nothing_else_does() -> None:
    verdict = Verdict("rate_limited", limit=3, retry_after=12.5)
    assert Verdict.from_wire(json.loads(json.dumps(verdict.to_wire()))) == verdict
    with pytest.raises(ValueError, match="not a verdict"):
        Verdict.from_wire({"outcome": "maybe"})


# -- the gate without a store: everything per process --------------------------------------------------


async def test_without_a_store_the_process_counts_and_revokes() -> None:
    settings = make_settings()
    gate = SessionGate(settings, Admission(settings, LimitCounters()), counters=LimitCounters())
    alice = token_for("fleet-alice")
    first = admitted(await gate.admit_plan(make_plan(settings, alice), T0, WALL))
    admitted(await gate.admit_plan(make_plan(settings, alice), T0, WALL))
    refused(await gate.admit_plan(make_plan(settings, alice), T0, WALL), "too_many_sessions")
    assert first.token_id == verify(alice, SECRET, WALL).nonce
    assert gate.figures() == {"fleet": "process", "fleet_available": True, "fleet_failures": 0}

    revocation = revocation_for(verify(alice, SECRET, WALL), settings)
    await gate.revoke(revocation, T0, WALL)
    assert await gate.poll([first], T0 + 1, WALL + 1) == {revocation.token_id}
    await gate.release(first, T0 + 1)
    refused_at_connect(await gate.admit_plan(make_plan(settings, alice), T0 + 1, WALL + 1))
    # Another token of the same subject is not revoked; a request that fails anyway is still refused.
    await gate.release(
        admitted(await gate.admit_plan(make_plan(settings, token_for("fleet-alice")), T0, WALL)), T0
    )
    refused_at_connect(
        await gate.admit_plan(make_plan(settings, alice, provider="nowhere"), T0 + 1, WALL + 1)
    )


async def test_a_session_without_a_token_holds_only_the_process_count() -> None:
    settings = make_settings(MAX_SESSIONS="1")
    store = LedgerStore()
    gate = SessionGate(settings, Admission(settings, LimitCounters()), store, LimitCounters())
    ticket = admitted(await gate.admit_plan(make_plan(settings), T0, WALL))
    assert ticket.slot is None
    assert await gate.poll([ticket], T0, WALL) == set()
    refused(await gate.admit_plan(make_plan(settings, token_for("fleet-bob")), T0, WALL), "too_many_sessions")
    assert store.calls == ["check"]  # MAX_SESSIONS is the process's own: the store was not asked to admit
    await gate.release(ticket, T0)
    assert gate.admission.live == 0


# -- the gate over a store ----------------------------------------------------------------------------


class LedgerStore:
    """A FleetStore over in-memory ledgers (the Durable Object's logic, without the object), that
    can be told to fail or to hang, and records what it was asked."""

    name = "test"

    def __init__(self, timeout: float = 1.0) -> None:
        self.timeout = timeout
        self.ledgers: dict[str, SubjectLedger] = {}
        self.now = WALL
        self.calls: list[str] = []
        self.failing: BaseException | None = None
        self.hanging = False

    async def _enter(self, what: str) -> None:
        self.calls.append(what)
        if self.failing is not None:
            raise self.failing
        if self.hanging:
            await asyncio.Event().wait()

    def ledger(self, subject: str) -> SubjectLedger:
        return self.ledgers.setdefault(subject, SubjectLedger())

    async def admit(self, slot: Slot, limits: SubjectLimits) -> Verdict:
        await self._enter("admit")
        assert slot.slot_id is not None
        return self.ledger(slot.subject).admit(slot.slot_id, slot.token_id, self.now, limits)

    async def release(self, slot: Slot) -> None:
        await self._enter("release")
        assert slot.slot_id is not None
        self.ledger(slot.subject).release(slot.slot_id)

    async def check(self, slots: Sequence[Slot], limits: SubjectLimits) -> set[str]:
        await self._enter("check")
        revoked: set[str] = set()
        for slot in slots:
            held = [slot.slot_id] if slot.slot_id is not None else []
            tokens = [slot.token_id] if slot.token_id is not None else []
            revoked |= set(self.ledger(slot.subject).check(held, tokens, self.now, limits.slot_ttl))
        return revoked

    async def revoke(self, revocation: Revocation) -> None:
        await self._enter("revoke")
        self.ledger(revocation.subject).revoke(revocation.token_id, revocation.keep_until, self.now)

    async def close(self) -> None:
        self.calls.append("close")


def gate_over(store: LedgerStore, counters: LimitCounters | None = None, **values: str) -> SessionGate:
    settings = make_settings(**values)
    counters = counters or LimitCounters()
    return SessionGate(settings, Admission(settings, counters), store, counters)


async def test_places_are_taken_in_the_store_and_given_back() -> None:
    store = LedgerStore()
    gate = gate_over(store)
    plan = make_plan(gate.settings, token_for("fleet-carol"))
    ticket = admitted(await gate.admit_plan(plan, T0, WALL))
    assert ticket.slot is not None
    assert ticket.slot.slot_id in store.ledger("fleet-carol").places
    assert gate.admission.live == 1
    assert gate.admission.live_for("fleet-carol") == 1  # the process counts its share too
    await gate.release(ticket, T0)
    await gate.release(ticket, T0)  # twice: nothing more
    assert store.ledger("fleet-carol").places == {}
    assert gate.admission.live == 0
    assert store.calls == ["admit", "release"]
    assert gate.figures() == {"fleet": "test", "fleet_available": True, "fleet_failures": 0}


async def test_the_stores_refusals_reach_the_client_with_their_setting() -> None:
    store, counters = LedgerStore(), LimitCounters()
    gate = gate_over(store, counters)
    elsewhere = gate_over(store)  # another gateway process on the same store
    dan = token_for("fleet-dan")
    held = [admitted(await elsewhere.admit_plan(make_plan(gate.settings, dan), T0, WALL)) for _ in "ab"]
    message = refused(await gate.admit_plan(make_plan(gate.settings, dan), T0, WALL), "too_many_sessions")
    assert "MAX_SESSIONS_PER_SUBJECT" in message
    assert "across this gateway's fleet" in message
    assert gate.admission.live == 0  # the refused session's place here was given back ...
    await elsewhere.release(held[0], T0)
    # ... and its start withdrawn: this process has started one session of dan's, not two.
    admitted(await gate.admit_plan(make_plan(gate.settings, dan), T0, WALL))  # the third start
    await elsewhere.release(held[1], T0)
    message = refused(await gate.admit_plan(make_plan(gate.settings, dan), T0, WALL), "rate_limited")
    assert "SESSIONS_PER_MINUTE_PER_SUBJECT" in message
    assert "try again in 60 s" in message
    assert counters.totals() == {"too_many_sessions": 1, "rate_limited": 1}
    # The process's own window holds one start: once the fleet's passes, it admits again.
    store.now += WINDOW_SECONDS
    admitted(await gate.admit_plan(make_plan(gate.settings, dan), T0 + WINDOW_SECONDS, WALL))


async def test_polls_refresh_places_and_find_revoked_tokens_anywhere() -> None:
    store = LedgerStore()
    gate = gate_over(store)
    other_process = gate_over(store)  # another gateway process on the same store
    token = token_for("fleet-erin")
    ticket = admitted(await gate.admit_plan(make_plan(gate.settings, token), T0, WALL))
    assert ticket.slot is not None
    store.now += 20
    assert await gate.poll([ticket], T0 + 20, WALL + 20) == set()
    assert store.ledger("fleet-erin").places[ticket.slot.slot_id] == store.now + 30.0  # refreshed
    await other_process.revoke(revocation_for(verify(token, SECRET, WALL), gate.settings), T0, WALL)
    assert await gate.poll([ticket], T0 + 21, WALL + 21) == {ticket.token_id}
    refused_at_connect(await gate.admit_plan(make_plan(gate.settings, token), T0 + 21, WALL + 21))
    assert gate.admission.live == 1  # the refused one's process place was given back


async def test_open_a_failing_store_means_per_process_limits_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = LedgerStore()
    gate = gate_over(store)
    store.failing = ConnectionError("Connection refused")
    token = token_for("fleet-fay")
    with caplog.at_level(logging.WARNING, logger="realtime_gateway"):
        first = admitted(await gate.admit_plan(make_plan(gate.settings, token), T0, WALL))
        second = admitted(await gate.admit_plan(make_plan(gate.settings, token), T0 + 0.5, WALL))
        # The process's own MAX_SESSIONS_PER_SUBJECT applies meanwhile.
        refused(await gate.admit_plan(make_plan(gate.settings, token), T0 + 0.5, WALL), "too_many_sessions")
    assert first.slot is not None
    assert first.slot.slot_id is None  # no place in the store, but its token is still watched
    assert store.calls == ["admit"]  # within REVOCATION_POLL_SECONDS of the failure: not asked again
    assert gate.figures() == {"fleet": "test", "fleet_available": False, "fleet_failures": 1}
    outages = [record for record in caplog.records if "unavailable" in record.getMessage()]
    assert len(outages) == 1
    assert outages[0].levelno == logging.ERROR
    assert "REDIS_FAILURE_MODE=open" in outages[0].getMessage()
    assert "Connection refused" in outages[0].getMessage()

    store.failing = None
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="realtime_gateway"):
        assert await gate.poll([first, second], T0 + 1.5, WALL) == set()  # the retry: answered
    assert gate.figures()["fleet_available"] is True
    assert any("available again" in record.getMessage() for record in caplog.records)
    await gate.release(first, T0 + 2)
    await gate.release(second, T0 + 2)
    assert "release" not in store.calls  # they held no place there
    third = admitted(await gate.admit_plan(make_plan(gate.settings, token), T0 + 2, WALL))
    assert third.slot is not None
    assert third.slot.slot_id is not None


async def test_a_store_that_hangs_fails_by_its_timeout() -> None:
    store = LedgerStore(timeout=0.05)
    store.hanging = True
    gate = gate_over(store)
    ticket = admitted(await gate.admit_plan(make_plan(gate.settings, token_for("fleet-gus")), T0, WALL))
    assert ticket.slot is not None
    assert ticket.slot.slot_id is None
    assert gate.status.failures == 1


async def test_closed_a_failing_store_refuses_sessions_with_a_token() -> None:
    store, counters = LedgerStore(), LimitCounters()
    gate = gate_over(store, counters, REDIS_FAILURE_MODE="closed")
    store.failing = TimeoutError()
    message = refused(
        await gate.admit_plan(make_plan(gate.settings, token_for("fleet-hal")), T0, WALL), "fleet_unavailable"
    )
    assert "REDIS_FAILURE_MODE=closed" in message
    refused(
        await gate.admit_plan(make_plan(gate.settings, token_for("fleet-hal")), T0 + 0.1, WALL),
        "fleet_unavailable",
    )
    assert store.calls == ["admit"]
    assert counters.total("fleet_unavailable") == 2
    assert gate.admission.live == 0
    admitted(await gate.admit_plan(make_plan(gate.settings), T0, WALL))  # no token: the process decides


async def test_a_revocation_the_store_cannot_take_holds_in_the_process() -> None:
    store = LedgerStore()
    gate = gate_over(store)
    token = token_for("fleet-ida")
    store.failing = OSError("down")
    with pytest.raises(FleetUnavailable):
        await gate.revoke(revocation_for(verify(token, SECRET, WALL), gate.settings), T0, WALL)
    refused_at_connect(await gate.admit_plan(make_plan(gate.settings, token), T0 + 5, WALL + 5))


# -- revocation requests --------------------------------------------------------------------------------


def revoke_call(
    body: object, settings: Settings | None = None, admin: str = ADMIN, method: str = "POST"
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"authorization": f"Bearer {admin}"}
    return revoke_request(method, headers, raw, settings or make_settings(), WALL)


def error_code(answer: Any, status: int) -> str:
    assert isinstance(answer, HttpAnswer), answer
    assert answer.status == status, answer
    return answer.body["error"]["code"]  # type: ignore[index,no-any-return]


def test_a_revocation_request_needs_the_admin_key_and_a_token_of_ours() -> None:
    token = token_for("fleet-jo")
    assert error_code(revoke_call({"token": token}, method="GET"), 405) == "method_not_allowed"
    assert error_code(revoke_call({"token": token}, admin="wrong"), 401) == "invalid_admin_key"
    no_admin = Settings.from_mapping({"GATEWAY_SECRET": SECRET})
    assert error_code(revoke_call({"token": token}, no_admin), 501) == "tokens_disabled"
    assert error_code(revoke_call(b"{not json"), 400) == "invalid_json"
    assert error_code(revoke_call({}), 400) == "missing_required_parameter"
    assert error_code(revoke_call({"token": token, "why": "x"}), 400) == "invalid_value"
    assert error_code(revoke_call({"token": token[:-2] + "AA"}), 400) == "invalid_token"
    assert error_code(revoke_call(b" " * 9000), 413) == "request_too_large"
    forged = mint("another-secret-0123456789abcdef-0123456", subject="fleet-jo", now=WALL, ttl_seconds=60)
    answer = revoke_call({"token": forged})
    assert error_code(answer, 400) == "invalid_token"
    assert forged not in json.dumps(answer.body)


def test_a_revocation_is_kept_as_long_as_its_sessions_can_last() -> None:
    claims = verify(token_for("fleet-kim"), SECRET, WALL)
    revocation = revoke_call({"token": token_for("fleet-kim")})
    assert isinstance(revocation, Revocation)
    assert revocation.subject == "fleet-kim"
    assert revocation.keep_until == claims.expires_at + 3600  # MAX_SESSION_SECONDS
    short = verify(token_for("fleet-kim", max_session_seconds=90), SECRET, WALL)
    assert revocation_for(short, make_settings()).keep_until == short.expires_at + 90
    unlimited = make_settings(MAX_SESSION_SECONDS="0")
    assert revocation_for(claims, unlimited).keep_until == claims.expires_at + 86400
    # An expired token can be revoked: its sessions may still be open.
    old = mint(SECRET, subject="fleet-kim", now=WALL - 7200, ttl_seconds=60)
    expired = revoke_call({"token": old})
    assert isinstance(expired, Revocation)
    assert expired.keep_until < WALL  # ... though none can be by now


def test_the_process_revocation_list_forgets_what_it_no_longer_needs() -> None:
    revocations = RevocationList()
    revocations.add(Revocation("a", "s", 0, WALL + 10), WALL)
    revocations.add(Revocation("gone", "s", 0, WALL - 1), WALL)
    assert revocations.revoked("a", WALL + 9)
    assert not revocations.revoked("a", WALL + 10)
    assert not revocations.revoked("gone", WALL)
    revocations.add(Revocation("b", "s", 0, WALL + 100), WALL + 20)
    assert len(revocations) == 1


# -- the relay ------------------------------------------------------------------------------------------


def test_a_revoked_token_ends_the_session_with_token_revoked_and_1008() -> None:
    settings = make_settings()
    counters = LimitCounters()
    relay = Relay(make_plan(settings, token_for("fleet-lee"), provider="simulator"), settings, T0, counters)
    relay.client_connected(T0)
    actions = relay.token_revoked()
    assert [type(action) for action in actions] == [CloseUpstream, SendToClient, CloseClient]
    assert isinstance(actions[1], SendToClient)
    error = json.loads(actions[1].data)["error"]
    assert error["code"] == "token_revoked"
    assert actions[2] == CloseClient(1008, error["message"])
    assert counters.total("token_revoked") == 1
    assert relay.closed
    assert relay.token_revoked() == []


def test_a_withdrawn_admission_leaves_no_start_in_the_process_window() -> None:
    settings = make_settings(SESSIONS_PER_MINUTE_PER_SUBJECT="2")
    admission = Admission(settings, LimitCounters())
    withdrawn = admission.admit("fleet-max", T0)
    assert not isinstance(withdrawn, Refusal)
    admission.withdraw(withdrawn)
    admission.withdraw(withdrawn)  # twice: nothing more
    assert admission.live == 0
    assert not isinstance(admission.admit("fleet-max", T0 + 1), Refusal)
    assert not isinstance(admission.admit("fleet-max", T0 + 2), Refusal)
    assert isinstance(admission.admit("fleet-max", T0 + 3), Refusal)


# -- the production guide stays complete ------------------------------------------------------------------

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "production.md").read_text()
FLEET_SETTINGS = [
    name
    for name in Settings.names()
    if name.startswith(("REDIS_", "FLEET_", "REVOCATION_", "DURABLE_OBJECT_"))
]


@pytest.mark.parametrize("name", FLEET_SETTINGS)
def test_every_fleet_setting_is_in_the_production_guide(name: str) -> None:
    assert f"`{name}`" in GUIDE


def test_the_production_guide_shows_the_keys_the_redis_store_writes() -> None:
    from standalone.redis_fleet import RedisFleetStore

    store = RedisFleetStore(
        Settings.from_mapping({"REDIS_URL": "redis://127.0.0.1:9/0", "REDIS_KEY_PREFIX": "P "})
    )
    for key in (store.places_key("<subject>"), store.starts_key("<subject>"), store.revoked_key("<nonce>")):
        assert f"| `{key}` |" in GUIDE
