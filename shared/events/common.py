"""Shared building blocks: base models, error objects, usage, log-probs, rate limits."""

import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EventModel(BaseModel):
    """Base of every model here: unknown fields are accepted and kept."""

    model_config = ConfigDict(extra="allow")


class ClientEvent(EventModel):
    """A client -> server event; `event_id` is optional."""

    type: str
    event_id: str | None = None


class ServerEvent(EventModel):
    """A server -> client event; the server always sets `event_id`."""

    type: str
    event_id: str


def type_literal(model: type[EventModel]) -> str:
    """The single `type` literal a concrete model declares."""
    (name,) = typing.get_args(model.model_fields["type"].annotation)
    return name


def index_by_type(*models: type[EventModel]) -> dict[str, type[EventModel]]:
    """Map each model's `type` literal to the model; duplicates are a bug."""
    table: dict[str, type[EventModel]] = {}
    for model in models:
        name = type_literal(model)
        if name in table:
            raise ValueError(f"two models for event type {name!r}")
        table[name] = model
    return table


# --- errors -----------------------------------------------------------------


class ErrorDetail(EventModel):
    """The `error` object of an `error` event."""

    type: str
    message: str
    code: str | None = None
    param: str | None = None
    event_id: str | None = None


class LooseError(EventModel):
    """An error object whose fields are all optional (transcription, response status)."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None


# --- usage, log-probs, rate limits ------------------------------------------


class InputTokenDetails(EventModel):
    text_tokens: int | None = None
    audio_tokens: int | None = None
    image_tokens: int | None = None
    cached_tokens: int | None = None
    cached_tokens_details: dict[str, Any] | None = None


class OutputTokenDetails(EventModel):
    text_tokens: int | None = None
    audio_tokens: int | None = None


class Usage(EventModel):
    """Token usage of a response (in `response.done`)."""

    total_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_token_details: InputTokenDetails | None = None
    output_token_details: OutputTokenDetails | None = None


class TranscriptionTokenUsage(EventModel):
    """Usage of a token-billed input transcription."""

    type: Literal["tokens"]
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: InputTokenDetails | None = None


class TranscriptionDurationUsage(EventModel):
    """Usage of a duration-billed input transcription."""

    type: Literal["duration"]
    seconds: float


class LogProb(EventModel):
    token: str
    logprob: float
    bytes: list[int]


class RateLimit(EventModel):
    name: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None


TranscriptionUsage = Annotated[
    TranscriptionTokenUsage | TranscriptionDurationUsage, Field(discriminator="type")
]
"""`usage` of `conversation.item.input_audio_transcription.completed`."""
