"""Value-level mappings shared by sessions and responses: audio formats and output modalities.

A value that has no counterpart in the other protocol is returned unchanged, so the receiving
side (usually the provider) judges it and answers with its own error, rather than the gateway
guessing.
"""

from __future__ import annotations

from typing import Any

_PCM_RATE = 24000

_FORMAT_TO_GA: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": _PCM_RATE},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_FORMAT_TO_BETA: dict[str, str] = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}


def format_to_ga(value: Any) -> Any:
    """Beta ``"pcm16"`` / ``"g711_ulaw"`` / ``"g711_alaw"`` -> the GA format object."""
    if isinstance(value, str) and value in _FORMAT_TO_GA:
        return dict(_FORMAT_TO_GA[value])
    return value


def format_to_beta(value: Any) -> Any:
    """A GA format object -> the beta format string (PCM only at 24 kHz, as both protocols allow)."""
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    name = _FORMAT_TO_BETA.get(kind) if isinstance(kind, str) else None
    if name is None:
        return value
    if kind == "audio/pcm" and value.get("rate", _PCM_RATE) not in (_PCM_RATE, None):
        return value  # another sample rate: beta has no name for it
    return name


def modalities_to_ga(value: Any) -> Any:
    """Beta ``modalities`` -> GA ``output_modalities``.

    GA allows only ``["text"]`` or ``["audio"]``, and GA audio output always carries its
    transcript, so beta ``["text", "audio"]`` (audio with its transcript) is ``["audio"]``.
    """
    if not isinstance(value, list):
        return value
    if "audio" in value:
        return ["audio"]
    if "text" in value:
        return ["text"]
    return value


def modalities_to_beta(value: Any) -> Any:
    """GA ``output_modalities`` -> beta ``modalities``: audio output means ``["text", "audio"]``."""
    if not isinstance(value, list):
        return value
    if "audio" in value:
        return ["text", "audio"]
    return value
