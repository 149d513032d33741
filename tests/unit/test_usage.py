"""Accounting without sockets: the meter fed through the relay, prices, budgets, the ledger's SQL, logs.

Provider frames are written here with known usage and known audio, so every figure checked is one
the test can work out by hand. Time is a number the test passes in.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import sqlite3
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from shared.actions import Action, CloseClient, CloseUpstream, RecordUsage, SendToClient, SendToUpstream
from shared.auth import token_answer
from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.limits import LimitCounters
from shared.logs import JsonFormatter, Structured
from shared.relay import Relay, State, UpstreamFailure
from shared.tokens import TokenError, mint, verify
from shared.usage.audio import bytes_per_second, decoded_size, session_formats
from shared.usage.budget import Budget, budget_plan
from shared.usage.counts import TokenCounts
from shared.usage.ledger import (
    GROUP_KEYS,
    MIGRATIONS,
    SPENT_TODAY,
    SUM_FIELDS,
    migrations_from,
    normalize_bound,
    record_statements,
    summary_query,
    summary_rows,
)
from shared.usage.meter import UsageMeter, start_meter
from shared.usage.prices import SHIPPED_PRICES, Price, PricesError, PriceTable, parse_prices
from shared.usage.record import LEDGER_FIELDS, UsageRecord

SECRET = "usage-unit-secret-0123456789abcdef-0123456"
WALL = 1_796_299_200.0  # 2026-12-03T12:00:00Z
T0 = 100.0

# A response.done usage with every kind of token (cached ones split by modality).
USAGE = {
    "total_tokens": 1465,
    "input_tokens": 1300,
    "output_tokens": 165,
    "input_token_details": {
        "text_tokens": 1000,
        "audio_tokens": 250,
        "image_tokens": 50,
        "cached_tokens": 640,
        "cached_tokens_details": {"text_tokens": 600, "audio_tokens": 40, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 15, "audio_tokens": 150},
}
# What gpt-realtime charges for USAGE, by hand: (uncached, cached) input per modality, then output.
USAGE_COST = (400 * 4.0 + 600 * 0.4 + 210 * 32.0 + 40 * 0.4 + 50 * 5.0 + 15 * 16.0 + 150 * 64.0) / 1e6


def settings_of(**values: str) -> Settings:
    return Settings.from_mapping({"OPENAI_API_KEY": "sk-usage-unit", "GATEWAY_SECRET": SECRET, **values})


def plan_of(
    settings: Settings, model: str = "gpt-realtime", provider: str = "openai", **token: Any
) -> SessionPlan:
    headers = {"authorization": "Bearer sk-usage-unit-client-key"}  # AUTH_MODE=both: a key, no subject
    if token:
        headers["authorization"] = "Bearer " + mint(
            SECRET, subject="alice", now=WALL, ttl_seconds=600, **token
        )
    plan = plan_session(
        "/v1/realtime", urlencode({"model": model, "provider": provider}), headers, settings, WALL
    )
    assert isinstance(plan, SessionPlan)
    return plan


def metered(
    settings: Settings | None = None,
    *,
    spent_today: float = 0.0,
    counters: LimitCounters | None = None,
    **plan: Any,
) -> tuple[Relay, UsageMeter]:
    """An open relay to OpenAI with a meter, the provider's session.created already through."""
    settings = settings or settings_of(AUTH_MODE="both")
    session_plan = plan_of(settings, **plan)
    meter = start_meter(session_plan, settings, T0, WALL, PriceTable(), spent_today=spent_today)
    relay = Relay(session_plan, settings, T0, counters or LimitCounters(), meter)
    relay.client_connected(T0)
    relay.upstream_connected(T0 + 0.25)
    relay.upstream_frame(event("session.created", session={"id": "sess_upstream_1"}), T0 + 0.3)
    return relay, meter


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": "event_x", **fields}, separators=(",", ":"))


def append(audio: bytes) -> str:
    return event("input_audio_buffer.append", audio=base64.b64encode(audio).decode())


def audio_delta(audio: bytes, kind: str = "response.output_audio.delta") -> str:
    return event(
        kind,
        response_id="resp_1",
        item_id="item_1",
        output_index=0,
        content_index=0,
        delta=base64.b64encode(audio).decode(),
    )


def response_done(usage: dict[str, Any] | None = USAGE, response_id: str = "resp_1") -> str:
    return event(
        "response.done", response={"id": response_id, "status": "completed", "output": [], "usage": usage}
    )


def records(actions: list[Action]) -> list[Any]:
    return [action.record for action in actions if isinstance(action, RecordUsage)]


def final_record(actions: list[Action]) -> Any:
    [record] = records(actions)
    assert record.final
    return record


def sent_events(actions: list[Action]) -> list[dict[str, Any]]:
    return [json.loads(action.data) for action in actions if isinstance(action, SendToClient)]


# -- prices and counts -----------------------------------------------------------------------------------


def test_a_response_costs_its_tokens_at_their_rates_cached_ones_at_the_cached_rate() -> None:
    counts = TokenCounts.from_usage(USAGE)
    assert counts == TokenCounts(1000, 250, 50, 640, 600, 40, 0, 15, 150)
    assert SHIPPED_PRICES["gpt-realtime"].response_cost(counts) == pytest.approx(USAGE_COST, rel=1e-12)


def test_cached_tokens_without_a_split_are_text_first_then_audio() -> None:
    usage = {"input_token_details": {"text_tokens": 30, "audio_tokens": 100, "cached_tokens": 50}}
    counts = TokenCounts.from_usage(usage)
    assert (counts.input_cached, counts.cached_text, counts.cached_audio, counts.cached_image) == (
        50,
        30,
        20,
        0,
    )
    assert TokenCounts.from_usage(None) == TokenCounts()
    assert (
        TokenCounts.from_usage({"input_token_details": {"text_tokens": "7", "audio_tokens": -3}})
        == TokenCounts()
    )


def test_a_modality_without_a_price_makes_the_cost_unknown_not_zero() -> None:
    price = Price(input_text=1.0, output_text=2.0)
    assert price.response_cost(TokenCounts(input_text=10, output_text=5)) == pytest.approx(20 / 1e6)
    assert price.response_cost(TokenCounts(input_text=10, output_audio=1)) is None


def test_live_is_priced_per_minute_and_standby_at_its_own_rate() -> None:
    live = SHIPPED_PRICES["gpt-live-1"]
    assert live.live_cost(90) == pytest.approx(0.075)
    assert live.live_cost(120, paused_seconds=60) == pytest.approx(0.05 + 0.02)
    assert SHIPPED_PRICES["gpt-realtime"].live_cost(60) is None


def test_a_prices_file_replaces_the_models_it_names_and_keeps_the_rest() -> None:
    table = PriceTable.with_overrides(
        """
        [models."gpt-realtime"]
        input_text = 1.0
        output_text = 2.0

        [models."my-azure-deployment"]
        live_per_minute = 0.1
        """
    )
    assert table.get("gpt-realtime") == Price(input_text=1.0, output_text=2.0)  # replaced, not merged
    assert table.get("my-azure-deployment") == Price(live_per_minute=0.1)
    assert table.get("gpt-realtime-mini") == SHIPPED_PRICES["gpt-realtime-mini"]
    assert table.get("gpt-realtime-nano") is None  # never guessed from a similar name


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[models.x\n", "not valid TOML"),
        ('[model."x"]\ninput_text = 1', "unknown top-level keys"),
        ('[models."x"]\ninput_txt = 1', "unknown keys ['input_txt']"),
        ('[models."x"]\ninput_text = -1', "must not be negative"),
        ('[models."x"]\ninput_text = "1"', "must be a number"),
        ('[models."x"]\ninput_text = true', "must be a number"),
        ('[models."x"]\ninput_text = nan', "must be a number"),
        ('[models."x"]', "has no price"),
    ],
)
def test_a_bad_prices_file_is_refused_with_where(text: str, says: str) -> None:
    with pytest.raises(PricesError, match=None) as caught:
        parse_prices(text)
    assert says in str(caught.value)


# -- audio -----------------------------------------------------------------------------------------------


def test_formats_from_every_session_shape() -> None:
    ga = {
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}},
            "output": {"format": {"type": "audio/pcm", "rate": 24000}},
        }
    }
    assert session_formats(ga) == (8000, 48000)
    assert session_formats({"input_audio_format": "g711_alaw", "output_audio_format": "pcm16"}) == (
        8000,
        48000,
    )
    assert session_formats({"audio": {"format": {"type": "audio/pcm", "rate": 16000}}}) == (
        32000,
        32000,
    )  # Live
    assert session_formats({"audio": {"input": {"turn_detection": None}}}) == (None, None)
    assert bytes_per_second({"type": "audio/opus"}) is None
    for size in range(0, 12):
        assert decoded_size(base64.b64encode(bytes(size)).decode()) == size


# -- the meter, through the relay ------------------------------------------------------------------------


def test_audio_seconds_are_measured_from_the_audio_in_the_sessions_formats() -> None:
    relay, meter = metered()
    for _ in range(10):  # 1 s of PCM16 at 24 kHz, in ten appends
        assert relay.client_text(append(bytes(4800)), T0 + 1) == [SendToUpstream(append(bytes(4800)))]
    relay.upstream_frame(audio_delta(bytes(24000)), T0 + 2)  # 0.5 s out
    g711 = {
        "audio": {"input": {"format": {"type": "audio/pcma"}}, "output": {"format": {"type": "audio/pcmu"}}}
    }
    relay.upstream_frame(event("session.updated", session=g711), T0 + 3)
    relay.client_text(append(bytes(4000)), T0 + 4)  # 0.5 s of G.711
    relay.upstream_frame(audio_delta(bytes(800)), T0 + 5)  # 0.1 s of G.711
    record = meter.record(T0 + 6)
    assert (record.input_audio_seconds, record.output_audio_seconds) == (1.5, 0.6)
    assert record.provider_session_id == "sess_upstream_1"
    assert not record.final
    assert record.ended_at is None
    assert record.closed_by is None


def test_beta_and_live_audio_deltas_count_too() -> None:
    relay, meter = metered()
    relay.upstream_frame(audio_delta(bytes(4800), "response.audio.delta"), T0 + 1)
    relay.upstream_frame(audio_delta(bytes(4800), "session.output_audio.delta"), T0 + 1)
    relay.upstream_frame(audio_delta(bytes(4800), "response.output_audio_transcript.delta"), T0 + 1)
    assert meter.record().output_audio_seconds == 0.2


@pytest.mark.parametrize(
    "frame",
    [
        json.dumps({"type": "response.output_audio.delta", "delta": "AAAAAAAA", "item_id": "i"}),  # spaced
        '{"type":"response.output_audio.delta","delta":"AAAAAAAA","content_index":0}',  # not last
        '{"event_id":"e","type":"response.output_audio.delta","delta":"AAAAAAAA"}',  # type not first
        '{"type":"response.output_audio.delta","item_id":"i","delta" : "AAAAAAAA"}',  # spaced key
        '{"type":"response.output_audio.delta","delta":"AAAAAAAA"}',
    ],
)
def test_an_audio_delta_is_measured_however_it_is_serialized(frame: str) -> None:
    relay, meter = metered()
    relay.upstream_frame(frame, T0 + 1)
    relay.upstream_frame(audio_delta(bytes(4799)), T0 + 1)  # padded base64
    assert meter.output_audio_seconds == (6 + 4799) / 48000


def test_frames_and_bytes_are_counted_each_way_by_payload_size() -> None:
    relay, meter = metered()
    text = event(
        "conversation.item.create",
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "héllo ✓"}]},
    )
    relay.client_text(text, T0 + 1)
    relay.client_text("not json", T0 + 1)
    relay.client_binary(b"\x00\x01", T0 + 1)
    relay.upstream_frame(b"\x00" * 7, T0 + 2)
    record = meter.record()
    assert (record.client_frames, record.client_bytes) == (3, len(text.encode()) + 8 + 2)
    created = event("session.created", session={"id": "sess_upstream_1"})
    assert (record.provider_frames, record.provider_bytes) == (2, len(created) + 7)
    assert record.error_codes == {"invalid_json": 1, "binary_frame_unsupported": 1}


def test_response_done_usage_is_summed_and_priced() -> None:
    relay, meter = metered()
    relay.upstream_frame(response_done(), T0 + 1)
    relay.upstream_frame(response_done(response_id="resp_2"), T0 + 2)
    record = meter.record()
    assert record.responses == 2
    assert (record.input_text_tokens, record.input_audio_tokens, record.input_image_tokens) == (
        2000,
        500,
        100,
    )
    assert (record.input_cached_tokens, record.output_text_tokens, record.output_audio_tokens) == (
        1280,
        30,
        300,
    )
    assert record.cost_usd == pytest.approx(2 * USAGE_COST)
    assert [response.response_id for response in record.new_responses] == ["resp_1", "resp_2"]
    assert meter.record().new_responses == ()  # each response goes out once


def test_an_unknown_model_has_no_cost_however_many_tokens() -> None:
    relay, meter = metered(model="gpt-realtime-nano")
    relay.upstream_frame(response_done(), T0 + 1)
    record = meter.record()
    assert record.output_audio_tokens == 150
    assert record.cost_usd is None
    assert record.new_responses[0].cost_usd is None


def test_per_response_latency_from_response_create_to_first_delta_and_done() -> None:
    relay, meter = metered()
    relay.client_text(event("response.create"), T0 + 10)
    relay.upstream_frame(event("response.created", response={"id": "resp_1"}), T0 + 10.1)
    relay.upstream_frame(audio_delta(bytes(480)), T0 + 10.4)
    relay.upstream_frame(audio_delta(bytes(480)), T0 + 10.6)
    relay.upstream_frame(response_done(), T0 + 11.5)
    [response] = meter.record().new_responses
    assert (response.first_delta_seconds, response.done_seconds) == (0.4, 1.5)
    assert response.requested_at == "2026-12-03T12:00:10.000Z"
    assert (response.seq, response.status, response.output_audio_tokens) == (1, "completed", 150)


def test_latency_from_the_providers_vad_stop_and_from_a_commit() -> None:
    relay, meter = metered()
    relay.upstream_frame(event("input_audio_buffer.speech_stopped", audio_end_ms=900), T0 + 20)
    relay.upstream_frame(event("response.created", response={"id": "resp_1"}), T0 + 20.2)
    relay.upstream_frame(event("response.output_text.delta", delta="Hi"), T0 + 20.5)
    relay.upstream_frame(response_done(), T0 + 21)
    relay.client_text(event("input_audio_buffer.commit"), T0 + 30)
    relay.upstream_frame(event("response.created", response={"id": "resp_2"}), T0 + 30.3)
    relay.upstream_frame(response_done(response_id="resp_2"), T0 + 30.5)
    first, second = meter.record().new_responses
    assert (first.first_delta_seconds, first.done_seconds) == (0.5, 1.0)
    assert (second.first_delta_seconds, second.done_seconds) == (None, 0.5)  # no output at all


def test_live_usage_keeps_the_last_cumulative_seconds_and_prices_them() -> None:
    relay, meter = metered(model="gpt-live-1")
    relay.upstream_frame(event("session.usage.updated", usage={"seconds": 30}), T0 + 30)
    relay.upstream_frame(event("session.usage.updated", usage={"seconds": 90}), T0 + 90)
    record = meter.record()
    assert record.live_seconds == 90.0
    assert record.cost_usd == pytest.approx(0.075)
    relay.upstream_frame(event("session.closed", reason="close_requested", usage={"seconds": 96}), T0 + 96)
    assert meter.record().cost_usd == pytest.approx(0.08)


def test_a_checkpoint_comes_every_usage_checkpoint_seconds_while_the_session_is_open() -> None:
    relay, _ = metered(settings_of(AUTH_MODE="both", USAGE_CHECKPOINT_SECONDS="60", IDLE_TIMEOUT_SECONDS="0"))
    assert relay.next_deadline() == T0 + 60
    relay.upstream_frame(response_done(), T0 + 10)
    [checkpoint] = records(relay.tick(T0 + 60))
    assert not checkpoint.final
    assert (checkpoint.duration_seconds, checkpoint.responses, len(checkpoint.new_responses)) == (60.0, 1, 1)
    assert relay.next_deadline() == T0 + 120
    [again] = records(relay.tick(T0 + 120))
    assert (again.duration_seconds, again.new_responses) == (120.0, ())


def test_the_checkpoint_timer_does_not_hold_up_the_others() -> None:
    relay, _ = metered(
        settings_of(AUTH_MODE="both", USAGE_CHECKPOINT_SECONDS="60", IDLE_TIMEOUT_SECONDS="30")
    )
    assert relay.next_deadline() == T0 + 30
    actions = relay.tick(T0 + 30)
    assert final_record(actions).outcome == "idle_timeout"
    assert relay.next_deadline() is None


def test_a_client_close_ends_the_record_with_who_and_code() -> None:
    relay, meter = metered()
    relay.upstream_frame(response_done(), T0 + 5)
    actions = relay.client_closed(1000, "bye", now=T0 + 42.5)
    assert actions[0] == CloseUpstream(1000, "bye")
    record = final_record(actions)
    assert (record.closed_by, record.close_code, record.outcome) == ("client", 1000, "client_closed")
    assert (record.started_at, record.ended_at, record.day) == (
        "2026-12-03T12:00:00.000Z",
        "2026-12-03T12:00:42.500Z",
        "2026-12-03",
    )
    assert record.duration_seconds == 42.5
    assert record.upstream_connect_seconds == 0.25
    assert relay.client_closed(1000) == []  # once
    assert meter.finished


@pytest.mark.parametrize(
    ("end", "closed_by", "code", "outcome"),
    [
        (
            lambda relay: relay.upstream_closed(4000, "scripted", now=T0 + 9),
            "provider",
            4000,
            "provider_closed",
        ),
        (lambda relay: relay.upstream_closed(1006, now=T0 + 9), "gateway", 1014, "upstream_connection_lost"),
        (lambda relay: relay.upstream_unresponsive(now=T0 + 9), "gateway", 1014, "upstream_unresponsive"),
        (lambda relay: relay.client_unresponsive(now=T0 + 9), "gateway", None, "client_unresponsive"),
        (lambda relay: relay.shutting_down(now=T0 + 9), "gateway", 1001, "server_shutting_down"),
    ],
)
def test_every_way_a_session_ends_gives_its_final_record(
    end: Any, closed_by: str, code: int | None, outcome: str
) -> None:
    relay, _ = metered()
    relay.upstream_frame(response_done(), T0 + 5)
    record = final_record(end(relay))
    assert (record.closed_by, record.close_code, record.outcome) == (closed_by, code, outcome)
    assert (record.duration_seconds, record.responses) == (9.0, 1)
    assert relay.state is State.CLOSED


def test_a_session_that_never_reached_its_provider_has_its_record_too() -> None:
    settings = settings_of(AUTH_MODE="both")
    plan = plan_of(settings)
    meter = start_meter(plan, settings, T0, WALL, PriceTable())
    relay = Relay(plan, settings, T0, LimitCounters(), meter)
    relay.client_connected(T0)
    record = final_record(relay.upstream_failed(UpstreamFailure.UNREACHABLE, now=T0 + 0.5))
    assert (record.outcome, record.close_code, record.upstream_connect_seconds) == (
        "upstream_unreachable",
        1014,
        None,
    )
    assert record.error_codes == {"upstream_unreachable": 1}
    refused = plan_of(settings, provider="nowhere")
    relay = Relay(
        refused, settings, T0, LimitCounters(), start_meter(refused, settings, T0, WALL, PriceTable())
    )
    record = final_record(relay.client_connected(T0))
    assert (record.provider, record.outcome) == ("nowhere", "unknown_provider")


def test_the_usage_line_is_logged_once_with_the_ledger_fields(caplog: pytest.LogCaptureFixture) -> None:
    relay, _ = metered(max_cost_usd=5.0)
    relay.upstream_frame(response_done(), T0 + 1)
    with caplog.at_level(logging.INFO, logger="realtime_gateway.usage"):
        relay.client_closed(1000, now=T0 + 2)
    [line] = [record for record in caplog.records if record.name == "realtime_gateway.usage"]
    assert isinstance(line.msg, Structured)
    fields = json.loads(JsonFormatter().format(line))
    assert fields["message"] == "session usage"
    assert set(LEDGER_FIELDS) <= set(fields)
    assert (fields["subject"], fields["max_cost_usd"], fields["output_audio_tokens"]) == ("alice", 5.0, 150)
    assert fields["cost_usd"] == pytest.approx(USAGE_COST)
    assert "rgw_" not in json.dumps(fields)  # the token never, only its subject


def test_the_simulators_usage_is_metered_as_a_providers(caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_of(AUTH_MODE="both", SIMULATOR_PACE="0")
    plan = plan_of(settings, provider="simulator")
    meter = start_meter(plan, settings, T0, WALL, PriceTable())
    relay = Relay(plan, settings, T0, LimitCounters(), meter)
    seen = sent_events(relay.client_connected(T0))
    seen += sent_events(relay.client_text(append(bytes(48000)), T0 + 1))
    seen += sent_events(relay.client_text(event("input_audio_buffer.commit"), T0 + 2))
    seen += sent_events(relay.client_text(event("response.create"), T0 + 3))
    seen += sent_events(relay.tick(T0 + 4))
    done = [item["response"]["usage"] for item in seen if item["type"] == "response.done"]
    assert done
    record = final_record(relay.client_closed(1000, now=T0 + 5))
    expected = [TokenCounts.from_usage(usage) for usage in done]
    assert record.output_audio_tokens == sum(counts.output_audio for counts in expected) > 0
    assert record.input_audio_tokens == sum(counts.input_audio for counts in expected) == 10  # 1 s at 10/s
    assert record.input_audio_seconds == 1.0
    deltas = [item["delta"] for item in seen if item["type"] == "response.output_audio.delta"]
    assert record.output_audio_seconds == round(sum(decoded_size(delta) for delta in deltas) / 48000, 3) > 0
    assert record.cost_usd == pytest.approx(
        sum(SHIPPED_PRICES["gpt-realtime"].response_cost(c) or 0 for c in expected)
    )


# -- budgets ---------------------------------------------------------------------------------------------


def expensive(cost: float) -> dict[str, Any]:
    """A usage that costs ``cost`` USD on gpt-realtime: output text tokens at $16 per million."""
    tokens = round(cost * 1e6 / 16)
    return {"output_token_details": {"text_tokens": tokens, "audio_tokens": 0}}


def test_the_budget_warns_at_80_percent_then_cuts_after_the_response_that_reaches_it() -> None:
    counters = LimitCounters()
    relay, _ = metered(max_cost_usd=1.0, counters=counters)
    assert sent_events(relay.upstream_frame(response_done(expensive(0.5)), T0 + 1)) == [
        json.loads(response_done(expensive(0.5)))
    ]
    actions = relay.upstream_frame(response_done(expensive(0.35)), T0 + 2)
    done, warning = sent_events(actions)
    assert done["type"] == "response.done"
    assert (warning["type"], warning["error"]["code"], warning["error"]["event_id"]) == (
        "error",
        "budget_warning",
        None,
    )
    assert "$0.85" in warning["error"]["message"]
    assert "$1.00" in warning["error"]["message"]
    assert "response.create" not in warning["error"]["message"]
    assert relay.upstream_frame(response_done(expensive(0.05)), T0 + 3)[1:] == []  # warned once
    actions = relay.upstream_frame(response_done(expensive(0.2)), T0 + 4)
    assert actions[0] == SendToClient(response_done(expensive(0.2)))  # the response whole, first
    assert CloseUpstream(1001, "budget exceeded") in actions
    events = sent_events(actions)
    assert [item["type"] for item in events] == ["response.done", "error"]
    assert events[1]["error"]["code"] == "budget_exceeded"
    close = next(action for action in actions if isinstance(action, CloseClient))
    assert close.code == 1008
    record = final_record(actions)
    assert (record.outcome, record.cost_usd) == ("budget_exceeded", pytest.approx(1.1))
    assert relay.state is State.CLOSED
    assert relay.upstream_frame(response_done(), T0 + 5) == []
    assert counters.totals() == {"budget_exceeded": 1}


def test_the_days_budget_counts_what_the_subject_spent_before() -> None:
    settings = settings_of(AUTH_MODE="both", BUDGET_USD_PER_SUBJECT_PER_DAY="2")
    relay, _ = metered(settings, spent_today=1.5, max_cost_usd=100.0)
    [_, warning] = sent_events(relay.upstream_frame(response_done(expensive(0.1)), T0 + 1))
    assert warning["error"]["code"] == "budget_warning"
    assert "daily" in warning["error"]["message"]
    events = sent_events(relay.upstream_frame(response_done(expensive(0.4)), T0 + 2))
    assert events[-1]["error"]["code"] == "budget_exceeded"
    assert "$2.00" in events[-1]["error"]["message"]


def test_no_budget_no_notices() -> None:
    relay, meter = metered()
    for second in range(5):
        assert len(relay.upstream_frame(response_done(expensive(10)), T0 + second)) == 1
    assert meter.budget is None


def test_a_subject_over_its_day_or_an_unpriced_model_under_a_budget_is_refused_at_connect() -> None:
    settings = settings_of(AUTH_MODE="both", BUDGET_USD_PER_SUBJECT_PER_DAY="2")
    prices = PriceTable()
    plan = plan_of(settings, max_session_seconds=60)
    assert budget_plan(plan, settings, prices, spent_today=1.99) is plan
    counters = LimitCounters()
    refused = budget_plan(plan, settings, prices, spent_today=2.0, counters=counters)
    assert counters.totals() == {"budget_exceeded": 1}
    assert refused.error is not None
    assert refused.error.code == "budget_exceeded"
    assert (refused.error_close_code, refused.upstream) == (1008, None)
    unpriced = budget_plan(
        plan_of(settings, model="gpt-realtime-nano", max_session_seconds=60), settings, prices
    )
    assert unpriced.error is not None
    assert unpriced.error.code == "model_not_priced"
    no_subject = plan_of(settings, model="gpt-realtime-nano")  # no token: no day budget
    assert budget_plan(no_subject, settings, prices, spent_today=99.0) is no_subject
    capped = plan_of(settings_of(AUTH_MODE="both"), model="gpt-realtime-nano", max_cost_usd=1.0)
    assert budget_plan(capped, settings_of(AUTH_MODE="both"), prices).error.code == "model_not_priced"


def test_a_budget_cut_ends_a_simulator_session_after_its_response() -> None:
    settings = settings_of(AUTH_MODE="both", SIMULATOR_PACE="0")
    plan = plan_of(settings, provider="simulator", max_cost_usd=1e-6)
    relay = Relay(plan, settings, T0, LimitCounters(), start_meter(plan, settings, T0, WALL, PriceTable()))
    relay.client_connected(T0)
    actions = relay.client_text(event("response.create", response={"output_modalities": ["text"]}), T0 + 1)
    actions += relay.tick(T0 + 2)
    kinds = [item["type"] for item in sent_events(actions)]
    assert kinds[-2:] == ["response.done", "error"]
    assert isinstance(actions[-2], CloseClient)
    assert actions[-2].code == 1008
    assert final_record(actions).outcome == "budget_exceeded"


def test_budget_checks_by_hand() -> None:
    budget = Budget(session_limit=1.0, day_limit=None)
    assert budget.check(0.79) is None
    warning = budget.check(0.8)
    assert warning is not None
    assert not warning.cut
    assert budget.check(0.9) is None
    cut = budget.check(1.0)
    assert cut is not None
    assert cut.cut
    assert not Budget(None, None).active
    assert Budget(None, 5.0, spent_today=5.0).refusal() is not None
    assert Budget(None, 5.0, spent_today=4.99).refusal() is None


# -- the ledger's SQL ------------------------------------------------------------------------------------


def ledger() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    for _, statements in migrations_from(None):
        for statement in statements:
            connection.execute(statement)
    return connection


def write(connection: sqlite3.Connection, record: UsageRecord) -> None:
    with connection:
        for statement, values in record_statements(record):
            connection.execute(statement, values)


def test_checkpoints_then_the_final_row_replace_each_other_by_session_id() -> None:
    relay, meter = metered(max_cost_usd=9.0)
    connection = ledger()
    relay.upstream_frame(response_done(), T0 + 1)
    write(connection, meter.record(T0 + 60))
    relay.upstream_frame(response_done(response_id="resp_2"), T0 + 70)
    write(connection, final_record(relay.client_closed(1000, now=T0 + 75)))
    rows = connection.execute(
        "SELECT session_id, duration_seconds, responses, final, cost_usd, error_codes FROM usage_sessions"
    ).fetchall()
    assert rows == [(meter.session_id, 75.0, 2, 1, pytest.approx(2 * USAGE_COST), "{}")]
    responses = connection.execute("SELECT seq, response_id FROM usage_responses ORDER BY seq").fetchall()
    assert responses == [(1, "resp_1"), (2, "resp_2")]
    assert connection.execute(SPENT_TODAY, ("alice", "2026-12-03")).fetchone()[0] == pytest.approx(
        2 * USAGE_COST
    )
    assert connection.execute(SPENT_TODAY, ("alice", "2026-12-04")).fetchone()[0] == 0


def test_the_summary_sums_per_group_and_leaves_unknown_costs_out() -> None:
    connection = ledger()
    for model, close_at in (("gpt-realtime", 10), ("gpt-realtime", 20), ("gpt-realtime-nano", 30)):
        relay, _ = metered(model=model)
        relay.client_text(append(bytes(48000)), T0 + 1)
        relay.upstream_frame(response_done(), T0 + 2)
        write(connection, final_record(relay.client_closed(1000, now=T0 + close_at)))
    sql, parameters = summary_query(
        "model", since=normalize_bound("2026-12-03"), until=normalize_bound("2026-12-04")
    )
    rows = summary_rows(connection.execute(sql, parameters).fetchall(), "model")
    assert [list(row) for row in rows] == [[*GROUP_KEYS["model"], *SUM_FIELDS]] * 2
    known, unknown = rows
    assert (known["model"], known["sessions"], known["duration_seconds"]) == ("gpt-realtime", 2, 30.0)
    assert (known["input_text_tokens"], known["input_audio_seconds"]) == (2000, 2.0)
    assert known["cost_usd"] == pytest.approx(2 * USAGE_COST)
    assert (unknown["model"], unknown["cost_usd"], unknown["live_seconds"]) == (
        "gpt-realtime-nano",
        None,
        None,
    )
    sql, parameters = summary_query("day", since=normalize_bound("2026-12-04T00:00:00+01:00"))
    assert parameters == ("2026-12-03T23:00:00.000Z",)
    assert connection.execute(sql, parameters).fetchall() == []


def test_migrations_take_any_version_to_the_current_one() -> None:
    assert [version for version, _ in migrations_from(None)] == list(range(1, len(MIGRATIONS) + 1))
    assert migrations_from(len(MIGRATIONS)) == []
    with pytest.raises(ValueError, match="newer"):
        migrations_from(len(MIGRATIONS) + 1)


# -- logs ------------------------------------------------------------------------------------------------


def test_json_lines_have_time_level_logger_message_and_tracebacks() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "realtime_gateway", logging.WARNING, __file__, 1, "limit hit reason=%s", ("x",), None
    )
    line = json.loads(formatter.format(record))
    assert line["level"] == "WARNING"
    assert line["logger"] == "realtime_gateway"
    assert line["message"] == "limit hit reason=x"
    assert line["time"].endswith("Z")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "RuntimeError: boom" in json.loads(formatter.format(failed))["exception"]
    assert str(Structured("session usage", {"a": 1})) == 'session usage {"a":1}'


# -- the max_cost_usd claim ------------------------------------------------------------------------------


def test_a_token_carries_max_cost_usd_as_mcu() -> None:
    token = mint(SECRET, subject="alice", now=WALL, ttl_seconds=600, max_cost_usd=0.5)
    payload = json.loads(base64.urlsafe_b64decode(token[4:].split(".")[0] + "=="))
    assert payload["mcu"] == 0.5
    assert verify(token, SECRET, WALL).max_cost_usd == 0.5
    assert verify(mint(SECRET, subject="a", now=WALL, ttl_seconds=60), SECRET, WALL).max_cost_usd is None
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_cost_usd"):
            mint(SECRET, subject="alice", now=WALL, ttl_seconds=600, max_cost_usd=bad)


@pytest.mark.parametrize("mcu", ['"0.5"', "0", "-1", "true", "[1]"])
def test_a_signed_payload_with_a_bad_mcu_is_refused(mcu: str) -> None:
    body = f'{{"v":1,"sub":"a","iat":{int(WALL)},"exp":{int(WALL) + 60},"nce":"n","mcu":{mcu}}}'
    signed = "rgw_" + base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()
    signature = hmac.new(SECRET.encode(), signed.encode(), "sha256").digest()
    token = f"{signed}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(TokenError) as refused:
        verify(token, SECRET, WALL)
    assert refused.value.code == "invalid_token"


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.5, 200), (3, 200), (0, 400), (-0.5, 400), (10_001, 400), ("0.5 USD", 400), (None, 200)],
)
def test_post_tokens_takes_max_cost_usd(value: Any, status: int) -> None:
    settings = settings_of(GATEWAY_ADMIN_KEY="usage-admin")
    body = {"subject": "alice"} if value is None else {"subject": "alice", "max_cost_usd": value}
    answer = token_answer(
        "POST", "/v1/tokens", {"authorization": "Bearer usage-admin"}, json.dumps(body), settings, WALL
    )
    assert answer.status == status, answer.body
    if status == 200:
        claims = verify(str(answer.body["token"]), SECRET, WALL)
        assert claims.max_cost_usd == (None if value is None else float(value))
    else:
        assert "max_cost_usd" in json.dumps(answer.body)


# -- the standalone server's ledger, report and metrics ----------------------------------------------------


def test_the_sqlite_ledger_writes_in_order_off_the_loop_and_reads_after_its_writes(tmp_path: Path) -> None:
    from standalone.ledger import SqliteLedger

    ledger = SqliteLedger(tmp_path / "usage.sqlite3")
    relay, meter = metered(max_cost_usd=9.0)
    relay.upstream_frame(response_done(), T0 + 1)
    ledger.write(meter.record(T0 + 60))
    ledger.write(final_record(relay.client_closed(1000, now=T0 + 61)))
    spent = asyncio.run(ledger.spent_today("alice", "2026-12-03"))
    assert spent == pytest.approx(USAGE_COST)  # both records were written before the read
    ledger.close(5.0)
    ledger.write(meter.record())  # after close: logged, not written
    again = SqliteLedger(tmp_path / "usage.sqlite3")  # reopened: already migrated
    rows = again._connection.execute("SELECT final, duration_seconds FROM usage_sessions").fetchall()
    assert rows == [(1, 61.0)]
    again.close(5.0)


def test_the_report_as_a_table_and_as_csv(tmp_path: Path) -> None:
    from standalone.ledger import SqliteLedger
    from standalone.usage_report import report

    path = tmp_path / "usage.sqlite3"
    ledger = SqliteLedger(path)
    for model in ("gpt-realtime", "gpt-realtime-nano"):
        relay, _ = metered(model=model)
        relay.upstream_frame(response_done(), T0 + 1)
        ledger.write(final_record(relay.client_closed(1000, now=T0 + 2)))
    ledger.close(5.0)
    table = report(path, "model", None, None, "table").splitlines()
    assert table[0].split()[:4] == ["provider", "model", "sessions", "duration"]
    assert [line.split()[1] for line in table[2:4]] == ["gpt-realtime", "gpt-realtime-nano"]
    assert table[3].endswith(" -")  # no price, no cost
    assert table[4].startswith("total")
    assert table[4].endswith(f"{USAGE_COST:.6f}")
    rows = report(path, "session", None, None, "csv").splitlines()
    assert rows[0].startswith("session_id,started_at,subject,provider,model,endpoint,outcome,sessions,")
    assert len(rows) == 3
    assert report(path, "day", "2026-12-04", None, "table").endswith("(no sessions)\n")
    with pytest.raises(ValueError, match="no usage ledger"):
        report(tmp_path / "missing.sqlite3", "day", None, None, "json")
    with pytest.raises(ValueError, match="not an ISO date"):
        report(path, "day", "yesterday", None, "json")


def test_prometheus_metrics_from_the_sink_and_the_open_meters() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from standalone.metrics import PrometheusSink

    counters = LimitCounters()
    counters.hit("idle_timeout")
    open_meters: list[UsageMeter] = []
    sink = PrometheusSink(lambda: open_meters, counters)
    settings = settings_of(AUTH_MODE="both")
    plan = plan_of(settings)
    meter = start_meter(plan, settings, T0, WALL, PriceTable(), sink=sink)
    open_meters.append(meter)
    relay = Relay(plan, settings, T0, counters, meter)
    relay.client_connected(T0)
    relay.upstream_connected(T0 + 0.02)
    relay.client_text(event("response.create"), T0 + 1)
    relay.upstream_frame(event("response.created", response={"id": "resp_1"}), T0 + 1.1)
    relay.upstream_frame(audio_delta(bytes(4800)), T0 + 1.375)  # 0.375 s: exact in binary
    relay.upstream_frame(response_done(), T0 + 2)
    relay.client_text("{", T0 + 3)

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = sink.render().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    live = samples()
    assert live[("realtime_gateway_sessions_active", ())] == 1
    assert live[("realtime_gateway_frames_total", (("direction", "from_provider"),))] == 3
    assert live[("realtime_gateway_upstream_connect_seconds_bucket", (("le", "0.025"),))] == 1
    assert live[("realtime_gateway_response_first_audio_seconds_bucket", (("le", "0.4"),))] == 1
    assert live[("realtime_gateway_response_first_audio_seconds_bucket", (("le", "0.3"),))] == 0
    labels = (("kind", "output_audio"), ("model", "gpt-realtime"), ("provider", "openai"))
    assert live[("realtime_gateway_tokens_total", labels)] == 150
    cost = (("model", "gpt-realtime"), ("provider", "openai"))
    assert live[("realtime_gateway_cost_usd_total", cost)] == pytest.approx(USAGE_COST)
    assert live[("realtime_gateway_errors_total", (("code", "invalid_json"),))] == 1
    assert live[("realtime_gateway_limit_hits_total", (("limit", "idle_timeout"),))] == 1
    relay.client_closed(1000, now=T0 + 4)
    ended = samples()  # the meter is still listed as open, but finished: counted once
    assert ended[("realtime_gateway_sessions_active", ())] == 0
    assert ended[("realtime_gateway_frames_total", (("direction", "from_client"),))] == 2
    outcome = (("endpoint", "realtime"), ("outcome", "client_closed"), ("provider", "openai"))
    assert ended[("realtime_gateway_sessions_total", outcome)] == 1


def test_an_unpriced_models_metrics_are_labelled_other() -> None:
    _, meter = metered(model=f"gpt-realtime-{uuid.uuid4().hex}")
    assert meter._model_label == "other"


def test_prices_file_is_bundled_into_the_worker_and_a_bad_one_fails_the_build(tmp_path: Path) -> None:
    from worker.build_bundle import build

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-realtime"]\noutput_text = 99.0\n')
    bundle = build(tmp_path / "bundle", tmp_path / "assets", prices_file=str(prices))
    module = (bundle / "shared" / "usage" / "bundled_prices.py").read_text()
    namespace: dict[str, Any] = {}
    exec(compile(module, "bundled_prices.py", "exec"), namespace)
    assert PriceTable.with_overrides(namespace["PRICES_TOML"]).get("gpt-realtime") == Price(output_text=99.0)
    assert not (
        build(tmp_path / "plain", tmp_path / "assets") / "shared" / "usage" / "bundled_prices.py"
    ).exists()
    prices.write_text('[models."gpt-realtime"]\noutput_txt = 99.0\n')
    with pytest.raises(PricesError, match="output_txt"):
        build(tmp_path / "bad", tmp_path / "assets", prices_file=str(prices))


def test_the_server_will_not_start_on_a_bad_prices_file_or_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from standalone.cli import main

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."x"]\ninput_text = -1\n')
    monkeypatch.setenv("PRICES_FILE", str(prices))
    monkeypatch.setenv("USAGE_DB", "")
    assert main(["serve", "--port", "0"]) == 2
    assert f"PRICES_FILE {prices}: " in capsys.readouterr().err
    monkeypatch.delenv("PRICES_FILE")
    monkeypatch.setenv("USAGE_DB", str(tmp_path / "missing" / "usage.sqlite3"))
    assert main(["serve", "--port", "0"]) == 2
    assert "USAGE_DB " in capsys.readouterr().err


def test_a_live_session_is_priced_as_the_model_its_session_start_names() -> None:
    """GPT-Live's URL names no model: the record takes the one ``session.start`` names."""
    settings = settings_of(AUTH_MODE="both")
    headers = {"authorization": "Bearer sk-usage-unit-client-key"}
    plan = plan_session("/v1/live/sessions", "", headers, settings, WALL)
    assert isinstance(plan, SessionPlan)
    assert plan.model == ""
    meter = start_meter(plan, settings, T0, WALL, PriceTable())
    relay = Relay(plan, settings, T0, LimitCounters(), meter)
    relay.client_connected(T0)
    relay.upstream_connected(T0 + 0.25)
    start = json.dumps({"type": "session.start", "session": {"model": "gpt-live-1"}})
    assert relay.client_text(start, T0 + 0.3) == [SendToUpstream(start)]
    relay.upstream_frame(event("session.usage.updated", usage={"seconds": 90}), T0 + 90)
    record = meter.record()
    assert (record.model, record.endpoint, record.live_seconds) == ("gpt-live-1", "live", 90.0)
    assert record.cost_usd == pytest.approx(0.075)
