"""Gemini's ``usageMetadata`` as the ``usage`` of an OpenAI ``response.done``.

Gemini counts a turn's prompt (``promptTokenCount``, by modality in ``promptTokensDetails``), its
reply (``responseTokenCount`` / ``responseTokensDetails``; Vertex AI names them
``candidatesTokenCount`` / ``candidatesTokensDetails``), thinking (``thoughtsTokenCount``) and tool
results fed back (``toolUsePromptTokenCount``); ``totalTokenCount`` is their sum. OpenAI counts
input and output, each split into text and audio (and cached input). So: input = prompt + tool
results, output = reply + thinking (thinking is text), each modality counted where it belongs
(``AUDIO`` as audio, ``TEXT`` and unspecified as text, ``IMAGE`` / ``VIDEO`` as image), cached =
``cachedContentTokenCount``. Gemini reports one ``usageMetadata`` per turn (a probe of three-turn
sessions on the served Live models, github.com/pydantic/pydantic-ai/pull/7269, found per-turn
counts); if a turn reports more than one, the last wins.
"""

from __future__ import annotations

from typing import Any

_BUCKETS = {"AUDIO": "audio_tokens", "TEXT": "text_tokens", "MODALITY_UNSPECIFIED": "text_tokens"}
_IMAGE = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _by_modality(details: Any, *, images: bool) -> dict[str, int]:
    counts = {"text_tokens": 0, "audio_tokens": 0}
    if images:
        counts["image_tokens"] = 0
    for entry in details if isinstance(details, list) else []:
        if not isinstance(entry, dict):
            continue
        modality = entry.get("modality")
        bucket = _BUCKETS.get(modality) if isinstance(modality, str) else "text_tokens"
        if bucket is None:
            bucket = "image_tokens" if images and modality in _IMAGE else "text_tokens"
        counts[bucket] += _count(entry.get("tokenCount"))
    return counts


def usage(metadata: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI ``usage`` object for one ``usageMetadata``."""
    prompt = _count(metadata.get("promptTokenCount")) + _count(metadata.get("toolUsePromptTokenCount"))
    reply = _count(metadata.get("responseTokenCount", metadata.get("candidatesTokenCount")))
    thoughts = _count(metadata.get("thoughtsTokenCount"))
    input_details = _by_modality(metadata.get("promptTokensDetails"), images=True)
    tool_details = _by_modality(metadata.get("toolUsePromptTokensDetails"), images=True)
    for key, value in tool_details.items():
        input_details[key] += value
    input_details["cached_tokens"] = _count(metadata.get("cachedContentTokenCount"))
    output_details = _by_modality(
        metadata.get("responseTokensDetails", metadata.get("candidatesTokensDetails")), images=False
    )
    output_details["text_tokens"] += thoughts
    total = _count(metadata.get("totalTokenCount")) or prompt + reply + thoughts
    return {
        "total_tokens": total,
        "input_tokens": prompt,
        "output_tokens": reply + thoughts,
        "input_token_details": input_details,
        "output_token_details": output_details,
    }


def add(total: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """Two usages summed (for usage reported outside any turn, carried to the next response)."""
    if total is None:
        return more
    summed: dict[str, Any] = {}
    for key, value in more.items():
        if isinstance(value, dict):
            summed[key] = {name: total.get(key, {}).get(name, 0) + count for name, count in value.items()}
        else:
            summed[key] = total.get(key, 0) + value
    return summed
