"""The response object (`response.created` / `response.done`) and `response.create` parameters."""

from typing import Any

from .common import EventModel, LooseError, Usage
from .items import ConversationItem, GAConversationItem
from .session import AudioConfig, MaxTokens, Tool, ToolChoice


class ResponseStatusDetails(EventModel):
    """Why a response ended `cancelled`, `incomplete` or `failed`."""

    type: str | None = None
    reason: str | None = None
    error: LooseError | None = None


class _ResponseBody(EventModel):
    id: str | None = None
    object: str | None = None
    status: str | None = None
    status_details: ResponseStatusDetails | None = None
    conversation_id: str | None = None
    metadata: dict[str, Any] | None = None
    usage: Usage | None = None
    max_output_tokens: MaxTokens | None = None


class Response(_ResponseBody):
    """GA response object (`output_modalities`, `audio.output`)."""

    output: list[GAConversationItem] | None = None
    output_modalities: list[str] | None = None
    audio: AudioConfig | None = None


class BetaResponse(_ResponseBody):
    """Beta response object (`modalities`, `voice`, `output_audio_format`)."""

    output: list[ConversationItem] | None = None
    modalities: list[str] | None = None
    voice: str | None = None
    output_audio_format: str | None = None
    temperature: float | None = None


class ResponseParams(EventModel):
    """The `response` of a `response.create`; GA and beta fields, all optional."""

    conversation: str | None = None
    input: list[ConversationItem] | None = None
    instructions: str | None = None
    metadata: dict[str, Any] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    prompt: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    # GA
    output_modalities: list[str] | None = None
    audio: AudioConfig | None = None
    max_output_tokens: MaxTokens | None = None
    # beta
    modalities: list[str] | None = None
    voice: str | None = None
    output_audio_format: str | None = None
    temperature: float | None = None
    max_response_output_tokens: MaxTokens | None = None
