"""Object shapes that differ between the protocols: sessions, response parameters, responses.

Each :class:`Shape` says how one kind of object maps: beta flat audio fields <-> GA ``audio.input``
/ ``audio.output`` keys, renamed fields, fields only one protocol has, and the item list inside.
:func:`to_ga` and :func:`to_beta` apply a shape. Fields a shape does not name (shared fields and
ones the gateway does not know) pass through untouched.

Fields with no counterpart: when ``dropped`` is a list (a client event on its way to a provider
that would refuse them), they are left out and their parameter path is appended to it; when it is
None (a provider event on its way to the client, whose SDK keeps unknown fields), they are kept as
they are, so nothing the provider said is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .items import PART_TYPES_TO_BETA, PART_TYPES_TO_GA, map_items
from .values import format_to_beta, format_to_ga, modalities_to_beta, modalities_to_ga

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Shape:
    """How one kind of object maps between beta and GA."""

    # beta flat field -> (GA audio side, GA key, beta->GA value, GA->beta value)
    audio: dict[str, tuple[str, str, Convert, Convert]]
    # beta field -> (GA field, beta->GA value, GA->beta value)
    renamed: dict[str, tuple[str, Convert, Convert]]
    beta_only: frozenset[str]
    ga_only: frozenset[str]
    ga_type: str | None = None  # the GA object's ``type`` (sessions), or None (no ``type``)
    items_key: str | None = None  # the field holding a list of conversation items
    audio_to_beta: dict[tuple[str, str], tuple[str, Convert]] = field(init=False)
    renamed_to_beta: dict[str, tuple[str, Convert]] = field(init=False)

    def __post_init__(self) -> None:
        audio = {(side, key): (beta, back) for beta, (side, key, _, back) in self.audio.items()}
        renamed = {ga: (beta, back) for beta, (ga, _, back) in self.renamed.items()}
        object.__setattr__(self, "audio_to_beta", audio)
        object.__setattr__(self, "renamed_to_beta", renamed)


_INPUT_AUDIO = {
    "input_audio_format": ("input", "format", format_to_ga, format_to_beta),
    "input_audio_transcription": ("input", "transcription", _same, _same),
    "input_audio_noise_reduction": ("input", "noise_reduction", _same, _same),
    "turn_detection": ("input", "turn_detection", _same, _same),
}
_OUTPUT_FORMAT_AND_VOICE = {
    "output_audio_format": ("output", "format", format_to_ga, format_to_beta),
    "voice": ("output", "voice", _same, _same),
}
_MODALITIES = ("output_modalities", modalities_to_ga, modalities_to_beta)
_MAX_TOKENS = ("max_output_tokens", _same, _same)

REALTIME_SESSION = Shape(
    audio={**_INPUT_AUDIO, **_OUTPUT_FORMAT_AND_VOICE, "speed": ("output", "speed", _same, _same)},
    renamed={"modalities": _MODALITIES, "max_response_output_tokens": _MAX_TOKENS},
    beta_only=frozenset({"temperature", "client_secret"}),
    ga_only=frozenset({"prompt", "truncation", "reasoning", "include", "parallel_tool_calls"}),
    ga_type="realtime",
)
"""A speech-to-speech session (``session.update`` / ``session.created`` / ``session.updated``)."""

TRANSCRIPTION_SESSION = Shape(
    audio=dict(_INPUT_AUDIO),
    renamed={},
    beta_only=frozenset({"modalities", "client_secret"}),
    ga_only=frozenset(),
    ga_type="transcription",
)
"""A transcription session (beta ``transcription_session.*``; GA ``session.type == "transcription"``)."""

RESPONSE_PARAMS = Shape(
    audio=dict(_OUTPUT_FORMAT_AND_VOICE),
    renamed={"modalities": _MODALITIES, "max_response_output_tokens": _MAX_TOKENS},
    beta_only=frozenset({"temperature"}),
    ga_only=frozenset({"parallel_tool_calls", "prompt", "reasoning"}),
    items_key="input",
)
"""The ``response`` of a ``response.create``."""

RESPONSE = Shape(
    audio=dict(_OUTPUT_FORMAT_AND_VOICE),
    renamed={"modalities": _MODALITIES},  # ``max_output_tokens`` is named alike in both
    beta_only=frozenset({"temperature"}),
    ga_only=frozenset(),
    items_key="output",
)
"""The response object of ``response.created`` / ``response.done``."""


def _no_counterpart(out: dict[str, Any], key: str, value: Any, path: str, dropped: list[str] | None) -> None:
    if dropped is None:
        out[key] = value
    else:
        dropped.append(path)


def to_ga(obj: dict[str, Any], shape: Shape, *, prefix: str, dropped: list[str] | None) -> dict[str, Any]:
    """The GA form of the beta object ``obj`` (a new dict; ``obj`` is not changed)."""
    out: dict[str, Any] = {"type": shape.ga_type} if shape.ga_type is not None else {}
    mapped: dict[str, Any] = {}
    audio: dict[str, dict[str, Any]] = {}
    for key, value in obj.items():
        if key in shape.audio:
            side, name, convert, _ = shape.audio[key]
            audio.setdefault(side, {})[name] = convert(value)
        elif key in shape.renamed:
            name, convert, _ = shape.renamed[key]
            mapped[name] = convert(value)
        elif key in shape.beta_only:
            _no_counterpart(out, key, value, f"{prefix}.{key}", dropped)
        elif key == "type" and shape.ga_type is not None:
            continue  # a GA-style marker in a beta object: ours stands
        elif key == shape.items_key:
            out[key] = map_items(value, PART_TYPES_TO_GA)
        else:
            out[key] = value
    for name, value in mapped.items():
        out.setdefault(name, value)  # a GA field given alongside its beta twin wins
    if audio:
        given = out.get("audio")
        merged = dict(given) if isinstance(given, dict) else {}
        for side, fields in audio.items():
            present = merged.get(side)
            merged[side] = {**fields, **present} if isinstance(present, dict) else fields
        out["audio"] = merged
    return out


def to_beta(obj: dict[str, Any], shape: Shape, *, prefix: str, dropped: list[str] | None) -> dict[str, Any]:
    """The beta form of the GA object ``obj`` (a new dict; ``obj`` is not changed)."""
    out: dict[str, Any] = {}
    mapped: dict[str, Any] = {}
    leftover: dict[str, Any] = {}  # parts of ``audio`` with no beta counterpart
    for key, value in obj.items():
        if key == "audio" and isinstance(value, dict):
            _flatten_audio(value, shape, mapped, leftover)
        elif key == "audio" and value is None:
            continue  # nothing set
        elif key == "audio":
            _no_counterpart(out, key, value, f"{prefix}.audio", dropped)
        elif key in shape.renamed_to_beta:
            name, convert = shape.renamed_to_beta[key]
            mapped[name] = convert(value)
        elif key in shape.ga_only:
            _no_counterpart(out, key, value, f"{prefix}.{key}", dropped)
        elif key == "type" and shape.ga_type is not None:
            continue  # beta objects carry no ``type``: the event says what they are
        elif key == shape.items_key:
            out[key] = map_items(value, PART_TYPES_TO_BETA)
        else:
            out[key] = value
    for name, value in mapped.items():
        out.setdefault(name, value)  # a beta field given alongside its GA twin wins
    if leftover:
        if dropped is None:
            out["audio"] = leftover
        else:
            dropped.extend(_paths(f"{prefix}.audio", leftover))
    return out


def _flatten_audio(
    audio: dict[str, Any], shape: Shape, mapped: dict[str, Any], leftover: dict[str, Any]
) -> None:
    for side, fields in audio.items():
        if fields is None:
            continue
        if not isinstance(fields, dict):
            leftover[side] = fields
            continue
        for key, value in fields.items():
            target = shape.audio_to_beta.get((side, key))
            if target is None:
                leftover.setdefault(side, {})[key] = value
            else:
                name, convert = target
                mapped[name] = convert(value)


def _paths(prefix: str, leftover: dict[str, Any]) -> list[str]:
    paths = []
    for side, fields in leftover.items():
        if isinstance(fields, dict) and fields:
            paths.extend(f"{prefix}.{side}.{key}" for key in fields)
        else:
            paths.append(f"{prefix}.{side}")
    return paths
