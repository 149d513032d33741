"""Server -> client events of the GA protocol (many are shared verbatim with beta).

GA renamed the output streams: `response.output_text.*`, `response.output_audio.*` and
`response.output_audio_transcript.*` (beta: `response.text.*`, `response.audio.*`,
`response.audio_transcript.*`). `server_beta.py` holds the beta-only names and shapes.
"""

from typing import Literal

from .common import (
    ErrorDetail,
    EventModel,
    LogProb,
    LooseError,
    RateLimit,
    ServerEvent,
    TranscriptionUsage,
    index_by_type,
)
from .items import ContentPart, GAConversationItem
from .response import Response
from .session import GASession, TranscriptionSessionBody

# --- field groups reused by several events (and by server_beta) ----------------


class ContentStreamFields(ServerEvent):
    """Locates a content part: response, output item, content index."""

    response_id: str
    item_id: str
    output_index: int
    content_index: int


class DeltaFields(ContentStreamFields):
    delta: str


class OutputItemFields(ServerEvent):
    response_id: str
    output_index: int


class FunctionCallArgumentsDoneFields(ServerEvent):
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    arguments: str


class OutputAudioBufferFields(ServerEvent):
    response_id: str


class ConversationInfo(EventModel):
    id: str | None = None
    object: str | None = None


# --- shared by GA and beta -------------------------------------------------------


class ErrorEvent(ServerEvent):
    type: Literal["error"]
    error: ErrorDetail


class ConversationCreatedEvent(ServerEvent):
    type: Literal["conversation.created"]
    conversation: ConversationInfo


class ConversationItemDeletedEvent(ServerEvent):
    type: Literal["conversation.item.deleted"]
    item_id: str


class ConversationItemTruncatedEvent(ServerEvent):
    type: Literal["conversation.item.truncated"]
    item_id: str
    content_index: int
    audio_end_ms: int


class ConversationItemInputAudioTranscriptionDeltaEvent(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"]
    item_id: str
    content_index: int | None = None
    delta: str | None = None
    logprobs: list[LogProb] | None = None


class ConversationItemInputAudioTranscriptionCompletedEvent(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"]
    item_id: str
    content_index: int
    transcript: str
    usage: TranscriptionUsage
    logprobs: list[LogProb] | None = None
    languages: list[str] | None = None


class ConversationItemInputAudioTranscriptionFailedEvent(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"]
    item_id: str
    content_index: int
    error: LooseError


class InputAudioBufferCommittedEvent(ServerEvent):
    type: Literal["input_audio_buffer.committed"]
    item_id: str
    previous_item_id: str | None = None


class InputAudioBufferClearedEvent(ServerEvent):
    type: Literal["input_audio_buffer.cleared"]


class InputAudioBufferSpeechStartedEvent(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"]
    item_id: str
    audio_start_ms: int


class InputAudioBufferSpeechStoppedEvent(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"]
    item_id: str
    audio_end_ms: int


class OutputAudioBufferStartedEvent(OutputAudioBufferFields):
    type: Literal["output_audio_buffer.started"]


class OutputAudioBufferStoppedEvent(OutputAudioBufferFields):
    type: Literal["output_audio_buffer.stopped"]


class OutputAudioBufferClearedEvent(OutputAudioBufferFields):
    type: Literal["output_audio_buffer.cleared"]


class RateLimitsUpdatedEvent(ServerEvent):
    type: Literal["rate_limits.updated"]
    rate_limits: list[RateLimit]


class ResponseContentPartAddedEvent(ContentStreamFields):
    type: Literal["response.content_part.added"]
    part: ContentPart


class ResponseContentPartDoneEvent(ContentStreamFields):
    type: Literal["response.content_part.done"]
    part: ContentPart


class ResponseFunctionCallArgumentsDeltaEvent(ServerEvent):
    type: Literal["response.function_call_arguments.delta"]
    response_id: str
    item_id: str
    output_index: int
    call_id: str
    delta: str


SHARED_SERVER_EVENTS: tuple[type[EventModel], ...] = (
    ErrorEvent,
    ConversationCreatedEvent,
    ConversationItemDeletedEvent,
    ConversationItemTruncatedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    OutputAudioBufferStartedEvent,
    OutputAudioBufferStoppedEvent,
    OutputAudioBufferClearedEvent,
    RateLimitsUpdatedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
)
"""Events whose name and shape are the same in GA and beta."""


# --- GA only (or GA shape) ----------------------------------------------------------


class SessionCreatedEvent(ServerEvent):
    type: Literal["session.created"]
    session: GASession


class SessionUpdatedEvent(ServerEvent):
    type: Literal["session.updated"]
    session: GASession


class TranscriptionSessionCreatedEvent(ServerEvent):
    """Legacy (early GA builds); GA now sends `session.created` for transcription sessions."""

    type: Literal["transcription_session.created"]
    session: TranscriptionSessionBody


class TranscriptionSessionUpdatedEvent(ServerEvent):
    """Legacy: early GA builds; current GA reports `session.updated`."""

    type: Literal["transcription_session.updated"]
    session: TranscriptionSessionBody


class ConversationItemAddedEvent(ServerEvent):
    type: Literal["conversation.item.added"]
    item: GAConversationItem
    previous_item_id: str | None = None


class ConversationItemDoneEvent(ServerEvent):
    type: Literal["conversation.item.done"]
    item: GAConversationItem
    previous_item_id: str | None = None


class ConversationItemCreatedEvent(ServerEvent):
    type: Literal["conversation.item.created"]
    item: GAConversationItem
    previous_item_id: str | None = None


class ConversationItemRetrievedEvent(ServerEvent):
    type: Literal["conversation.item.retrieved"]
    item: GAConversationItem


class ConversationItemInputAudioTranscriptionSegmentEvent(ServerEvent):
    """A diarized transcription segment."""

    type: Literal["conversation.item.input_audio_transcription.segment"]
    id: str
    item_id: str
    content_index: int
    text: str
    speaker: str
    start: float
    end: float


class InputAudioBufferTimeoutTriggeredEvent(ServerEvent):
    type: Literal["input_audio_buffer.timeout_triggered"]
    item_id: str
    audio_start_ms: int
    audio_end_ms: int


class InputAudioBufferDtmfEventReceivedEvent(ServerEvent):
    """SIP only: a DTMF key press. Carries no `event_id` in the published schema."""

    type: Literal["input_audio_buffer.dtmf_event_received"]
    event_id: str | None = None
    event: str
    received_at: int


class ResponseCreatedEvent(ServerEvent):
    type: Literal["response.created"]
    response: Response


class ResponseDoneEvent(ServerEvent):
    type: Literal["response.done"]
    response: Response


class ResponseOutputItemAddedEvent(OutputItemFields):
    type: Literal["response.output_item.added"]
    item: GAConversationItem


class ResponseOutputItemDoneEvent(OutputItemFields):
    type: Literal["response.output_item.done"]
    item: GAConversationItem


class ResponseOutputTextDeltaEvent(DeltaFields):
    type: Literal["response.output_text.delta"]


class ResponseOutputTextDoneEvent(ContentStreamFields):
    type: Literal["response.output_text.done"]
    text: str


class ResponseOutputAudioDeltaEvent(DeltaFields):
    type: Literal["response.output_audio.delta"]


class ResponseOutputAudioDoneEvent(ContentStreamFields):
    type: Literal["response.output_audio.done"]


class ResponseOutputAudioTranscriptDeltaEvent(DeltaFields):
    type: Literal["response.output_audio_transcript.delta"]


class ResponseOutputAudioTranscriptDoneEvent(ContentStreamFields):
    type: Literal["response.output_audio_transcript.done"]
    transcript: str


class ResponseFunctionCallArgumentsDoneEvent(FunctionCallArgumentsDoneFields):
    type: Literal["response.function_call_arguments.done"]
    name: str


class ResponseMcpCallArgumentsDeltaEvent(ServerEvent):
    type: Literal["response.mcp_call_arguments.delta"]
    response_id: str
    item_id: str
    output_index: int
    delta: str
    obfuscation: str | None = None


class ResponseMcpCallArgumentsDoneEvent(ServerEvent):
    type: Literal["response.mcp_call_arguments.done"]
    response_id: str
    item_id: str
    output_index: int
    arguments: str


class McpCallFields(ServerEvent):
    item_id: str
    output_index: int


class ResponseMcpCallInProgressEvent(McpCallFields):
    type: Literal["response.mcp_call.in_progress"]


class ResponseMcpCallCompletedEvent(McpCallFields):
    type: Literal["response.mcp_call.completed"]


class ResponseMcpCallFailedEvent(McpCallFields):
    type: Literal["response.mcp_call.failed"]


class McpListToolsInProgressEvent(ServerEvent):
    type: Literal["mcp_list_tools.in_progress"]
    item_id: str


class McpListToolsCompletedEvent(ServerEvent):
    type: Literal["mcp_list_tools.completed"]
    item_id: str


class McpListToolsFailedEvent(ServerEvent):
    type: Literal["mcp_list_tools.failed"]
    item_id: str


GA_SERVER_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    *SHARED_SERVER_EVENTS,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    TranscriptionSessionCreatedEvent,
    TranscriptionSessionUpdatedEvent,
    ConversationItemAddedEvent,
    ConversationItemDoneEvent,
    ConversationItemCreatedEvent,
    ConversationItemRetrievedEvent,
    ConversationItemInputAudioTranscriptionSegmentEvent,
    InputAudioBufferTimeoutTriggeredEvent,
    InputAudioBufferDtmfEventReceivedEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextDeltaEvent,
    ResponseOutputTextDoneEvent,
    ResponseOutputAudioDeltaEvent,
    ResponseOutputAudioDoneEvent,
    ResponseOutputAudioTranscriptDeltaEvent,
    ResponseOutputAudioTranscriptDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallInProgressEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    McpListToolsInProgressEvent,
    McpListToolsCompletedEvent,
    McpListToolsFailedEvent,
)
"""GA server event type name -> model."""
