"""Where the relay reports the moments metrics are made of, as they happen.

The relay calls a :class:`UsageSink` at the few moments that carry numbers (the provider handshake
done, the first audio of a response, a ``response.done``, a Live usage update, an error sent, a session
ended), never per frame. The standalone server's sink feeds Prometheus (``standalone/metrics.py``);
the default one does nothing. Frame and byte counts are not reported here: the relay keeps them on
its meter, which a metrics collector reads when it is scraped.

:data:`METRICS` names every metric ``GET /metrics`` serves, for the docs and their test. Labels stay
bounded: providers and endpoints are the gateway's own names, models are those of the price table
(any other is ``other``), codes and limits are the gateway's; no subject or session id is a label.
"""

from __future__ import annotations

from typing import Protocol

from .counts import TokenCounts
from .record import UsageRecord

TOKEN_KINDS: tuple[str, ...] = ("input_text", "input_audio", "input_cached", "output_text", "output_audio")
DIRECTIONS: tuple[str, ...] = ("from_client", "from_provider")
OTHER_MODEL = "other"  # the model label of a model the price table does not name

# (name, type, labels, help): the metrics of GET /metrics, as prometheus-client exposes them.
METRICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("realtime_gateway_sessions_active", "gauge", (), "Sessions open now."),
    (
        "realtime_gateway_sessions_total",
        "counter",
        ("provider", "endpoint", "outcome"),
        "Sessions ended, by how: client_closed, provider_closed, or the gateway error code that ended it.",
    ),
    (
        "realtime_gateway_upstream_connect_seconds",
        "histogram",
        (),
        "From the client's upgrade to the provider's WebSocket handshake completing.",
    ),
    (
        "realtime_gateway_response_first_audio_seconds",
        "histogram",
        (),
        "From response.create (or the commit, or the provider's VAD stop) to the response's first audio.",
    ),
    (
        "realtime_gateway_frames_total",
        "counter",
        ("direction",),
        "WebSocket messages received, from_client or from_provider.",
    ),
    (
        "realtime_gateway_bytes_total",
        "counter",
        ("direction",),
        "Payload bytes of the WebSocket messages received, from_client or from_provider.",
    ),
    (
        "realtime_gateway_tokens_total",
        "counter",
        ("provider", "model", "kind"),
        "Tokens of response.done usage, by kind: input_text (cached included), input_audio, "
        "input_cached, output_text, output_audio.",
    ),
    (
        "realtime_gateway_cost_usd_total",
        "counter",
        ("provider", "model"),
        "Cost in USD, from the price table.",
    ),
    ("realtime_gateway_errors_total", "counter", ("code",), "Error events the gateway sent its clients."),
    (
        "realtime_gateway_limit_hits_total",
        "counter",
        ("limit",),
        "Sessions refused or ended by a limit (the reasons of shared/limits.py, and budget_exceeded).",
    ),
)


class UsageSink(Protocol):
    """What a metrics backend is told; every call is cheap and never raises."""

    def upstream_connected(self, seconds: float) -> None: ...

    def first_audio(self, seconds: float) -> None: ...

    def tokens(self, provider: str, model: str, counts: TokenCounts) -> None: ...

    def cost(self, provider: str, model: str, usd: float) -> None: ...

    def error(self, code: str) -> None: ...

    def session_ended(self, record: UsageRecord) -> None: ...


class NullSink:
    """Reports nowhere (the Worker, and tests that do not look)."""

    def upstream_connected(self, seconds: float) -> None:
        pass

    def first_audio(self, seconds: float) -> None:
        pass

    def tokens(self, provider: str, model: str, counts: TokenCounts) -> None:
        pass

    def cost(self, provider: str, model: str, usd: float) -> None:
        pass

    def error(self, code: str) -> None:
        pass

    def session_ended(self, record: UsageRecord) -> None:
        pass


NULL_SINK = NullSink()
