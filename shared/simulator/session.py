"""The simulated realtime session: client events in, GA server event dicts out.

It holds the session object, the conversation, the input audio buffer (as counters and VAD state,
never audio) and the streams under way (responses and transcriptions). Streams are stepped in
due order by :meth:`SimSession.due`; a client event first releases what was already due, so
output stays in time order whatever the caller's polling.
"""

from __future__ import annotations

import binascii
import copy
from collections.abc import Callable
from typing import Any

from . import events
from .audio import PCM24K, AudioFormat, EnergyVad, base64_decoded_size
from .config import (
    SessionUpdateError,
    apply_update,
    default_session,
    normalize_format,
    turn_detection_settings,
)
from .conversation import Conversation, heard_in, slim
from .events import Event
from .ids import IdMaker
from .replies import Heard, plan_reply, text_tokens
from .response import ResponseSpec, ResponseStream
from .transcription import TranscriptionStream

MIN_COMMIT_MS = 100
MAX_STREAMS = 16  # responses and transcriptions under way at once: bounds per-session work
_CACHE_MIN_TOKENS = 1024  # OpenAI caches prompts from 1024 tokens, in steps of 64
Stream = ResponseStream | TranscriptionStream
Handler = Callable[[dict[str, Any], float], list[Event]]


class SimSession:
    """One simulated session; see :class:`shared.simulator.Simulator` for the interface."""

    def __init__(self, model: str, pace: float) -> None:
        self.ids = IdMaker()
        self.pace = max(0.0, pace)
        self.session = default_session(self.ids.new("sess"), model)
        self.conversation = Conversation(self.ids.new("conv"))
        self.streams: list[Stream] = []  # in creation order: ties in due time go in that order
        self.active: ResponseStream | None = None  # the response writing to the conversation
        self._last_response_id: str | None = None
        self._last_input_tokens = 0
        # Input audio buffer: session-wide sample counters, and the VAD.
        self._in_format = PCM24K
        self._written_bytes = 0
        self._buffer_start = 0  # first sample of the uncommitted buffer
        self._vad = EnergyVad()
        self._speech_item: str | None = None
        self._speech_start = 0
        self._handlers: dict[str, Handler] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_buffer,
            "input_audio_buffer.clear": self._clear_buffer,
            "conversation.item.create": self._item_create,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.delete": self._item_delete,
            "conversation.item.truncate": self._item_truncate,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._output_audio_clear,
        }

    # -- driving ---------------------------------------------------------------------------------

    def created(self) -> list[Event]:
        return [events.session_created(self.session)]

    def handle(self, event: dict[str, Any], now: float) -> list[Event]:
        kind = event.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return [
                events.error(
                    "invalid_value",
                    f"The simulator does not support '{kind}' events.",
                    param="type",
                    client_event_id=event.get("event_id"),
                )
            ]
        try:
            return handler(event, now)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a shape the gateway let through
            return [
                events.error(
                    "invalid_value",
                    f"The simulator could not handle this {kind} event ({type(exc).__name__}).",
                    client_event_id=event.get("event_id"),
                )
            ]

    def next_deadline(self) -> float | None:
        return min((s.next_due for s in self.streams if s.next_due is not None), default=None)

    def due(self, now: float) -> list[Event]:
        """Step every stream whose time has come, earliest first, until none is due by ``now``."""
        out: list[Event] = []
        while True:
            ready: Stream | None = None
            earliest = now
            for stream in self.streams:
                due = stream.next_due
                if due is not None and (due < earliest or (ready is None and due == earliest)):
                    ready, earliest = stream, due
            if ready is None:
                return out
            out.extend(ready.step())
            if ready.next_due is None:
                self._retire(ready)

    def _retire(self, stream: Stream) -> None:
        self.streams.remove(stream)
        if stream is self.active:
            self.active = None
        if isinstance(stream, ResponseStream):
            self._last_input_tokens = stream.spec.input_text_tokens + stream.spec.input_audio_tokens

    # -- session ---------------------------------------------------------------------------------

    def _session_update(self, event: dict[str, Any], now: float) -> list[Event]:
        update = event.get("session")
        if not isinstance(update, dict):
            return [self._error(event, "invalid_type", "Invalid 'session': expected an object.", "session")]
        try:
            apply_update(self.session, update)
        except SessionUpdateError as exc:
            return [self._error(event, exc.code, exc.message, exc.param)]
        fmt = AudioFormat.of(self.session["audio"]["input"].get("format"))
        if fmt != self._in_format:  # counters restart in the new format's samples
            self._in_format = fmt
            self._written_bytes = self._buffer_start = 0
            self._vad = EnergyVad()
        if turn_detection_settings(self.session) is None:
            self._vad.reset()
            self._speech_item = None
        return [events.session_updated(self.session)]

    # -- input audio -----------------------------------------------------------------------------

    @property
    def _written(self) -> int:
        return self._written_bytes // self._in_format.sample_bytes

    def _append(self, event: dict[str, Any], now: float) -> list[Event]:
        audio = event.get("audio")
        if not isinstance(audio, str):
            return [self._error(event, "invalid_type", "Invalid 'audio': expected a base64 string.", "audio")]
        vad = turn_detection_settings(self.session)
        if vad is None:
            self._written_bytes += base64_decoded_size(audio)
            return []
        data = binascii.a2b_base64(audio)
        self._written_bytes += len(data)
        out: list[Event] = []
        fmt = self._in_format
        for started, sample in self._vad.feed(
            data, fmt, self._written, float(vad["threshold"]), int(vad["silence_duration_ms"])
        ):
            if started:
                start = max(sample - fmt.samples(vad["prefix_padding_ms"]), self._buffer_start)
                self._speech_item, self._speech_start = self.ids.new("item"), start
                out.append(events.speech_started(int(fmt.ms(start)), self._speech_item))
                if vad.get("interrupt_response") is not False and self.active is not None:
                    out.extend(self._cancel(self.active, "turn_detected"))
            else:
                item_id = self._speech_item or self.ids.new("item")
                out.append(events.speech_stopped(int(fmt.ms(sample)), item_id))
                out.extend(self._commit(item_id, self._speech_start, sample, now))
                if vad.get("create_response") is not False and self.active is None:
                    out.extend(self._start_response({}, now))
        return out

    def _commit(self, item_id: str, start: int, end: int, now: float) -> list[Event]:
        """Turn buffer samples ``start``..``end`` into a user audio item (and its transcription)."""
        self._buffer_start = end
        self._speech_item = None
        audio_ms = self._in_format.ms(end - start)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self.conversation.insert(slim(item, audio_ms))
        out = [
            events.committed(item_id, previous),
            events.item_added(item, previous),
            events.item_done(item, previous),
        ]
        transcription = self.session["audio"]["input"].get("transcription")
        if isinstance(transcription, dict):
            model = str(transcription.get("model") or "whisper-1")
            self.streams.append(
                TranscriptionStream(item_id, audio_ms, model, self.conversation, now, self.pace)
            )
        return out

    def _commit_buffer(self, event: dict[str, Any], now: float) -> list[Event]:
        buffered_ms = self._in_format.ms(self._written - self._buffer_start)
        if buffered_ms < MIN_COMMIT_MS:
            return [
                self._error(
                    event,
                    "input_audio_buffer_commit_empty",
                    "Error committing input audio buffer: buffer too small. Expected at least "
                    f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                )
            ]
        self._vad.reset()
        return self._commit(self.ids.new("item"), self._buffer_start, self._written, now)

    def _clear_buffer(self, event: dict[str, Any], now: float) -> list[Event]:
        self._buffer_start = self._written
        self._vad.reset()
        self._speech_item = None
        return [events.cleared()]

    def _output_audio_clear(self, event: dict[str, Any], now: float) -> list[Event]:
        """WebRTC's playback buffer has no WebSocket counterpart: acknowledge for the last response."""
        if self._last_response_id is None:
            return [self._error(event, "invalid_value", "There is no response audio to clear.")]
        return [events.output_audio_cleared(self._last_response_id)]

    # -- conversation ----------------------------------------------------------------------------

    def _item_create(self, event: dict[str, Any], now: float) -> list[Event]:
        item = event.get("item")
        if not isinstance(item, dict):
            return [self._error(event, "invalid_type", "Invalid 'item': expected an object.", "item")]
        after = event.get("previous_item_id")
        if after not in (None, "root") and after not in self.conversation:
            return [
                self._error(
                    event,
                    "item_create_invalid_previous_item_id",
                    f"Error adding item: the previous item with id '{after}' does not exist.",
                    "previous_item_id",
                )
            ]
        item_id = item.get("id") or self.ids.new("item")
        if item_id in self.conversation:
            return [
                self._error(event, "invalid_value", f"Item with id '{item_id}' already exists.", "item.id")
            ]
        full, audio_ms = self._client_item(item, str(item_id))
        previous = self.conversation.insert(slim(full, audio_ms), after)
        return [events.item_added(full, previous), events.item_done(full, previous)]

    def _client_item(self, item: dict[str, Any], item_id: str) -> tuple[dict[str, Any], float]:
        """The item as the server echoes it (ids and status filled, audio data left out)."""
        full: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": item.get("type", "message")}
        full["status"] = item.get("status") or "completed"
        full.update(
            {k: copy.deepcopy(v) for k, v in item.items() if k not in ("id", "object", "type", "status")}
        )
        audio_ms = 0.0
        if isinstance(full.get("content"), list):
            parts = []
            for part in full["content"]:
                if isinstance(part, dict) and isinstance(part.get("audio"), str):
                    audio_ms += self._in_format.ms(
                        base64_decoded_size(part["audio"]) // self._in_format.sample_bytes
                    )
                    part = {k: v for k, v in part.items() if k != "audio"}
                    part.setdefault("transcript", None)
                parts.append(part)
            full["content"] = parts
        return full, audio_ms

    def _unknown_item(self, event: dict[str, Any], verb: str, gerund: str) -> list[Event]:
        """OpenAI's error for an item operation on an id the conversation does not hold."""
        message = f"Error {gerund} item: the item with id '{event.get('item_id')}' does not exist."
        return [self._error(event, f"item_{verb}_invalid_item_id", message, "item_id")]

    def _item_retrieve(self, event: dict[str, Any], now: float) -> list[Event]:
        item_id = event.get("item_id")
        stored = self.conversation.get(item_id) if isinstance(item_id, str) else None
        if stored is None:
            return self._unknown_item(event, "retrieve", "retrieving")
        return [events.item_retrieved(stored.item)]

    def _item_delete(self, event: dict[str, Any], now: float) -> list[Event]:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or not self.conversation.delete(item_id):
            return self._unknown_item(event, "delete", "deleting")
        return [events.item_deleted(item_id)]

    def _item_truncate(self, event: dict[str, Any], now: float) -> list[Event]:
        item_id = event.get("item_id")
        stored = self.conversation.get(item_id) if isinstance(item_id, str) else None
        if stored is None:
            return self._unknown_item(event, "truncate", "truncating")
        content_index = event.get("content_index", 0)
        audio_end_ms = event.get("audio_end_ms", 0)
        parts = stored.item.get("content") or []
        part = (
            parts[content_index]
            if isinstance(content_index, int) and 0 <= content_index < len(parts)
            else None
        )
        if (
            stored.item.get("role") != "assistant"
            or not isinstance(part, dict)
            or part.get("type") != "output_audio"
        ):
            return [
                self._error(
                    event,
                    "invalid_value",
                    "Only assistant messages with audio content can be truncated.",
                    "item_id",
                )
            ]
        if not isinstance(audio_end_ms, int) or audio_end_ms < 0 or audio_end_ms > stored.audio_ms:
            return [
                self._error(
                    event,
                    "invalid_value",
                    f"Audio content of {int(stored.audio_ms)}ms is already shorter than {audio_end_ms}ms",
                    "audio_end_ms",
                )
            ]
        part["transcript"] = ""  # as OpenAI: no text left in context that the user did not hear
        stored.audio_ms = float(audio_end_ms)
        stored.audio_tokens = -(-audio_end_ms // 50)
        return [events.item_truncated(str(item_id), content_index, audio_end_ms)]

    # -- responses -------------------------------------------------------------------------------

    def _response_create(self, event: dict[str, Any], now: float) -> list[Event]:
        params = event.get("response")
        params = params if isinstance(params, dict) else {}
        if params.get("conversation") != "none" and self.active is not None:
            return [
                self._error(
                    event,
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {self.active.id}. "
                    "Wait until the response is finished before creating a new one.",
                )
            ]
        if len(self.streams) >= MAX_STREAMS:  # out-of-band responses are otherwise unbounded
            return [
                self._error(
                    event,
                    "too_many_active_responses",
                    f"The simulator runs at most {MAX_STREAMS} responses at once; wait for one to finish.",
                )
            ]
        return self._start_response(params, now)

    def _response_cancel(self, event: dict[str, Any], now: float) -> list[Event]:
        wanted = event.get("response_id")
        if wanted:
            target = next((s for s in self.streams if isinstance(s, ResponseStream) and s.id == wanted), None)
        else:
            target = self.active
        if target is None:
            return [
                self._error(
                    event, "response_cancel_not_active", "Cancellation failed: no active response found"
                )
            ]
        return self._cancel(target, "client_cancelled")

    def _cancel(self, stream: ResponseStream, reason: str) -> list[Event]:
        out = stream.cancel(reason)
        self._retire(stream)
        return out

    def _heard(self, params: dict[str, Any]) -> tuple[Heard | None, int, int]:
        """What the response answers, and its input (text, audio) tokens besides instructions."""
        given = params.get("input")
        if not isinstance(given, list):
            text, audio = self.conversation.tokens()
            return self.conversation.latest_heard(), text, audio
        heard: Heard | None = None
        text = audio = 0
        for entry in given:
            if not isinstance(entry, dict):
                continue
            stored = (
                self.conversation.get(entry.get("id", "")) if entry.get("type") == "item_reference" else None
            )
            if stored is None and entry.get("type") != "item_reference":
                stored = slim(entry)
            if stored is not None:
                text, audio = text + stored.text_tokens, audio + stored.audio_tokens
                heard = heard_in(stored) or heard
        return heard, text, audio

    def _start_response(self, params: dict[str, Any], now: float) -> list[Event]:
        session = self.session
        modalities = (
            params.get("output_modalities") or params.get("modalities") or session["output_modalities"]
        )
        out_audio = dict(session["audio"]["output"])
        given_audio = params.get("audio")
        if isinstance(given_audio, dict) and isinstance(given_audio.get("output"), dict):
            out_audio.update(given_audio["output"])
        for beta, key in (("voice", "voice"), ("output_audio_format", "format")):
            if beta in params:
                out_audio[key] = params[beta]
        heard, text_in, audio_in = self._heard(params)
        instructions = params.get("instructions", session["instructions"])
        text_in += text_tokens(instructions) if isinstance(instructions, str) else 0
        previous = self._last_input_tokens
        cached = previous // 64 * 64 if previous >= _CACHE_MIN_TOKENS else 0
        response_id = self.ids.new("resp")
        spec = ResponseSpec(
            response_id=response_id,
            item_id=self.ids.new("item"),
            call_id=self.ids.new("call", 16),
            modality="audio" if "audio" in modalities else "text",
            audio_format=normalize_format(out_audio.get("format")) or {"type": "audio/pcm", "rate": 24000},
            voice=out_audio.get("voice", "alloy"),
            speed=float(out_audio.get("speed") or 1.0),
            max_output_tokens=params.get("max_output_tokens", session["max_output_tokens"]),
            metadata=params.get("metadata"),
            input_text_tokens=text_in,
            input_audio_tokens=audio_in,
            cached_tokens=min(cached, text_in + audio_in),
        )
        tools = params["tools"] if "tools" in params else session["tools"]
        reply = plan_reply(heard, tools, params.get("tool_choice", session["tool_choice"]))
        in_conversation = params.get("conversation") != "none"
        stream = ResponseStream(spec, reply, self.conversation if in_conversation else None, now, self.pace)
        self.streams.append(stream)
        if in_conversation:
            self.active = stream
        self._last_response_id = response_id
        return [stream.created_event()]

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _error(event: dict[str, Any], code: str, message: str, param: str | None = None) -> Event:
        return events.error(code, message, param=param, client_event_id=event.get("event_id"))
