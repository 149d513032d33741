"""Server -> client events of the beta protocol (`OpenAI-Beta: realtime=v1`).

Beta shares most events with GA (`server.SHARED_SERVER_EVENTS`); here are the beta stream
names (`response.text.*`, `response.audio.*`, `response.audio_transcript.*`) and the events
whose payload is a beta session, item or response.
"""

from typing import Literal

from .common import EventModel, ServerEvent, index_by_type
from .items import ConversationItem
from .response import BetaResponse
from .server import (
    SHARED_SERVER_EVENTS,
    ContentStreamFields,
    DeltaFields,
    FunctionCallArgumentsDoneFields,
    OutputItemFields,
)
from .session import BetaSession, BetaTranscriptionSession


class BetaSessionCreatedEvent(ServerEvent):
    type: Literal["session.created"]
    session: BetaSession


class BetaSessionUpdatedEvent(ServerEvent):
    type: Literal["session.updated"]
    session: BetaSession


class BetaTranscriptionSessionCreatedEvent(ServerEvent):
    type: Literal["transcription_session.created"]
    session: BetaTranscriptionSession


class BetaTranscriptionSessionUpdatedEvent(ServerEvent):
    type: Literal["transcription_session.updated"]
    session: BetaTranscriptionSession


class BetaConversationItemCreatedEvent(ServerEvent):
    type: Literal["conversation.item.created"]
    item: ConversationItem
    previous_item_id: str | None = None


class BetaConversationItemRetrievedEvent(ServerEvent):
    type: Literal["conversation.item.retrieved"]
    item: ConversationItem


class BetaResponseCreatedEvent(ServerEvent):
    type: Literal["response.created"]
    response: BetaResponse


class BetaResponseDoneEvent(ServerEvent):
    type: Literal["response.done"]
    response: BetaResponse


class BetaResponseOutputItemAddedEvent(OutputItemFields):
    type: Literal["response.output_item.added"]
    item: ConversationItem


class BetaResponseOutputItemDoneEvent(OutputItemFields):
    type: Literal["response.output_item.done"]
    item: ConversationItem


class BetaResponseFunctionCallArgumentsDoneEvent(FunctionCallArgumentsDoneFields):
    """Beta has no `name` here (GA added it)."""

    type: Literal["response.function_call_arguments.done"]
    name: str | None = None


class ResponseTextDeltaEvent(DeltaFields):
    type: Literal["response.text.delta"]


class ResponseTextDoneEvent(ContentStreamFields):
    type: Literal["response.text.done"]
    text: str


class ResponseAudioDeltaEvent(DeltaFields):
    type: Literal["response.audio.delta"]


class ResponseAudioDoneEvent(ContentStreamFields):
    type: Literal["response.audio.done"]


class ResponseAudioTranscriptDeltaEvent(DeltaFields):
    type: Literal["response.audio_transcript.delta"]


class ResponseAudioTranscriptDoneEvent(ContentStreamFields):
    type: Literal["response.audio_transcript.done"]
    transcript: str


BETA_SERVER_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    *SHARED_SERVER_EVENTS,
    BetaSessionCreatedEvent,
    BetaSessionUpdatedEvent,
    BetaTranscriptionSessionCreatedEvent,
    BetaTranscriptionSessionUpdatedEvent,
    BetaConversationItemCreatedEvent,
    BetaConversationItemRetrievedEvent,
    BetaResponseCreatedEvent,
    BetaResponseDoneEvent,
    BetaResponseOutputItemAddedEvent,
    BetaResponseOutputItemDoneEvent,
    BetaResponseFunctionCallArgumentsDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
)
"""Beta server event type name -> model."""
