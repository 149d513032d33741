"""Token counts of a response, read from the ``usage`` of OpenAI's ``response.done``.

In that usage, ``input_token_details.text_tokens`` / ``audio_tokens`` / ``image_tokens`` count every
input token of the modality, cached ones included; ``cached_tokens`` is how many of them were cached,
and ``cached_tokens_details`` splits those by modality. When the split is missing (older events), the
cached tokens are taken as text first, then audio, then image, up to each modality's count: the
order in which OpenAI's context is cached (instructions and tools, then the conversation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _count(details: Any, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return value if type(value) is int and value > 0 else 0


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """One response's tokens, by modality and direction; cached ones are part of their input count."""

    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    input_cached: int = 0  # ``cached_tokens`` as reported; the split below prices them
    cached_text: int = 0
    cached_audio: int = 0
    cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0

    @classmethod
    def from_usage(cls, usage: Any) -> TokenCounts:
        """The counts of a ``response.done`` usage object (missing or malformed parts count 0)."""
        if not isinstance(usage, dict):
            return cls()
        inputs = usage.get("input_token_details")
        outputs = usage.get("output_token_details")
        text, audio, image = (
            _count(inputs, name) for name in ("text_tokens", "audio_tokens", "image_tokens")
        )
        cached = _count(inputs, "cached_tokens")
        split = inputs.get("cached_tokens_details") if isinstance(inputs, dict) else None
        if isinstance(split, dict):
            cached_text = min(_count(split, "text_tokens"), text)
            cached_audio = min(_count(split, "audio_tokens"), audio)
            cached_image = min(_count(split, "image_tokens"), image)
        else:
            cached_text = min(cached, text)
            cached_audio = min(cached - cached_text, audio)
            cached_image = min(cached - cached_text - cached_audio, image)
        return cls(
            input_text=text,
            input_audio=audio,
            input_image=image,
            input_cached=cached,
            cached_text=cached_text,
            cached_audio=cached_audio,
            cached_image=cached_image,
            output_text=_count(outputs, "text_tokens"),
            output_audio=_count(outputs, "audio_tokens"),
        )
