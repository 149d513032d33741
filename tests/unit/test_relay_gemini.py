"""The relay driving a Gemini Live session: session.created at open, held events, moving connections."""

from __future__ import annotations

import json

from shared.actions import CloseClient, ReconnectUpstream, SendToClient, SendToUpstream
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.relay import Relay, State, UpstreamFailure

NOW = 1_767_225_600.0


def gemini_relay(query: str = "provider=gemini&model=gpt-realtime") -> Relay:
    settings = Settings.from_mapping({"GEMINI_API_KEY": "gemini-key"})
    planned = plan_session("/v1/realtime", query, {}, settings, NOW)
    assert isinstance(planned, SessionPlan)
    assert planned.error is None
    return Relay(planned, settings, 0.0)


def client_events(actions: list[object]) -> list[dict[str, object]]:
    return [json.loads(a.data) for a in actions if isinstance(a, SendToClient) and isinstance(a.data, str)]


def test_the_socket_opening_tells_session_created_then_the_held_events_go_through_the_translator() -> None:
    relay = gemini_relay()
    relay.client_connected(0.0)
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    assert relay.client_text(json.dumps({"type": "conversation.item.create", "item": item}), 0.1) == []
    assert relay.client_text(json.dumps({"type": "response.create"}), 0.1) == []
    actions = relay.upstream_connected(0.2)
    told = client_events(actions)
    assert told[0]["type"] == "session.created"
    assert told[0]["session"]["model"] == "gemini-3.8-live"  # type: ignore[index]
    sent = [json.loads(a.data) for a in actions if isinstance(a, SendToUpstream) and isinstance(a.data, str)]
    assert list(sent[0]) == ["setup"]  # the one setup first, then the turn
    assert sent[0]["setup"]["model"] == "models/gemini-3.8-live"
    # The turn waits in the translator until Gemini has taken the setup.
    released = relay.upstream_frame(json.dumps({"setupComplete": {}}).encode())
    turn = [json.loads(a.data) for a in released if isinstance(a, SendToUpstream) and isinstance(a.data, str)]
    assert any("clientContent" in message for message in turn)


def test_a_beta_client_is_translated_in_front() -> None:
    relay = gemini_relay("provider=gemini&model=gpt-4o-realtime-preview")
    assert relay.plan.client_protocol == "beta"
    relay.client_connected(0.0)
    told = client_events(relay.upstream_connected(0.1))
    assert told[0]["type"] == "session.created"
    assert "modalities" in told[0]["session"]  # type: ignore[operator]


def test_an_unexpected_close_of_a_fresh_session_moves_it_and_a_failed_move_ends_it() -> None:
    relay = gemini_relay()
    relay.client_connected(0.0)
    relay.upstream_connected(0.1)
    actions = relay.upstream_closed(1011, "internal")
    (move,) = [a for a in actions if isinstance(a, ReconnectUpstream)]
    assert move.request == relay.plan.upstream
    assert move.first_frame is not None
    assert "setup" in json.loads(move.first_frame)
    assert relay.state is State.OPEN
    ended = relay.upstream_failed(UpstreamFailure.UNREACHABLE)
    assert client_events(ended)[0]["error"]["code"] == "upstream_connection_lost"  # type: ignore[index]
    assert isinstance(ended[-1], CloseClient)
    assert relay.state is State.CLOSED
