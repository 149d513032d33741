"""Audio seconds from the audio itself: base64 lengths over the session's format, nothing decoded.

A session's input and output formats are what the provider says in ``session.created`` /
``session.updated`` (GA ``session.audio.input.format`` / ``.output.format``, beta
``input_audio_format`` / ``output_audio_format``, GPT-Live ``session.audio.format`` for both);
until it says, PCM16 at 24 kHz, every realtime API's default.
"""

from __future__ import annotations

from typing import Any

PCM16_24K_BYTES_PER_SECOND = 48_000  # 24,000 samples of 2 bytes
G711_BYTES_PER_SECOND = 8_000  # 8,000 samples of 1 byte

# Beta's format names, and GA's sample sizes by format type.
_BETA_FORMATS = {
    "pcm16": PCM16_24K_BYTES_PER_SECOND,
    "g711_ulaw": G711_BYTES_PER_SECOND,
    "g711_alaw": G711_BYTES_PER_SECOND,
}
_SAMPLE_BYTES = {"audio/pcm": 2, "audio/pcmu": 1, "audio/pcma": 1}
_DEFAULT_RATES = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}


def base64_size(length: int, padding: int) -> int:
    """Bytes that ``length`` characters of base64 ending in ``padding`` ``=`` decode to."""
    return length * 3 // 4 - padding


def decoded_size(text: str) -> int:
    """Bytes the base64 ``text`` decodes to, without decoding it."""
    size = len(text)
    return size * 3 // 4 - (size > 0 and text[size - 1] == "=") - (size > 1 and text[size - 2] == "=")


def bytes_per_second(audio_format: Any) -> int | None:
    """Bytes of a second of audio in ``audio_format`` (a beta name or a GA object), None if unknown."""
    if isinstance(audio_format, str):
        return _BETA_FORMATS.get(audio_format)
    if not isinstance(audio_format, dict):
        return None
    kind = audio_format.get("type")
    sample_bytes = _SAMPLE_BYTES.get(kind) if isinstance(kind, str) else None
    if sample_bytes is None:
        return None
    rate = audio_format.get("rate")
    if type(rate) is not int or rate <= 0:
        rate = _DEFAULT_RATES[kind]
    return rate * sample_bytes


def session_formats(session: Any) -> tuple[int | None, int | None]:
    """Bytes per second of a session's (input, output) audio, each None where the session says nothing."""
    if not isinstance(session, dict):
        return None, None
    if "input_audio_format" in session or "output_audio_format" in session:  # beta
        return (
            bytes_per_second(session.get("input_audio_format")),
            bytes_per_second(session.get("output_audio_format")),
        )
    audio = session.get("audio")
    if not isinstance(audio, dict):
        return None, None
    if "format" in audio:  # GPT-Live: one format both ways
        both = bytes_per_second(audio.get("format"))
        return both, both
    sides = []
    for side in ("input", "output"):
        settings = audio.get(side)
        sides.append(bytes_per_second(settings.get("format")) if isinstance(settings, dict) else None)
    return sides[0], sides[1]
