"""G.711 mu-law and A-law, sample by sample (``audioop`` is gone from Python 3.13, so from Pyodide).

Only used for sessions that pick ``audio/pcmu`` or ``audio/pcma``: decoding feeds the VAD,
encoding converts the precomputed speech tables once per process.
"""

from __future__ import annotations

_BIAS = 0x84
_CLIP = 32635


def ulaw_encode(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = max(0, min(7, magnitude.bit_length() - 8))
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    exponent = (byte >> 4) & 0x07
    magnitude = ((((byte & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if byte & 0x80 else magnitude


def alaw_encode(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(sample if sample >= 0 else -sample - 1, 32767)
    if magnitude >= 256:
        exponent = magnitude.bit_length() - 8
        value = (exponent << 4) | ((magnitude >> (exponent + 3)) & 0x0F)
    else:
        value = magnitude >> 4
    return (sign | value) ^ 0x55


def alaw_decode(byte: int) -> int:
    byte ^= 0x55
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if byte & 0x80 else -magnitude


ULAW_TABLE: tuple[int, ...] = tuple(ulaw_decode(b) for b in range(256))
ALAW_TABLE: tuple[int, ...] = tuple(alaw_decode(b) for b in range(256))
