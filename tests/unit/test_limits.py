"""Limits without sockets: the admission bookkeeping, the relay's session and idle timers, liveness
and shutdown inputs, and the per-reason counters. Time is a number the test passes in."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError

from shared.actions import Action, CloseClient, CloseUpstream, SendToClient, SendToUpstream
from shared.admission import WINDOW_SECONDS, Admission, Refusal, Ticket
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.limits import LimitCounters
from shared.relay import Relay, State
from shared.tokens import mint

OPERATOR_KEY = "sk-limits-unit-operator-key"
SECRET = "limits-unit-secret-0123456789abcdef-0123"
WALL = 1_800_000_000.0  # Unix time, for tokens
T0 = 500.0  # monotonic time, for the relay and the admission


def make_settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {
            "OPENAI_API_KEY": OPERATOR_KEY,
            "GATEWAY_SECRET": SECRET,
            "AUTH_MODE": "both",
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "10",
            "SIMULATOR_PACE": "0",
            **values,
        }
    )


def make_plan(
    settings: Settings, subject: str | None = None, provider: str = "openai", **token: Any
) -> SessionPlan:
    # AUTH_MODE=both: a token gives the session a subject; a provider key gives it none.
    credential = "sk-limits-unit-client-key"
    if subject is not None:
        credential = mint(SECRET, subject=subject, now=WALL, ttl_seconds=600, **token)
    headers = {"authorization": f"Bearer {credential}"}
    query = urlencode({"provider": provider, "model": "limits-unit"})
    plan = plan_session("/v1/realtime", query, headers, settings, WALL)
    assert isinstance(plan, SessionPlan)
    assert plan.error is None
    return plan


def open_relay(
    settings: Settings, now: float = T0, counters: LimitCounters | None = None, **plan: Any
) -> Relay:
    relay = Relay(make_plan(settings, **plan), settings, now, counters or LimitCounters())
    assert relay.client_connected(now) == [] or relay.plan.provider == "simulator"
    if relay.plan.provider != "simulator":
        assert relay.upstream_connected(now) == []
        relay.upstream_frame('{"type":"session.created"}')  # the provider spoke: connected
    assert relay.state is State.OPEN
    return relay


def error_then_close(actions: list[Action], code: str, close_code: int) -> dict[str, Any]:
    """``actions`` end with an error event with ``code``, then a close of the client with ``close_code``."""
    *_, sent, close = actions
    assert isinstance(sent, SendToClient)
    assert isinstance(sent.data, str)
    event = json.loads(sent.data)
    assert event["type"] == "error"
    assert event["error"]["code"] == code
    assert isinstance(close, CloseClient)
    assert close.code == close_code
    assert close.reason
    return event["error"]


def append(number: int) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "event_id": f"evt_{number}", "audio": "AAAA"})


# -- settings ------------------------------------------------------------------------------------------

LIMIT_SETTINGS = {
    "MAX_SESSION_SECONDS": 3600.0,
    "IDLE_TIMEOUT_SECONDS": 600.0,
    "MAX_SESSIONS": 1000,
    "MAX_SESSIONS_PER_SUBJECT": 10,
    "SESSIONS_PER_MINUTE_PER_SUBJECT": 30,
    "PING_INTERVAL_SECONDS": 20.0,
    "PING_TIMEOUT_SECONDS": 20.0,
    "MAX_BUFFERED_BYTES": 1024 * 1024,
    "SHUTDOWN_TIMEOUT_SECONDS": 10.0,
}


@pytest.mark.parametrize(("name", "default"), LIMIT_SETTINGS.items())
def test_each_limit_is_a_setting_with_a_default(name: str, default: float) -> None:
    field = next(field for field in Settings.model_fields.values() if field.alias == name)
    assert field.default == default
    assert field.description


@pytest.mark.parametrize(
    "name",
    [
        "MAX_SESSION_SECONDS",
        "IDLE_TIMEOUT_SECONDS",
        "MAX_SESSIONS",
        "MAX_SESSIONS_PER_SUBJECT",
        "SESSIONS_PER_MINUTE_PER_SUBJECT",
        "PING_INTERVAL_SECONDS",
    ],
)
def test_zero_turns_a_limit_off_and_negatives_are_refused(name: str) -> None:
    Settings.from_mapping({name: "0"})
    with pytest.raises(ValidationError):
        Settings.from_mapping({name: "-1"})


@pytest.mark.parametrize("name", ["PING_TIMEOUT_SECONDS", "MAX_BUFFERED_BYTES", "SHUTDOWN_TIMEOUT_SECONDS"])
def test_some_limits_cannot_be_zero(name: str) -> None:
    with pytest.raises(ValidationError):
        Settings.from_mapping({name: "0"})


# -- admission: sessions in the process ----------------------------------------------------------------


def refused(outcome: Ticket | Refusal, code: str) -> str:
    assert isinstance(outcome, Refusal), outcome
    assert outcome.error.code == code
    assert outcome.close_code == 1013
    return outcome.error.message


def test_max_sessions_admits_up_to_the_limit_then_refuses_until_one_ends() -> None:
    admission = Admission(make_settings(MAX_SESSIONS="2"), LimitCounters())
    first, second = admission.admit(None, T0), admission.admit("alice", T0)
    assert isinstance(first, Ticket)
    assert isinstance(second, Ticket)
    assert admission.live == 2
    message = refused(admission.admit(None, T0), "too_many_sessions")
    assert "MAX_SESSIONS" in message
    refused(admission.admit("bob", T0), "too_many_sessions")
    admission.release(first)
    assert isinstance(admission.admit("bob", T0 + 1), Ticket)


def test_release_is_idempotent_and_none_is_fine() -> None:
    admission = Admission(make_settings(MAX_SESSIONS="1"), LimitCounters())
    ticket = admission.admit("alice", T0)
    assert isinstance(ticket, Ticket)
    admission.release(ticket)
    admission.release(ticket)
    admission.release(None)
    assert admission.live == 0
    assert admission.live_for("alice") == 0
    assert isinstance(admission.admit("alice", T0), Ticket)
    refused(admission.admit("alice", T0), "too_many_sessions")


def test_zero_means_no_limit() -> None:
    admission = Admission(
        make_settings(MAX_SESSIONS="0", MAX_SESSIONS_PER_SUBJECT="0", SESSIONS_PER_MINUTE_PER_SUBJECT="0"),
        LimitCounters(),
    )
    for _ in range(5000):
        assert isinstance(admission.admit("alice", T0), Ticket)
    assert admission.live == 5000


# -- admission: per subject ----------------------------------------------------------------------------


def test_max_sessions_per_subject_counts_each_subject_apart() -> None:
    admission = Admission(make_settings(MAX_SESSIONS_PER_SUBJECT="2"), LimitCounters())
    alice = [admission.admit("alice", T0 + n) for n in range(2)]
    assert all(isinstance(ticket, Ticket) for ticket in alice)
    message = refused(admission.admit("alice", T0 + 3), "too_many_sessions")
    assert "MAX_SESSIONS_PER_SUBJECT" in message
    assert "alice" not in message  # the client knows who it is; the log says it
    assert isinstance(admission.admit("bob", T0 + 3), Ticket)
    for _ in range(5):  # sessions without a token have no subject: not counted per subject
        assert isinstance(admission.admit(None, T0 + 3), Ticket)
    admission.release(alice[0])
    assert admission.live_for("alice") == 1
    assert isinstance(admission.admit("alice", T0 + 4), Ticket)


def test_the_process_limit_is_checked_first() -> None:
    admission = Admission(make_settings(MAX_SESSIONS="1", MAX_SESSIONS_PER_SUBJECT="1"), LimitCounters())
    assert isinstance(admission.admit("alice", T0), Ticket)
    message = refused(admission.admit("alice", T0), "too_many_sessions")
    assert "(MAX_SESSIONS)" in message


def test_sessions_per_minute_is_a_sliding_window() -> None:
    admission = Admission(make_settings(SESSIONS_PER_MINUTE_PER_SUBJECT="3"), LimitCounters())
    for offset in (0.0, 10.0, 20.0):
        ticket = admission.admit("alice", T0 + offset)
        assert isinstance(ticket, Ticket)
        admission.release(ticket)  # ended at once: the rate counts starts, not open sessions
    message = refused(admission.admit("alice", T0 + 30.0), "rate_limited")
    assert "SESSIONS_PER_MINUTE_PER_SUBJECT" in message
    assert "try again in 30 s" in message  # the first start leaves the window at T0 + 60
    assert isinstance(admission.admit("bob", T0 + 30.0), Ticket)  # another subject is not affected
    assert isinstance(admission.admit(None, T0 + 30.0), Ticket)  # nor a session without a token
    refused(admission.admit("alice", T0 + WINDOW_SECONDS - 0.001), "rate_limited")
    assert isinstance(admission.admit("alice", T0 + WINDOW_SECONDS), Ticket)  # the first start left
    refused(admission.admit("alice", T0 + WINDOW_SECONDS + 5), "rate_limited")  # 10 s, 20 s, 60 s
    assert isinstance(admission.admit("alice", T0 + WINDOW_SECONDS + 10), Ticket)


def test_refused_attempts_do_not_count_against_the_rate() -> None:
    admission = Admission(make_settings(SESSIONS_PER_MINUTE_PER_SUBJECT="1"), LimitCounters())
    assert isinstance(admission.admit("alice", T0), Ticket)
    for second in range(1, 60):
        refused(admission.admit("alice", T0 + second), "rate_limited")
    assert isinstance(admission.admit("alice", T0 + 60), Ticket)


def test_subjects_seen_once_are_forgotten() -> None:
    admission = Admission(make_settings(), LimitCounters())
    for number in range(1000):
        admission.release(admission.admit(f"user-{number}", T0 + number * 0.01))  # type: ignore[arg-type]
    later = T0 + 10 + 2 * WINDOW_SECONDS
    admission.release(admission.admit("latecomer", later))  # type: ignore[arg-type]
    assert len(admission._starts) == 1
    assert admission._live_by_subject == {}


# -- admission: plans, counters, logs --------------------------------------------------------------------


def test_a_refused_plan_carries_the_error_and_opens_no_provider_connection() -> None:
    settings = make_settings(MAX_SESSIONS="1")
    admission = Admission(settings, LimitCounters())
    plan, ticket = admission.admit_plan(make_plan(settings, "alice"), T0)
    assert ticket is not None
    assert plan.upstream is not None
    refused_plan, none = admission.admit_plan(make_plan(settings, "alice"), T0)
    assert none is None
    assert refused_plan.upstream is None
    assert refused_plan.error is not None
    assert refused_plan.error.code == "too_many_sessions"
    relay = Relay(refused_plan, settings, T0)
    assert relay.upstream_request is None
    assert relay.next_deadline() is None
    error_then_close(relay.client_connected(T0), "too_many_sessions", 1013)
    assert relay.closed


def test_a_plan_that_is_already_an_error_is_not_counted() -> None:
    settings = Settings.from_mapping({"MAX_SESSIONS": "1"})  # no key: missing_api_key
    admission = Admission(settings, LimitCounters())
    plan = plan_session("/v1/realtime", "", {}, settings, WALL)
    assert isinstance(plan, SessionPlan)
    same, ticket = admission.admit_plan(plan, T0)
    assert same is plan
    assert ticket is None
    assert admission.live == 0


def test_each_refusal_is_counted_and_logged_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    counters = LimitCounters()
    admission = Admission(
        make_settings(MAX_SESSIONS_PER_SUBJECT="1", SESSIONS_PER_MINUTE_PER_SUBJECT="2"), counters
    )
    caplog.set_level(logging.INFO, "realtime_gateway")
    for _ in range(2):
        admission.release(admission.admit("alice", T0))  # type: ignore[arg-type]
    for _ in range(3):
        admission.admit("alice", T0)
    assert counters.totals() == {"rate_limited": 3}
    ticket = admission.admit("bob", T0)
    admission.admit("bob", T0)
    assert counters.total("too_many_sessions") == 1
    messages = [record.getMessage() for record in caplog.records if "limit hit" in record.getMessage()]
    assert messages[0].startswith("limit hit reason=rate_limited total=1 ")
    assert messages[2].startswith("limit hit reason=rate_limited total=3 ")
    assert messages[3] == (
        "limit hit reason=too_many_sessions total=1 limit=MAX_SESSIONS_PER_SUBJECT subject='bob'"
    )
    admission.release(ticket)


# -- the relay: MAX_SESSION_SECONDS ----------------------------------------------------------------------


def test_max_session_seconds_ends_a_session() -> None:
    counters = LimitCounters()
    relay = open_relay(make_settings(MAX_SESSION_SECONDS="90", IDLE_TIMEOUT_SECONDS="0"), counters=counters)
    assert relay.next_deadline() == T0 + 90
    assert relay.tick(T0 + 89.9) == []
    actions = relay.tick(T0 + 90)
    assert actions[0] == CloseUpstream(1001, "client session ended")
    error = error_then_close(actions, "session_expired", 1008)
    assert "90 s (MAX_SESSION_SECONDS)" in error["message"]
    assert relay.closed
    assert relay.next_deadline() is None
    assert counters.totals() == {"session_expired": 1}


@pytest.mark.parametrize(
    ("setting", "token", "expected", "source"),
    [
        ("100", 30, 30, "the gateway token's limit"),
        ("20", 30, 20, "MAX_SESSION_SECONDS"),
        ("0", 30, 30, "the gateway token's limit"),
    ],
)
def test_the_shorter_of_the_setting_and_the_token_wins(
    setting: str, token: int, expected: int, source: str
) -> None:
    settings = make_settings(MAX_SESSION_SECONDS=setting, IDLE_TIMEOUT_SECONDS="0")
    relay = open_relay(settings, subject="alice", max_session_seconds=token)
    assert relay.next_deadline() == T0 + expected
    error = error_then_close(relay.tick(T0 + expected), "session_expired", 1008)
    assert f"{expected} s ({source})" in error["message"]


def test_no_session_limit_when_off() -> None:
    relay = open_relay(make_settings(MAX_SESSION_SECONDS="0", IDLE_TIMEOUT_SECONDS="0"))
    assert relay.next_deadline() is None


def test_max_session_seconds_ends_a_simulator_session() -> None:
    relay = open_relay(make_settings(MAX_SESSION_SECONDS="5", IDLE_TIMEOUT_SECONDS="0"), provider="simulator")
    assert relay.next_deadline() == T0 + 5
    error_then_close(relay.tick(T0 + 5), "session_expired", 1008)


# -- the relay: IDLE_TIMEOUT_SECONDS ---------------------------------------------------------------------


def test_a_silent_client_is_closed_after_the_idle_timeout() -> None:
    counters = LimitCounters()
    relay = open_relay(make_settings(IDLE_TIMEOUT_SECONDS="60"), counters=counters)
    assert relay.next_deadline() == T0 + 60
    assert relay.upstream_frame('{"type":"x"}') == [SendToClient('{"type":"x"}')]  # provider: not activity
    actions = relay.tick(T0 + 60)
    assert actions[0] == CloseUpstream(1001, "client session ended")
    error = error_then_close(actions, "idle_timeout", 1008)
    assert "60 s (IDLE_TIMEOUT_SECONDS)" in error["message"]
    assert counters.totals() == {"idle_timeout": 1}


def test_client_frames_push_the_idle_timeout_without_moving_the_armed_deadline() -> None:
    relay = open_relay(make_settings(IDLE_TIMEOUT_SECONDS="60"))
    assert relay.next_deadline() == T0 + 60
    for second in range(1, 41):
        relay.client_text(append(second), T0 + second)
        assert relay.next_deadline() == T0 + 60  # the adapter's timer is not re-armed per frame
    assert relay.tick(T0 + 60) == []  # the timer fires, finds a frame at T0 + 40: looks again later
    assert relay.next_deadline() == T0 + 100
    relay.client_binary(b"\x00", T0 + 70)  # refused frames are still the client talking
    assert relay.tick(T0 + 100) == []
    assert relay.next_deadline() == T0 + 130
    assert relay.tick(T0 + 129.99) == []
    error_then_close(relay.tick(T0 + 130), "idle_timeout", 1008)


def test_an_invalid_frame_counts_as_activity() -> None:
    relay = open_relay(make_settings(IDLE_TIMEOUT_SECONDS="10"))
    answer = relay.client_text("not json", T0 + 9)
    assert json.loads(answer[0].data)["error"]["code"] == "invalid_json"  # type: ignore[union-attr]
    assert relay.tick(T0 + 10) == []
    assert relay.next_deadline() == T0 + 19


def test_the_idle_timeout_runs_while_the_provider_connects() -> None:
    settings = make_settings(IDLE_TIMEOUT_SECONDS="3", UPSTREAM_CONNECT_TIMEOUT_SECONDS="10")
    relay = Relay(make_plan(settings), settings, T0, LimitCounters())
    relay.client_connected(T0)
    assert relay.next_deadline() == T0 + 3
    error_then_close(relay.tick(T0 + 3), "idle_timeout", 1008)


def test_the_idle_timeout_ends_a_simulator_session() -> None:
    relay = open_relay(make_settings(IDLE_TIMEOUT_SECONDS="4"), provider="simulator")
    relay.client_text(json.dumps({"type": "response.create"}), T0 + 1)
    while (deadline := relay.next_deadline()) is not None and deadline < T0 + 5:
        relay.tick(deadline)
    assert relay.state is State.OPEN
    error_then_close(relay.tick(T0 + 5), "idle_timeout", 1008)


def test_no_idle_timeout_when_off() -> None:
    relay = open_relay(make_settings(IDLE_TIMEOUT_SECONDS="0", MAX_SESSION_SECONDS="0"))
    assert relay.next_deadline() is None
    assert relay.tick(T0 + 1e6) == []


# -- the relay: liveness and shutdown --------------------------------------------------------------------


def test_an_unresponsive_client_closes_the_provider_with_the_reason() -> None:
    counters = LimitCounters()
    relay = open_relay(make_settings(), counters=counters)
    assert relay.client_unresponsive() == [CloseUpstream(1001, "client stopped answering pings")]
    assert relay.closed
    assert relay.client_unresponsive() == []
    assert relay.upstream_frame('{"type":"x"}') == []
    assert counters.totals() == {"client_unresponsive": 1}


def test_an_unresponsive_client_of_the_simulator_just_ends() -> None:
    relay = open_relay(make_settings(), provider="simulator")
    assert relay.client_unresponsive() == []
    assert relay.closed


def test_an_unresponsive_provider_is_reported_to_the_client_with_1014() -> None:
    counters = LimitCounters()
    relay = open_relay(make_settings(PING_TIMEOUT_SECONDS="7"), counters=counters)
    actions = relay.upstream_unresponsive()
    assert len(actions) == 2  # the provider's socket is already dropped: nothing to close there
    error = error_then_close(actions, "upstream_unresponsive", 1014)
    assert error["type"] == "server_error"
    assert "7 s" in error["message"]
    assert relay.closed
    assert counters.totals() == {"upstream_unresponsive": 1}


def test_a_provider_timing_out_behind_a_stalled_client_is_the_clients_fault() -> None:
    counters = LimitCounters()
    relay = open_relay(make_settings(), counters=counters)
    error_then_close(relay.upstream_unresponsive(client_stalled=True), "client_too_slow", 1008)
    assert counters.totals() == {"client_too_slow": 1}


def test_unresponsive_provider_before_it_connected_is_ignored() -> None:
    settings = make_settings()
    relay = Relay(make_plan(settings), settings, T0, LimitCounters())
    relay.client_connected(T0)
    assert relay.upstream_unresponsive() == []
    assert relay.state is State.CONNECTING


def test_shutting_down_tells_the_client_and_closes_both_sides_going_away() -> None:
    relay = open_relay(make_settings())
    actions = relay.shutting_down()
    assert actions[0] == CloseUpstream(1001, "gateway shutting down")
    error = error_then_close(actions, "server_shutting_down", 1001)
    assert error["type"] == "server_error"
    assert relay.closed
    assert relay.shutting_down() == []


def test_shutting_down_before_the_client_is_accepted_is_told_once_it_is() -> None:
    settings = make_settings()
    relay = Relay(make_plan(settings), settings, T0, LimitCounters())
    assert relay.shutting_down() == [CloseUpstream(1001, "gateway shutting down")]
    error_then_close(relay.client_connected(T0), "server_shutting_down", 1001)


def test_shutting_down_a_session_that_is_still_connecting_abandons_the_handshake() -> None:
    settings = make_settings()
    relay = Relay(make_plan(settings), settings, T0, LimitCounters())
    relay.client_connected(T0)
    relay.client_text(append(1), T0)
    actions = relay.shutting_down()
    assert not any(isinstance(action, SendToUpstream) for action in actions)
    assert relay.upstream_connected(T0 + 1) == [CloseUpstream(1000, "client went away")]
