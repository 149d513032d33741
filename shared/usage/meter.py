"""The meter of one session: what the relay counts as frames pass, and the few events it reads for numbers.

The relay already parses every client event (its inbound checks), so the meter looks at the parsed
event: audio appends (their base64 length gives the audio's size, nothing is decoded) and what asks
for a response (``response.create``, ``input_audio_buffer.commit``). Provider frames are relayed as
bytes and never parsed whole: the event type is read from the frame's first characters (providers
put ``"type"`` first), an audio delta is measured where its ``delta`` string starts and ends, and
only the events that carry numbers are parsed: ``session.created`` / ``session.updated`` (and
GPT-Live's ``session.started``) for the audio formats, ``response.created``, ``response.done`` for
its usage, GPT-Live's ``session.usage.updated`` / ``session.closed`` for their cumulative seconds.

Times are the relay's monotonic seconds; ``started_at`` (Unix seconds, from the adapter) dates them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..config import PROVIDER_NAMES, Settings
from ..handshake import SessionPlan
from .audio import PCM16_24K_BYTES_PER_SECOND, base64_size, session_formats
from .budget import Budget, BudgetEvent
from .counts import TokenCounts
from .prices import Price, PriceTable
from .record import ResponseRecord, UsageRecord, iso_utc
from .sink import NULL_SINK, OTHER_MODEL, UsageSink

# The event type of a provider frame: the first "type" key within its first characters. OpenAI's
# frames are compact JSON with the type first, read without the regular expression.
_TYPE = re.compile(r'"type"\s*:\s*"([^"\\]{1,64})"').search
TYPE_WINDOW = 160
_COMPACT_TYPE = '{"type":"'
_COMPACT_DELTA = '"delta":"'
# The hottest provider frame, as OpenAI sends it: compact, the type first, the delta last.
_OPENAI_AUDIO_DELTA = '{"type":"response.output_audio.delta",'

# Client events whose ``audio`` is input audio (realtime, GPT-Live, translations).
_APPENDS = frozenset(
    {"input_audio_buffer.append", "session.input_audio.append", "session.input_audio_buffer.append"}
)
# Client events that ask for a response: its latency is counted from the latest one.
_REQUESTS = frozenset({"response.create", "input_audio_buffer.commit"})


def usage_session_id() -> str:
    """The ledger's id of a session: ``gws_`` and 24 random hex digits."""
    return "gws_" + os.urandom(12).hex()


class _Response:
    """A response in flight: when it was asked for, whether its first output and first audio came."""

    __slots__ = ("first_delta", "heard", "requested", "response_id")

    def __init__(self, requested: float, response_id: str | None) -> None:
        self.requested = requested
        self.response_id = response_id
        self.first_delta: float | None = None
        self.heard = False  # its first audio delta came


class UsageMeter:
    """Counts one session's frames, bytes, audio, tokens and cost; builds its ledger records."""

    # Slots: one per open session, so it stays small (about a third of a dict-backed object).
    __slots__ = (
        "_in_bytes",
        "_in_rate",
        "_in_seconds",
        "_live_cost",
        "_model_label",
        "_new_responses",
        "_out_bytes",
        "_out_rate",
        "_out_seconds",
        "_prices",
        "_provider_label",
        "_request",
        "_response",
        "_sink",
        "_started_at",
        "_started_iso",
        "_t0",
        "_token_cost",
        "budget",
        "client_bytes",
        "client_frames",
        "close_code",
        "closed_by",
        "connect_seconds",
        "errors",
        "finished",
        "input_audio",
        "input_cached",
        "input_image",
        "input_text",
        "live_seconds",
        "now",
        "outcome",
        "output_audio",
        "output_text",
        "plan",
        "price",
        "provider_bytes",
        "provider_frames",
        "provider_session_id",
        "responses",
        "session_id",
    )

    def __init__(
        self,
        plan: SessionPlan,
        now: float,
        started_at: float,
        prices: PriceTable,
        *,
        budget: Budget | None = None,
        sink: UsageSink = NULL_SINK,
        session_id: str | None = None,
    ) -> None:
        self.session_id = session_id or usage_session_id()
        self.plan = plan
        self.now = now
        self._t0 = now
        self._started_at = started_at
        self._started_iso = iso_utc(started_at)  # the row's started_at, and its day
        self._prices = prices
        self.price: Price | None = prices.get(plan.model)
        self.budget = budget if budget is not None and budget.active else None
        self._sink = sink
        # Metric labels, bounded: a provider the gateway knows, a model the price table names.
        self._provider_label = plan.provider if plan.provider in PROVIDER_NAMES else "unknown"
        self._model_label = plan.model if self.price is not None else OTHER_MODEL
        self.client_frames = self.client_bytes = 0
        self.provider_frames = self.provider_bytes = 0
        # Audio: bytes in the current format, and seconds in earlier formats of the session.
        self._in_rate = self._out_rate = PCM16_24K_BYTES_PER_SECOND
        self._in_bytes = self._out_bytes = 0
        self._in_seconds = self._out_seconds = 0.0
        self.responses = 0
        self.input_text = self.input_audio = self.input_image = self.input_cached = 0
        self.output_text = self.output_audio = 0
        self._token_cost: float | None = 0.0 if self.price is not None else None
        self.live_seconds: float | None = None
        self._live_cost = 0.0
        self._request: float | None = None  # the latest ask for a response not yet created
        self._response: _Response | None = None
        self._new_responses: list[ResponseRecord] = []
        self.errors: dict[str, int] = {}
        self.connect_seconds: float | None = None
        self.provider_session_id: str | None = None
        # Set when the session ends: who closed it, with what code, and how (the metrics' outcome).
        self.closed_by: str | None = None
        self.close_code: int | None = None
        self.outcome: str | None = None
        self.finished = False

    # -- what the relay reports ------------------------------------------------------------------

    def client_frame(self, data: str | bytes, now: float) -> None:
        """A message from the client that the relay refused."""
        self.now = now
        self.client_frames += 1
        self.client_bytes += len(data) if type(data) is bytes or data.isascii() else _utf8_size(data)

    def client_event(self, data: str, event: dict[str, Any], now: float) -> None:
        """A client event the relay accepted (relayed, held, or given to the simulator), and its frame."""
        self.now = now
        self.client_frames += 1
        self.client_bytes += len(data) if data.isascii() else _utf8_size(data)
        kind = event.get("type")
        if kind in _APPENDS:
            audio = event.get("audio")
            if type(audio) is str and audio:
                size = len(audio)
                self._in_bytes += size * 3 // 4 - (audio[size - 1] == "=") - (audio[size - 2] == "=")
        elif kind in _REQUESTS:
            self._request = now
        elif kind == "session.start" and not self.plan.model:
            self._model_named(event)

    def provider_frame(self, data: str | bytes, now: float | None) -> bool:
        """A message from the provider (or the simulator); True when the session's cost may have moved."""
        if now is not None:
            self.now = now
        self.provider_frames += 1
        if type(data) is not str:
            self.provider_bytes += len(data)
            return False
        size = len(data)
        self.provider_bytes += size if data.isascii() else _utf8_size(data)
        if data.startswith(_OPENAI_AUDIO_DELTA) and data[size - 1] == "}" and data[size - 2] == '"':
            # The delta last: base64 holds no quote, so the last quote before the end opens it.
            start = data.rfind('"', 38, size - 2) + 1
            if data.startswith(_COMPACT_DELTA, start - 9):
                padding = (data[size - 3] == "=") + (data[size - 4] == "=")
                self._out_bytes += (size - 2 - start) * 3 // 4 - padding
                response = self._response
                if response is not None and not response.heard:
                    self._first_audio(response)
                return False
        if data.startswith(_COMPACT_TYPE):
            end = data.find('"', 9, TYPE_WINDOW)
            kind, at = data[9:end], end + 1
        else:
            match = _TYPE(data, 0, TYPE_WINDOW)
            if match is None:
                return False
            kind, at = match[1], match.end()
        handler = _PROVIDER_EVENTS.get(kind)
        return False if handler is None else handler(self, data, at)

    def provider_arrived(self, data: str | bytes, now: float | None) -> None:
        """A provider frame that is translated before the client sees it: counted here, its numbers
        read in what the client is sent (:meth:`client_view`)."""
        if now is not None:
            self.now = now
        self.provider_frames += 1
        if type(data) is not str:
            self.provider_bytes += len(data)
        else:
            self.provider_bytes += len(data) if data.isascii() else _utf8_size(data)

    def client_view(self, data: str | bytes) -> bool:
        """A translated provider event, as the client is sent it (OpenAI's shape): its numbers are
        read, nothing counted; True when the session's cost may have moved."""
        if type(data) is not str:
            return False
        if data.startswith(_COMPACT_TYPE):
            end = data.find('"', 9, TYPE_WINDOW)
            kind, at = data[9:end], end + 1
        else:
            match = _TYPE(data, 0, TYPE_WINDOW)
            if match is None:
                return False
            kind, at = match[1], match.end()
        handler = _PROVIDER_EVENTS.get(kind)
        return False if handler is None else handler(self, data, at)

    def _model_named(self, event: dict[str, Any]) -> None:
        """GPT-Live names its model in ``session.start``, not in the URL: price the session as it."""
        session = event.get("session")
        model = session.get("model") if isinstance(session, dict) else None
        if isinstance(model, str) and model:
            self.moved_to(replace(self.plan, model=model))

    def moved_to(self, plan: SessionPlan) -> None:
        """The session fell back to another provider before its first event: the record names it, and
        its model's price counts from now on."""
        self.plan = plan
        self.price = self._prices.get(plan.model)
        if self.price is None:
            self._token_cost = None
        elif self._token_cost is None:
            self._token_cost = 0.0
        self._provider_label = plan.provider if plan.provider in PROVIDER_NAMES else "unknown"
        self._model_label = plan.model if self.price is not None else OTHER_MODEL

    def connected(self, now: float) -> None:
        """The provider's WebSocket handshake completed."""
        self.now = now
        self.connect_seconds = now - self._t0
        self._sink.upstream_connected(self.connect_seconds)

    def error(self, code: str) -> None:
        """The gateway sent the client an error event with ``code``."""
        self.errors[code] = self.errors.get(code, 0) + 1
        self._sink.error(code)

    def budget_event(self) -> BudgetEvent | None:
        """What the budgets say about the cost now (None without a budget or a price)."""
        cost = self.cost_usd
        if self.budget is None or cost is None:
            return None
        return self.budget.check(cost)

    # -- the numbers ---------------------------------------------------------------------------------

    @property
    def cost_usd(self) -> float | None:
        if self._token_cost is None:
            return None
        return self._token_cost + self._live_cost

    @property
    def input_audio_seconds(self) -> float:
        return self._in_seconds + self._in_bytes / self._in_rate

    @property
    def output_audio_seconds(self) -> float:
        return self._out_seconds + self._out_bytes / self._out_rate

    def record(self, now: float | None = None) -> UsageRecord:
        """A checkpoint: the session so far (the responses done since the last record come with it)."""
        if now is not None:
            self.now = now
        return self._snapshot(final=False)

    def finish(
        self, closed_by: str, close_code: int | None, outcome: str, now: float | None = None
    ) -> UsageRecord:
        """The session ended: its final record, reported to the sink the first time (a later call
        gives the same ending again)."""
        if self.finished:
            return self._snapshot(final=True)
        if now is not None:
            self.now = now
        self.finished = True
        self.closed_by, self.close_code, self.outcome = closed_by, close_code, outcome
        self._response = None  # one cut off mid-response has no latency to report
        record = self._snapshot(final=True)
        self._sink.session_ended(record)
        return record

    def _snapshot(self, final: bool) -> UsageRecord:
        plan = self.plan
        duration = max(0.0, self.now - self._t0)
        cost = self.cost_usd
        responses, self._new_responses = tuple(self._new_responses), []
        return UsageRecord(
            session_id=self.session_id,
            subject=plan.subject,
            provider=plan.provider,
            model=plan.model,
            endpoint=plan.endpoint.name,
            client_protocol=plan.client_protocol,
            provider_protocol=plan.upstream_protocol,
            provider_session_id=self.provider_session_id,
            started_at=self._started_iso,
            ended_at=iso_utc(self._started_at + duration) if final else None,
            day=self._started_iso[:10],
            duration_seconds=round(duration, 3),
            closed_by=self.closed_by if final else None,
            close_code=self.close_code if final else None,
            outcome=self.outcome if final else None,
            error_codes=dict(self.errors),
            client_frames=self.client_frames,
            client_bytes=self.client_bytes,
            provider_frames=self.provider_frames,
            provider_bytes=self.provider_bytes,
            responses=self.responses,
            input_text_tokens=self.input_text,
            input_audio_tokens=self.input_audio,
            input_image_tokens=self.input_image,
            input_cached_tokens=self.input_cached,
            output_text_tokens=self.output_text,
            output_audio_tokens=self.output_audio,
            input_audio_seconds=round(self.input_audio_seconds, 3),
            output_audio_seconds=round(self.output_audio_seconds, 3),
            live_seconds=self.live_seconds,
            cost_usd=None if cost is None else round(cost, 9),
            max_cost_usd=plan.max_cost_usd,
            upstream_connect_seconds=None if self.connect_seconds is None else round(self.connect_seconds, 4),
            final=final,
            new_responses=responses,
        )

    # -- provider events (each returns whether the cost may have moved) -----------------------------

    def _audio_delta(self, data: str, at: int) -> bool:
        # Base64 holds no quote: the delta is what lies between the quotes after its key. OpenAI
        # sends it last, so it is found from the end; anywhere else, from the key.
        end = len(data) - 2
        start = data.rfind('"', at, end) + 1 if data.endswith('"}') else 0
        if not (start and data.startswith(_COMPACT_DELTA, start - 9)):
            key = data.find('"delta"', at)
            start = data.find('"', key + 7) + 1 if key >= 0 else 0
            end = data.find('"', start) if start else -1
        if end > 0:
            padding = (data[end - 1] == "=") + (data[end - 2] == "=")
            self._out_bytes += base64_size(end - start, padding)
        response = self._response
        if response is not None and not response.heard:
            self._first_audio(response)
        return False

    def _first_audio(self, response: _Response) -> None:
        response.heard = True
        if response.first_delta is None:
            response.first_delta = self.now
        self._sink.first_audio(self.now - response.requested)

    def _output_delta(self, data: str, at: int) -> bool:
        response = self._response
        if response is not None and response.first_delta is None:
            response.first_delta = self.now
        return False

    def _vad_stop(self, data: str, at: int) -> bool:
        self._request = self.now
        return False

    def _session(self, data: str, at: int) -> bool:
        event = _parse(data)
        session = event.get("session") if event is not None else None
        if not isinstance(session, dict):
            return False
        if isinstance(session.get("id"), str):
            self.provider_session_id = session["id"]
        in_rate, out_rate = session_formats(session)
        if in_rate is not None and in_rate != self._in_rate:
            self._in_seconds += self._in_bytes / self._in_rate
            self._in_bytes, self._in_rate = 0, in_rate
        if out_rate is not None and out_rate != self._out_rate:
            self._out_seconds += self._out_bytes / self._out_rate
            self._out_bytes, self._out_rate = 0, out_rate
        return False

    def _response_created(self, data: str, at: int) -> bool:
        event = _parse(data)
        response = event.get("response") if event is not None else None
        response_id = response.get("id") if isinstance(response, dict) else None
        requested = self._request if self._request is not None else self.now
        self._request = None
        self._response = _Response(requested, response_id if isinstance(response_id, str) else None)
        return False

    def _response_done(self, data: str, at: int) -> bool:
        event = _parse(data)
        response = event.get("response") if event is not None else None
        if not isinstance(response, dict):
            return False
        counts = TokenCounts.from_usage(response.get("usage"))
        cost = self.price.response_cost(counts) if self.price is not None else None
        self.responses += 1
        self.input_text += counts.input_text
        self.input_audio += counts.input_audio
        self.input_image += counts.input_image
        self.input_cached += counts.input_cached
        self.output_text += counts.output_text
        self.output_audio += counts.output_audio
        if cost is None:
            self._token_cost = None
        elif self._token_cost is not None:
            self._token_cost += cost
        in_flight, self._response = self._response, None
        if in_flight is None:  # no response.created seen: count from the latest ask
            in_flight = _Response(self._request if self._request is not None else self.now, None)
            self._request = None
        response_id = response.get("id")
        status = response.get("status")
        self._new_responses.append(
            ResponseRecord(
                session_id=self.session_id,
                seq=self.responses,
                response_id=response_id if isinstance(response_id, str) else in_flight.response_id,
                status=status if isinstance(status, str) else None,
                requested_at=iso_utc(self._started_at + (in_flight.requested - self._t0)),
                first_delta_seconds=None
                if in_flight.first_delta is None
                else round(in_flight.first_delta - in_flight.requested, 4),
                done_seconds=round(self.now - in_flight.requested, 4),
                input_text_tokens=counts.input_text,
                input_audio_tokens=counts.input_audio,
                input_image_tokens=counts.input_image,
                input_cached_tokens=counts.input_cached,
                output_text_tokens=counts.output_text,
                output_audio_tokens=counts.output_audio,
                cost_usd=None if cost is None else round(cost, 9),
            )
        )
        self._sink.tokens(self._provider_label, self._model_label, counts)
        if cost:
            self._sink.cost(self._provider_label, self._model_label, cost)
        return True

    def _live_usage(self, data: str, at: int) -> bool:
        event = _parse(data)
        usage = event.get("usage") if event is not None else None
        seconds = usage.get("seconds") if isinstance(usage, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return False
        assert isinstance(usage, dict)
        paused = usage.get("paused_seconds")
        paused = paused if isinstance(paused, int | float) and not isinstance(paused, bool) else 0
        self.live_seconds = float(seconds)  # cumulative: the last one is the session's
        if self.price is None:
            return False
        live_cost = self.price.live_cost(float(seconds), float(paused))
        if live_cost is None:
            return False
        moved, self._live_cost = live_cost - self._live_cost, live_cost
        if moved > 0:
            self._sink.cost(self._provider_label, self._model_label, moved)
        return True


_Handler = Callable[[UsageMeter, str, int], bool]
# The provider events the meter reads (in GA, beta and GPT-Live names).
_PROVIDER_EVENTS: dict[str, _Handler] = {
    "response.output_audio.delta": UsageMeter._audio_delta,
    "response.audio.delta": UsageMeter._audio_delta,  # beta
    "session.output_audio.delta": UsageMeter._audio_delta,  # GPT-Live, translations
    "response.output_text.delta": UsageMeter._output_delta,
    "response.text.delta": UsageMeter._output_delta,  # beta
    "response.output_audio_transcript.delta": UsageMeter._output_delta,
    "response.audio_transcript.delta": UsageMeter._output_delta,  # beta
    "response.function_call_arguments.delta": UsageMeter._output_delta,
    "input_audio_buffer.speech_stopped": UsageMeter._vad_stop,
    "session.created": UsageMeter._session,
    "session.updated": UsageMeter._session,
    "session.started": UsageMeter._session,  # GPT-Live
    "transcription_session.created": UsageMeter._session,  # beta
    "transcription_session.updated": UsageMeter._session,  # beta
    "response.created": UsageMeter._response_created,
    "response.done": UsageMeter._response_done,
    "session.usage.updated": UsageMeter._live_usage,  # GPT-Live
    "session.closed": UsageMeter._live_usage,  # GPT-Live: the final usage
}


def _parse(data: str) -> dict[str, Any] | None:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _utf8_size(text: str) -> int:
    return len(text.encode(errors="surrogatepass"))


def start_meter(
    plan: SessionPlan,
    settings: Settings,
    now: float,
    started_at: float,
    prices: PriceTable,
    *,
    spent_today: float = 0.0,
    sink: UsageSink = NULL_SINK,
) -> UsageMeter:
    """The meter of a session an adapter starts (``now`` monotonic, ``started_at`` Unix seconds), with
    the budgets its plan and settings give it; ``spent_today`` is its subject's spend in the ledger."""
    budget = Budget.of(plan, settings, spent_today)
    return UsageMeter(plan, now, started_at, prices, budget=budget, sink=sink)
