"""Client events of realtime translation (``/v1/realtime/translations``), from the SDK's types.

Written from ``openai.types.realtime.RealtimeTranslationClientEvent``; ``tests/unit/test_events.py``
checks them against it. Its errors are Realtime's (``RealtimeErrorEvent``).
"""

from __future__ import annotations

from typing import Literal

from .common import ClientEvent, EventModel, index_by_type


class NoiseReduction(EventModel):
    type: Literal["near_field", "far_field"]
    strength: float | None = None


class InputTranscription(EventModel):
    model: str


class TranslationAudioInput(EventModel):
    noise_reduction: NoiseReduction | None = None
    transcription: InputTranscription | None = None


class TranslationAudioOutput(EventModel):
    language: str | None = None


class TranslationAudio(EventModel):
    input: TranslationAudioInput | None = None
    output: TranslationAudioOutput | None = None


class TranslationSessionUpdate(EventModel):
    """What ``session.update`` may change: the output language, transcription, noise reduction."""

    audio: TranslationAudio | None = None


class TranslationSessionUpdateEvent(ClientEvent):
    type: Literal["session.update"]
    session: TranslationSessionUpdate


class TranslationInputAudioAppendEvent(ClientEvent):
    type: Literal["session.input_audio_buffer.append"]
    audio: str


class TranslationSessionCloseEvent(ClientEvent):
    type: Literal["session.close"]


TRANSLATION_CLIENT_EVENT_MODELS: dict[str, type[EventModel]] = index_by_type(
    TranslationSessionUpdateEvent, TranslationInputAudioAppendEvent, TranslationSessionCloseEvent
)
"""Client event type name -> model, for ``/v1/realtime/translations``."""
