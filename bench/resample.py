"""CPU per audio append of the Gemini translation's 24 -> 16 kHz resampler, against the obvious loop.

    .venv/bin/python -m bench.resample [--seconds 2]

For each chunk size (20, 40, 100 ms of 24 kHz PCM16, as clients append), it measures process CPU
time (not wall time: the machine may be shared) per chunk of:

- ``downsampler``: :class:`shared.translation.gemini.audio.Downsampler` (the same filter on
  big-integer lanes, as the Worker runs it: pure Python, no ``audioop``);
- ``per-sample``: that filter as a per-sample Python loop (a list comprehension over ``zip``);
- ``append``: the whole append through :class:`GeminiTranslator` (base64 decode, resample, encode,
  the ``realtimeInput`` frame);
- ``append 24k``: the same at ``input_rate=24000`` (no resampling: the audio goes as sent).
"""

from __future__ import annotations

import argparse
import base64
import math
import time
from array import array
from collections.abc import Callable

from shared.translation.gemini import GeminiTranslator
from shared.translation.gemini.audio import _A, _B, Downsampler


def tone(ms: int) -> bytes:
    count = 24 * ms
    return array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / 24_000)) for i in range(count))).tobytes()


def per_sample(raw: bytes) -> bytes:
    x = array("h", raw)
    a0, a1, a2, a3 = _A
    b0, b1, b2, b3 = _B
    s = [x[i::3] for i in range(9)]
    out_a = [
        (a0 * c + a1 * (l1 + r1) + a2 * (l2 + r2) + a3 * (l3 + r3) + 32768) >> 16
        for l3, l2, l1, c, r1, r2, r3 in zip(s[0], s[1], s[2], s[3], s[4], s[5], s[6], strict=False)
    ]
    out_b = [
        (b0 * (m1 + p1) + b1 * (m2 + p2) + b2 * (m3 + p3) + b3 * (m4 + p4) + 32768) >> 16
        for m4, m3, m2, m1, p1, p2, p3, p4 in zip(
            s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], strict=False
        )
    ]
    y = array("h", [0]) * (2 * min(len(out_a), len(out_b)))
    y[0::2] = array("h", [min(32767, max(-32768, v)) for v in out_a[: len(y) // 2]])
    y[1::2] = array("h", [min(32767, max(-32768, v)) for v in out_b[: len(y) // 2]])
    return y.tobytes()


def cpu_us(work: Callable[[], object], seconds: float) -> float:
    """Process CPU microseconds per call of ``work``, over about ``seconds`` of CPU."""
    calls = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        for _ in range(20):
            work()
        calls += 20
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    print(f"{'chunk':>8} {'downsampler':>12} {'per-sample':>11} {'append':>9} {'append 24k':>11}  (us CPU)")
    for ms in (20, 40, 100):
        raw = tone(ms)
        event = {"type": "input_audio_buffer.append", "audio": base64.b64encode(raw).decode()}
        downsampler = Downsampler()
        resampling, passing = (
            GeminiTranslator("gemini-3.8-live"),
            GeminiTranslator("gemini-3.8-live", input_rate=24_000),
        )
        for translator in (resampling, passing):
            translator.flush_setup()
            translator.to_client('{"setupComplete":{}}')
        row = [
            cpu_us(lambda raw=raw, d=downsampler: d.feed(raw), args.seconds),
            cpu_us(lambda raw=raw: per_sample(raw), args.seconds),
            cpu_us(lambda e=event, t=resampling: t.to_provider(e), args.seconds),
            cpu_us(lambda e=event, t=passing: t.to_provider(e), args.seconds),
        ]
        print(f"{ms:>6}ms " + " ".join(f"{value:>11.1f}" for value in row))


if __name__ == "__main__":
    main()
