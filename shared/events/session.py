"""Session configuration shapes: GA (`audio.input`/`audio.output`, `session.type`) and beta (flat).

GA sessions carry `type: "realtime" | "transcription"`; beta sessions have no `type`. That is
how `SessionConfig` (the `session` of a `session.update`) tells them apart.
"""

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from .common import EventModel

MaxTokens = int | Literal["inf"]
"""A token limit, or `"inf"`."""

ToolChoice = str | dict[str, Any]
"""`"auto"`/`"none"`/`"required"` or `{"type": "function"|"mcp", ...}`."""


class Tool(EventModel):
    """A function tool (`type: "function"`) or, in GA, an MCP tool (`type: "mcp"`)."""

    type: str | None = None
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    server_label: str | None = None
    server_url: str | None = None


# --- pieces shared by both protocols -----------------------------------------


class NoiseReduction(EventModel):
    type: str | None = None
    strength: float | None = None


class InputTranscription(EventModel):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class TurnDetection(EventModel):
    """`server_vad` or `semantic_vad` settings."""

    type: str | None = None
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    idle_timeout_ms: int | None = None
    eagerness: str | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


# --- GA ----------------------------------------------------------------------


class AudioFormat(EventModel):
    """GA audio format object, e.g. `{"type": "audio/pcm", "rate": 24000}`."""

    type: str | None = None
    rate: int | None = None


class AudioInput(EventModel):
    format: AudioFormat | None = None
    noise_reduction: NoiseReduction | None = None
    transcription: InputTranscription | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(EventModel):
    format: AudioFormat | None = None
    voice: str | dict[str, Any] | None = None
    speed: float | None = None


class AudioConfig(EventModel):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class TranscriptionSessionBody(EventModel):
    """Fields of a GA transcription session (also the legacy `transcription_session.*` shape)."""

    id: str | None = None
    object: str | None = None
    expires_at: int | None = None
    audio: AudioConfig | None = None
    include: list[str] | None = None


class TranscriptionSession(TranscriptionSessionBody):
    """GA transcription-only session (`session.type == "transcription"`)."""

    type: Literal["transcription"]


class RealtimeSession(EventModel):
    """GA speech-to-speech session (`session.type == "realtime"`)."""

    type: Literal["realtime"]
    id: str | None = None
    object: str | None = None
    model: str | None = None
    expires_at: int | None = None
    instructions: str | None = None
    output_modalities: list[str] | None = None
    audio: AudioConfig | None = None
    include: list[str] | None = None
    max_output_tokens: MaxTokens | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    tracing: str | dict[str, Any] | None = None
    truncation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None


GASession = Annotated[RealtimeSession | TranscriptionSession, Field(discriminator="type")]
"""A GA session as the server reports it: `type` is required."""


# --- beta --------------------------------------------------------------------


class BetaSession(EventModel):
    """Beta session: flat audio settings, `modalities`, `voice`, `temperature`."""

    id: str | None = None
    object: str | None = None
    model: str | None = None
    expires_at: int | None = None
    instructions: str | None = None
    modalities: list[str] | None = None
    voice: str | None = None
    speed: float | None = None
    input_audio_format: str | None = None
    output_audio_format: str | None = None
    input_audio_transcription: InputTranscription | None = None
    input_audio_noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    temperature: float | None = None
    max_response_output_tokens: MaxTokens | None = None
    tracing: str | dict[str, Any] | None = None
    include: list[str] | None = None
    client_secret: dict[str, Any] | None = None


class BetaTranscriptionSession(EventModel):
    """Beta transcription session (`transcription_session.update` / `.created` / `.updated`)."""

    id: str | None = None
    object: str | None = None
    expires_at: int | None = None
    modalities: list[str] | None = None
    input_audio_format: str | None = None
    input_audio_transcription: InputTranscription | None = None
    input_audio_noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None
    include: list[str] | None = None
    client_secret: dict[str, Any] | None = None


def _session_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None:
        return "beta"
    return "transcription" if kind == "transcription" else "realtime"


SessionConfig = Annotated[
    Annotated[RealtimeSession, Tag("realtime")]
    | Annotated[TranscriptionSession, Tag("transcription")]
    | Annotated[BetaSession, Tag("beta")],
    Discriminator(_session_tag),
]
"""The `session` of a `session.update`: GA if it has a `type`, beta otherwise."""
