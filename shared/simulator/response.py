"""One simulated response, streamed lazily on a paced timeline.

At ``pace`` 1 the first output arrives 250 ms after ``response.create``, then one audio delta of
100 ms every 50 ms (about twice real time, as OpenAI streams) with the transcript a word at a time
alongside, or one text word every 25 ms. Delays scale with ``pace``; at 0 everything is due at
once. Nothing is generated before it is due, and nothing is kept once sent but counters.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from . import events
from .audio import AudioFormat, SpeechTrack
from .conversation import Conversation, slim
from .events import Event
from .replies import Reply, split_words, text_tokens

FIRST_OUTPUT_S = 0.25
AUDIO_DELTA_EVERY_S = 0.05
TEXT_DELTA_EVERY_S = 0.025
_OUTPUT_INDEX = 0
_CONTENT_INDEX = 0


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """The settings a response runs with: the session's, overridden by ``response.create``."""

    response_id: str
    item_id: str
    call_id: str
    modality: str  # "audio" or "text"
    audio_format: dict[str, Any]
    voice: Any
    speed: float
    max_output_tokens: Any
    metadata: Any
    input_text_tokens: int
    input_audio_tokens: int
    cached_tokens: int


class ResponseStream:
    """A response from ``response.created`` to ``response.done``; :meth:`step` when ``next_due``."""

    def __init__(
        self, spec: ResponseSpec, reply: Reply, conversation: Conversation | None, now: float, pace: float
    ) -> None:
        self.spec = spec
        self.reply = reply
        self.conversation = conversation  # None: out of band (``conversation: "none"``)
        self._t0 = now
        self._pace = pace
        self._steps = 0  # steps taken; the next is due at _due_at(_steps)
        self._started = False  # output item announced
        self._words = split_words(reply.text)
        self._said = 0  # words sent
        self._chars_said = 0
        self._word_starts: list[int] = []
        self._track: SpeechTrack | None = None
        self._chunks_sent = 0
        self._previous_item_id: str | None = None
        if reply.tool is None and spec.modality == "audio":
            self._track = SpeechTrack(reply.text, AudioFormat.of(spec.audio_format), spec.speed)
            start = 0
            for word in self._words:
                self._word_starts.append(start)
                start += len(word)
        self.next_due: float | None = now + pace * FIRST_OUTPUT_S

    @property
    def id(self) -> str:
        return self.spec.response_id

    @property
    def in_conversation(self) -> bool:
        return self.conversation is not None

    # -- the response object ---------------------------------------------------------------------

    def _response(
        self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None, details: Any = None
    ) -> dict[str, Any]:
        spec = self.spec
        return {
            "object": "realtime.response",
            "id": spec.response_id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": self.conversation.id if self.conversation is not None else None,
            "output_modalities": [spec.modality],
            "max_output_tokens": spec.max_output_tokens,
            "audio": {"output": {"format": spec.audio_format, "voice": spec.voice}},
            "usage": usage,
            "metadata": spec.metadata,
        }

    def created_event(self) -> Event:
        return events.response_created(self._response("in_progress", [], None))

    def _usage(self) -> dict[str, Any]:
        spec = self.spec
        if self.reply.tool is not None:
            out_text = text_tokens(self.reply.tool) + 6 if self._started else 0
            out_audio = 0
        else:
            out_text = text_tokens("".join(self._words[: self._said]))
            out_audio = math.ceil(self._chunks_sent * 100 / 50)  # assistant audio: a token per 50 ms
        in_total = spec.input_text_tokens + spec.input_audio_tokens
        cached = min(spec.cached_tokens, in_total)
        cached_text = min(cached, spec.input_text_tokens)
        return {
            "total_tokens": in_total + out_text + out_audio,
            "input_tokens": in_total,
            "output_tokens": out_text + out_audio,
            "input_token_details": {
                "text_tokens": spec.input_text_tokens,
                "audio_tokens": spec.input_audio_tokens,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached_text,
                    "audio_tokens": cached - cached_text,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    # -- the output item ---------------------------------------------------------------------------

    def _item(self, status: str) -> dict[str, Any]:
        spec = self.spec
        if self.reply.tool is not None:
            return {
                "id": spec.item_id,
                "object": "realtime.item",
                "type": "function_call",
                "status": status,
                "name": self.reply.tool,
                "call_id": spec.call_id,
                "arguments": "" if status == "in_progress" else "{}",
            }
        content: list[dict[str, Any]] = []
        if status != "in_progress":
            said = "".join(self._words[: self._said])
            part = "output_audio" if self._track is not None else "output_text"
            content.append(
                {"type": part, "transcript": said} if self._track else {"type": part, "text": said}
            )
        return {
            "id": spec.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _part(self) -> dict[str, Any]:
        said = "".join(self._words[: self._said])
        return {"type": "audio", "transcript": said} if self._track else {"type": "text", "text": said}

    def _at(self) -> events.Location:
        return (self.spec.response_id, self.spec.item_id, _OUTPUT_INDEX, _CONTENT_INDEX)

    def _start(self) -> list[Event]:
        self._started = True
        item = self._item("in_progress")
        out = [events.output_item_added(self.id, _OUTPUT_INDEX, item)]
        if self.conversation is not None:
            self._previous_item_id = self.conversation.insert(slim(item))
            out.append(events.item_added(item, self._previous_item_id))
        if self.reply.tool is None:
            out.append(events.content("response.content_part.added", self._at(), part=self._part()))
        return out

    def _finish_item(self, status: str) -> list[Event]:
        """The ``.done`` events of the output item, as far as it got."""
        at = self._at()
        out: list[Event] = []
        if self.reply.tool is not None:
            out.append(
                events.arguments_done(
                    self.id, self.spec.item_id, _OUTPUT_INDEX, self.spec.call_id, self.reply.tool, "{}"
                )
            )
        elif self._track is not None:
            said = "".join(self._words[: self._said])
            out.append(events.content("response.output_audio.done", at))
            out.append(events.content("response.output_audio_transcript.done", at, transcript=said))
        else:
            out.append(
                events.content("response.output_text.done", at, text="".join(self._words[: self._said]))
            )
        if self.reply.tool is None:
            out.append(events.content("response.content_part.done", at, part=self._part()))
        item = self._item(status)
        out.append(events.output_item_done(self.id, _OUTPUT_INDEX, item))
        if self.conversation is not None:
            self.conversation.replace(slim(item, self._chunks_sent * 100.0))
            out.append(events.item_done(item, self._previous_item_id))
        return out

    # -- the timeline ------------------------------------------------------------------------------

    def _due_at(self, step: int) -> float:
        every = TEXT_DELTA_EVERY_S if self._track is None else AUDIO_DELTA_EVERY_S
        return self._t0 + self._pace * (FIRST_OUTPUT_S + every * step)

    def step(self) -> list[Event]:
        """The events due at ``next_due``; afterwards ``next_due`` is the next step's time or None."""
        out = self._start() if not self._started else []
        at = self._at()
        if self.reply.tool is not None:
            if self._steps == 0:
                out.append(
                    events.arguments_delta(self.id, self.spec.item_id, _OUTPUT_INDEX, self.spec.call_id, "{}")
                )
            else:
                return self._complete(out)
        elif self._track is not None:
            track = self._track
            if self._chunks_sent >= track.chunks:
                return self._complete(out)
            reached = (self._chunks_sent + 1) * len(track.text) / track.chunks
            while self._said < len(self._words) and self._word_starts[self._said] < reached:
                word = self._words[self._said]
                out.append(events.content("response.output_audio_transcript.delta", at, delta=word))
                self._said += 1
            audio = base64.b64encode(track.chunk(self._chunks_sent)).decode("ascii")
            out.append(events.content("response.output_audio.delta", at, delta=audio))
            self._chunks_sent += 1
        else:
            if self._said >= len(self._words):
                return self._complete(out)
            out.append(events.content("response.output_text.delta", at, delta=self._words[self._said]))
            self._said += 1
        self._steps += 1
        self.next_due = self._due_at(self._steps)
        return out

    def _complete(self, out: list[Event]) -> list[Event]:
        out.extend(self._finish_item("completed"))
        item = self._item("completed")
        out.append(events.response_done(self._response("completed", [item], self._usage())))
        self.next_due = None
        return out

    def cancel(self, reason: str) -> list[Event]:
        """Stop now: close what was started as incomplete and report the response ``cancelled``."""
        out: list[Event] = []
        output: list[dict[str, Any]] = []
        if self._started:
            out.extend(self._finish_item("incomplete"))
            output.append(self._item("incomplete"))
        details = {"type": "cancelled", "reason": reason}
        out.append(events.response_done(self._response("cancelled", output, self._usage(), details)))
        self.next_due = None
        return out
