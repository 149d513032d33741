"""xAI's Grok Voice Agent API (``wss://api.x.ai/v1/realtime``) normalised to OpenAI's GA protocol.

xAI speaks OpenAI's Realtime events with GA names, but not all of their shapes, so a GA client
(the openai-agents SDK validates every event strictly) breaks on some of them. This normaliser
keeps what is alike byte for byte and rewrites what differs; no I/O.

What was read (public docs and other projects' code; nothing copied): docs.x.ai/docs/guides/voice/
agent (endpoint, ``Authorization: Bearer``, voices Eve / Ara / Rex / Sal / Leo, session parameters:
``voice``, ``instructions``, ``turn_detection`` (``server_vad`` or null), ``tools``,
``audio.input.format`` / ``audio.output.format`` with PCM at a configurable rate or G.711;
``conversation.created`` as the first message), BerriAI/litellm ``llms/xai/realtime/
transformation.py`` (the deviations it repairs for strict GA clients), pipecat-ai/pipecat
``services/grok/realtime/events.py`` (the event shapes it parses from xAI), and the
multi-turn-eval notes on Grok (``conversation.created`` before any ``session.created``; function
calls found in ``response.done``).

The deviations, and what the client gets instead
------------------------------------------------
Server -> client:

- ``ping`` keep-alives (an event type GA clients do not know): dropped.
- ``conversation.created`` first, and no ``session.created``: a GA ``session.created`` (the session
  as configured so far) is sent before it; a ``session.created`` xAI sends later becomes
  ``session.updated``.
- the session flat (``voice``, ``turn_detection`` at the top, no ``type``): GA shape
  (``type: "realtime"``, ``audio.output.voice``, ``audio.input.turn_detection``).
- streaming events without ``output_index`` / ``content_index``: filled in from the items and
  parts the response announced.
- ``response.content_part.done`` without ``part``, ``response.output_audio_transcript.done``
  without ``transcript``, ``response.output_text.done`` without ``text``: filled in from the deltas.
- ``response.function_call_arguments.done`` with only ``call_id`` / ``name`` / ``arguments``:
  ``response_id``, ``item_id``, ``output_index`` from the call's item; a call seen only in
  ``response.done``'s output gets its ``.done`` event before the ``response.done``.
- ``role: "tool"`` on function-call items (GA items of that type have no role): removed.
- ``usage: {}`` on ``response.created`` -> ``null``; a ``usage`` beside the response in
  ``response.done`` is moved into it when the response has none.
- ``input_audio_buffer.speech_started`` / ``speech_stopped`` without ``audio_start_ms`` /
  ``audio_end_ms``: the position in the audio the client appended (the gateway counts it).
- ``conversation.item.input_audio_transcription.completed`` without ``content_index`` (0) or
  ``usage`` (the duration the speech events gave, else 0 s).

Client -> server: a GA ``session.update``'s ``audio.output.voice`` and ``audio.input.turn_detection``
move to the top (xAI's documented places); OpenAI voice names map to xAI voices of a like register.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import new_event_id
from ..wire import dumps
from .wire import leading_type, parse

logger = logging.getLogger("realtime_gateway")

Event = dict[str, Any]

DEFAULT_URL = "wss://api.x.ai/v1/realtime"
DEFAULT_MODEL = "grok-voice-latest"
VOICES = ("Eve", "Ara", "Rex", "Sal", "Leo")
OPENAI_VOICES: dict[str, str] = {
    "alloy": "Ara",
    "ash": "Rex",
    "ballad": "Leo",
    "cedar": "Rex",
    "coral": "Eve",
    "echo": "Sal",
    "marin": "Ara",
    "sage": "Sal",
    "shimmer": "Eve",
    "verse": "Leo",
}
"""OpenAI's voices, each to an xAI voice of a like register."""

MAX_TRACKED = 1024  # responses, items and calls remembered for filling in indices (oldest go first)

# Events passed on untouched when their type says so (the hot path: audio deltas carry their indices).
_COMPLETE_AS_SENT = frozenset(
    {"conversation.item.input_audio_transcription.delta", "input_audio_buffer.committed"}
)
_STREAM_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.content_part.added",
        "response.content_part.done",
    }
)


@dataclass(slots=True)
class _Part:
    kind: str  # "audio" | "text"
    text: str = ""


@dataclass(slots=True)
class _Item:
    response_id: str
    output_index: int
    parts: list[_Part] = field(default_factory=list)


class XaiNormalizer:
    """Normalises one session's events between a GA client and xAI's voice agent."""

    def __init__(self, model: str = DEFAULT_MODEL, input_rate: int = 24_000) -> None:
        self.model = model
        self._session: Event = {
            "type": "realtime",
            "object": "realtime.session",
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": input_rate}, "turn_detection": None},
                "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": VOICES[1]},
            },
        }
        self._told_created = False
        self._input_rate = input_rate
        self._audio_bytes = 0
        self._speech: dict[str, tuple[int, int]] = {}  # item id -> (start ms, end ms)
        self._responses: dict[str, int] = {}  # response id -> items announced so far
        self._items: dict[str, _Item] = {}
        self._calls: dict[str, tuple[str, str, int]] = {}  # call id -> (response, item, output index)
        self._calls_done: set[str] = set()

    # -- client -> xAI ------------------------------------------------------------------------------

    def to_provider(self, event: Event, raw: str | None = None) -> str:
        """A validated GA client event -> the frame to send xAI."""
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            audio = event.get("audio")
            if isinstance(audio, str):
                self._audio_bytes += decoded_size(audio)
            return raw if raw is not None else dumps(event)
        if kind != "session.update" or not isinstance(event.get("session"), dict):
            return raw if raw is not None else dumps(event)
        session = copy.deepcopy(event["session"])
        audio = session.get("audio") if isinstance(session.get("audio"), dict) else {}
        output = audio.get("output") if isinstance(audio.get("output"), dict) else {}
        audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
        if "voice" in output:
            voice = output.pop("voice")
            session["voice"] = OPENAI_VOICES.get(voice, voice) if isinstance(voice, str) else voice
        if "turn_detection" in audio_in:
            session["turn_detection"] = audio_in.pop("turn_detection")
        fmt = audio_in.get("format")
        if isinstance(fmt, dict) and isinstance(fmt.get("rate"), int):
            self._input_rate = fmt["rate"]
        return dumps({**event, "session": session})

    # -- xAI -> client ------------------------------------------------------------------------------

    def to_client(self, frame: str | bytes) -> list[str]:
        """An xAI frame -> frames for the client (none, for a ``ping``)."""
        if not isinstance(frame, str):
            return [frame]
        head = leading_type(frame)
        if head is not None and head[0] == "response.output_audio.delta" and '"content_index"' in frame:
            return [frame]  # the hot path, already complete
        event = parse(frame)
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return [frame]
        try:
            events = self._normalise(event)
        except (TypeError, ValueError, AttributeError, KeyError):
            logger.warning(
                "xai: could not normalise a %s event; relayed unchanged", event["type"], exc_info=True
            )
            return [frame]
        if events is None:
            return [frame]
        return [dumps(out) for out in events]

    def _normalise(self, event: Event) -> list[Event] | None:
        """The events for ``event``; None when it is complete as it is."""
        kind = event["type"]
        if kind == "ping":
            return []
        if kind in _COMPLETE_AS_SENT:
            return None
        if kind == "conversation.created":
            if self._told_created:
                return None
            self._told_created = True
            return [self._server_event("session.created", session=self._session), event]
        if kind in ("session.created", "session.updated"):
            session = self._ga_session(event.get("session"))
            if kind == "session.created" and self._told_created:
                kind = "session.updated"
            self._told_created = True
            return [{**event, "type": kind, "session": session}]
        if kind in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"):
            return [self._speech_event(event)]
        if kind == "conversation.item.input_audio_transcription.completed":
            return [self._transcription_completed(event)]
        if kind in ("conversation.item.added", "conversation.item.done", "conversation.item.created"):
            return [{**event, "item": _ga_item(event.get("item"))}]
        if kind == "response.created":
            return [self._response_created(event)]
        if kind in ("response.output_item.added", "response.output_item.done"):
            return [self._output_item(event)]
        if kind in _STREAM_EVENTS:
            return [self._stream(event)]
        if kind == "response.function_call_arguments.delta":
            return [self._call_event(event)]
        if kind == "response.function_call_arguments.done":
            call_id = event.get("call_id")
            if isinstance(call_id, str):
                self._calls_done.add(call_id)
            return [self._call_event(event)]
        if kind == "response.done":
            return self._response_done(event)
        return None

    # -- pieces -------------------------------------------------------------------------------------

    def _server_event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "event_id": new_event_id(), **fields}

    def _ga_session(self, session: Any) -> Event:
        """xAI's flat session as GA's, remembered as the session's state."""
        if not isinstance(session, dict):
            return self._session
        flat = dict(session)
        voice = flat.pop("voice", None)
        has_turn_detection = "turn_detection" in flat
        turn_detection = flat.pop("turn_detection", None)
        ga = copy.deepcopy(self._session)
        audio = flat.pop("audio", None)
        for key, value in flat.items():
            ga[key] = value
        ga["type"] = "realtime"
        if isinstance(audio, dict):
            for side in ("input", "output"):
                if isinstance(audio.get(side), dict):
                    ga["audio"][side].update(audio[side])
        if voice is not None:
            ga["audio"]["output"]["voice"] = voice
        if has_turn_detection:
            ga["audio"]["input"]["turn_detection"] = turn_detection
        self._session = ga
        return ga

    def _audio_ms(self) -> int:
        return self._audio_bytes * 1000 // (2 * self._input_rate)

    def _speech_event(self, event: Event) -> Event:
        item_id = event.get("item_id") if isinstance(event.get("item_id"), str) else ""
        now = self._audio_ms()
        start, end = self._speech.get(item_id, (now, now))
        if event["type"] == "input_audio_buffer.speech_started":
            start = event.get("audio_start_ms", now)
            _bounded_set(self._speech, item_id, (start, start))
            return {**event, "audio_start_ms": start} if "audio_start_ms" not in event else event
        end = event.get("audio_end_ms", now)
        _bounded_set(self._speech, item_id, (start, end))
        return {**event, "audio_end_ms": end} if "audio_end_ms" not in event else event

    def _transcription_completed(self, event: Event) -> Event:
        out = dict(event)
        out.setdefault("content_index", 0)
        if not isinstance(out.get("usage"), dict):
            start, end = self._speech.get(str(event.get("item_id")), (0, 0))
            out["usage"] = {"type": "duration", "seconds": max(end - start, 0) / 1000}
        return out

    def _response_created(self, event: Event) -> Event:
        response = event.get("response")
        if not isinstance(response, dict):
            return event
        if isinstance(response.get("id"), str):
            _bounded_set(self._responses, response["id"], 0)
        if response.get("usage") == {}:
            response = {**response, "usage": None}
        return {**event, "response": _ga_response(response)}

    def _output_item(self, event: Event) -> Event:
        item = _ga_item(event.get("item"))
        out = {**event, "item": item}
        response_id = event.get("response_id")
        item_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(response_id, str) or not isinstance(item_id, str):
            return out
        known = self._items.get(item_id)
        if known is None:
            index = event.get("output_index")
            if not isinstance(index, int):
                index = self._responses.get(response_id, 0)
            _bounded_set(self._responses, response_id, index + 1)
            known = _Item(response_id, index)
            _bounded_set(self._items, item_id, known)
        out.setdefault("output_index", known.output_index)
        if (
            isinstance(item, dict)
            and item.get("type") == "function_call"
            and isinstance(item.get("call_id"), str)
        ):
            _bounded_set(self._calls, item["call_id"], (response_id, item_id, known.output_index))
        return out

    def _stream(self, event: Event) -> Event:
        kind = event["type"]
        item = self._items.get(str(event.get("item_id")))
        out = dict(event)
        if item is None:
            out.setdefault("output_index", 0)
            out.setdefault("content_index", 0)
            return out
        out.setdefault("output_index", item.output_index)
        if kind == "response.content_part.added":
            part = event.get("part") if isinstance(event.get("part"), dict) else {}
            item.parts.append(_Part("text" if part.get("type") in ("text", "output_text") else "audio"))
            out.setdefault("content_index", len(item.parts) - 1)
            out["part"] = {"type": item.parts[-1].kind, **_part_text(item.parts[-1].kind, ""), **part}
            return out
        if not item.parts:  # a stream with no part announced: one is implied
            item.parts.append(_Part("text" if "output_text" in kind else "audio"))
        index = out.setdefault("content_index", len(item.parts) - 1)
        part_state = item.parts[index] if 0 <= index < len(item.parts) else item.parts[-1]
        if kind in ("response.output_text.delta", "response.output_audio_transcript.delta"):
            part_state.text += str(event.get("delta", ""))
        elif kind == "response.output_text.done":
            out.setdefault("text", part_state.text)
        elif kind == "response.output_audio_transcript.done":
            out.setdefault("transcript", part_state.text)
        elif kind == "response.content_part.done" and not isinstance(event.get("part"), dict):
            out["part"] = {"type": part_state.kind, **_part_text(part_state.kind, part_state.text)}
        return out

    def _call_event(self, event: Event) -> Event:
        located = self._calls.get(str(event.get("call_id")))
        out = dict(event)
        if located is not None:
            response_id, item_id, index = located
            out.setdefault("response_id", response_id)
            out.setdefault("item_id", item_id)
            out.setdefault("output_index", index)
        return out

    def _response_done(self, event: Event) -> list[Event]:
        response = event.get("response")
        if not isinstance(response, dict):
            return [event]
        out: list[Event] = []
        outer = dict(event)
        usage = outer.pop("usage", None)
        if response.get("usage") in (None, {}) and isinstance(usage, dict):
            response = {**response, "usage": usage}
        for index, item in enumerate(response.get("output") or []):
            if not isinstance(item, dict) or item.get("type") != "function_call":
                continue
            call_id = item.get("call_id")
            if isinstance(call_id, str) and call_id not in self._calls_done:
                self._calls_done.add(call_id)
                out.append(
                    self._server_event(
                        "response.function_call_arguments.done",
                        response_id=response.get("id"),
                        item_id=item.get("id"),
                        output_index=index,
                        call_id=call_id,
                        name=item.get("name"),
                        arguments=item.get("arguments") or "",
                    )
                )
        outer["response"] = _ga_response(response)
        out.append(outer)
        if isinstance(response.get("id"), str):
            self._responses.pop(response["id"], None)
        return out


def _ga_item(item: Any) -> Any:
    if (
        isinstance(item, dict)
        and item.get("type") in ("function_call", "function_call_output")
        and "role" in item
    ):
        return {key: value for key, value in item.items() if key != "role"}
    return item


def _ga_response(response: Event) -> Event:
    output = response.get("output")
    if isinstance(output, list):
        response = {**response, "output": [_ga_item(item) for item in output]}
    return response


def _part_text(kind: str, text: str) -> Event:
    return {"transcript": text} if kind == "audio" else {"text": text}


def _bounded_set(table: dict[str, Any], key: str, value: Any) -> None:
    if key not in table and len(table) >= MAX_TRACKED:
        del table[next(iter(table))]
    table[key] = value


def decoded_size(b64: str) -> int:
    """Bytes a base64 string decodes to (without decoding it)."""
    return len(b64) * 3 // 4 - b64[-2:].count("=")


__all__ = ["DEFAULT_MODEL", "DEFAULT_URL", "OPENAI_VOICES", "VOICES", "XaiNormalizer"]
