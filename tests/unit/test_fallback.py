"""FALLBACK_PROVIDERS in the relay: which failures move on, what the next provider is sent, the timers."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from shared.actions import CloseClient, ReconnectUpstream, SendToClient, SendToUpstream
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.relay import Relay, State, UpstreamFailure
from shared.tokens import new_claims, sign

TIMEOUT = 6.0
AZURE_KEY = "azure-operator-key"
XAI_KEY = "xai-operator-key"
NOW = 1_767_225_600.0


def settings(**values: str) -> Settings:
    return Settings.from_mapping(
        {
            "OPENAI_API_KEY": "sk-operator",
            "AZURE_OPENAI_ENDPOINT": "https://azure.example",
            "AZURE_OPENAI_API_KEY": AZURE_KEY,
            "XAI_API_KEY": XAI_KEY,
            "FALLBACK_PROVIDERS": "openai=azure|xai",
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS": str(TIMEOUT),
            **values,
        }
    )


def plan(config: Settings, query: str = "model=gpt-realtime", key: str | None = "sk-client") -> SessionPlan:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    planned = plan_session("/v1/realtime", query, headers, config, NOW)
    assert isinstance(planned, SessionPlan)
    return planned


def test_the_plan_lists_fallbacks_with_the_operators_keys_and_their_model_names() -> None:
    planned = plan(settings())
    assert [f.provider for f in planned.fallbacks] == ["azure", "xai"]
    azure, xai = planned.fallbacks
    assert azure.upstream.headers == {"api-key": AZURE_KEY}  # never the client's key
    assert xai.model == "grok-voice-latest"
    assert xai.upstream.headers == {"Authorization": f"Bearer {XAI_KEY}"}


def test_a_fallback_without_an_operator_key_is_skipped() -> None:
    planned = plan(settings(XAI_API_KEY=""))
    assert [f.provider for f in planned.fallbacks] == ["azure"]


def test_fallbacks_must_name_providers() -> None:
    with pytest.raises(ValidationError, match="no such provider: nowhere"):
        settings(FALLBACK_PROVIDERS="openai=nowhere")
    with pytest.raises(ValidationError, match="provider=next"):
        settings(FALLBACK_PROVIDERS="openai")


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (UpstreamFailure.UNREACHABLE, None),
        (UpstreamFailure.REJECTED, 503),
        (UpstreamFailure.REJECTED, 429),
        (UpstreamFailure.PROTOCOL, 101),
    ],
)
def test_an_eligible_failure_moves_to_the_next_and_replays_what_the_client_sent(
    failure: UpstreamFailure, status: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    relay = Relay(plan(settings()), settings(), 0.0)
    relay.client_connected(0.0)
    early = json.dumps({"type": "response.create"})
    assert relay.client_text(early, 0.1) == []  # held while connecting
    with caplog.at_level(logging.WARNING, "realtime_gateway"):
        actions = relay.upstream_failed(failure, status)
    assert actions == [ReconnectUpstream(relay.plan.upstream)]  # type: ignore[arg-type]
    assert relay.plan.provider == "azure"
    assert "upstream attempt failed provider=openai" in caplog.text
    assert "trying provider=azure" in caplog.text
    assert relay.upstream_connected(0.2) == [SendToUpstream(early)]  # once, to the one that answered
    assert relay.upstream_frame('{"type":"session.created"}') == [SendToClient('{"type":"session.created"}')]


@pytest.mark.parametrize("status", [401, 403, 404, 400])
def test_the_clients_problems_are_not_tried_elsewhere(status: int) -> None:
    relay = Relay(plan(settings()), settings(), 0.0)
    relay.client_connected(0.0)
    actions = relay.upstream_failed(UpstreamFailure.REJECTED, status)
    assert isinstance(actions[-1], CloseClient)
    assert relay.state is State.CLOSED


def test_events_sent_to_a_provider_that_then_closed_silently_are_replayed_to_the_next() -> None:
    config = settings()
    relay = Relay(plan(config), config, 0.0)
    relay.client_connected(0.0)
    relay.upstream_connected(0.1)
    sent = json.dumps({"type": "response.create"})
    assert relay.client_text(sent, 0.2) == [SendToUpstream(sent)]
    actions = relay.upstream_closed(1011, "overloaded")
    assert isinstance(actions[0], ReconnectUpstream)
    assert relay.upstream_connected(0.3) == [SendToUpstream(sent)]


def test_attempts_share_the_connect_timeout_and_the_last_ends_the_session() -> None:
    config = settings()
    relay = Relay(plan(config), config, 0.0)
    relay.client_connected(0.0)
    assert relay.next_deadline() == pytest.approx(TIMEOUT / 3)
    actions = relay.tick(TIMEOUT / 3)
    assert isinstance(actions[0], ReconnectUpstream)
    assert relay.plan.provider == "azure"
    assert relay.next_deadline() == pytest.approx(2 * TIMEOUT / 3)
    relay.tick(2 * TIMEOUT / 3)
    assert relay.plan.provider == "xai"
    assert relay.next_deadline() == pytest.approx(TIMEOUT)
    actions = relay.tick(TIMEOUT)
    assert isinstance(actions[-1], CloseClient)
    (told,) = [action for action in actions if isinstance(action, SendToClient)]
    assert json.loads(told.data)["error"]["code"] == "upstream_timeout"


def test_once_the_provider_has_spoken_a_failure_is_the_sessions() -> None:
    config = settings()
    relay = Relay(plan(config), config, 0.0)
    relay.client_connected(0.0)
    relay.upstream_connected(0.1)
    relay.upstream_frame('{"type":"session.created"}')
    actions = relay.upstream_closed(1011, "overloaded")
    assert not any(isinstance(action, ReconnectUpstream) for action in actions)
    assert relay.state is State.CLOSED


def test_a_token_limited_to_one_provider_gets_no_fallback() -> None:
    secret = "s" * 40
    config = settings(GATEWAY_SECRET=secret, AUTH_MODE="both")
    token = sign(new_claims(subject="u", now=NOW, ttl_seconds=60, providers=["openai", "xai"]), secret)
    planned = plan(config, key=token)
    assert [f.provider for f in planned.fallbacks] == ["xai"]
