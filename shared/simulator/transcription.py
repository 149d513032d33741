"""Input audio transcription of a committed user turn, when the session configures one.

It runs beside the response, as OpenAI's does (a separate ASR model), so its events arrive a
little after the commit: 200 ms at ``pace`` 1. The "transcript" says how much audio there was.
"""

from __future__ import annotations

import math

from . import events
from .conversation import Conversation
from .events import Event

DELAY_S = 0.2


class TranscriptionStream:
    """One ``conversation.item.input_audio_transcription`` delta and completion, due at ``next_due``."""

    in_conversation = False  # never blocks responses, never cancelled

    def __init__(
        self, item_id: str, audio_ms: float, model: str, conversation: Conversation, now: float, pace: float
    ) -> None:
        self.item_id = item_id
        self.audio_ms = audio_ms
        self.model = model
        self.conversation = conversation
        self.next_due: float | None = now + pace * DELAY_S

    def _usage(self, transcript: str) -> dict[str, object]:
        if self.model.startswith("whisper"):
            return {"type": "duration", "seconds": round(self.audio_ms / 1000, 1)}
        audio = math.ceil(self.audio_ms / 100)
        text = (len(transcript) + 3) // 4
        return {
            "type": "tokens",
            "input_tokens": audio,
            "output_tokens": text,
            "total_tokens": audio + text,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
        }

    def step(self) -> list[Event]:
        self.next_due = None
        transcript = f"({self.audio_ms / 1000:.1f} seconds of audio)"
        stored = self.conversation.get(self.item_id)
        if stored is not None:
            for part in stored.item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "input_audio":
                    part["transcript"] = transcript
        return [
            events.transcription_delta(self.item_id, 0, transcript),
            events.transcription_completed(self.item_id, 0, transcript, self._usage(transcript)),
        ]
