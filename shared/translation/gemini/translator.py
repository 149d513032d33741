"""One session's translation between an OpenAI Realtime GA client and Gemini Live. No I/O.

The relay feeds it the client's events (:meth:`GeminiTranslator.to_provider`) and Gemini's
messages (:meth:`GeminiTranslator.to_client`); each call returns :class:`Frames`: text frames for
Gemini, text frames for the client, and, when the session must move to a new Gemini connection, a
:class:`Reconnect`. A beta client is served by putting the beta <-> GA :class:`~shared.translation
.Translator` in front: this class speaks GA only.

The relay's part (all of it)
----------------------------
1. When the Gemini WebSocket opens: :meth:`opened` (the client's ``session.created``).
2. Each client event (validated, parsed): :meth:`to_provider`; each Gemini message (text or
   binary: Gemini sends its JSON in binary frames): :meth:`to_client`. Send ``frames.provider`` to
   the current Gemini connection, ``frames.client`` to the client, in order.
3. ``frames.reconnect``: open a new Gemini connection (same URL and key), send
   ``reconnect.setup`` as its first frame, make it the current connection and close the old one
   (1000) without passing on anything more it says. Frames for Gemini produced meanwhile are held
   here and come back from :meth:`to_client` with the new connection's ``setupComplete``.
4. Optionally a timer: :meth:`flush_setup` sends the setup of a session whose client has neither
   configured it nor spoken yet (the setup otherwise waits for either, so that instructions,
   tools, voice and turn detection all reach Gemini in its one ``setup``).
5. When Gemini closes the connection unexpectedly, :meth:`resume` says whether the session can go
   on on a new connection (a :class:`Reconnect`, as in 3) or must end (None).

Timeline of a session
---------------------
``opened`` -> ``session.created`` (Gemini's defaults). ``session.update`` before the setup is sent:
merged, ``session.updated`` at once. First conversation event (or :meth:`flush_setup`): the
``setup``; Gemini's frames wait in :attr:`held` until ``setupComplete``. ``session.update`` after
the setup: if it changes the setup, the session moves to a new connection that resumes it (the
latest resumption handle, taken while no turn is in progress; a session nothing was said in yet
just starts afresh), and the client's ``session.updated`` comes with the new ``setupComplete``.
``goAway`` (Gemini will close soon): the same move, at the first moment a fresh handle exists and
no reply is streaming; without one, the client is told (``provider_going_away``).

Client events
-------------
- ``input_audio_buffer.append`` -> ``realtimeInput.audio`` (24 kHz PCM16 resampled to 16 kHz,
  ``audio/pcm;rate=16000``; or sent at 24 kHz, declared in the MIME type, when ``input_rate`` is
  24000). Without turn detection the first append of a turn is preceded by ``activityStart``.
- ``input_audio_buffer.commit`` -> ``input_audio_buffer.committed`` and the user audio item (told
  by the gateway); with turn detection also ``realtimeInput.audioStreamEnd`` (the end of speech
  now); without, the ``activityEnd`` waits for ``response.create`` (so the client decides when the
  model answers, as with OpenAI). An empty buffer: OpenAI's ``input_audio_buffer_commit_empty``.
- ``input_audio_buffer.clear`` -> ``input_audio_buffer.cleared`` (audio already streamed stays
  with Gemini: it has no way to take it back).
- ``conversation.item.create``: user text / audio, assistant text, function calls ->
  ``clientContent`` turns (sent with the next ``response.create``, or before the next audio);
  ``function_call_output`` for a call Gemini made -> ``toolResponse`` (at once); the item is
  announced to the client (``conversation.item.added`` / ``.done``). System messages are refused
  (Gemini has no system turns: use ``instructions``).
- ``response.create`` -> ``clientContent`` with ``turnComplete`` (or ``activityEnd`` for a turn of
  audio); after a function result nothing: Gemini answers a ``toolResponse`` by itself.
  ``metadata`` is echoed; per-response overrides (instructions, tools, modalities, input, ...)
  have no Gemini counterpart (``field_dropped``).
- ``response.cancel``: Gemini cannot stop a reply mid-way; the reply ends for the client at once
  (``response.done``, ``cancelled``, ``client_cancelled``) and the rest of that Gemini turn is not
  relayed. Nothing to cancel: OpenAI's ``response_cancel_not_active``.
- ``conversation.item.truncate`` -> ``conversation.item.truncated`` (Gemini cut its own context
  where it was interrupted); ``conversation.item.retrieve`` -> the item as the gateway told it;
  ``conversation.item.delete``: refused (Gemini cannot forget part of its context).

Gemini messages
---------------
- ``setupComplete``: the held frames go out (and, after a move, ``session.updated``).
- ``serverContent``: a reply, announced like OpenAI's: ``response.created``, the assistant item
  (``response.output_item.added``, ``conversation.item.added``), its content part, the deltas
  (``modelTurn`` audio -> ``response.output_audio.delta``, 24 kHz as Gemini sends it; text ->
  ``response.output_text.delta``; ``outputTranscription`` -> ``response.output_audio_transcript
  .delta``, or the text stream of a text session on an audio-only model), and at ``turnComplete``
  the ``.done`` events and ``response.done`` (with the turn's usage). Before a reply to speech,
  the user's turn as OpenAI's server VAD tells it: ``input_audio_buffer.speech_started`` /
  ``speech_stopped`` / ``committed`` and the user audio item; ``inputTranscription`` ->
  ``conversation.item.input_audio_transcription.delta``, then ``.completed`` at the turn's end.
- ``interrupted`` (the user spoke over the reply) -> ``input_audio_buffer.speech_started`` at
  once (the client stops playing and truncates), then the reply ends ``cancelled``
  (``turn_detected``) with Gemini's ``turnComplete``.
- ``toolCall`` -> a ``function_call`` item per call (``response.output_item.added``,
  ``response.function_call_arguments.delta`` / ``.done``, ``response.output_item.done``) and
  ``response.done``: the client runs the function and sends its output.
- ``toolCallCancellation`` -> an ``error`` notice (``function_call_cancelled``) naming the calls;
  their outputs are then not sent (Gemini asked for them not to be).
- ``usageMetadata`` -> ``response.done.response.usage`` (see :mod:`.usage`); usage reported
  outside a turn is added to the next reply's.
- ``goAway`` / ``sessionResumptionUpdate``: see above.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import GatewayError
from ...simulator.ids import IdMaker
from ...wire import dumps
from .audio import Downsampler
from .setup import (
    DROPPED,
    PCM_RATE,
    Refusal,
    apply_update,
    audio_only,
    automatic_detection,
    build_setup,
    check_update,
    initial_session,
    wants_text,
)
from .usage import add as add_usage
from .usage import usage as usage_of

logger = logging.getLogger("realtime_gateway")

Event = dict[str, Any]

DEFAULT_INPUT_RATE = 16_000
MAX_HELD_FRAMES = 512
"""Frames for Gemini held while a connection's setup completes (about 50 s of audio)."""
MAX_HELD_BYTES = 16 * 1024 * 1024
MAX_TRACKED_ITEMS = 4096
"""Items remembered for ``conversation.item.retrieve`` (the oldest are forgotten first)."""
MAX_TRACKED_CALLS = 1024

_BYTES_PER_MS = PCM_RATE * 2 // 1000  # 24 kHz PCM16 from the client
ReconnectReason = Literal["go_away", "session_update", "resume"]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Move the session to a new Gemini connection: send ``setup`` first on it."""

    setup: str
    handle: str | None  # the resumption handle the setup carries (None: a fresh session)
    reason: ReconnectReason


@dataclass(slots=True)
class Frames:
    """What one call produced: frames for Gemini, frames for the client, maybe a :class:`Reconnect`.

    With ``reconnect`` set, ``provider`` frames (if any) belong on the new connection, after its
    setup."""

    provider: list[str] = field(default_factory=list)
    client: list[str] = field(default_factory=list)
    reconnect: Reconnect | None = None


@dataclass(slots=True)
class _Heard:
    """A turn of user audio, from its first append to its transcript."""

    item_id: str
    start_ms: int
    end_ms: int = 0
    started: bool = False  # speech_started told
    announced: bool = False  # committed + item told
    transcript: str = ""
    pending_deltas: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    name: str
    gemini_id: str | None
    cancelled: bool = False


@dataclass(slots=True)
class _Reply:
    """The response being told to the client."""

    id: str
    output: list[Event] = field(default_factory=list)
    message: Event | None = None  # the assistant message item, while open
    part_kind: str | None = None  # "audio" | "text", while a content part is open
    text: str = ""  # the open part's text or transcript
    usage: dict[str, Any] | None = None
    status: str = "completed"
    status_reason: str | None = None
    status_details: Event | None = None


class GeminiTranslator:
    """Translates one session between a GA Realtime client and Gemini Live."""

    def __init__(
        self,
        model: str,
        *,
        requested_model: str | None = None,
        input_rate: int = DEFAULT_INPUT_RATE,
        max_held_frames: int = MAX_HELD_FRAMES,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        if input_rate not in (16_000, PCM_RATE):
            raise ValueError(f"input_rate must be 16000 or 24000, not {input_rate}")
        self.model = model
        self.requested_model = requested_model or model
        self._ids = IdMaker()
        self.session: Event = initial_session(self._ids.new("sess"), model)
        self._conversation_id = self._ids.new("conv")
        self._input_rate = input_rate
        self._downsampler = Downsampler() if input_rate != PCM_RATE else None
        self._max_held_frames = max_held_frames
        self._max_held_bytes = max_held_bytes
        # Setup and connections.
        self.setup_state: Literal["pending", "sent", "complete"] = "pending"
        self._setup_sent: dict[str, Any] | None = None  # the last setup sent, without its handle
        self.held: list[str] = []
        self._held_bytes = 0
        self.handle: str | None = None
        self._handle_fresh = False  # the handle reflects everything said so far
        self._said_anything = False  # the Gemini session holds conversation state
        self._reconnect_due: ReconnectReason | None = None
        self._moving: ReconnectReason | None = None  # a Reconnect told, its setupComplete awaited
        self._updates_to_ack = 0
        self._go_away_told = False
        # Conversation.
        self._last_item_id: str | None = None
        self._items: dict[str, Event] = {}
        self._pending_turns: list[Event] = []
        self._activity_open = False
        self._audio_ms = 0  # client audio appended so far, in ms (the session's audio clock)
        self._audio_bytes = 0
        self._heard: _Heard | None = None  # user audio not yet told as an item
        self._transcribing: _Heard | None = None  # told, its transcript not yet completed
        self._calls: dict[str, _Call] = {}
        self._by_gemini_id: dict[str, str] = {}
        self._outstanding: list[str] = []  # calls of Gemini's last toolCall with no output yet
        self._results: list[Event] = []  # their outputs, sent together when all are in
        self._absorb_create = False  # results went: Gemini answers them by itself
        self._previous_of: dict[str, str | None] = {}  # item id -> previous_item_id, until .done
        self._history_calls: dict[str, str] = {}  # call id -> name, of calls the client put in history
        # The reply.
        self._reply: _Reply | None = None
        self._metadata: Any = None
        self._suppress_turn = False  # the rest of this Gemini turn is not relayed
        self._turn_open = False  # Gemini is producing a turn (started, turnComplete not yet seen)
        self._pending_usage: dict[str, Any] | None = None
        self._warned: set[str] = set()

    # -- the relay's entry points ---------------------------------------------------------------

    def opened(self) -> Frames:
        """The Gemini connection is open: the client's ``session.created``."""
        return Frames(client=[self._event("session.created", session=self.session)])

    def flush_setup(self) -> Frames:
        """Send the setup now if it is still waiting for the client (the relay's timer)."""
        out = Frames()
        self._ensure_setup(out)
        return out

    def resume(self) -> Frames:
        """Gemini closed the connection unexpectedly: with ``reconnect`` set, the session goes on on a
        new connection (a reply that was streaming ends ``failed`` for the client first); without,
        it cannot (nothing to resume from) and the relay ends it as for any provider close."""
        out = Frames()
        if self.handle is None and self._said_anything:
            return out
        if self._reply is not None:
            self._reply.status, self._reply.status_reason = "failed", None
            self._reply.status_details = {
                "type": "failed",
                "error": {"type": "server_error", "code": "upstream_connection_lost"},
            }
            self._finish_reply(out)
        self._suppress_turn = self._turn_open = False
        out.reconnect = self._reconnect("resume")
        return out

    def to_provider(self, event: Event | str) -> Frames:
        """A client event (validated; parsed, or its JSON text) -> frames."""
        if isinstance(event, str):
            event = json.loads(event)
        handler = _CLIENT_HANDLERS.get(event.get("type", ""))
        out = Frames()
        if handler is not None:
            handler(self, event, out)
        return out

    def to_client(self, frame: str | bytes) -> Frames:
        """A Gemini message (JSON text or binary) -> frames."""
        out = Frames()
        try:
            message = json.loads(frame)
        except (ValueError, UnicodeDecodeError):
            logger.warning("gemini: a message that is not JSON was dropped")
            return out
        if not isinstance(message, dict):
            return out
        try:
            self._from_gemini(message, out)
        except (TypeError, ValueError, AttributeError, KeyError):
            logger.warning("gemini: a message of an unexpected shape was dropped", exc_info=True)
        return out

    # -- client events ----------------------------------------------------------------------------

    def _on_session_update(self, event: Event, out: Frames) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            return
        try:
            dropped = check_update(update)
            candidate = copy.deepcopy(self.session)
            apply_update(candidate, update)
            setup = build_setup(candidate, self.model)
        except Refusal as refusal:
            out.client.append(self._error(refusal.code, refusal.message, refusal.param, event))
            return
        model = update.get("model")
        if isinstance(model, str) and model not in (self.requested_model, self.model, f"models/{self.model}"):
            dropped.append("session.model")
        self._notices(dropped, out)
        self.session = candidate
        self.session["model"] = self.model
        if self.setup_state == "pending" or setup == self._setup_sent:
            out.client.append(self._event("session.updated", session=self.session))
            return
        self._updates_to_ack += 1
        self._reconnect_due = "session_update"
        self._maybe_move(out)

    def _on_append(self, event: Event, out: Frames) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            return
        pcm = b""
        if self._downsampler is not None:
            try:
                pcm = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError):
                return  # the relay's inbound checks refuse bad base64 before it gets here
        size = len(pcm) if self._downsampler is not None else len(audio) * 3 // 4 - audio[-2:].count("=")
        self._ensure_setup(out)
        self._flush_turns(out, complete=False)
        self._absorb_create = False  # new input: a response.create now asks for a reply to it
        if not automatic_detection(self.session) and not self._activity_open:
            self._activity_open = True
            self._send(out, {"realtimeInput": {"activityStart": {}}})
        if self._heard is None:
            self._heard = _Heard(item_id=self._ids.new("item"), start_ms=self._audio_ms)
        self._audio_bytes += size
        self._audio_ms = self._audio_bytes // _BYTES_PER_MS
        self._heard.end_ms = self._audio_ms
        if self._downsampler is None:
            self._send_audio(out, audio, PCM_RATE)
            return
        resampled = self._downsampler.feed(pcm)
        if resampled:
            self._send_audio(out, base64.b64encode(resampled).decode(), self._input_rate)

    def _send_audio(self, out: Frames, data: str, rate: int) -> None:
        self._said_anything = True
        # Built by hand: this is the hot path, and base64 needs no JSON escaping.
        frame = (
            '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate='
            + str(rate)
            + '","data":"'
            + data
            + '"}}}'
        )
        self._send_frame(out, frame)

    def _flush_audio(self, out: Frames) -> None:
        if self._downsampler is None:
            return
        tail = self._downsampler.flush()
        if tail:
            self._send_audio(out, base64.b64encode(tail).decode(), self._input_rate)

    def _on_commit(self, event: Event, out: Frames) -> None:
        heard = self._heard
        if heard is None or heard.end_ms - heard.start_ms <= 0:
            ms = 0 if heard is None else heard.end_ms - heard.start_ms
            message = (
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {ms:.2f}ms of audio."
            )
            out.client.append(self._error("input_audio_buffer_commit_empty", message, None, event))
            return
        self._flush_audio(out)
        if automatic_detection(self.session):
            self._send(out, {"realtimeInput": {"audioStreamEnd": True}})
        self._announce_heard(out, speech_events=False)

    def _on_clear(self, event: Event, out: Frames) -> None:
        if self._downsampler is not None:
            self._downsampler.reset()
        if self._heard is not None and not self._heard.announced:
            self._heard = None
        out.client.append(self._event("input_audio_buffer.cleared"))

    def _on_item_create(self, event: Event, out: Frames) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            return
        try:
            told, turn, tool_response = self._item_to_gemini(item)
        except Refusal as refusal:
            out.client.append(self._error(refusal.code, refusal.message, refusal.param, event))
            return
        if event.get("previous_item_id") not in (None, self._last_item_id):
            self._notices(["previous_item_id"], out)
        self._ensure_setup(out)
        self._tell_item(out, told)
        if tool_response is not None:
            self._results.append(tool_response)
            call_id = told["call_id"]
            if call_id in self._outstanding:
                self._outstanding.remove(call_id)
            if not self._outstanding:  # Gemini continues once it has every result it asked for
                self._send_results(out)
        elif turn is not None:
            self._pending_turns.append(turn)
            self._absorb_create = False

    def _send_results(self, out: Frames) -> None:
        if not self._results:
            return
        self._flush_turns(out, complete=False)
        results, self._results, self._outstanding = self._results, [], []
        self._send(out, {"toolResponse": {"functionResponses": results}})
        self._absorb_create = True
        self._turn_open = True

    def _item_to_gemini(self, item: Event) -> tuple[Event, Event | None, Event | None]:
        """(the item as told to the client, a clientContent turn, a function response)."""
        kind = item.get("type")
        item_id = item.get("id") if isinstance(item.get("id"), str) else self._ids.new("item")
        if kind == "message":
            role = item.get("role")
            if role == "system":
                raise Refusal(
                    "invalid_value",
                    "Gemini Live has no system turns; set the session's instructions instead.",
                    "item.role",
                )
            parts = [self._part_to_gemini(part, role) for part in item.get("content") or []]
            told = {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed",
                "role": role,
                "content": item.get("content") or [],
            }
            return told, {"role": "model" if role == "assistant" else "user", "parts": parts}, None
        if kind == "function_call":
            call_id = item.get("call_id") or self._ids.new("call")
            arguments = item.get("arguments") or "{}"
            part: Event = {"functionCall": {"name": item.get("name"), "args": _json_object(arguments)}}
            told = {
                "id": item_id,
                "object": "realtime.item",
                "type": "function_call",
                "status": "completed",
                "name": item.get("name"),
                "call_id": call_id,
                "arguments": arguments,
            }
            if isinstance(item.get("name"), str):
                _remember(self._history_calls, call_id, item["name"], MAX_TRACKED_CALLS)
            return told, {"role": "model", "parts": [part]}, None
        if kind == "function_call_output":
            call_id = item.get("call_id")
            output = item.get("output") if isinstance(item.get("output"), str) else ""
            told = {
                "id": item_id,
                "object": "realtime.item",
                "type": "function_call_output",
                "status": "completed",
                "call_id": call_id,
                "output": output,
            }
            call = self._calls.get(call_id) if isinstance(call_id, str) else None
            if call is not None and call.cancelled:
                raise Refusal(
                    "function_call_cancelled",
                    f"Gemini cancelled call {call_id!r} (the user interrupted); its output was not sent.",
                    "item.call_id",
                )
            response = _function_response(output)
            if call is not None:
                reply: Event = {"name": call.name, "response": response}
                if call.gemini_id:
                    reply["id"] = call.gemini_id
                return told, None, reply
            # A result for history the client set up: named after its call, if the client told it.
            name = self._history_calls.get(call_id, "function") if isinstance(call_id, str) else "function"
            return (
                told,
                {"role": "user", "parts": [{"functionResponse": {"name": name, "response": response}}]},
                None,
            )
        raise Refusal(
            "invalid_value", f"Gemini Live cannot take conversation items of type {kind!r}.", "item.type"
        )

    def _part_to_gemini(self, part: Any, role: Any) -> Event:
        if not isinstance(part, dict):
            raise Refusal("invalid_value", "A content part must be an object.", "item.content")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            return {"text": part.get("text") or ""}
        if kind == "output_audio" or (kind == "audio" and role == "assistant"):
            return {"text": part.get("transcript") or ""}
        if kind == "input_audio" and isinstance(part.get("audio"), str):
            return {"inlineData": {"mimeType": f"audio/pcm;rate={PCM_RATE}", "data": part["audio"]}}
        raise Refusal(
            "invalid_value",
            f"Gemini Live cannot take content parts of type {kind!r} in this translation.",
            "item.content.type",
        )

    def _on_response_create(self, event: Event, out: Frames) -> None:
        params = event.get("response") if isinstance(event.get("response"), dict) else {}
        if self._results:  # results for only some of the calls: Gemini gets what there is
            self._send_results(out)
        if self._absorb_create:
            self._absorb_create = False
            self._metadata = params.get("metadata", self._metadata)
            self._flush_turns(out, complete=False)
            return  # Gemini answers function results by itself
        if self._reply is not None or self._turn_open:
            message = "Conversation already has an active response in progress."
            out.client.append(self._error("conversation_already_has_active_response", message, None, event))
            return
        self._metadata = params.get("metadata")
        self._notices(self._response_overrides(params), out)
        self._ensure_setup(out)
        if self._activity_open:
            self._flush_turns(out, complete=False)
            self._flush_audio(out)
            self._activity_open = False
            self._send(out, {"realtimeInput": {"activityEnd": {}}})
            if self._heard is not None and not self._heard.announced:
                self._announce_heard(out, speech_events=False)
            self._turn_open = True
            return
        if not self._pending_turns and "gemini-2" in self.model:
            # Gemini 2.5 answers a completed turn only if it holds something (livekit/agents'
            # google realtime plugin sends this placeholder); later models take an empty one.
            self._pending_turns.append({"role": "user", "parts": [{"text": "."}]})
        self._flush_turns(out, complete=True)
        self._turn_open = True

    def _response_overrides(self, params: Event) -> list[str]:
        """The ``response.create`` parameters that would change this response only (not carried)."""
        neutral: dict[str, Any] = {
            "conversation": "auto",
            "output_modalities": self.session.get("output_modalities"),
            "instructions": self.session.get("instructions"),
            "tools": self.session.get("tools"),
            "tool_choice": self.session.get("tool_choice"),
            "max_output_tokens": self.session.get("max_output_tokens"),
        }
        return [
            f"response.{name}"
            for name, value in params.items()
            if name != "metadata" and value is not None and value != neutral.get(name, _ABSENT)
        ]

    def _on_response_cancel(self, event: Event, out: Frames) -> None:
        if self._reply is None:
            message = "Cancellation failed: no active response found"
            out.client.append(self._error("response_cancel_not_active", message, None, event))
            return
        self._reply.status, self._reply.status_reason = "cancelled", "client_cancelled"
        self._finish_reply(out)
        self._suppress_turn = True

    def _on_truncate(self, event: Event, out: Frames) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or (item_id not in self._items and item_id not in self._previous_of):
            out.client.append(self._error("item_not_found", f"Item {item_id!r} not found.", "item_id", event))
            return
        out.client.append(
            self._event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=event.get("content_index", 0),
                audio_end_ms=event.get("audio_end_ms", 0),
            )
        )

    def _on_retrieve(self, event: Event, out: Frames) -> None:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            message = f"Item {event.get('item_id')!r} not found."
            out.client.append(self._error("item_not_found", message, "item_id", event))
            return
        out.client.append(self._event("conversation.item.retrieved", item=item))

    def _on_delete(self, event: Event, out: Frames) -> None:
        message = "Gemini Live cannot remove an item from its context; the item was not deleted."
        out.client.append(self._error("invalid_request_error", message, "item_id", event))

    def _on_transcription_session(self, event: Event, out: Frames) -> None:
        message = "Transcription-only sessions are not available with provider=gemini."
        out.client.append(self._error("invalid_value", message, "session.type", event))

    # -- Gemini messages ----------------------------------------------------------------------------

    def _from_gemini(self, message: Event, out: Frames) -> None:
        usage = message.get("usageMetadata")
        if isinstance(usage, dict):
            self._on_usage(usage)
        if "setupComplete" in message:
            self._on_setup_complete(out)
        content = message.get("serverContent")
        if isinstance(content, dict):
            self._on_server_content(content, out)
        tool_call = message.get("toolCall")
        if isinstance(tool_call, dict):
            self._on_tool_call(tool_call, out)
        cancellation = message.get("toolCallCancellation")
        if isinstance(cancellation, dict):
            self._on_tool_call_cancellation(cancellation, out)
        activity = message.get("voiceActivity")
        if isinstance(activity, dict) and activity.get("type") == "ACTIVITY_START":
            self._speech_started(out)
        update = message.get("sessionResumptionUpdate")
        if isinstance(update, dict):
            self._on_resumption_update(update, out)
        go_away = message.get("goAway")
        if isinstance(go_away, dict):
            self._on_go_away(go_away, out)

    def _on_setup_complete(self, out: Frames) -> None:
        self.setup_state = "complete"
        out.provider += self.held
        self.held, self._held_bytes = [], 0
        if self._moving is not None:
            self._moving = None
            for _ in range(self._updates_to_ack):
                out.client.append(self._event("session.updated", session=self.session))
            self._updates_to_ack = 0

    def _on_usage(self, metadata: Event) -> None:
        usage = usage_of(metadata)
        if self._reply is not None:
            self._reply.usage = usage  # the last report of a turn wins
        else:
            self._pending_usage = add_usage(self._pending_usage, usage)

    def _on_server_content(self, content: Event, out: Frames) -> None:
        if content.get("interrupted"):
            self._speech_started(out)
            if self._reply is not None and self._reply.status == "completed":
                self._reply.status, self._reply.status_reason = "cancelled", "turn_detected"
            if self._reply is not None or self._turn_open:
                self._suppress_turn = True  # until this turn's turnComplete (interrupted > turn_complete)
        self._handle_fresh = False
        turn = content.get("modelTurn")
        parts = turn.get("parts") if isinstance(turn, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and not part.get("thought"):
                self._on_part(part, out)
        spoken = content.get("outputTranscription")
        if isinstance(spoken, dict) and isinstance(spoken.get("text"), str) and spoken["text"]:
            self._on_output_transcript(spoken["text"], out)
        heard = content.get("inputTranscription")
        if isinstance(heard, dict) and isinstance(heard.get("text"), str) and heard["text"]:
            self._on_input_transcript(heard["text"], out)
        if content.get("turnComplete"):
            self._on_turn_complete(out)

    def _on_part(self, part: Event, out: Frames) -> None:
        blob = part.get("inlineData")
        if isinstance(blob, dict) and isinstance(blob.get("data"), str):
            if str(blob.get("mimeType", "")).startswith("audio/") and not wants_text(self.session):
                self._stream(out, "audio", blob["data"])
            return
        text = part.get("text")
        if isinstance(text, str) and text and wants_text(self.session) and not audio_only(self.model):
            self._stream(out, "text", text)

    def _on_output_transcript(self, text: str, out: Frames) -> None:
        if wants_text(self.session):
            if audio_only(self.model):  # a text session on an audio-only model: the transcript is the text
                self._stream(out, "text", text)
            return
        self._stream(out, "transcript", text)

    def _stream(self, out: Frames, kind: Literal["audio", "text", "transcript"], data: str) -> None:
        if self._suppress_turn:
            return
        reply = self._start_reply(out)
        part_kind = "text" if kind == "text" else "audio"
        if reply.part_kind != part_kind:
            self._open_part(out, reply, part_kind)
        assert reply.message is not None
        where = {
            "response_id": reply.id,
            "item_id": reply.message["id"],
            "output_index": len(reply.output),
            "content_index": len(reply.message["content"]) - 1,
        }
        if kind == "audio":
            out.client.append(self._event("response.output_audio.delta", **where, delta=data))
            return
        reply.text += data
        name = "response.output_text.delta" if kind == "text" else "response.output_audio_transcript.delta"
        out.client.append(self._event(name, **where, delta=data))

    def _on_input_transcript(self, text: str, out: Frames) -> None:
        target = self._transcribing or self._heard
        if target is None:
            return
        if not target.transcript:
            text = text.lstrip()  # Gemini's transcript starts with a space
            if not text:
                return
        target.transcript += text
        if target.announced:
            out.client.append(self._transcript_delta(target, text))
        else:
            target.pending_deltas.append(text)

    def _on_turn_complete(self, out: Frames) -> None:
        self._complete_transcript(out)  # the user's turn, then the reply to it
        if self._reply is not None:
            self._finish_reply(out)
        self._suppress_turn = False
        self._turn_open = False
        self._maybe_move(out)

    def _on_tool_call(self, tool_call: Event, out: Frames) -> None:
        calls = tool_call.get("functionCalls")
        if not isinstance(calls, list) or not calls:
            return
        self._handle_fresh = False
        reply = self._start_reply(out)
        self._close_message(out, reply)
        for call in calls:
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                continue
            gemini_id = call.get("id") if isinstance(call.get("id"), str) else None
            call_id = gemini_id or self._ids.new("call")
            self._remember_call(call_id, _Call(name=call["name"], gemini_id=gemini_id))
            arguments = json.dumps(call.get("args") or {}, separators=(",", ":"), ensure_ascii=False)
            item_id = self._ids.new("item")
            item = {
                "id": item_id,
                "object": "realtime.item",
                "type": "function_call",
                "status": "in_progress",
                "name": call["name"],
                "call_id": call_id,
                "arguments": "",
            }
            index = len(reply.output)
            added = self._event(
                "response.output_item.added", response_id=reply.id, output_index=index, item=item
            )
            out.client.append(added)
            out.client.append(self._item_added(item))
            where = {"response_id": reply.id, "item_id": item_id, "output_index": index, "call_id": call_id}
            out.client.append(self._event("response.function_call_arguments.delta", **where, delta=arguments))
            out.client.append(
                self._event(
                    "response.function_call_arguments.done", **where, name=call["name"], arguments=arguments
                )
            )
            done = {**item, "status": "completed", "arguments": arguments}
            reply.output.append(done)
            finished = self._event(
                "response.output_item.done", response_id=reply.id, output_index=index, item=done
            )
            out.client.append(finished)
            out.client.append(self._item_done(done))
            self._outstanding.append(call_id)
        self._finish_reply(out)
        # Gemini waits for the results (the calls are BLOCKING); what it sends of this turn
        # meanwhile (an empty turnComplete on some models) closes nothing the client sees.
        self._turn_open = False

    def _on_tool_call_cancellation(self, cancellation: Event, out: Frames) -> None:
        ids = cancellation.get("ids")
        cancelled = []
        for gemini_id in ids if isinstance(ids, list) else []:
            call_id = self._by_gemini_id.get(gemini_id, gemini_id) if isinstance(gemini_id, str) else None
            call = self._calls.get(call_id) if call_id is not None else None
            if call is not None:
                call.cancelled = True
                cancelled.append(call_id)
        if cancelled:
            names = ", ".join(repr(call_id) for call_id in cancelled)
            message = (
                f"Gemini cancelled function call(s) {names}: the user interrupted. Their results would "
                f"not be used and are not sent; undo any side effects if you can."
            )
            out.client.append(GatewayError("function_call_cancelled", message, param=None).to_event())

    def _on_resumption_update(self, update: Event, out: Frames) -> None:
        handle = update.get("newHandle")
        if update.get("resumable") and isinstance(handle, str) and handle:
            self.handle = handle
            self._handle_fresh = self._reply is None and not self._turn_open
            self._maybe_move(out)

    def _on_go_away(self, go_away: Event, out: Frames) -> None:
        if self._reconnect_due is None:
            self._reconnect_due = "go_away"
        self._maybe_move(out)
        stranded = self._reconnect_due == "go_away" and self.handle is None and self._said_anything
        if stranded and not self._go_away_told:
            self._go_away_told = True
            left = go_away.get("timeLeft")
            message = (
                f"Gemini will close this session's connection soon (time left: {left}) and has given "
                f"no handle to resume it yet; the gateway will move the session if one comes in time."
            )
            out.client.append(GatewayError("provider_going_away", message, type="server_error").to_event())

    # -- moving to a new connection -------------------------------------------------------------

    def _maybe_move(self, out: Frames) -> None:
        """Move to a new connection now if one is due and the moment is right."""
        if self._reconnect_due is None or self._moving is not None or self.setup_state == "pending":
            return
        if self._reply is not None or self._turn_open:
            return  # at the end of the reply
        if self._said_anything and not (self.handle and self._handle_fresh):
            return  # when Gemini next says where the session can resume from
        out.reconnect = self._reconnect(self._reconnect_due)

    def _reconnect(self, reason: ReconnectReason) -> Reconnect:
        handle = self.handle if self._said_anything else None
        setup = build_setup(self.session, self.model, handle)
        self._setup_sent = build_setup(self.session, self.model)
        self.setup_state = "sent"
        self._moving = reason
        self._reconnect_due = None
        self._go_away_told = False
        return Reconnect(setup=dumps({"setup": setup}), handle=handle, reason=reason)

    def _ensure_setup(self, out: Frames) -> None:
        if self.setup_state != "pending":
            return
        setup = build_setup(self.session, self.model)
        self._setup_sent = setup
        self.setup_state = "sent"
        out.provider.append(dumps({"setup": setup}))

    # -- frames for Gemini --------------------------------------------------------------------------

    def _send(self, out: Frames, message: Event) -> None:
        self._said_anything = True
        self._handle_fresh = False  # the session changed since Gemini's last handle
        self._send_frame(out, dumps(message))

    def _send_frame(self, out: Frames, frame: str) -> None:
        if self.setup_state == "complete":
            out.provider.append(frame)
            return
        if len(self.held) >= self._max_held_frames or self._held_bytes + len(frame) > self._max_held_bytes:
            message = "Too many events while the provider connection was being set up; this one was dropped."
            out.client.append(GatewayError("buffer_full", message).to_event())
            return
        self.held.append(frame)
        self._held_bytes += len(frame)

    def _flush_turns(self, out: Frames, *, complete: bool) -> None:
        if not self._pending_turns and not complete:
            return
        content: Event = {"turns": self._pending_turns} if self._pending_turns else {}
        content["turnComplete"] = complete
        self._pending_turns = []
        self._send(out, {"clientContent": content})

    # -- events for the client ----------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> str:
        return dumps({"type": kind, "event_id": self._ids.event(), **fields})

    def _error(self, code: str, message: str, param: str | None, event: Event) -> str:
        client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        return GatewayError(code, message, param=param, client_event_id=client_id).to_event()

    def _notices(self, params: list[str], out: Frames) -> None:
        for param in params:
            if param in self._warned:
                continue
            self._warned.add(param)
            reason = DROPPED.get(param) or _DEFAULT_REASONS.get(
                param.split(".")[0], "Gemini Live has no counterpart"
            )
            message = (
                f"'{param}' was not relayed: {reason}. The rest of the event was relayed. "
                f"(Reported once per field per session.)"
            )
            out.client.append(GatewayError("field_dropped", message, param=param).to_event())

    def _remember(self, item: Event) -> None:
        if len(self._items) >= MAX_TRACKED_ITEMS:
            del self._items[next(iter(self._items))]
        self._items[item["id"]] = item

    def _remember_call(self, call_id: str, call: _Call) -> None:
        if len(self._calls) >= MAX_TRACKED_CALLS:
            old = next(iter(self._calls))
            gemini_id = self._calls.pop(old).gemini_id
            self._by_gemini_id.pop(gemini_id or "", None)
        self._calls[call_id] = call
        if call.gemini_id:
            self._by_gemini_id[call.gemini_id] = call_id

    def _item_added(self, item: Event) -> str:
        previous, self._last_item_id = self._last_item_id, item["id"]
        if len(self._previous_of) >= MAX_TRACKED_ITEMS:
            del self._previous_of[next(iter(self._previous_of))]
        self._previous_of[item["id"]] = previous
        return self._event("conversation.item.added", previous_item_id=previous, item=item)

    def _item_done(self, item: Event) -> str:
        self._remember(item)
        previous = self._previous_of.pop(item["id"], None)
        return self._event("conversation.item.done", previous_item_id=previous, item=item)

    def _tell_item(self, out: Frames, item: Event) -> None:
        out.client.append(self._item_added(item))
        out.client.append(self._item_done(item))

    # -- the user's audio turn --------------------------------------------------------------------

    def _speech_started(self, out: Frames) -> None:
        heard = self._heard
        if heard is None:
            heard = self._heard = _Heard(item_id=self._ids.new("item"), start_ms=self._audio_ms)
            heard.end_ms = self._audio_ms
        if heard.started or heard.announced:
            return
        heard.started = True
        out.client.append(
            self._event(
                "input_audio_buffer.speech_started", audio_start_ms=heard.start_ms, item_id=heard.item_id
            )
        )

    def _announce_heard(self, out: Frames, *, speech_events: bool) -> None:
        heard = self._heard
        if heard is None or heard.announced:
            return
        if speech_events:
            self._speech_started(out)
            out.client.append(
                self._event(
                    "input_audio_buffer.speech_stopped", audio_end_ms=heard.end_ms, item_id=heard.item_id
                )
            )
        heard.announced = True
        out.client.append(
            self._event(
                "input_audio_buffer.committed", previous_item_id=self._last_item_id, item_id=heard.item_id
            )
        )
        item = {
            "id": heard.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._tell_item(out, item)
        for delta in heard.pending_deltas:
            out.client.append(self._transcript_delta(heard, delta))
        heard.pending_deltas = []
        if self._transcribing is not None:
            self._complete_transcript(out)
        self._transcribing, self._heard = heard, None

    def _transcript_delta(self, heard: _Heard, text: str) -> str:
        return self._event(
            "conversation.item.input_audio_transcription.delta",
            item_id=heard.item_id,
            content_index=0,
            delta=text,
        )

    def _complete_transcript(self, out: Frames) -> None:
        heard, self._transcribing = self._transcribing, None
        audio_in = (self.session.get("audio") or {}).get("input") or {}
        if heard is None or audio_in.get("transcription") is None:
            return
        item = self._items.get(heard.item_id)
        if item is not None:
            item["content"] = [{"type": "input_audio", "transcript": heard.transcript}]
        seconds = max(heard.end_ms - heard.start_ms, 0) / 1000
        out.client.append(
            self._event(
                "conversation.item.input_audio_transcription.completed",
                item_id=heard.item_id,
                content_index=0,
                transcript=heard.transcript,
                usage={"type": "duration", "seconds": seconds},
            )
        )

    # -- the reply --------------------------------------------------------------------------------

    def _start_reply(self, out: Frames) -> _Reply:
        if self._reply is not None:
            return self._reply
        heard = self._heard
        requested = self._turn_open  # asked for by response.create or function results, not by speech
        # A reply nobody asked for answers speech; one asked for answers speech only if Gemini said
        # it heard some (audio appended meanwhile may be silence).
        spoken_to = heard is not None and (not requested or heard.started or bool(heard.transcript))
        if spoken_to and automatic_detection(self.session):
            self._announce_heard(out, speech_events=True)
        self._turn_open = True
        reply = self._reply = _Reply(id=self._ids.new("resp"))
        if self._pending_usage is not None:
            reply.usage, self._pending_usage = self._pending_usage, None
        out.client.append(
            self._event("response.created", response=self._response_object(reply, "in_progress"))
        )
        return reply

    def _response_object(self, reply: _Reply, status: str) -> Event:
        audio_out = (self.session.get("audio") or {}).get("output") or {}
        details = reply.status_details
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reply.status_reason}
        return {
            "object": "realtime.response",
            "id": reply.id,
            "status": status,
            "status_details": details,
            "output": reply.output,
            "conversation_id": self._conversation_id,
            "output_modalities": list(self.session.get("output_modalities") or ["audio"]),
            "max_output_tokens": self.session.get("max_output_tokens", "inf"),
            "audio": {"output": {"format": audio_out.get("format"), "voice": audio_out.get("voice")}},
            "usage": reply.usage if status != "in_progress" else None,
            "metadata": self._metadata,
        }

    def _open_part(self, out: Frames, reply: _Reply, kind: str) -> None:
        if reply.message is None:
            reply.message = {
                "id": self._ids.new("item"),
                "object": "realtime.item",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            announced = {**reply.message, "content": []}
            index = len(reply.output)
            out.client.append(
                self._event(
                    "response.output_item.added", response_id=reply.id, output_index=index, item=announced
                )
            )
            out.client.append(self._item_added(announced))
        else:
            self._close_part(out, reply)
        reply.message["content"].append(_content(kind, ""))
        reply.part_kind, reply.text = kind, ""
        out.client.append(
            self._event(
                "response.content_part.added",
                response_id=reply.id,
                item_id=reply.message["id"],
                output_index=len(reply.output),
                content_index=len(reply.message["content"]) - 1,
                part=_part(kind, ""),
            )
        )

    def _close_part(self, out: Frames, reply: _Reply) -> None:
        if reply.message is None or reply.part_kind is None:
            return
        where = {
            "response_id": reply.id,
            "item_id": reply.message["id"],
            "output_index": len(reply.output),
            "content_index": len(reply.message["content"]) - 1,
        }
        if reply.part_kind == "audio":
            out.client.append(self._event("response.output_audio.done", **where))
            out.client.append(
                self._event("response.output_audio_transcript.done", **where, transcript=reply.text)
            )
        else:
            out.client.append(self._event("response.output_text.done", **where, text=reply.text))
        reply.message["content"][-1] = _content(reply.part_kind, reply.text)
        out.client.append(
            self._event("response.content_part.done", **where, part=_part(reply.part_kind, reply.text))
        )
        reply.part_kind, reply.text = None, ""

    def _close_message(self, out: Frames, reply: _Reply) -> None:
        if reply.message is None:
            return
        self._close_part(out, reply)
        item = reply.message
        item["status"] = "completed" if reply.status == "completed" else "incomplete"
        index = len(reply.output)
        reply.output.append(item)
        reply.message = None
        out.client.append(
            self._event("response.output_item.done", response_id=reply.id, output_index=index, item=item)
        )
        out.client.append(self._item_done(item))

    def _finish_reply(self, out: Frames) -> None:
        reply, self._reply = self._reply, None
        if reply is None:
            return
        self._close_message(out, reply)
        if reply.usage is None and self._pending_usage is not None:
            reply.usage, self._pending_usage = self._pending_usage, None
        out.client.append(self._event("response.done", response=self._response_object(reply, reply.status)))
        self._metadata = None


def _remember(table: dict[str, Any], key: str, value: Any, bound: int) -> None:
    if key not in table and len(table) >= bound:
        del table[next(iter(table))]
    table[key] = value


def _content(kind: str, text: str) -> Event:
    """An assistant item's content: GA's ``output_audio`` / ``output_text``."""
    return (
        {"type": "output_audio", "transcript": text}
        if kind == "audio"
        else {"type": "output_text", "text": text}
    )


def _part(kind: str, text: str) -> Event:
    """A ``response.content_part.*`` part: ``audio`` / ``text`` (so OpenAI's GA reference and SDKs
    declare them, unlike the item's content)."""
    return {"type": "audio", "transcript": text} if kind == "audio" else {"type": "text", "text": text}


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _function_response(output: str) -> dict[str, Any]:
    """A function's output as Gemini's ``response`` object: a JSON object as it is, anything else
    under ``output`` (Gemini's documented key for a function's output)."""
    try:
        value = json.loads(output)
    except ValueError:
        return {"output": output}
    return value if isinstance(value, dict) else {"output": value}


_ABSENT = object()
_DEFAULT_REASONS = {
    "response": "Gemini Live takes its configuration at setup, for the whole session, not per response",
    "previous_item_id": "Gemini Live appends every item at the end of its context",
}

_CLIENT_HANDLERS = {
    "session.update": GeminiTranslator._on_session_update,
    "transcription_session.update": GeminiTranslator._on_transcription_session,
    "input_audio_buffer.append": GeminiTranslator._on_append,
    "input_audio_buffer.commit": GeminiTranslator._on_commit,
    "input_audio_buffer.clear": GeminiTranslator._on_clear,
    "conversation.item.create": GeminiTranslator._on_item_create,
    "conversation.item.truncate": GeminiTranslator._on_truncate,
    "conversation.item.retrieve": GeminiTranslator._on_retrieve,
    "conversation.item.delete": GeminiTranslator._on_delete,
    "response.create": GeminiTranslator._on_response_create,
    "response.cancel": GeminiTranslator._on_response_cancel,
}
