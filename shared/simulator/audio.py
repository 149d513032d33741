"""Audio for the simulator: formats, a synthetic voice, and an energy VAD, in pure Python.

The voice is a few sine harmonics under a syllable envelope with a gentle pitch glide: a handful
of 200 ms syllables are computed once per process and every 100 ms output chunk is a slice of one
of them, so a delta costs a bytes slice and a base64 encode, and no reply is ever held whole.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from operator import mul
from typing import Any

from .g711 import ALAW_TABLE, ULAW_TABLE, alaw_encode, ulaw_encode

SYLLABLE_MS = 200
CHUNK_MS = 100  # audio carried by one response.output_audio.delta, as OpenAI sends it
MS_PER_CHAR = 65  # speaking rate of the synthetic voice
_WINDOW_MS = 20  # VAD analysis window
_MIN_SPEECH_WINDOWS = 2  # loud windows in a row before speech counts as started (clicks do not)
_PUNCTUATION = frozenset(".,;:!?")


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A GA audio format: ``audio/pcm`` (PCM16 LE mono, 24 kHz; GPT-Live also 16 kHz) or G.711
    ``audio/pcmu``/``pcma`` (8 kHz)."""

    kind: str
    rate: int
    sample_bytes: int

    @staticmethod
    def of(spec: Any) -> AudioFormat:
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind in ("audio/pcmu", "audio/pcma"):
            return AudioFormat(kind, 8000, 1)
        return PCM24K

    def ms(self, samples: int) -> float:
        return samples * 1000 / self.rate

    def samples(self, ms: float) -> int:
        return int(ms * self.rate / 1000)


PCM24K = AudioFormat("audio/pcm", 24000, 2)
PCM16K = AudioFormat("audio/pcm", 16000, 2)


def base64_decoded_size(b64: str) -> int:
    """Bytes a base64 string decodes to, without decoding it."""
    n = len(b64)
    return n * 3 // 4 - (b64.endswith("=") + b64.endswith("=="))


# -- the voice ---------------------------------------------------------------------------------

# (start Hz, end Hz, amplitudes of harmonics 1-4): a few vowel colours and pitch contours.
_SYLLABLE_SHAPES: tuple[tuple[float, float, tuple[float, float, float, float]], ...] = (
    (150.0, 132.0, (1.0, 0.55, 0.30, 0.12)),
    (165.0, 150.0, (1.0, 0.35, 0.45, 0.10)),
    (140.0, 128.0, (1.0, 0.70, 0.20, 0.15)),
    (172.0, 155.0, (1.0, 0.45, 0.25, 0.30)),
)
_PEAK = 0.3 * 32767
_tables: dict[tuple[str, int], tuple[bytes, ...]] = {}  # format -> (silence, syllable 1, syllable 2, ...)
_syllables: list[array[int]] = []  # the shapes as PCM16 samples, computed once


def _syllable_samples(
    f_start: float, f_end: float, amps: tuple[float, float, float, float], envelope: list[float]
) -> array[int]:
    """One syllable: harmonics 2-4 from sin and cos of the fundamental (two trig calls a sample)."""
    rate = PCM24K.rate
    voiced = len(envelope)
    a1, a2, a3, a4 = amps
    scale = _PEAK / sum(amps)
    step = 2 * math.pi / rate
    glide = (f_end - f_start) / voiced
    out = array("h", bytes(2 * rate * SYLLABLE_MS // 1000))  # zeros after ``voiced``: the gap
    phase = 0.0
    for i, env in enumerate(envelope):
        phase += step * (f_start + glide * i)
        s, c = math.sin(phase), math.cos(phase)
        s2 = s * s
        value = a1 * s + 2 * a2 * s * c + a3 * s * (3 - 4 * s2) + 4 * a4 * s * c * (1 - 2 * s2)
        out[i] = int(env * scale * value)
    return out


def _encode(samples: array[int], kind: str, rate: int) -> bytes:
    if rate == 16000:  # 24 kHz -> 16 kHz: two samples of every three (all energy < 1 kHz)
        samples = array("h", (sample for index, sample in enumerate(samples) if index % 3 != 2))
    if kind == "audio/pcmu":
        return bytes(ulaw_encode(s) for s in samples[::3])  # 24 kHz -> 8 kHz: all energy < 1 kHz
    if kind == "audio/pcma":
        return bytes(alaw_encode(s) for s in samples[::3])
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def syllable_tables(kind: str, rate: int = 24000) -> tuple[bytes, ...]:
    """Silence then each syllable shape, encoded for ``kind`` at ``rate`` (PCM 24 or 16 kHz; G.711 is
    8 kHz whatever it says); computed on first use, then cached."""
    rate = 16000 if kind == "audio/pcm" and rate == 16000 else 24000
    tables = _tables.get((kind, rate))
    if tables is None:
        if not _syllables:
            voiced = PCM24K.rate * SYLLABLE_MS // 1000 * 4 // 5  # the rest is a gap between syllables
            envelope = [math.sin(math.pi * i / voiced) ** 2 for i in range(voiced)]
            _syllables.extend(_syllable_samples(*shape, envelope) for shape in _SYLLABLE_SHAPES)
        silence = array("h", bytes(2 * len(_syllables[0])))
        tables = _tables[kind, rate] = tuple(_encode(s, kind, rate) for s in [silence, *_syllables])
    return tables


class SpeechTrack:
    """The synthetic speech for one reply: ~65 ms per character, produced a chunk at a time.

    Syllable ``i`` voices the slice of text it covers (its shape picked from those characters) and
    is silent where that slice holds punctuation, so sentences get audible pauses.
    """

    __slots__ = ("_chunk_bytes", "_tables", "chunks", "syllables", "text")

    def __init__(self, text: str, fmt: AudioFormat, speed: float = 1.0) -> None:
        self.text = text
        speed = min(max(speed, 0.25), 1.5)
        self.syllables = max(1, round(len(text) * MS_PER_CHAR / (SYLLABLE_MS * speed)))
        self.chunks = self.syllables * SYLLABLE_MS // CHUNK_MS
        self._tables = syllable_tables(fmt.kind, fmt.rate)
        self._chunk_bytes = len(self._tables[0]) * CHUNK_MS // SYLLABLE_MS

    @property
    def duration_ms(self) -> int:
        return self.chunks * CHUNK_MS

    def _shape(self, syllable: int) -> int:
        text = self.text
        start = syllable * len(text) // self.syllables
        span = text[start : max(start + 1, (syllable + 1) * len(text) // self.syllables)]
        if syllable and any(c in _PUNCTUATION for c in span):
            return 0
        return 1 + sum(map(ord, span)) % (len(self._tables) - 1)

    def chunk(self, index: int) -> bytes:
        """The audio of chunk ``index`` (0 <= index < chunks)."""
        table = self._tables[self._shape(index * CHUNK_MS // SYLLABLE_MS)]
        offset = (index % (SYLLABLE_MS // CHUNK_MS)) * self._chunk_bytes
        return table[offset : offset + self._chunk_bytes]


# -- voice activity detection ------------------------------------------------------------------


def rms_threshold(threshold: float) -> float:
    """The RMS level (PCM16 units) that counts as speech for a server_vad ``threshold`` in 0..1.

    0 maps to -65 dBFS (anything above a quiet room), 0.5 to -40 dBFS (soft speech into a laptop
    microphone), 1 to -15 dBFS (only loud, close speech).
    """
    t = min(max(threshold, 0.0), 1.0)
    return 32768 * 10 ** ((-65 + 50 * t) / 20)


class EnergyVad:
    """Speech start/stop from the RMS of 20 ms windows, tracked across appends.

    Keeps only the bytes of an unfinished window, never the audio itself.
    """

    __slots__ = ("_carry", "_loud", "_quiet", "_run_start", "speaking")

    def __init__(self) -> None:
        self._carry = b""
        self.speaking = False
        self._loud = 0  # loud windows in a row while not speaking
        self._run_start = 0  # first sample of that run
        self._quiet = 0  # quiet samples in a row while speaking

    def reset(self) -> None:
        """Forget any speech in progress (the buffer was committed or cleared)."""
        self.speaking = False
        self._loud = 0
        self._quiet = 0

    def feed(
        self, data: bytes, fmt: AudioFormat, end_sample: int, threshold: float, silence_ms: int
    ) -> list[tuple[bool, int]]:
        """Transitions found in ``data``: ``(True, first speech sample)`` or ``(False, end sample)``.

        ``end_sample`` is the session-wide index of the sample just after ``data``.
        """
        buf = self._carry + data if self._carry else data
        window = fmt.rate * _WINDOW_MS // 1000
        window_bytes = window * fmt.sample_bytes
        usable = len(buf) - len(buf) % window_bytes
        self._carry = buf[usable:]
        if not usable:
            return []
        if fmt.sample_bytes == 2:
            samples: Any = array("h")
            samples.frombytes(buf[:usable])
            if sys.byteorder == "big":
                samples.byteswap()
        else:
            table = ULAW_TABLE if fmt.kind == "audio/pcmu" else ALAW_TABLE
            samples = [table[b] for b in buf[:usable]]
        stride = 2 if fmt.rate > 8000 else 1  # every other sample at 24 kHz: same energy, half the work
        limit = rms_threshold(threshold) ** 2 * (window // stride)
        silence = fmt.samples(silence_ms)
        position = end_sample - len(buf) // fmt.sample_bytes  # first sample of the first window
        events: list[tuple[bool, int]] = []
        for offset in range(0, len(samples), window):
            chunk = samples[offset : offset + window : stride]
            loud = sum(map(mul, chunk, chunk)) >= limit
            start = position + offset
            if not self.speaking:
                if not loud:
                    self._loud = 0
                    continue
                if self._loud == 0:
                    self._run_start = start
                self._loud += 1
                if self._loud >= _MIN_SPEECH_WINDOWS:
                    self.speaking, self._quiet = True, 0
                    events.append((True, self._run_start))
            elif loud:
                self._quiet = 0
            else:
                self._quiet += window
                if self._quiet >= silence:
                    self.speaking, self._loud = False, 0
                    events.append((False, start + window))
        return events
