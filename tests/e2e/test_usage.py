"""Accounting on real gateway processes, both runtimes: the ledger, the log line, ``realtime-gateway
usage``, ``GET /metrics`` and budgets hold exactly the numbers the fake provider and the test made.

The fake provider's every ``response.done`` carries the same known usage (``USAGE``), and its
``live-usage-<seconds>`` model reports GPT-Live seconds; the test knows the audio it sends and the
audio the fake sends back. The standalone server's ledger is its SQLite file; the Worker's is a D1
database, which the local Worker host keeps in a SQLite file with the same schema, so both are read
the same way, and ``realtime-gateway usage`` reads either. Each test has its own token subject.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from conftest import OPERATOR_KEY
from prometheus_client.parser import text_string_to_metric_families
from support.fake_upstream import AUDIO_CHUNK, USAGE, FakeUpstream
from support.gateway_process import ROOT, GatewayProcess, start_gateway

from shared.tokens import verify
from shared.usage.audio import decoded_size
from shared.usage.counts import TokenCounts
from shared.usage.prices import SHIPPED_PRICES
from shared.usage.sink import METRICS

SECRET = "e2e-usage-secret-0123456789abcdef-abcdef"
ADMIN_KEY = "e2e-usage-admin-key-5150"
DAY_BUDGET = 1.0
# budget-model: only output text is priced, $10,000 per million, so each of the fake's responses
# (21 output text tokens) costs $0.21. live-usage-30: $0.05 a minute.
PRICES = """
[models."budget-model"]
output_text = 10000.0
input_text = 0.0
input_cached_text = 0.0
input_audio = 0.0
input_cached_audio = 0.0
input_image = 0.0
input_cached_image = 0.0
output_audio = 0.0

[models."live-usage-30"]
live_per_minute = 0.05

[models."drop"]
output_text = 1.0
"""
BUDGET_RESPONSE_COST = 0.21
SILENCE_100_MS = base64.b64encode(bytes(4800)).decode()  # PCM16 at 24 kHz
COUNTS = TokenCounts.from_usage(USAGE)
REALTIME_RESPONSE_COST = SHIPPED_PRICES["gpt-realtime"].response_cost(COUNTS)
DELTA_BYTES = len(base64.b64decode(AUDIO_CHUNK))


@dataclass
class UsageGateway:
    process: GatewayProcess
    ledger: Path  # the standalone server's USAGE_DB, or the Worker's D1 database file

    @property
    def runtime(self) -> str:
        return self.process.runtime

    def mint(self, **body: Any) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.process.port}/v1/tokens",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["token"]

    def subject(self, name: str) -> str:
        return f"{name}-{self.runtime}-{uuid.uuid4().hex[:8]}"

    def rows(self, subject: str) -> list[dict[str, Any]]:
        return ledger_rows(self.ledger, "SELECT * FROM usage_sessions WHERE subject = ?", (subject,))

    def final_row(self, subject: str, timeout: float = 15.0) -> dict[str, Any]:
        """The subject's one session, once its final row is written."""
        [row] = self.final_rows(subject, 1, timeout)
        return row

    def final_rows(self, subject: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The subject's ``count`` sessions, once their final rows are written (the ledger's writer
        thread writes them after the client has seen the close)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows(subject)
            if len(rows) >= count and all(row["final"] for row in rows):
                return rows
            time.sleep(0.05)
        raise AssertionError(
            f"no {count} final ledger rows for {subject} within {timeout} s: {self.rows(subject)}"
        )

    def log_line(self, session_id: str) -> dict[str, Any]:
        for line in self.process.log().splitlines():
            if line.startswith("{") and session_id in line:
                fields = json.loads(line)
                if fields.get("message") == "session usage":
                    return fields
        raise AssertionError(f"no usage log line for {session_id}")


def ledger_rows(path: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(sql, parameters)]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        connection.close()


@pytest.fixture(scope="module")
def usage_gateway(
    runtime: str, fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UsageGateway]:
    directory = tmp_path_factory.mktemp(f"{runtime}-usage")
    prices = directory / "prices.toml"
    prices.write_text(PRICES)
    ledger = directory / ("usage.sqlite3" if runtime == "standalone" else "d1-usage.sqlite3")
    env = {
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_ADMIN_KEY": ADMIN_KEY,
        "AUTH_MODE": "both",
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
        "PRICES_FILE": str(prices),
        "LOG_FORMAT": "json",
        "USAGE_CHECKPOINT_SECONDS": "1",
        "BUDGET_USD_PER_SUBJECT_PER_DAY": str(DAY_BUDGET),
    }
    if runtime == "standalone":
        env["USAGE_DB"] = str(ledger)
    process = start_gateway(
        runtime, env, directory / "gateway.log", d1={"USAGE_DB": ledger} if runtime == "worker" else None
    )
    yield UsageGateway(process, ledger)
    process.stop()


@dataclass
class Client:
    """A client that keeps every frame it sent and got, to check the gateway's counts against."""

    socket: websockets.ClientConnection
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)

    async def send(self, event: dict[str, Any]) -> None:
        frame = json.dumps(event)
        self.sent.append(frame)
        await self.socket.send(frame)

    async def until(self, kind: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Events up to and including the next one of type ``kind``."""
        events = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.socket.recv()
                assert isinstance(frame, str)
                self.received.append(frame)
                events.append(json.loads(frame))
                if events[-1]["type"] == kind:
                    return events

    async def closed(self) -> int | None:
        """Read to the close; its code."""
        try:
            async with asyncio.timeout(10):
                while True:
                    frame = await self.socket.recv()
                    self.received.append(frame if isinstance(frame, str) else "")
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


async def connect(gateway: UsageGateway, token: str, **query: str) -> Client:
    socket = await websockets.connect(
        gateway.process.url(**query), additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
    )
    return Client(socket)


def frame_bytes(frames: list[str]) -> int:
    return sum(len(frame.encode()) for frame in frames)


def scrape(gateway: UsageGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics, read with prometheus-client's own parser."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.process.port}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def moved(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


# -- the numbers -------------------------------------------------------------------------------------------


@pytest.mark.deps
async def test_a_session_with_known_usage_is_in_the_ledger_the_log_the_report_and_the_metrics(
    usage_gateway: UsageGateway,
) -> None:
    gateway = usage_gateway
    standalone = gateway.runtime == "standalone"
    before = scrape(gateway) if standalone else {}
    subject = gateway.subject("known")
    client = await connect(gateway, gateway.mint(subject=subject), model="gpt-realtime")
    await client.until("session.created")
    for _ in range(3):  # 0.3 s of audio in
        await client.send({"type": "input_audio_buffer.append", "audio": SILENCE_100_MS})
    await client.send({"type": "input_audio_buffer.commit"})
    await client.until("conversation.item.done")
    await client.send({"type": "response.create"})  # a spoken reply: three deltas of DELTA_BYTES
    spoken = await client.until("response.done")
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    await client.until("response.done")
    await client.socket.close(1000, "done")
    row = gateway.final_row(subject)

    deltas = [event["delta"] for event in spoken if event["type"] == "response.output_audio.delta"]
    assert len(deltas) == 3
    assert row["output_audio_seconds"] == round(3 * DELTA_BYTES / 48000, 3)
    assert row["input_audio_seconds"] == 0.3
    assert (row["responses"], row["input_text_tokens"], row["input_audio_tokens"]) == (2, 240, 460)
    assert (row["input_image_tokens"], row["input_cached_tokens"]) == (14, 128)
    assert (row["output_text_tokens"], row["output_audio_tokens"]) == (42, 240)
    assert row["cost_usd"] == pytest.approx(2 * REALTIME_RESPONSE_COST, abs=1e-9)
    assert (row["client_frames"], row["client_bytes"]) == (len(client.sent), frame_bytes(client.sent))
    assert (row["provider_frames"], row["provider_bytes"]) == (
        len(client.received),
        frame_bytes(client.received),
    )
    assert (row["closed_by"], row["close_code"], row["outcome"], row["error_codes"]) == (
        "client",
        1000,
        "client_closed",
        "{}",
    )
    assert (row["provider"], row["model"], row["endpoint"], row["provider_session_id"]) == (
        "openai",
        "gpt-realtime",
        "realtime",
        "sess_fake",
    )
    assert row["ended_at"] > row["started_at"]
    assert 0 < row["duration_seconds"] < 30
    assert 0 < row["upstream_connect_seconds"] < 2
    responses = ledger_rows(
        gateway.ledger,
        "SELECT * FROM usage_responses WHERE session_id = ? ORDER BY seq",
        (row["session_id"],),
    )
    assert [(response["seq"], response["status"]) for response in responses] == [
        (1, "completed"),
        (2, "completed"),
    ]
    for response in responses:
        assert 0 <= response["first_delta_seconds"] <= response["done_seconds"] < 10
        assert response["output_audio_tokens"] == 120
        assert response["cost_usd"] == pytest.approx(REALTIME_RESPONSE_COST, abs=1e-9)

    line = gateway.log_line(row["session_id"])
    for name, value in row.items():
        expected = json.loads(value) if name == "error_codes" else bool(value) if name == "final" else value
        assert line[name] == expected, name

    report = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "standalone.cli",
            "usage",
            "--db",
            str(gateway.ledger),
            "--by",
            "subject",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    [summary] = [item for item in json.loads(report.stdout) if item["subject"] == subject]
    assert summary == {
        "subject": subject,
        "sessions": 1,
        "duration_seconds": row["duration_seconds"],
        "input_text_tokens": 240,
        "input_audio_tokens": 460,
        "input_cached_tokens": 128,
        "output_text_tokens": 42,
        "output_audio_tokens": 240,
        "input_audio_seconds": 0.3,
        "output_audio_seconds": row["output_audio_seconds"],
        "live_seconds": None,
        "cost_usd": pytest.approx(2 * REALTIME_RESPONSE_COST, abs=1e-9),
    }

    if standalone:  # GET /metrics is the standalone server's
        after = scrape(gateway)
        tokens = {"provider": "openai", "model": "gpt-realtime"}
        for kind, count in (
            ("input_text", 240),
            ("input_audio", 460),
            ("input_cached", 128),
            ("output_text", 42),
            ("output_audio", 240),
        ):
            assert moved(before, after, "realtime_gateway_tokens_total", kind=kind, **tokens) == count, kind
        cost = moved(before, after, "realtime_gateway_cost_usd_total", **tokens)
        assert cost == pytest.approx(2 * REALTIME_RESPONSE_COST, abs=1e-9)
        ended = {"provider": "openai", "endpoint": "realtime", "outcome": "client_closed"}
        assert moved(before, after, "realtime_gateway_sessions_total", **ended) == 1
        assert moved(before, after, "realtime_gateway_frames_total", direction="from_client") == len(
            client.sent
        )
        assert moved(before, after, "realtime_gateway_frames_total", direction="from_provider") == len(
            client.received
        )
        assert moved(before, after, "realtime_gateway_bytes_total", direction="from_provider") == frame_bytes(
            client.received
        )
        assert moved(before, after, "realtime_gateway_response_first_audio_seconds_count") == 1
        assert moved(before, after, "realtime_gateway_upstream_connect_seconds_count") == 1
        assert after[("realtime_gateway_sessions_active", ())] == 0


async def test_the_simulators_usage_is_what_its_events_said(usage_gateway: UsageGateway) -> None:
    gateway = usage_gateway
    subject = gateway.subject("simulator")
    client = await connect(gateway, gateway.mint(subject=subject), provider="simulator", model="gpt-realtime")
    await client.until("session.created")
    for _ in range(10):  # 1 s of audio in
        await client.send({"type": "input_audio_buffer.append", "audio": SILENCE_100_MS})
    await client.send({"type": "input_audio_buffer.commit"})
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    await client.socket.close(1000)
    row = gateway.final_row(subject)
    counts = TokenCounts.from_usage(events[-1]["response"]["usage"])
    assert (row["input_audio_tokens"], row["output_audio_tokens"]) == (
        counts.input_audio,
        counts.output_audio,
    )
    assert row["output_audio_tokens"] > 0
    assert (row["input_text_tokens"], row["output_text_tokens"]) == (counts.input_text, counts.output_text)
    assert row["cost_usd"] == pytest.approx(SHIPPED_PRICES["gpt-realtime"].response_cost(counts), abs=1e-9)
    out = sum(
        decoded_size(event["delta"]) for event in events if event["type"] == "response.output_audio.delta"
    )
    assert row["output_audio_seconds"] == round(out / 48000, 3) > 0
    assert row["input_audio_seconds"] == 1.0
    assert (row["provider"], row["provider_frames"]) == ("simulator", len(client.received))


async def test_live_seconds_are_the_last_cumulative_usage_and_priced_per_minute(
    usage_gateway: UsageGateway,
) -> None:
    gateway = usage_gateway
    subject = gateway.subject("live")
    client = await connect(gateway, gateway.mint(subject=subject), model="live-usage-30")
    await client.until("session.created")
    for seconds in (30, 60):
        await client.send({"type": "response.create"})
        [update] = await client.until("session.usage.updated")
        assert update["usage"] == {"seconds": seconds}
    await client.socket.close(1000)
    row = gateway.final_row(subject)
    assert (row["live_seconds"], row["responses"]) == (60.0, 0)
    assert row["cost_usd"] == pytest.approx(0.05)


async def test_a_provider_fault_still_gets_the_sessions_row(usage_gateway: UsageGateway) -> None:
    gateway = usage_gateway
    subject = gateway.subject("fault")
    client = await connect(gateway, gateway.mint(subject=subject), model="drop")
    await client.until("session.created")
    [error] = await client.until("error")
    assert error["error"]["code"] == "upstream_connection_lost"
    assert await client.closed() == 1014
    row = gateway.final_row(subject)
    assert (row["closed_by"], row["close_code"], row["outcome"]) == (
        "gateway",
        1014,
        "upstream_connection_lost",
    )
    assert json.loads(row["error_codes"]) == {"upstream_connection_lost": 1}


async def test_an_open_session_is_checkpointed_then_its_final_row_replaces_it(
    usage_gateway: UsageGateway,
) -> None:
    gateway = usage_gateway
    subject = gateway.subject("checkpoint")
    client = await connect(gateway, gateway.mint(subject=subject), model="gpt-realtime")
    await client.until("session.created")
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    await client.until("response.done")
    deadline = time.monotonic() + 10  # USAGE_CHECKPOINT_SECONDS is 1
    while not [row for row in gateway.rows(subject) if row["responses"] == 1]:
        assert time.monotonic() < deadline, "no checkpoint"
        await asyncio.sleep(0.05)
    [checkpoint] = gateway.rows(subject)
    assert (checkpoint["final"], checkpoint["ended_at"], checkpoint["outcome"]) == (0, None, None)
    assert checkpoint["cost_usd"] == pytest.approx(REALTIME_RESPONSE_COST, abs=1e-9)
    await client.socket.close(1000)
    row = gateway.final_row(subject)
    assert (row["session_id"], row["responses"], row["outcome"]) == (
        checkpoint["session_id"],
        1,
        "client_closed",
    )


# -- budgets -----------------------------------------------------------------------------------------------


async def text_reply(client: Client) -> list[dict[str, Any]]:
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    return await client.until("response.done")


async def test_a_tokens_budget_warns_at_80_percent_and_ends_the_session_after_the_response_over_it(
    usage_gateway: UsageGateway, fake_upstream: FakeUpstream
) -> None:
    gateway = usage_gateway
    before = scrape(gateway) if gateway.runtime == "standalone" else {}
    subject = gateway.subject("capped")
    mark = fake_upstream.mark()
    client = await connect(gateway, gateway.mint(subject=subject, max_cost_usd=0.5), model="budget-model")
    await client.until("session.created")
    upstream = fake_upstream.connection_after(mark)
    await text_reply(client)  # $0.21
    await text_reply(client)  # $0.42: 84 %
    [warning] = await client.until("error")
    assert (warning["error"]["code"], warning["error"]["event_id"]) == ("budget_warning", None)
    assert "$0.42" in warning["error"]["message"]
    events = await text_reply(client)  # $0.63: over
    assert [event["type"] for event in events].count("response.output_text.delta") == 3  # delivered whole
    [exceeded] = await client.until("error")
    assert exceeded["error"]["code"] == "budget_exceeded"
    assert await client.closed() == 1008
    assert upstream.closed.wait(10)
    assert upstream.close_code == 1001
    row = gateway.final_row(subject)
    assert (row["outcome"], row["close_code"], row["max_cost_usd"]) == ("budget_exceeded", 1008, 0.5)
    assert row["cost_usd"] == pytest.approx(3 * BUDGET_RESPONSE_COST)
    assert json.loads(row["error_codes"]) == {"budget_exceeded": 1}
    if gateway.runtime == "standalone":
        assert (
            moved(before, scrape(gateway), "realtime_gateway_limit_hits_total", limit="budget_exceeded") == 1
        )


async def test_a_subject_over_its_days_budget_is_cut_then_refused_at_connect(
    usage_gateway: UsageGateway, fake_upstream: FakeUpstream
) -> None:
    gateway = usage_gateway
    subject = gateway.subject("daily")
    client = await connect(gateway, gateway.mint(subject=subject), model="budget-model")
    await client.until("session.created")
    for _ in range(3):  # $0.63
        await text_reply(client)
    await text_reply(client)  # $0.84 of $1.00
    [warning] = await client.until("error")
    assert warning["error"]["code"] == "budget_warning"
    await text_reply(client)  # $1.05
    [exceeded] = await client.until("error")
    assert exceeded["error"]["code"] == "budget_exceeded"
    assert "daily" in exceeded["error"]["message"]
    assert await client.closed() == 1008
    assert gateway.final_row(subject)["cost_usd"] == pytest.approx(5 * BUDGET_RESPONSE_COST)

    mark = fake_upstream.mark()
    again = await connect(gateway, gateway.mint(subject=subject), model="budget-model")
    [refused] = await again.until("error")
    assert refused["error"]["code"] == "budget_exceeded"
    assert "$1.05" in refused["error"]["message"]
    assert await again.closed() == 1008
    assert fake_upstream.mark() == mark  # no provider connection for it
    rows = gateway.final_rows(subject, 2)
    assert sorted(row["outcome"] for row in rows) == ["budget_exceeded", "budget_exceeded"]


# -- the standalone server: /metrics, SIGTERM, the CLI -------------------------------------------------------


@pytest.mark.deps
def test_metrics_need_the_admin_key_and_parse_with_prometheus_clients_parser(
    usage_gateway: UsageGateway,
) -> None:
    if usage_gateway.runtime != "standalone":
        pytest.skip("GET /metrics is the standalone server's")
    url = f"http://127.0.0.1:{usage_gateway.process.port}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
        assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = {family.name: family for family in text_string_to_metric_families(answer.read().decode())}
    for name, kind, labels, _ in METRICS:
        family = families[name.removesuffix("_total")]
        assert family.type == kind, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(labels), name
    assert "subject" not in json.dumps([family.samples for family in families.values()], default=str)


async def test_a_session_ended_by_sigterm_has_its_final_row(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    ledger = tmp_path / "usage.sqlite3"
    env = {
        "OPENAI_REALTIME_URL": fake_upstream.url,
        "OPENAI_API_KEY": OPERATOR_KEY,
        "GATEWAY_SECRET": SECRET,
        "AUTH_MODE": "both",
        "USAGE_DB": str(ledger),
        "SHUTDOWN_TIMEOUT_SECONDS": "3",
    }
    process = start_gateway("standalone", env, tmp_path / "gateway.log")
    try:
        from shared.tokens import mint

        token = mint(SECRET, subject="sigterm", now=time.time(), ttl_seconds=600)
        socket = await websockets.connect(
            process.url(model="gpt-realtime"), additional_headers={"Authorization": f"Bearer {token}"}
        )
        client = Client(socket)
        await client.until("session.created")
        await text_reply(client)
        process.process.send_signal(signal.SIGTERM)
        [error] = await client.until("error")
        assert error["error"]["code"] == "server_shutting_down"
        assert await client.closed() == 1001
        assert await asyncio.to_thread(process.process.wait, 10) == 0
    finally:
        if process.process.poll() is None:
            process.stop()
    [row] = ledger_rows(ledger, "SELECT * FROM usage_sessions WHERE subject = 'sigterm'")
    assert (row["final"], row["outcome"], row["close_code"], row["responses"]) == (
        1,
        "server_shutting_down",
        1001,
        1,
    )
    assert row["cost_usd"] == pytest.approx(REALTIME_RESPONSE_COST, abs=1e-9)


async def test_the_usage_line_is_text_or_json_by_log_format_and_always_json_on_the_worker(
    gateway: GatewayProcess,
) -> None:
    """The default gateways log text (LOG_FORMAT unset): the Worker's usage line is JSON all the same."""
    model = f"usage-line-{uuid.uuid4().hex[:8]}"
    async with websockets.connect(gateway.url(model=model)) as socket:
        client = Client(socket)
        await client.until("session.created")
    deadline = time.monotonic() + 10
    while not (lines := [line for line in gateway.log().splitlines() if f'"model":"{model}"' in line]):
        assert time.monotonic() < deadline, "no usage line"
        await asyncio.sleep(0.05)
    [line] = lines
    if gateway.runtime == "worker":
        fields = json.loads(line)
        assert (fields["message"], fields["logger"], fields["level"]) == (
            "session usage",
            "realtime_gateway.usage",
            "INFO",
        )
    else:
        prefix, _, fields_text = line.partition(" session usage ")
        assert prefix.endswith("INFO realtime_gateway.usage")
        fields = json.loads(fields_text)
    assert (fields["model"], fields["outcome"], fields["subject"]) == (model, "client_closed", None)


def test_the_token_command_mints_a_token_with_a_cost_budget() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "standalone.cli", "token", "--subject", "cli", "--max-cost-usd", "0.5"],
        cwd=ROOT,
        env={"GATEWAY_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    claims = verify(result.stdout.strip(), SECRET, time.time())
    assert (claims.subject, claims.max_cost_usd) == ("cli", 0.5)
