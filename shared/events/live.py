"""Client events of GPT-Live (``/v1/live/sessions``), its sideband and its forks, from the SDK's types.

Written from ``openai.types.live`` (``ClientEvent``, ``ConnectClientEvent``, ``ForkClientEvent``);
``tests/unit/test_events.py`` checks the names and the required fields against them. As for the
Realtime events, unknown fields are accepted and kept (the provider decides on them), the
event-level required fields are exactly the SDK's, and nested objects are typed as far as a wrong
shape is cheap to tell: the session's model, audio format, voice, delegation and initial items.

Three vocabularies share the models: the primary socket (``session.start`` first, audio appends),
a sideband attached to a running session (no ``session.start``, no audio, but
``transport.dtmf.send``), and a fork (``session.start`` with the fork's overrides).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .common import ClientEvent, EventModel, index_by_type

# -- session configuration ---------------------------------------------------------------------------


class PcmFormat(EventModel):
    type: Literal["audio/pcm"]
    rate: Literal[16000, 24000]


class G711Format(EventModel):
    type: Literal["audio/pcmu", "audio/pcma"]
    rate: int


AudioFormat = Annotated[PcmFormat | G711Format, Field(discriminator="type")]


class CustomVoice(EventModel):
    id: str


class AudioOutput(EventModel):
    voice: str | CustomVoice | None = None


class Audio(EventModel):
    format: AudioFormat | None = None
    output: AudioOutput | None = None


class ForkAudio(EventModel):
    format: AudioFormat | None = None


class ClientConfig(EventModel):
    data_channel: dict[str, Any]


class ClientDelegation(EventModel):
    type: Literal["client"]
    acknowledgement_delay_ms: int | None = None


class ResponsesBackend(EventModel):
    """``ResponsesDelegationConfig``: the backend model and its prompt and tools (kept loose)."""

    model: str


class DecisionsBackend(EventModel):
    model: str
    questions: list[dict[str, Any]]


class ResponsesDelegation(EventModel):
    type: Literal["responses"]
    responses: ResponsesBackend
    acknowledgement_delay_ms: int | None = None


class DecisionsDelegation(EventModel):
    type: Literal["decisions"]
    decisions: DecisionsBackend
    acknowledgement_delay_ms: int | None = None


Delegation = Annotated[
    ClientDelegation | ResponsesDelegation | DecisionsDelegation, Field(discriminator="type")
]


class ResponsesDelegationUpdate(EventModel):
    type: Literal["responses"]
    responses: dict[str, Any] | None = None
    acknowledgement_delay_ms: int | None = None


class DecisionsDelegationUpdate(EventModel):
    type: Literal["decisions"]
    decisions: dict[str, Any] | None = None
    acknowledgement_delay_ms: int | None = None


DelegationUpdate = Annotated[
    ClientDelegation | ResponsesDelegationUpdate | DecisionsDelegationUpdate, Field(discriminator="type")
]


class TextPart(EventModel):
    text: str
    type: str | None = None


class InitialItem(EventModel):
    """A developer, user or assistant message of the history supplied before startup."""

    role: Literal["developer", "user", "assistant"]
    content: list[TextPart]
    id: str | None = None
    status: Literal["incomplete", "completed"] | None = None
    type: Literal["message"] | None = None


class DecisionTrigger(EventModel):
    type: Literal["decisions"]
    event_type: Literal["session.input_transcript.delta", "session.output_transcript.delta"]
    decisions: dict[str, Any]


class SessionConfig(EventModel):
    """The ``session`` of ``session.start`` on a primary socket: ``model`` is required."""

    model: str
    audio: Audio | None = None
    client: ClientConfig | None = None
    delegation: Delegation | None = None
    input: list[InitialItem] | None = None
    instructions: str | None = None
    safety_identifier: str | None = None
    store: bool | None = None
    triggers: list[DecisionTrigger] | None = None


class ForkDelegation(EventModel):
    type: Literal["responses"]
    responses: dict[str, Any] | None = None
    acknowledgement_delay_ms: int | None = None


class ForkSessionConfig(EventModel):
    """The ``session`` of a fork's ``session.start``: overrides only (an empty object inherits)."""

    audio: ForkAudio | None = None
    client: ClientConfig | None = None
    delegation: ForkDelegation | None = None
    store: bool | None = None


class SessionUpdateConfig(EventModel):
    delegation: DelegationUpdate | None = None
    triggers: list[DecisionTrigger] | None = None


class Item(EventModel):
    """A decision or Responses input item: kept loose (the provider checks its many shapes)."""


# -- client events -----------------------------------------------------------------------------------


class SessionStartEvent(ClientEvent):
    type: Literal["session.start"]
    session: SessionConfig


class ForkSessionStartEvent(ClientEvent):
    type: Literal["session.start"]
    session: ForkSessionConfig


class SessionUpdateEvent(ClientEvent):
    type: Literal["session.update"]
    session: SessionUpdateConfig


class InputAudioAppendEvent(ClientEvent):
    type: Literal["session.input_audio.append"]
    audio: str


class InputAudioMuteEvent(ClientEvent):
    type: Literal["session.input_audio.mute"]


class InputAudioUnmuteEvent(ClientEvent):
    type: Literal["session.input_audio.unmute"]


class OutputAudioFixturePlayEvent(ClientEvent):
    type: Literal["session.output_audio.fixture.play"]
    audio: str


class InstructionsAppendEvent(ClientEvent):
    type: Literal["session.instructions.append"]
    content: str
    delegation_id: str | None = None


class ThinkingAppendEvent(ClientEvent):
    type: Literal["session.thinking.append"]
    content: str
    delegation_id: str | None = None


class CommentaryAppendEvent(ClientEvent):
    type: Literal["session.commentary.append"]
    content: str
    delegation_id: str | None = None


class DecisionCreateEvent(ClientEvent):
    type: Literal["decision.create"]
    event_id: str  # required here: reusing one is how the provider refuses a repeated evaluation


class DecisionItemCreateEvent(ClientEvent):
    type: Literal["decision.item.create"]
    item: Item


class DecisionItemDeleteEvent(ClientEvent):
    type: Literal["decision.item.delete"]
    item_id: str


class ResponseItemCreateEvent(ClientEvent):
    type: Literal["response.item.create"]
    item: Item


class ResponseCreateEvent(ClientEvent):
    type: Literal["response.create"]


class SessionCloseEvent(ClientEvent):
    type: Literal["session.close"]


class TransportDtmfSendEvent(ClientEvent):
    """Sideband only, SIP calls only: one DTMF keypress."""

    type: Literal["transport.dtmf.send"]
    event: str


# Commands every Live socket takes once its session runs.
_COMMANDS = (
    SessionUpdateEvent,
    InputAudioMuteEvent,
    InputAudioUnmuteEvent,
    OutputAudioFixturePlayEvent,
    InstructionsAppendEvent,
    ThinkingAppendEvent,
    CommentaryAppendEvent,
    DecisionCreateEvent,
    DecisionItemCreateEvent,
    DecisionItemDeleteEvent,
    ResponseItemCreateEvent,
    ResponseCreateEvent,
    SessionCloseEvent,
)

LIVE_CLIENT_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    SessionStartEvent, InputAudioAppendEvent, *_COMMANDS
)
"""``openai.types.live.ClientEvent``: the primary socket (``/v1/live/sessions``)."""

LIVE_SIDEBAND_CLIENT_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    TransportDtmfSendEvent, *_COMMANDS
)
"""``openai.types.live.ConnectClientEvent``: a sideband (``/v1/live/sessions/{id}/attach``)."""

LIVE_FORK_CLIENT_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    ForkSessionStartEvent, InputAudioAppendEvent, *_COMMANDS
)
"""``openai.types.live.ForkClientEvent``: a fork (``/v1/live/sessions/{id}/fork``)."""
