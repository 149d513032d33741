"""The simulated GA session object: its defaults and how ``session.update`` changes it.

Updates merge into the session (deeply for ``audio``), as OpenAI does; the flat beta fields
(``modalities``, ``voice``, ``turn_detection``, ``input_audio_transcription``, formats) are mapped
onto their GA places so a beta-style client still gets a sensible session.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_INSTRUCTIONS = (
    "You are the realtime gateway's simulator, a stand-in for a realtime model: "
    "you echo what you receive and point to provider=openai for real answers."
)

_TOP_LEVEL = frozenset(
    {
        "instructions",
        "output_modalities",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "truncation",
        "prompt",
        "include",
    }
)
_IGNORED = frozenset(
    {"type", "id", "object", "model", "expires_at", "client_secret", "temperature", "reasoning"}
)
_BETA_FORMATS = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 300}


class SessionUpdateError(ValueError):
    """A field of ``session.update`` the simulator cannot take; ``param`` names it."""

    def __init__(self, code: str, message: str, param: str) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def server_vad(**fields: Any) -> dict[str, Any]:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
        **fields,
    }


def default_session(session_id: str, model: str) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": server_vad(),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
    }


def normalize_format(value: Any) -> Any:
    """A GA format object for ``value`` (GA object or beta string); the sample rate filled in."""
    if isinstance(value, str):
        return dict(_BETA_FORMATS.get(value, {"type": value}))
    if isinstance(value, dict) and value.get("type", "audio/pcm") == "audio/pcm":
        return {"type": "audio/pcm", "rate": 24000, **value}
    return value


def _turn_detection(current: Any, value: Any) -> Any:
    """A changed type starts from that type's defaults; the same type merges into what is set."""
    if not isinstance(value, dict):
        return None
    kind = value.get("type", current.get("type") if isinstance(current, dict) else "server_vad")
    if isinstance(current, dict) and current.get("type") == kind:
        return {**current, **value}
    if kind == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
            **value,
        }
    return server_vad(**value)


def _merge_audio(session: dict[str, Any], audio: dict[str, Any]) -> None:
    for side in ("input", "output"):
        given = audio.get(side)
        if not isinstance(given, dict):
            continue
        target = session["audio"][side]
        for key, value in given.items():
            if key == "format":
                target[key] = normalize_format(value)
            elif key == "turn_detection":
                target[key] = _turn_detection(target.get(key), value)
            else:
                target[key] = copy.deepcopy(value)


def _beta_to_ga(update: dict[str, Any]) -> dict[str, Any]:
    """The GA form of the beta flat fields present in ``update``."""
    ga: dict[str, Any] = {}
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    if "modalities" in update:
        modalities = update["modalities"] or []
        ga["output_modalities"] = ["audio"] if "audio" in modalities else ["text"]
    if "max_response_output_tokens" in update:
        ga["max_output_tokens"] = update["max_response_output_tokens"]
    for beta, ga_key, target in (
        ("turn_detection", "turn_detection", audio_in),
        ("input_audio_transcription", "transcription", audio_in),
        ("input_audio_noise_reduction", "noise_reduction", audio_in),
        ("input_audio_format", "format", audio_in),
        ("output_audio_format", "format", audio_out),
        ("voice", "voice", audio_out),
        ("speed", "speed", audio_out),
    ):
        if beta in update:
            target[ga_key] = update[beta]
    if audio_in or audio_out:
        ga["audio"] = {"input": audio_in, "output": audio_out}
    return ga


_BETA_FIELDS = frozenset(
    {
        "modalities",
        "max_response_output_tokens",
        "turn_detection",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "input_audio_format",
        "output_audio_format",
        "voice",
        "speed",
    }
)


def apply_update(session: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge ``update`` (a ``session.update`` ``session`` object) into ``session``, in place.

    Raises :class:`SessionUpdateError`, leaving ``session`` unchanged, for a transcription session
    type or an unknown field (OpenAI answers ``unknown_parameter`` for those too).
    """
    if update.get("type", "realtime") != "realtime":
        raise SessionUpdateError(
            "invalid_value",
            f"Invalid value: '{update.get('type')}'. This session is a realtime session; "
            "the simulator does not simulate transcription sessions.",
            "session.type",
        )
    for key in update:
        if key not in _TOP_LEVEL and key not in _IGNORED and key not in _BETA_FIELDS and key != "audio":
            raise SessionUpdateError(
                "unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}"
            )
    for key, value in update.items():
        if key in _TOP_LEVEL:
            session[key] = copy.deepcopy(value)
    beta = _beta_to_ga(update)
    if "output_modalities" in beta and "output_modalities" not in update:
        session["output_modalities"] = beta["output_modalities"]
    if "max_output_tokens" in beta and "max_output_tokens" not in update:
        session["max_output_tokens"] = beta["max_output_tokens"]
    if "audio" in beta:
        _merge_audio(session, beta["audio"])
    if isinstance(update.get("audio"), dict):
        _merge_audio(session, update["audio"])


def turn_detection_settings(session: dict[str, Any]) -> dict[str, Any] | None:
    """The VAD parameters in force (semantic_vad approximated by energy VAD), None when off."""
    td = session["audio"]["input"].get("turn_detection")
    if not isinstance(td, dict):
        return None
    if td.get("type") == "semantic_vad":
        silence = _SEMANTIC_SILENCE_MS.get(td.get("eagerness") or "auto", 500)
        return {**server_vad(), **td, "silence_duration_ms": silence}
    settings = server_vad(**td)
    for key, default in (("threshold", 0.5), ("prefix_padding_ms", 300), ("silence_duration_ms", 500)):
        if not isinstance(settings.get(key), int | float):
            settings[key] = default
    return settings
