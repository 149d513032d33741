"""Client -> server events (GA and beta share the names; beta adds `transcription_session.update`).

Nested objects are loose so one model serves both protocols; the event-level required fields
are exactly the protocol's.
"""

from typing import Literal

from .common import ClientEvent, EventModel, index_by_type
from .items import ConversationItem
from .response import ResponseParams
from .session import BetaTranscriptionSession, SessionConfig


class SessionUpdateEvent(ClientEvent):
    type: Literal["session.update"]
    session: SessionConfig


class TranscriptionSessionUpdateEvent(ClientEvent):
    """Beta only (GA uses `session.update` with `session.type == "transcription"`)."""

    type: Literal["transcription_session.update"]
    session: BetaTranscriptionSession


class InputAudioBufferAppendEvent(ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: str
    """Base64-encoded audio bytes."""


class InputAudioBufferCommitEvent(ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClearEvent(ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class OutputAudioBufferClearEvent(ClientEvent):
    """WebRTC/SIP only: cut off the audio being played out."""

    type: Literal["output_audio_buffer.clear"]


class ConversationItemCreateEvent(ClientEvent):
    type: Literal["conversation.item.create"]
    item: ConversationItem
    previous_item_id: str | None = None


class ConversationItemRetrieveEvent(ClientEvent):
    type: Literal["conversation.item.retrieve"]
    item_id: str


class ConversationItemTruncateEvent(ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int
    audio_end_ms: int


class ConversationItemDeleteEvent(ClientEvent):
    type: Literal["conversation.item.delete"]
    item_id: str


class ResponseCreateEvent(ClientEvent):
    type: Literal["response.create"]
    response: ResponseParams | None = None


class ResponseCancelEvent(ClientEvent):
    type: Literal["response.cancel"]
    response_id: str | None = None


CLIENT_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    SessionUpdateEvent,
    TranscriptionSessionUpdateEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferClearEvent,
    OutputAudioBufferClearEvent,
    ConversationItemCreateEvent,
    ConversationItemRetrieveEvent,
    ConversationItemTruncateEvent,
    ConversationItemDeleteEvent,
    ResponseCreateEvent,
    ResponseCancelEvent,
)
"""Client event type name -> model."""
