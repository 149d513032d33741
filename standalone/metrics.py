"""``GET /metrics``: the standalone server's Prometheus metrics, with prometheus-client.

The relay reports its moments (:class:`shared.usage.sink.UsageSink`) to :class:`PrometheusSink`,
which keeps the counters and histograms. What changes with every frame is not pushed at all: the
frame and byte counts, the open sessions and the limit hits are read when the endpoint is scraped,
from the open sessions' meters (plus what ended sessions left) and the limit counters, so the hot
path pays nothing for them. :data:`shared.usage.sink.METRICS` lists every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from shared.config import PROVIDER_NAMES
from shared.limits import LIMIT_COUNTERS, LimitCounters
from shared.usage.counts import TokenCounts
from shared.usage.meter import UsageMeter
from shared.usage.record import UsageRecord
from shared.usage.sink import DIRECTIONS, METRICS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HELP = {name: text for name, _, _, text in METRICS}
# Seconds: the provider handshake (a few ms on a LAN, ~100 ms across an ocean), and a first audio
# (OpenAI's is 300-800 ms after the end of speech).
CONNECT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FIRST_AUDIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


# The *_created series (when each counter started) add a line per label set and nothing to read.
disable_created_metrics()


def _provider(name: str) -> str:
    return name if name in PROVIDER_NAMES else "unknown"


class PrometheusSink:
    """The metrics of one server, in their own registry."""

    def __init__(
        self, open_meters: Callable[[], Iterable[UsageMeter]], counters: LimitCounters = LIMIT_COUNTERS
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._sessions = Counter(
            "realtime_gateway_sessions",
            _HELP["realtime_gateway_sessions_total"],
            ("provider", "endpoint", "outcome"),
            registry=registry,
        )
        self._connect = Histogram(
            "realtime_gateway_upstream_connect_seconds",
            _HELP["realtime_gateway_upstream_connect_seconds"],
            buckets=CONNECT_BUCKETS,
            registry=registry,
        )
        self._first_audio = Histogram(
            "realtime_gateway_response_first_audio_seconds",
            _HELP["realtime_gateway_response_first_audio_seconds"],
            buckets=FIRST_AUDIO_BUCKETS,
            registry=registry,
        )
        self._tokens = Counter(
            "realtime_gateway_tokens",
            _HELP["realtime_gateway_tokens_total"],
            ("provider", "model", "kind"),
            registry=registry,
        )
        self._cost = Counter(
            "realtime_gateway_cost_usd",
            _HELP["realtime_gateway_cost_usd_total"],
            ("provider", "model"),
            registry=registry,
        )
        self._errors = Counter(
            "realtime_gateway_errors", _HELP["realtime_gateway_errors_total"], ("code",), registry=registry
        )
        self._live = _LiveFigures(open_meters, counters)
        registry.register(self._live)

    def render(self) -> bytes:
        """The text exposition format, as Prometheus scrapes it."""
        return generate_latest(self.registry)

    # -- shared.usage.sink.UsageSink -------------------------------------------------------------------

    def upstream_connected(self, seconds: float) -> None:
        self._connect.observe(seconds)

    def first_audio(self, seconds: float) -> None:
        self._first_audio.observe(seconds)

    def tokens(self, provider: str, model: str, counts: TokenCounts) -> None:
        for kind, count in (
            ("input_text", counts.input_text),
            ("input_audio", counts.input_audio),
            ("input_cached", counts.input_cached),
            ("output_text", counts.output_text),
            ("output_audio", counts.output_audio),
        ):
            if count:
                self._tokens.labels(provider, model, kind).inc(count)

    def cost(self, provider: str, model: str, usd: float) -> None:
        self._cost.labels(provider, model).inc(usd)

    def error(self, code: str) -> None:
        self._errors.labels(code).inc()

    def session_ended(self, record: UsageRecord) -> None:
        self._sessions.labels(_provider(record.provider), record.endpoint, record.outcome or "unknown").inc()
        self._live.ended(record)


class _LiveFigures(Collector):
    """What is read at scrape time: open sessions, frames and bytes, limit hits."""

    def __init__(self, open_meters: Callable[[], Iterable[UsageMeter]], counters: LimitCounters) -> None:
        self._open_meters = open_meters
        self._counters = counters
        # Frames and bytes of the sessions that ended: (from_client, from_provider).
        self._frames = [0, 0]
        self._bytes = [0, 0]

    def ended(self, record: UsageRecord) -> None:
        self._frames[0] += record.client_frames
        self._frames[1] += record.provider_frames
        self._bytes[0] += record.client_bytes
        self._bytes[1] += record.provider_bytes

    def collect(self) -> Iterator[Metric]:
        frames, data, active = list(self._frames), list(self._bytes), 0
        for meter in self._open_meters():
            if meter.finished:  # counted in the totals already
                continue
            active += 1
            frames[0] += meter.client_frames
            frames[1] += meter.provider_frames
            data[0] += meter.client_bytes
            data[1] += meter.provider_bytes
        yield GaugeMetricFamily(
            "realtime_gateway_sessions_active", _HELP["realtime_gateway_sessions_active"], value=active
        )
        for name, values in (("realtime_gateway_frames", frames), ("realtime_gateway_bytes", data)):
            family = CounterMetricFamily(name, _HELP[f"{name}_total"], labels=("direction",))
            for direction, value in zip(DIRECTIONS, values, strict=True):
                family.add_metric((direction,), value)
            yield family
        hits = CounterMetricFamily(
            "realtime_gateway_limit_hits", _HELP["realtime_gateway_limit_hits_total"], labels=("limit",)
        )
        for reason, total in sorted(self._counters.totals().items()):
            hits.add_metric((reason,), total)
        yield hits
