"""Accounting across providers: the meter reads translated sessions (xAI, Gemini) in the events the
client is sent, names the provider a fallback reached, and every new way a session ends (a revoked
token, fallbacks run out) still gives the final record."""

from __future__ import annotations

import json
from typing import Any

from shared.actions import Action, RecordUsage, SendToUpstream
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.limits import LimitCounters
from shared.relay import Relay, State, UpstreamFailure
from shared.tokens import mint
from shared.usage.meter import start_meter
from shared.usage.prices import PriceTable

SECRET = "usage-providers-secret-0123456789abcdef-01"
WALL = 1_796_299_200.0  # 2026-12-03T12:00:00Z
T0 = 100.0
PCM = "audio/pcm;rate=24000"
CLIENT_KEY = {"authorization": "Bearer sk-client"}  # AUTH_MODE=both: a provider key, no subject
USAGE = {
    "total_tokens": 30,
    "input_tokens": 20,
    "output_tokens": 10,
    "input_token_details": {"text_tokens": 20, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 10, "audio_tokens": 0},
}


def settings_of(**values: str) -> Settings:
    return Settings.from_mapping(
        {
            "OPENAI_API_KEY": "sk-operator",
            "AZURE_OPENAI_ENDPOINT": "https://azure.example",
            "AZURE_OPENAI_API_KEY": "azure-operator-key",
            "XAI_API_KEY": "xai-operator-key",
            "GEMINI_API_KEY": "gemini-operator-key",
            "GATEWAY_SECRET": SECRET,
            "AUTH_MODE": "both",
            **values,
        }
    )


def metered_relay(settings: Settings, query: str, headers: dict[str, str] | None = None) -> Relay:
    plan = plan_session("/v1/realtime", query, headers or CLIENT_KEY, settings, WALL)
    assert isinstance(plan, SessionPlan)
    assert plan.error is None
    meter = start_meter(plan, settings, T0, WALL, PriceTable())
    relay = Relay(plan, settings, T0, LimitCounters(), meter)
    relay.client_connected(T0)
    return relay


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def final(actions: list[Action]) -> Any:
    [record] = [action.record for action in actions if isinstance(action, RecordUsage)]
    assert record.final
    return record


def test_xais_usage_beside_the_response_is_counted_as_the_client_sees_it() -> None:
    relay = metered_relay(settings_of(), "provider=xai&model=grok-voice-latest")
    relay.upstream_connected(T0 + 0.1)
    created = frame("session.created", session={"id": "sess_xai", "model": "grok-voice-latest"})
    relay.upstream_frame(created, T0 + 0.2)
    # xAI puts the usage beside the response; the normaliser moves it where OpenAI has it.
    done = frame("response.done", response={"id": "resp_x", "status": "completed", "output": []}, usage=USAGE)
    relay.upstream_frame(done, T0 + 1.0)
    record = final(relay.client_closed(1000, "bye", now=T0 + 2.0))
    assert (record.provider, record.responses) == ("xai", 1)
    assert (record.input_text_tokens, record.output_text_tokens) == (20, 10)
    assert record.provider_frames == 2  # what the provider sent, counted once each
    assert record.provider_bytes == len(created) + len(done)
    assert record.endpoint == "realtime"


def test_geminis_usage_is_read_from_the_translated_response_done() -> None:
    relay = metered_relay(settings_of(), "provider=gemini&model=gpt-realtime")
    relay.client_text(frame("response.create"), T0 + 0.05)
    opened = relay.upstream_connected(T0 + 0.1)
    assert any(isinstance(action, SendToUpstream) for action in opened)  # the setup
    messages = [
        {"setupComplete": {}},
        # 0.1 s of 24 kHz PCM16: 4800 bytes
        {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": PCM, "data": "A" * 6400}}]}}},
        {"serverContent": {"generationComplete": True}},
        {
            "serverContent": {"turnComplete": True},
            "usageMetadata": {
                "promptTokenCount": 40,
                "responseTokenCount": 30,
                "totalTokenCount": 70,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 8},
                    {"modality": "AUDIO", "tokenCount": 32},
                ],
                "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
            },
        },
    ]
    sent = [json.dumps(message).encode() for message in messages]
    for index, data in enumerate(sent):
        relay.upstream_frame(data, T0 + 0.2 + index / 10)
    record = final(relay.client_closed(1000, "bye", now=T0 + 2.0))
    assert (record.provider, record.responses) == ("gemini", 1)
    assert (record.input_text_tokens, record.input_audio_tokens, record.output_audio_tokens) == (8, 32, 30)
    assert record.output_audio_seconds == 0.1
    assert record.provider_frames == len(sent)
    assert record.provider_bytes == sum(len(data) for data in sent)
    assert record.client_frames == 1


def test_a_fallback_is_recorded_under_the_provider_that_answered_and_early_events_count_once() -> None:
    settings = settings_of(FALLBACK_PROVIDERS="openai=azure", UPSTREAM_CONNECT_TIMEOUT_SECONDS="6")
    relay = metered_relay(settings, "model=gpt-realtime", {"authorization": "Bearer sk-client"})
    assert relay.client_text(frame("response.create"), T0 + 0.1) == []
    relay.upstream_failed(UpstreamFailure.REJECTED, 503, now=T0 + 0.2)  # openai fails: azure next
    assert relay.plan.provider == "azure"
    relay.upstream_connected(T0 + 0.3)
    relay.upstream_frame(frame("session.created", session={"id": "sess_azure"}), T0 + 0.4)
    done = frame("response.done", response={"id": "resp_a", "status": "completed", "usage": USAGE})
    relay.upstream_frame(done, T0 + 1.0)
    record = final(relay.client_closed(1000, "bye", now=T0 + 2.0))
    assert (record.provider, record.provider_session_id, record.responses) == ("azure", "sess_azure", 1)
    assert record.client_frames == 1  # replayed to azure, counted once
    assert record.input_text_tokens == 20


def test_fallbacks_running_out_give_the_final_record_of_the_last_attempt() -> None:
    settings = settings_of(FALLBACK_PROVIDERS="openai=azure", UPSTREAM_CONNECT_TIMEOUT_SECONDS="6")
    relay = metered_relay(settings, "model=gpt-realtime", {"authorization": "Bearer sk-client"})
    assert not [
        a
        for a in relay.upstream_failed(UpstreamFailure.UNREACHABLE, now=T0 + 0.2)
        if isinstance(a, RecordUsage)
    ]
    record = final(relay.upstream_failed(UpstreamFailure.UNREACHABLE, now=T0 + 0.5))
    assert (record.provider, record.outcome, record.close_code) == ("azure", "upstream_unreachable", 1014)
    assert record.duration_seconds == 0.5
    assert relay.state is State.CLOSED


def test_a_revoked_token_ends_the_session_with_its_final_record() -> None:
    settings = settings_of()
    token = mint(SECRET, subject="alice", now=WALL, ttl_seconds=600)
    relay = metered_relay(settings, "model=gpt-realtime", {"authorization": f"Bearer {token}"})
    relay.upstream_connected(T0 + 0.1)
    relay.upstream_frame(frame("session.created", session={"id": "sess_1"}), T0 + 0.2)
    record = final(relay.token_revoked(now=T0 + 7.0))
    assert (record.subject, record.outcome, record.close_code) == ("alice", "token_revoked", 1008)
    assert (record.closed_by, record.duration_seconds) == ("gateway", 7.0)
    assert record.error_codes == {"token_revoked": 1}
    assert relay.token_revoked(now=T0 + 8.0) == []
