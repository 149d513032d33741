"""The relay core without sockets: feed it what happened, check the actions it returns.

Time is a number the test controls (``Clock``); nothing here sleeps or opens a socket.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from shared.actions import Action, CloseClient, CloseUpstream, SendToClient, SendToUpstream
from shared.config import Settings
from shared.errors import MAX_CLOSE_REASON_BYTES
from shared.handshake import plan_session
from shared.relay import MAX_HELD_GATEWAY_EVENTS, Relay, State, UpstreamFailure

OPERATOR_KEY = "sk-relay-unit-operator-key"
CONNECT_TIMEOUT = 10.0

FRAME = '{ "type" : "session.update",\n "session": {"type": "realtime", "instructions": "Sé bref ✓"} }'

SESSION_CREATED = '{"type":"session.created"}'


def append(number: int, audio: str = "AAAA") -> str:
    """A valid ``input_audio_buffer.append`` frame numbered by its event_id."""
    return json.dumps({"type": "input_audio_buffer.append", "event_id": f"evt_{number}", "audio": audio})


class Clock:
    """Monotonic seconds under the test's control."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {"OPENAI_API_KEY": OPERATOR_KEY, "UPSTREAM_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT), **values}
    )


def make_relay(clock: Clock, settings: Settings | None = None, query: dict[str, str] | None = None) -> Relay:
    settings = settings or make_settings()
    plan = plan_session("/v1/realtime", urlencode(query or {"model": "gpt-realtime"}), {}, settings)
    return Relay(plan, settings, clock.now)


def error_of(action: Action) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error event sent to the client."""
    assert isinstance(action, SendToClient), action
    assert isinstance(action.data, str)
    event = json.loads(action.data)
    assert event["type"] == "error"
    assert event["event_id"].startswith("event_")
    assert event["error"]["message"]
    return event["error"]


def assert_error_then_close(actions: list[Action], code: str, close_code: int) -> dict[str, Any]:
    """``actions`` are exactly: an error event with ``code``, then closing the client with ``close_code``."""
    assert len(actions) == 2, actions
    error = error_of(actions[0])
    assert error["code"] == code
    assert isinstance(actions[1], CloseClient)
    assert actions[1].code == close_code
    assert actions[1].reason
    return error


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def relay(clock: Clock) -> Relay:
    """A relay whose client is accepted and whose provider connection is still opening."""
    relay = make_relay(clock)
    assert relay.client_connected(clock.now) == []
    return relay


@pytest.fixture
def open_relay(relay: Relay, clock: Clock) -> Relay:
    """A relay with both sides connected and the provider's first event relayed."""
    assert relay.upstream_connected(clock.now) == []
    assert relay.upstream_frame(SESSION_CREATED) == [SendToClient(SESSION_CREATED)]
    assert relay.state is State.OPEN
    return relay


# -- OPEN: frames flow both ways unchanged -----------------------------------------------------------


def test_client_frame_is_forwarded_byte_for_byte_when_open(open_relay: Relay, clock: Clock) -> None:
    assert open_relay.client_text(FRAME, clock.now) == [SendToUpstream(FRAME)]


def test_upstream_text_frame_is_forwarded_unchanged(open_relay: Relay) -> None:
    frame = '{"type":"response.output_text.delta","delta":"é ✓","event_id":"event_1"}'
    assert open_relay.upstream_frame(frame) == [SendToClient(frame)]


def test_upstream_binary_frame_is_forwarded_unchanged(open_relay: Relay) -> None:
    assert open_relay.upstream_frame(b"\x00\xffraw") == [SendToClient(b"\x00\xffraw")]


def test_invalid_client_frame_gets_an_error_and_is_not_forwarded(open_relay: Relay, clock: Clock) -> None:
    actions = open_relay.client_text('{"type": "no.such.event", "event_id": "evt_x"}', clock.now)
    assert len(actions) == 1
    error = error_of(actions[0])
    assert (error["code"], error["event_id"]) == ("unknown_event_type", "evt_x")
    assert open_relay.state is State.OPEN


def test_binary_client_frame_gets_an_error_and_is_not_forwarded(open_relay: Relay, clock: Clock) -> None:
    actions = open_relay.client_binary(b"\x00\x01pcm", clock.now)
    assert len(actions) == 1
    assert error_of(actions[0])["code"] == "binary_frame_unsupported"


def test_oversized_client_frame_gets_an_error_and_is_not_forwarded(clock: Clock) -> None:
    relay = make_relay(clock, make_settings(MAX_CLIENT_MESSAGE_BYTES="100"))
    relay.client_connected(clock.now)
    relay.upstream_connected(clock.now)
    relay.upstream_frame(SESSION_CREATED)
    actions = relay.client_text(append(1, audio="A" * 40), clock.now)
    assert len(actions) == 1
    assert error_of(actions[0])["code"] == "message_too_large"
    assert relay.client_text(append(2), clock.now) == [SendToUpstream(append(2))]


def test_client_frame_size_is_counted_in_utf8_bytes(clock: Clock) -> None:
    relay = make_relay(clock, make_settings(MAX_CLIENT_MESSAGE_BYTES="100"))
    relay.client_connected(clock.now)
    relay.upstream_connected(clock.now)
    relay.upstream_frame(SESSION_CREATED)
    frame = json.dumps({"type": "response.create", "event_id": "é" * 40}, ensure_ascii=False)
    assert len(frame) < 100 < len(frame.encode())
    assert error_of(relay.client_text(frame, clock.now)[0])["code"] == "message_too_large"


# -- CONNECTING: client frames are held, bounded -----------------------------------------------------


def test_client_frames_are_held_while_the_provider_connects(relay: Relay, clock: Clock) -> None:
    assert relay.client_text(append(1), clock.now) == []
    assert relay.client_text(append(2), clock.now) == []


def test_held_client_frames_are_released_in_order_when_the_provider_connects(
    relay: Relay, clock: Clock
) -> None:
    frames = [append(number) for number in range(5)]
    for frame in frames:
        relay.client_text(frame, clock.now)
    assert relay.upstream_connected(clock.now) == [SendToUpstream(frame) for frame in frames]
    assert relay.client_text(append(5), clock.now) == [SendToUpstream(append(5))]


def gateway_events_after_the_first(relay: Relay, clock: Clock) -> list[Action]:
    """The provider opens and says ``session.created``: it reaches the client first, and what is
    returned is what the gateway held back for the client meanwhile."""
    relay.upstream_connected(clock.now)
    actions = relay.upstream_frame(SESSION_CREATED)
    assert actions[0] == SendToClient(SESSION_CREATED)
    return actions[1:]


def test_invalid_frame_while_connecting_gets_its_error_after_the_providers_first_event(
    relay: Relay, clock: Clock
) -> None:
    assert relay.client_text("not json", clock.now) == []
    assert relay.client_text(append(1), clock.now) == []
    assert relay.upstream_connected(clock.now) == [SendToUpstream(append(1))]
    actions = relay.upstream_frame(SESSION_CREATED)
    assert actions[0] == SendToClient(SESSION_CREATED)
    assert [error_of(action)["code"] for action in actions[1:]] == ["invalid_json"]
    assert error_of(relay.client_text("not json", clock.now)[0])["code"] == "invalid_json"  # now at once


def test_gateway_events_held_while_connecting_are_bounded(relay: Relay, clock: Clock) -> None:
    """Past MAX_HELD_GATEWAY_EVENTS the gateway's events go out at once, the held ones first."""
    for _ in range(MAX_HELD_GATEWAY_EVENTS):
        assert relay.client_text("not json", clock.now) == []
    actions = relay.client_text('{"type":"no.such.event"}', clock.now)
    codes = [error_of(action)["code"] for action in actions]
    assert codes == ["invalid_json"] * MAX_HELD_GATEWAY_EVENTS + ["unknown_event_type"]
    assert len(relay.client_text("not json", clock.now)) == 1


def test_a_provider_that_spoke_before_the_client_was_accepted_lets_errors_through(clock: Clock) -> None:
    relay = make_relay(clock)
    relay.upstream_connected(clock.now)
    assert relay.upstream_frame(SESSION_CREATED) == []
    assert relay.client_connected(clock.now) == [SendToClient(SESSION_CREATED)]
    assert error_of(relay.client_text("not json", clock.now)[0])["code"] == "invalid_json"


def test_errors_held_while_connecting_come_before_a_connect_failure(relay: Relay, clock: Clock) -> None:
    relay.client_text("not json", clock.now)
    actions = relay.upstream_failed(UpstreamFailure.UNREACHABLE, detail="connection refused")
    assert [error_of(action)["code"] for action in actions[:-1]] == ["invalid_json", "upstream_unreachable"]
    assert isinstance(actions[-1], CloseClient)


def test_holding_is_bounded_by_message_count(clock: Clock) -> None:
    relay = make_relay(clock, make_settings(MAX_PENDING_CLIENT_MESSAGES="2"))
    relay.client_connected(clock.now)
    assert relay.client_text(append(1), clock.now) == []
    assert relay.client_text(append(2), clock.now) == []
    assert relay.client_text(append(3), clock.now) == []  # refused: its error waits
    assert relay.upstream_connected(clock.now) == [SendToUpstream(append(1)), SendToUpstream(append(2))]
    actions = relay.upstream_frame(SESSION_CREATED)
    assert actions[0] == SendToClient(SESSION_CREATED)
    assert len(actions) == 2
    error = error_of(actions[1])
    assert (error["code"], error["event_id"]) == ("buffer_full", "evt_3")


def test_holding_is_bounded_by_bytes(clock: Clock) -> None:
    limit = 2 * len(append(1))
    relay = make_relay(clock, make_settings(MAX_PENDING_CLIENT_BYTES=str(limit)))
    relay.client_connected(clock.now)
    assert relay.client_text(append(1), clock.now) == []
    assert relay.client_text(append(2), clock.now) == []
    assert relay.client_text(append(3), clock.now) == []
    assert relay.upstream_connected(clock.now) == [SendToUpstream(append(1)), SendToUpstream(append(2))]
    (refusal,) = relay.upstream_frame(SESSION_CREATED)[1:]
    assert error_of(refusal)["code"] == "buffer_full"


def test_holding_is_bounded_by_utf8_bytes_not_characters(clock: Clock) -> None:
    frame = json.dumps({"type": "response.create", "event_id": "é" * 50}, ensure_ascii=False)
    assert len(frame) < 100 < len(frame.encode())
    relay = make_relay(clock, make_settings(MAX_PENDING_CLIENT_BYTES="100"))
    relay.client_connected(clock.now)
    assert relay.client_text(frame, clock.now) == []
    (refusal,) = gateway_events_after_the_first(relay, clock)
    assert error_of(refusal)["code"] == "buffer_full", "held although its UTF-8 size is over the limit"


def test_buffer_full_error_echoes_no_event_id_the_client_did_not_send(clock: Clock) -> None:
    relay = make_relay(clock, make_settings(MAX_PENDING_CLIENT_MESSAGES="1"))
    relay.client_connected(clock.now)
    relay.client_text(append(1), clock.now)
    relay.client_text('{"type":"input_audio_buffer.commit"}', clock.now)
    (refusal,) = gateway_events_after_the_first(relay, clock)
    assert error_of(refusal)["event_id"] is None


# -- provider frames before the client is accepted ---------------------------------------------------


def test_upstream_frames_before_client_connected_are_held_then_released_first(clock: Clock) -> None:
    relay = make_relay(clock)
    assert relay.upstream_connected(clock.now) == []
    assert relay.upstream_frame('{"type":"session.created"}') == []
    assert relay.upstream_frame(b"\x01") == []
    assert relay.client_connected(clock.now) == [
        SendToClient('{"type":"session.created"}'),
        SendToClient(b"\x01"),
    ]
    assert relay.upstream_frame('{"type":"later"}') == [SendToClient('{"type":"later"}')]


def test_provider_close_before_client_connected_is_delivered_after_the_held_frames(clock: Clock) -> None:
    relay = make_relay(clock)
    relay.upstream_connected(clock.now)
    relay.upstream_frame('{"type":"session.created"}')
    assert relay.upstream_closed(4000, "scripted") == []
    assert relay.client_connected(clock.now) == [
        SendToClient('{"type":"session.created"}'),
        CloseClient(4000, "scripted"),
    ]


# -- the provider connection fails -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "close_code"),
    [
        (401, "upstream_unauthorized", 1008),
        (403, "upstream_forbidden", 1008),
        (404, "upstream_not_found", 1008),
        (429, "upstream_rate_limited", 1013),
        (500, "upstream_error", 1014),
        (503, "upstream_error", 1014),
    ],
)
def test_rejected_handshake_is_reported_by_status(
    relay: Relay, status: int, code: str, close_code: int
) -> None:
    actions = relay.upstream_failed(UpstreamFailure.REJECTED, status)
    error = assert_error_then_close(actions, code, close_code)
    assert f"HTTP {status}" in error["message"]
    assert error["type"] == "server_error"
    assert relay.closed


def test_unreachable_provider_is_reported_with_the_detail(relay: Relay) -> None:
    actions = relay.upstream_failed(UpstreamFailure.UNREACHABLE, detail="connection refused")
    error = assert_error_then_close(actions, "upstream_unreachable", 1014)
    assert "connection refused" in error["message"]


def test_invalid_websocket_handshake_is_an_upstream_error(relay: Relay) -> None:
    assert_error_then_close(relay.upstream_failed(UpstreamFailure.PROTOCOL, 101), "upstream_error", 1014)


def test_failure_drops_the_held_client_frames(relay: Relay, clock: Clock) -> None:
    relay.client_text(append(1), clock.now)
    actions = relay.upstream_failed(UpstreamFailure.REJECTED, 401)
    assert not any(isinstance(action, SendToUpstream) for action in actions)
    assert relay.upstream_connected(clock.now) == [CloseUpstream(1000, "client went away")]


def test_failure_before_client_connected_is_reported_when_it_connects(clock: Clock) -> None:
    relay = make_relay(clock)
    assert relay.upstream_failed(UpstreamFailure.REJECTED, 429) == []
    assert_error_then_close(relay.client_connected(clock.now), "upstream_rate_limited", 1013)


def test_close_reason_fits_in_a_close_frame(relay: Relay) -> None:
    actions = relay.upstream_failed(UpstreamFailure.UNREACHABLE, detail="é" * 200)
    close = actions[-1]
    assert isinstance(close, CloseClient)
    assert len(close.reason.encode()) <= MAX_CLOSE_REASON_BYTES


def test_failure_after_the_provider_connected_is_ignored(open_relay: Relay) -> None:
    assert open_relay.upstream_failed(UpstreamFailure.UNREACHABLE) == []
    assert open_relay.state is State.OPEN


# -- the provider closes -----------------------------------------------------------------------------


def test_provider_close_code_and_reason_reach_the_client(open_relay: Relay) -> None:
    assert open_relay.upstream_closed(4000, "scripted") == [CloseClient(4000, "scripted")]
    assert open_relay.closed


def test_provider_close_without_reason_gets_one(open_relay: Relay) -> None:
    [close] = open_relay.upstream_closed(1000)
    assert isinstance(close, CloseClient)
    assert close.code == 1000
    assert "OpenAI" in close.reason


@pytest.mark.parametrize(("received", "sent"), [(1005, 1000), (1015, 1011), (999, 1011)])
def test_provider_close_code_that_cannot_be_sent_is_replaced(
    open_relay: Relay, received: int, sent: int
) -> None:
    [close] = open_relay.upstream_closed(received, "x")
    assert close == CloseClient(sent, "x")


@pytest.mark.parametrize("code", [1006, None])
def test_provider_connection_lost_is_an_error_then_1014(open_relay: Relay, code: int | None) -> None:
    assert_error_then_close(open_relay.upstream_closed(code), "upstream_connection_lost", 1014)
    assert open_relay.closed


def test_provider_close_during_handshake_is_an_unreachable_failure(relay: Relay) -> None:
    error = assert_error_then_close(relay.upstream_closed(None), "upstream_unreachable", 1014)
    assert "handshake" in error["message"]


# -- the client closes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(1000, "bye"), (4001, "app reason")])
def test_client_close_closes_the_provider_the_same_way(open_relay: Relay, code: int, reason: str) -> None:
    assert open_relay.client_closed(code, reason) == [CloseUpstream(code, reason)]
    assert open_relay.closed


@pytest.mark.parametrize(("code", "sent"), [(None, 1001), (1006, 1001), (1005, 1000)])
def test_client_close_without_a_sendable_code(open_relay: Relay, code: int | None, sent: int) -> None:
    assert open_relay.client_closed(code) == [CloseUpstream(sent, "")]


def test_client_close_while_connecting_abandons_the_provider(relay: Relay, clock: Clock) -> None:
    relay.client_text(append(1), clock.now)
    assert relay.client_closed(1000, "bye") == [CloseUpstream(1000, "bye")]
    assert relay.next_deadline() is None
    # The handshake finished anyway: close that socket, and send it nothing.
    assert relay.upstream_connected(clock.now) == [CloseUpstream(1000, "client went away")]


# -- the connect timeout -----------------------------------------------------------------------------


def test_connect_deadline_is_the_timeout_after_creation(relay: Relay, clock: Clock) -> None:
    assert relay.next_deadline() == clock.now + CONNECT_TIMEOUT


def test_tick_before_the_deadline_does_nothing(relay: Relay, clock: Clock) -> None:
    assert relay.tick(clock.advance(CONNECT_TIMEOUT - 0.001)) == []
    assert relay.state is State.CONNECTING


def test_tick_at_the_deadline_abandons_the_provider_and_reports_a_timeout(relay: Relay, clock: Clock) -> None:
    deadline = relay.next_deadline()
    assert deadline is not None
    actions = relay.tick(deadline)
    assert actions[0] == CloseUpstream(1001, "client session ended")
    error = assert_error_then_close(actions[1:], "upstream_timeout", 1014)
    assert f"{CONNECT_TIMEOUT:g} s" in error["message"]
    assert relay.closed
    assert relay.next_deadline() is None


def test_timeout_before_client_connected_is_reported_when_it_connects(clock: Clock) -> None:
    relay = make_relay(clock)
    assert relay.tick(clock.advance(CONNECT_TIMEOUT)) == [CloseUpstream(1001, "client session ended")]
    assert_error_then_close(relay.client_connected(clock.now), "upstream_timeout", 1014)


def test_no_deadline_once_the_provider_spoke(clock: Clock) -> None:
    # With the session limits off (tests/unit/test_limits.py covers them), nothing is left to time.
    relay = make_relay(clock, make_settings(MAX_SESSION_SECONDS="0", IDLE_TIMEOUT_SECONDS="0"))
    relay.client_connected(clock.now)
    relay.upstream_connected(clock.now)
    relay.upstream_frame(SESSION_CREATED)
    assert relay.next_deadline() is None
    assert relay.tick(clock.advance(10 * CONNECT_TIMEOUT)) == []


def test_a_provider_that_accepts_but_never_speaks_times_out(clock: Clock) -> None:
    relay = make_relay(clock, make_settings(MAX_SESSION_SECONDS="0", IDLE_TIMEOUT_SECONDS="0"))
    relay.client_connected(clock.now)
    relay.upstream_connected(clock.now)
    assert relay.next_deadline() == clock.now + CONNECT_TIMEOUT
    actions = relay.tick(clock.advance(CONNECT_TIMEOUT))
    error = json.loads(next(a.data for a in actions if isinstance(a, SendToClient)))
    assert error["error"]["code"] == "upstream_timeout"
    assert "session.created" in error["error"]["message"]
    assert CloseClient(1014, error["error"]["message"]) in actions
    assert any(isinstance(action, CloseUpstream) for action in actions)


# -- a closed relay ----------------------------------------------------------------------------------

INPUTS: dict[str, Callable[[Relay, float], list[Action]]] = {
    "client_text": lambda relay, now: relay.client_text(append(1), now),
    "client_binary": lambda relay, now: relay.client_binary(b"\x00", now),
    "upstream_frame": lambda relay, now: relay.upstream_frame('{"type":"x"}'),
    "upstream_failed": lambda relay, now: relay.upstream_failed(UpstreamFailure.REJECTED, 500),
    "upstream_closed": lambda relay, now: relay.upstream_closed(1000, "bye"),
    "client_closed": lambda relay, now: relay.client_closed(1000, "bye"),
    "tick": lambda relay, now: relay.tick(now + 10 * CONNECT_TIMEOUT),
}


@pytest.mark.parametrize("feed", INPUTS.values(), ids=INPUTS.keys())
def test_closed_relay_ignores_inputs(
    open_relay: Relay, clock: Clock, feed: Callable[..., list[Action]]
) -> None:
    open_relay.client_closed(1000)
    assert feed(open_relay, clock.now) == []
    assert open_relay.closed


# -- a plan that is an error -------------------------------------------------------------------------


def test_error_plan_reports_the_error_and_closes_1008_on_client_connected(clock: Clock) -> None:
    settings = Settings.from_mapping({})  # no operator key, and the client sends none
    relay = Relay(plan_session("/v1/realtime", "", {}, settings), settings, clock.now)
    error = assert_error_then_close(relay.client_connected(clock.now), "missing_api_key", 1008)
    assert error["type"] == "invalid_request_error"
    assert relay.closed


def test_error_plan_opens_no_provider_connection_and_runs_no_timer(clock: Clock) -> None:
    settings = Settings.from_mapping({})
    relay = Relay(plan_session("/v1/realtime", "", {}, settings), settings, clock.now)
    assert relay.upstream_request is None
    assert relay.next_deadline() is None


def test_upstream_request_is_the_plans(relay: Relay) -> None:
    assert relay.upstream_request is relay.plan.upstream
    assert relay.upstream_request is not None
    assert relay.upstream_request.headers == {"Authorization": f"Bearer {OPERATOR_KEY}"}
