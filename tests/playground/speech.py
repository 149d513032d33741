"""The speech the playground test says into Chromium's fake microphone.

Two short utterances, spoken by espeak-ng and kept in ``speech/`` as small WAV files (mono PCM16 at
11025 Hz: half espeak's rate, plenty for a voice detector and a listener): :func:`compose` lays them
out as one scenario for ``--use-file-for-fake-audio-capture``, with the silences that make the
turns. ``python tests/playground/speech.py`` makes the two files again (needs ``espeak-ng``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent / "speech"
RATE = 11_025
UTTERANCES = {
    "hello.wav": "Hello gateway, can you hear me?",
    "one-more-thing.wav": "Wait, one more thing.",
}
QUIET = 300  # PCM16 units: below this a 20 ms window is silence when the files are trimmed


@dataclass(frozen=True)
class Scenario:
    """Where the speech is in the composed file, in seconds from its start."""

    path: Path
    first: tuple[float, float]
    second: tuple[float, float]
    seconds: float


def read(name: str) -> array:
    with wave.open(str(HERE / name)) as source:
        assert (source.getnchannels(), source.getsampwidth(), source.getframerate()) == (1, 2, RATE)
        samples = array("h", source.readframes(source.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def write(path: Path, samples: array) -> None:
    data = array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(path), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(RATE)
        target.writeframes(data.tobytes())


def compose(path: Path, lead: float = 0.3, gap: float = 1.5, tail: float = 4.0) -> Scenario:
    """The first utterance after ``lead`` s of silence, the second ``gap`` s after it, then ``tail``
    s of silence. The gap is long enough for a server VAD's 500 ms of silence to end the first turn
    and for its reply (about 2 s of speech, starting some 250 ms later) to be playing, and short
    enough for the second utterance to start while it still plays."""
    first, second = read("hello.wav"), read("one-more-thing.wav")

    def silence(seconds: float) -> array:
        return array("h", bytes(2 * round(seconds * RATE)))

    samples = silence(lead) + first + silence(gap) + second + silence(tail)
    write(path, samples)
    start_first, start_second = lead, lead + len(first) / RATE + gap
    return Scenario(
        path,
        (start_first, start_first + len(first) / RATE),
        (start_second, start_second + len(second) / RATE),
        len(samples) / RATE,
    )


def _trimmed(samples: array) -> array:
    window = RATE // 50
    loud = [
        i
        for i in range(0, len(samples) - window, window)
        if max(abs(x) for x in samples[i : i + window]) >= QUIET
    ]
    return samples[loud[0] : loud[-1] + window] if loud else samples


def regenerate() -> None:
    """Speak :data:`UTTERANCES` with espeak-ng; halve its 22050 Hz with a [1, 2, 1] low-pass."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is missing: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in UTTERANCES.items():
            spoken = Path(scratch) / name
            subprocess.run([espeak, "-v", "en-us", "-s", "165", "-w", str(spoken), text], check=True)
            with wave.open(str(spoken)) as source:
                assert (source.getframerate(), source.getsampwidth()) == (2 * RATE, 2)
                full = array("h", source.readframes(source.getnframes()))
            if sys.byteorder == "big":
                full.byteswap()
            half = array(
                "h",
                (
                    (full[max(i - 1, 0)] + 2 * full[i] + full[min(i + 1, len(full) - 1)]) // 4
                    for i in range(0, len(full), 2)
                ),
            )
            write(HERE / name, _trimmed(half))
            print(f"{HERE / name}: {len(half) / RATE:.2f} s")


if __name__ == "__main__":
    regenerate()
