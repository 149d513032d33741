"""What the ledger keeps: a row per session (:class:`UsageRecord`) and per response (:class:`ResponseRecord`).

A record is a snapshot: the relay hands one to its adapter at each checkpoint (``final`` false, no
end yet) and a last one when the session ends; the adapter writes it by session id, so the final row
replaces the checkpoints. The per-session log line carries the same fields (:meth:`UsageRecord.fields`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime


def iso_utc(unix_seconds: float) -> str:
    """``2026-12-03T13:35:59.123Z``: sortable text, the form the ledger's time columns hold."""
    moment = datetime.fromtimestamp(unix_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One response: when it was asked for, how long its first output and its end took, what it used."""

    session_id: str
    seq: int  # 1 for the session's first response
    response_id: str | None
    status: str | None  # response.done's status: completed, cancelled, incomplete, failed
    requested_at: str  # ISO UTC: the client's response.create, commit, or the provider's VAD stop
    first_delta_seconds: float | None  # from requested_at to the first output delta (None: no output)
    done_seconds: float  # from requested_at to response.done
    input_text_tokens: int
    input_audio_tokens: int
    input_image_tokens: int
    input_cached_tokens: int
    output_text_tokens: int
    output_audio_tokens: int
    cost_usd: float | None  # None: the model has no price


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One session, as far as it has gone (``final`` false) or as it ended."""

    session_id: str
    subject: str | None  # the gateway token's subject; None without a token
    provider: str
    model: str  # what the provider was asked for, after MODEL_ALIASES
    endpoint: str  # realtime, live, translations, ...
    client_protocol: str
    provider_protocol: str
    provider_session_id: str | None  # the provider's own id (session.created)
    started_at: str  # ISO UTC
    ended_at: str | None  # ISO UTC; None while the session is open
    day: str  # the UTC date it started on: what BUDGET_USD_PER_SUBJECT_PER_DAY counts it in
    duration_seconds: float
    closed_by: str | None  # client, provider or gateway; None while open
    close_code: int | None  # the close code the client was sent or sent
    outcome: str | None  # client_closed, provider_closed, or the gateway error code that ended it
    error_codes: dict[str, int]  # the gateway's errors the client was sent, by code, with counts
    client_frames: int  # WebSocket messages from the client, and their payload bytes
    client_bytes: int
    provider_frames: int  # WebSocket messages from the provider (or the simulator)
    provider_bytes: int
    responses: int  # response.done events
    input_text_tokens: int  # sums over response.done usage; cached tokens included, as OpenAI reports
    input_audio_tokens: int
    input_image_tokens: int
    input_cached_tokens: int
    output_text_tokens: int
    output_audio_tokens: int
    input_audio_seconds: float  # measured from the audio appended, in the session's input format
    output_audio_seconds: float  # measured from the provider's audio deltas, in the output format
    live_seconds: float | None  # GPT-Live: the last cumulative session.usage.updated seconds
    cost_usd: float | None  # None: the model has no price (never guessed)
    max_cost_usd: float | None  # the gateway token's per-session budget
    upstream_connect_seconds: float | None  # from the upgrade to the provider's handshake completing
    final: bool
    new_responses: tuple[ResponseRecord, ...] = field(default=(), compare=False)  # since the last record

    def fields(self) -> dict[str, object]:
        """The ledger's fields (the log line's too), without the responses."""
        values = {name: getattr(self, name) for name in LEDGER_FIELDS}
        values["error_codes"] = dict(self.error_codes)
        return values

    def to_json(self) -> str:
        return json.dumps(self.fields(), separators=(",", ":"), ensure_ascii=False)


LEDGER_FIELDS: tuple[str, ...] = tuple(
    spec.name for spec in fields(UsageRecord) if spec.name not in ("new_responses",)
)
RESPONSE_FIELDS: tuple[str, ...] = tuple(spec.name for spec in fields(ResponseRecord))


def response_row(response: ResponseRecord) -> dict[str, object]:
    return asdict(response)
