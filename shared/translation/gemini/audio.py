"""PCM16 24 kHz -> 16 kHz, streaming, in pure Python at C speed (no numpy, no ``audioop``).

OpenAI clients send 24 kHz PCM16; Gemini Live documents its input as 16 kHz PCM16 ("Raw 16 bit
PCM audio at 16kHz little-endian", ai.google.dev/gemini-api/docs/live-guide). ``audioop`` is gone
from Python 3.13, so from the Worker's Pyodide (Python 3.14), and a per-sample Python loop costs
about 1.4 ms per 100 ms chunk. So the filter runs on Python's big integers, several samples at a
time ("SIMD within a register"): each polyphase component of the input is packed into one big
integer, one sample per 40-bit lane, offset to be unsigned; a whole component times a coefficient
is then one big-integer multiplication, a one-sample delay a multiplication by 2**40, and the C code of
``int`` does the per-sample work. Lanes never carry into each other: the positive and negative
taps are summed apart and a per-lane bias keeps every lane non-negative below 2**40.

The filter: 2/3 rate change as two phases. An output sample falls either on an input sample (3m)
or half-way between two (3m + 1.5); each phase is the same low-pass kernel sampled at its offsets,
a Hann-windowed sinc cut off at 0.9 x 8 kHz over +-4 input samples (7 and 8 taps), quantized to
16 bits. Response: -0.7 dB at 4 kHz, -3 dB at 6 kHz, <= -19 dB from 10 kHz (what would alias
below 6 kHz), -42 dB at 12 kHz. Linear interpolation, the usual cheap choice, lets every other
output sample alias at full strength. Outputs that overshoot the 16-bit range are clipped.

Streaming: input arrives in chunks of any length (even odd byte counts); the resampler keeps the
input it cannot finish yet (at most two groups of three samples and a partial group: about 0.3 ms
of delay) and the history the next outputs need. :meth:`Downsampler.flush` ends an utterance.
"""

from __future__ import annotations

import math
import sys
from array import array

IN_RATE = 24_000
OUT_RATE = 16_000
_LANE_BYTES = 5  # 40-bit lanes: 16 coefficient bits x 16 sample bits, plus headroom for the sums
_LANE_BITS = 8 * _LANE_BYTES
_LANE = 1 << _LANE_BITS
_SCALE_BITS = 16
_SCALE = 1 << _SCALE_BITS
_HALF_WIDTH = 4.0  # kernel support, in input samples either side
_CUTOFF = 0.9 * OUT_RATE / 2 / IN_RATE  # cycles per input sample
_FLIP_SIGN = bytes(value ^ 0x80 for value in range(256))  # int16 <-> offset binary, on the high byte
_GROUP_BYTES = 6  # three input samples, producing two output samples


def _kernel(offset: float) -> float:
    if abs(offset) >= _HALF_WIDTH:
        return 0.0
    x = 2 * math.pi * _CUTOFF * offset
    sinc = 1.0 if offset == 0 else math.sin(x) / x
    return sinc * (0.5 + 0.5 * math.cos(math.pi * offset / _HALF_WIDTH))


def _quantized(offsets: tuple[float, ...]) -> list[int]:
    """Taps at ``offsets`` (symmetric pairs share one), as integers summing exactly to ``_SCALE``."""
    raw = [_kernel(offset) for offset in offsets]
    weights = [2 * value if offset else value for offset, value in zip(offsets, raw, strict=True)]
    total = sum(weights)
    taps = [round(value / total * _SCALE) for value in raw]
    counted = [2 * tap if offset else tap for offset, tap in zip(offsets, taps, strict=True)]
    centre = 0 if offsets[0] == 0 else None
    error = _SCALE - sum(counted)
    if centre is not None:
        taps[0] += error
    else:  # no centre tap: the innermost pair takes the remainder (always even: all weights are)
        taps[0] += error // 2
    return taps


# Phase A (on an input sample): taps at 0, +-1, +-2, +-3. Phase B (half-way): +-0.5 ... +-3.5.
_A = _quantized((0.0, 1.0, 2.0, 3.0))
_B = _quantized((0.5, 1.5, 2.5, 3.5))


def _bias_units(taps: list[int], pairs_from: int) -> int:
    """How far below zero a lane can go, in output units (the negative taps on full-scale input)."""
    negative = sum(-tap * (1 if index < pairs_from else 2) for index, tap in enumerate(taps) if tap < 0)
    return -(-negative * 0xFFFF // _SCALE)  # ceil


_BIAS_A = _bias_units(_A, 1)
_BIAS_B = _bias_units(_B, 0)


def _lanes(value: int, count: int) -> int:
    """``value`` in each of ``count`` lanes."""
    return int.from_bytes(value.to_bytes(_LANE_BYTES, "little") * count, "little")


def _widen(low: bytes, high: bytes, count: int) -> int:
    """Samples (their low and high bytes, ``count`` of each) as offset-binary 40-bit lanes."""
    lanes = bytearray(_LANE_BYTES * count)
    lanes[0::_LANE_BYTES] = low
    lanes[1::_LANE_BYTES] = high.translate(_FLIP_SIGN)
    return int.from_bytes(lanes, "little")


class Downsampler:
    """Streaming 24 kHz -> 16 kHz PCM16 (mono, little-endian) resampler; one per audio stream."""

    __slots__ = ("_constants", "_pending")

    def __init__(self) -> None:
        self._pending = bytes(_GROUP_BYTES)  # one group of silence: the history of the first outputs
        # Per-lane constants by lane count (chunks mostly share one size: a handful of entries).
        self._constants: dict[int, tuple[int, int, int, int]] = {}

    @property
    def pending_bytes(self) -> int:
        """Input held for the next call (history included)."""
        return len(self._pending)

    def feed(self, pcm: bytes) -> bytes:
        """Resample the next ``pcm`` bytes; returns the output that is complete so far."""
        data = self._pending + pcm
        groups = len(data) // _GROUP_BYTES
        if groups < 3:
            self._pending = data
            return b""
        self._pending = data[_GROUP_BYTES * (groups - 2) :]
        return self._run(data, groups)

    def flush(self) -> bytes:
        """The output still held (the input padded with silence); the stream then starts afresh."""
        tail = self._pending[_GROUP_BYTES:]
        held = len(tail) // 2
        if held == 0:
            self.reset()
            return b""
        padded = self._pending[: _GROUP_BYTES + 2 * held] + bytes(2 * _GROUP_BYTES)
        groups = len(padded) // _GROUP_BYTES
        out = self._run(padded, groups)
        self.reset()
        # Only the output samples that stand for held input: 2 per 3 samples, rounded up.
        return out[: 2 * -(-2 * held // 3)]

    def reset(self) -> None:
        self._pending = bytes(_GROUP_BYTES)

    def _run(self, data: bytes, groups: int) -> bytes:
        """Outputs for groups ``1 .. groups - 2`` of ``data`` (the outer two are their history)."""
        end = _GROUP_BYTES * groups
        x0 = _widen(data[0:end:6], data[1:end:6], groups)  # samples 3g
        x1 = _widen(data[2:end:6], data[3:end:6], groups)  # 3g + 1
        x2 = _widen(data[4:end:6], data[5:end:6], groups)  # 3g + 2
        # Everything one lane up, so that no term needs a right shift: in the sums, lane g + 1
        # stands for output g, so x itself is "the next group" and x * 2**80 "the previous one".
        # (Multiplying by a power of two, not shifting: Pyodide's big-integer shifts are a hundred
        # times slower than its multiplications.)
        x0_next, x1_next, x2_next = x0, x1, x2
        x0, x1, x2 = x0 * _LANE, x1 * _LANE, x2 * _LANE
        x0_prev, x1_prev, x2_prev = x0 * _LANE, x1 * _LANE, x2 * _LANE
        a0, a1, a2, a3 = _A
        b0, b1, b2, b3 = _B
        # Phase A at 3g: x[3g], x[3g +- 1], x[3g +- 2], x[3g +- 3].
        phase_a = (
            (a0, x0),
            (a1, x1 + x2_prev),
            (a2, x2 + x1_prev),
            (a3, x0_next + x0_prev),
        )
        # Phase B at 3g + 1.5: x[3g+1], x[3g+2]; x[3g], x[3g+3]; x[3g-1], x[3g+4]; x[3g-2], x[3g+5].
        phase_b = (
            (b0, x1 + x2),
            (b1, x0 + x0_next),
            (b2, x2_prev + x1_next),
            (b3, x1_prev + x2_next),
        )
        bias_a, bias_b, drop_a, drop_b = self._lane_constants(groups)
        out_a = _finish(_sum(phase_a) + bias_a, drop_a, _BIAS_A, groups)
        out_b = _finish(_sum(phase_b) + bias_b, drop_b, _BIAS_B, groups)
        count = groups - 2
        out = bytearray(4 * count)
        out[0::4] = out_a[0::2]
        out[1::4] = out_a[1::2]
        out[2::4] = out_b[0::2]
        out[3::4] = out_b[1::2]
        return bytes(out)

    def _lane_constants(self, groups: int) -> tuple[int, int, int, int]:
        constants = self._constants.get(groups)
        if constants is None:
            if len(self._constants) >= 16:
                self._constants.clear()
            half = _SCALE // 2  # rounds to nearest when the lanes are cut to 16 bits
            # The bias is added to every lane (the top one holds the shifted-out history too);
            # it is taken back from the output lanes only, so no borrow reaches a neighbour.
            inner = groups - 2

            def taken_back(units: int) -> int:
                return _lanes(units << _SCALE_BITS, inner) * _LANE * _LANE

            constants = (
                _lanes((_BIAS_A << _SCALE_BITS) + half, groups + 2),
                _lanes((_BIAS_B << _SCALE_BITS) + half, groups + 2),
                taken_back(_BIAS_A),
                taken_back(_BIAS_B),
            )
            self._constants[groups] = constants
        return constants


def _sum(terms: tuple[tuple[int, int], ...]) -> int:
    positive = 0
    negative = 0
    for tap, lanes in terms:
        if tap >= 0:
            positive += tap * lanes
        else:
            negative += -tap * lanes
    return positive - negative


def _finish(lanes: int, drop: int, bias: int, groups: int) -> bytes:
    """Output lanes ``2 .. groups - 1`` (the outputs of groups ``1 .. groups - 2``, one lane up) as
    int16 little-endian bytes, biased lanes in."""
    size = _LANE_BYTES * (groups + 2)
    first, stop = 2 * _LANE_BYTES, _LANE_BYTES * groups
    # Each lane holds (y + 32768 + bias) << 16 plus the rounding half; taking the bias back leaves
    # y + 32768 in bytes 2..3, unless y clipped: then byte 4 is not zero (over 65535, or a lane
    # that went below zero and borrowed: 0xFF). The borrow only disturbs lanes kept for history.
    raw = (lanes - drop).to_bytes(size, "little")
    top = raw[first + 4 : stop : _LANE_BYTES]
    if top.count(0) == len(top):
        out = bytearray(2 * (groups - 2))
        out[0::2] = raw[first + 2 : stop : _LANE_BYTES]
        out[1::2] = raw[first + 3 : stop : _LANE_BYTES].translate(_FLIP_SIGN)
        return bytes(out)
    raw = lanes.to_bytes(size, "little")  # clipping somewhere: lane by lane, from the biased lanes
    wide = bytearray(4 * (groups - 2))
    wide[0::4] = raw[first + 2 : stop : _LANE_BYTES]
    wide[1::4] = raw[first + 3 : stop : _LANE_BYTES]
    wide[2::4] = raw[first + 4 : stop : _LANE_BYTES]
    values = array("I", wide)
    if sys.byteorder == "big":
        values.byteswap()
    clipped = array("h", [min(0xFFFF, max(0, value - bias)) - 0x8000 for value in values])
    if sys.byteorder == "big":
        clipped.byteswap()
    return clipped.tobytes()


__all__ = ["IN_RATE", "OUT_RATE", "Downsampler"]
