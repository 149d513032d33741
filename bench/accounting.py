"""What accounting costs the relay per frame, in process: the hot frames through ``Relay`` with and
without a usage meter (``python -m bench.accounting``).

The hot frames are a client's ``input_audio_buffer.append`` (100 ms of PCM16 at 24 kHz) and a
provider's ``response.output_audio.delta`` (the same), relayed between an open client and an open
provider. Each is timed in CPU time (``time.process_time``: on a shared machine, the time spent
waiting for a core is not the relay's) over many calls, the two relays taking turns, best of several
rounds. ``--rounds`` and ``--number`` tune it.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import timeit
from collections.abc import Callable

from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.limits import LimitCounters
from shared.relay import Relay
from shared.usage.meter import start_meter
from shared.usage.prices import PriceTable

AUDIO = base64.b64encode(bytes(4800)).decode()
APPEND = json.dumps({"type": "input_audio_buffer.append", "event_id": "event_0123456789", "audio": AUDIO})
DELTA = json.dumps(
    {
        "type": "response.output_audio.delta",
        "event_id": "event_AbCdEfGh0123456789abcd",
        "response_id": "resp_0123456789abcdefghij",
        "item_id": "item_0123456789abcdefghij",
        "output_index": 0,
        "content_index": 0,
        "delta": AUDIO,
    },
    separators=(",", ":"),
)


def open_relay(metered: bool) -> Relay:
    settings = Settings.from_mapping({"OPENAI_API_KEY": "sk-bench", "IDLE_TIMEOUT_SECONDS": "0"})
    plan = plan_session("/v1/realtime", "model=gpt-realtime", {}, settings)
    assert isinstance(plan, SessionPlan)
    meter = start_meter(plan, settings, 0.0, 0.0, PriceTable()) if metered else None
    relay = Relay(plan, settings, 0.0, LimitCounters(), meter)
    relay.client_connected(0.0)
    relay.upstream_connected(0.0)
    relay.upstream_frame('{"type":"session.created","session":{}}', 0.0)
    return relay


def per_call_us(calls: list[Callable[[], object]], number: int, rounds: int) -> list[float]:
    """Microseconds of CPU per call of each of ``calls``, timed in turns, best round of each."""
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for index, call in enumerate(calls):
            seconds = timeit.timeit(call, number=number, timer=time.process_time)
            best[index] = min(best[index], seconds / number * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rows = []
    for name, frame, feed in (
        ("client append", APPEND, lambda relay, frame: relay.client_text(frame, 1.0)),
        ("provider audio delta", DELTA, lambda relay, frame: relay.upstream_frame(frame, 1.0)),
    ):
        relays = [open_relay(metered) for metered in (False, True)]
        calls = [lambda relay=relay, feed=feed, frame=frame: feed(relay, frame) for relay in relays]
        rows.append((name, *per_call_us(calls, args.number, args.rounds)))
    print(f"{'frame':22} {'no meter':>10} {'meter':>10} {'added':>10}")
    for name, plain, metered in rows:
        print(f"{name:22} {plain:9.2f}µs {metered:9.2f}µs {metered - plain:+9.2f}µs")


if __name__ == "__main__":
    main()
