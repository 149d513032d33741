"""A fake realtime provider on 127.0.0.1, as strict as OpenAI's, that records what the gateway sends it.

It runs an aiohttp server on its own thread and event loop, so any test (sync or async, any event
loop) can use it.

Two personalities, chosen by the request path
---------------------------------------------
**GA** (``/v1/realtime``, Azure ``/openai/v1/realtime``), as OpenAI answers since it retired beta:

- a request carrying ``OpenAI-Beta: realtime=v1`` gets the socket, then OpenAI's own refusal (an
  ``error`` event, code ``beta_api_shape_disabled``, message "The Realtime Beta API is no longer
  supported. Please use /v1/realtime for the GA API.") and a close 4000 with reason
  ``invalid_request_error.beta_api_shape_disabled``, as OpenAI's endpoint does;
- ``session.update`` needs ``session.type``; a field GA does not have (every beta name:
  ``session.modalities``, ``session.voice``, ``response.temperature``, ...) in ``session.update`` or
  ``response.create`` gets ``unknown_parameter`` with its path, a beta value (``"pcm16"`` for a
  format, ``["text", "audio"]``, an assistant ``text`` content part) ``invalid_type`` /
  ``invalid_value``; the event is refused, the session goes on (OpenAI reports the first problem);
- it speaks GA: ``session.created`` with a GA session (``type: "realtime"``, ``audio.input`` /
  ``audio.output``), ``conversation.item.added`` + ``.done``, ``response.output_text.delta`` or
  ``response.output_audio.delta`` + ``response.output_audio_transcript.delta``.

**Beta** (``/beta/v1/realtime``, Azure's preview ``/openai/realtime``), as OpenAI answered before:
requires the beta header (without it: an ``error`` event, code ``invalid_beta``, and the same close),
refuses GA names and values the same way (``session.type``, ``session.audio``, ...), and speaks beta:
a flat beta session, ``conversation.item.created``, ``response.text.delta``, ``response.audio.delta``
+ ``response.audio_transcript.delta``.

**GPT-Live and realtime translation** (``/v1/live/sessions``, its ``/attach`` and ``/fork``,
``/v1/realtime/translations``): :mod:`support.fake_live`, as strict as the SDK's types.

**Call sideband** (``/v1/realtime?call_id=``, no model): the GA personality, for a call the fake
knows (an id starting ``rtc_``; any other: 404); the provider says nothing first.

Any other path is answered 404, a handshake with no key (``Authorization`` or ``api-key``) 401, and
one whose key is a gateway token (``rgw_...``: it must never leave the gateway) 401 too.

Scenarios, chosen by the model (``model``, or Azure's ``deployment``), in both personalities
------------------------------------------------------------------------------------------
- any ordinary name: a conversation. ``session.update`` -> ``session.updated`` (the whole session);
  ``conversation.item.create`` -> the item announced; ``input_audio_buffer.append`` then ``.commit``
  (100 ms or more) -> ``input_audio_buffer.committed`` and a user audio item announced;
  ``response.create`` -> a complete reply, "Hello from upstream", as text, or as audio with that
  transcript, per the response's or the session's output modalities (audio by default, as OpenAI's).
  Turn detection is on by default, as OpenAI's is (see "Server VAD" below).
- ``reject-<status>``: answer the handshake with that HTTP status and an OpenAI-style JSON body.
- ``close-<code>``: accept, send ``session.created``, then close with ``code`` and reason "scripted".
- ``drop``: accept, send ``session.created``, then abort the TCP connection.
- ``burst-<n>``: accept, send ``session.created`` and ``n`` numbered ``test.burst`` events at once.
- ``slow-<ms>``: wait ``ms`` before answering the handshake (client events must be held meanwhile).
- ``silent``: accept and send nothing until the client speaks.
- ``live-usage-<seconds>``: a conversation in which each ``response.create`` is answered by GPT-Live's
  ``session.usage.updated`` alone, its cumulative ``usage.seconds`` growing by ``seconds`` each time
  (accounting tests; OpenAI itself sends it on ``/v1/live/sessions`` only).

Every ``response.done`` carries :data:`USAGE`: known counts of every kind of token, so accounting tests
can check the gateway's sums.

Where the URL names no model (GPT-Live, a call sideband), the key names the scenario: ``Bearer
scenario-reject-429``.

Server VAD
----------
While the session's turn detection is ``server_vad`` or ``semantic_vad`` (the default: GA
``audio.input.turn_detection``, beta ``turn_detection``) and its input is PCM16 at 24 kHz (GA
``audio/pcm``, beta ``pcm16``), appended audio goes through a plain energy detector, as OpenAI's
server VAD would hear it: 10 ms windows, speech where a window's RMS reaches ``VAD_SPEECH_RMS``
(about -30 dBFS; the session's ``threshold`` is not modelled). The first speech window ->
``input_audio_buffer.speech_started`` (``audio_start_ms`` less ``prefix_padding_ms``, the item id
to come); then ``silence_duration_ms`` of silence (``semantic_vad``: ``SEMANTIC_VAD_SILENCE_MS``,
whatever its eagerness) -> ``input_audio_buffer.speech_stopped``, the buffer committed as by
``input_audio_buffer.commit``, and, unless ``create_response`` is false, the reply, as by
``response.create`` with no parameters. Silence (all the audio the e2e tests append) never starts
speech, so nothing is said before the client commits; with turn detection ``null`` only a commit
commits.

What it saw
-----------
``connections`` has an :class:`UpstreamConnection` per handshake: path, query, headers, personality,
the frames received (``frames``) and sent (``sent``, exactly as sent), the close code.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import sys
import threading
from array import array
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

Event = dict[str, Any]

GA_PATHS = frozenset({"/v1/realtime", "/openai/v1/realtime"})
BETA_PATHS = frozenset({"/beta/v1/realtime", "/openai/realtime"})

# OpenAI's refusal of the beta header on its GA endpoint, as it is sent (close code and reason too).
BETA_API_SHAPE_DISABLED = (
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
)
# The beta endpoint's refusal of a request without the header (modelled on OpenAI's other beta APIs).
BETA_HEADER_REQUIRED = (
    "You must provide the 'OpenAI-Beta' header to access the Realtime API. "
    "Please try again by setting the header 'OpenAI-Beta: realtime=v1'."
)
REFUSAL_CLOSE_CODE = 4000

REPLY_WORDS = ("Hello", " from", " upstream")
REPLY_TEXT = "".join(REPLY_WORDS)
AUDIO_CHUNK = base64.b64encode(bytes(range(256)) * 4).decode()  # 512 PCM16 samples, not silence
MIN_COMMIT_BYTES = 24_000 * 2 // 10  # 100 ms of PCM16 at 24 kHz
VAD_WINDOW_MS = 10
VAD_WINDOW_BYTES = 24_000 * 2 * VAD_WINDOW_MS // 1000
VAD_SPEECH_RMS = 1000.0  # PCM16 units: about -30 dBFS
SEMANTIC_VAD_SILENCE_MS = 500
USAGE = {
    "total_tokens": 498,
    "input_tokens": 357,
    "output_tokens": 141,
    "input_token_details": {
        "text_tokens": 120,
        "audio_tokens": 230,
        "image_tokens": 7,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 40, "audio_tokens": 24, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 21, "audio_tokens": 120},
}


@dataclass
class UpstreamConnection:
    """What one gateway connection looked like from the provider's side."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    personality: str = ""  # "ga" or "beta", by path ("" for a path it does not serve)
    frames: list[str | bytes] = field(default_factory=list)  # received
    sent: list[str] = field(default_factory=list)  # sent, exactly as sent
    close_code: int | None = None
    closed: threading.Event = field(default_factory=threading.Event)

    @property
    def received(self) -> list[Event]:
        """The text frames received, parsed."""
        return [json.loads(frame) for frame in self.frames if isinstance(frame, str)]

    @property
    def errors(self) -> list[Event]:
        """The ``error`` events this provider sent."""
        return [event for event in map(json.loads, self.sent) if event["type"] == "error"]


# -- the two personalities -----------------------------------------------------------------------------


def _fields(names: str, **nested: dict[str, Any]) -> dict[str, Any]:
    return dict.fromkeys(names.split()) | nested


# The fields each may set, as {name: None (any value) | {nested name: ...}}.
_GA_AUDIO = {
    "input": {"format": None, "transcription": None, "noise_reduction": None, "turn_detection": None},
    "output": {"format": None, "voice": None, "speed": None},
}
_GA_SESSION_FIELDS = _fields(
    "type model instructions output_modalities tools tool_choice max_output_tokens tracing truncation "
    "prompt include",
    audio=_GA_AUDIO,
)
_GA_TRANSCRIPTION_FIELDS = _fields("type include", audio={"input": _GA_AUDIO["input"]})
_GA_RESPONSE_FIELDS = _fields(
    "conversation metadata input instructions output_modalities tools tool_choice max_output_tokens prompt",
    audio={"output": {"format": None, "voice": None}},
)
_BETA_SESSION_FIELDS = _fields(
    "model modalities instructions voice input_audio_format output_audio_format input_audio_transcription "
    "input_audio_noise_reduction turn_detection tools tool_choice temperature max_response_output_tokens "
    "speed tracing"
)
_BETA_TRANSCRIPTION_FIELDS = _fields(
    "input_audio_format input_audio_transcription turn_detection input_audio_noise_reduction include"
)
_BETA_RESPONSE_FIELDS = _fields(
    "conversation metadata input instructions modalities voice output_audio_format tools tool_choice "
    "temperature max_response_output_tokens"
)

_GA_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
_BETA_FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
_BETA_STREAM_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}
_CLIENT_TYPES = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)
_TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "create_response": True,
    "interrupt_response": True,
}


class Problem(Exception):
    """A client event the provider refuses: reported as an ``error`` event, the session goes on."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _unknown(obj: dict[str, Any], allowed: dict[str, Any], prefix: str) -> None:
    """Refuse the first field of ``obj`` (at any depth) that ``allowed`` does not name."""
    for key, value in obj.items():
        if key not in allowed:
            raise Problem("unknown_parameter", f"Unknown parameter: '{prefix}.{key}'.", f"{prefix}.{key}")
        if allowed[key] is not None and isinstance(value, dict):
            _unknown(value, allowed[key], f"{prefix}.{key}")


def _one_of(value: Any, allowed: tuple[str, ...], param: str) -> None:
    if value not in allowed:
        supported = ", ".join(f"'{name}'" for name in allowed)
        raise Problem("invalid_value", f"Invalid value: {value!r}. Supported values are: {supported}.", param)


def _vad_settings(turn_detection: Any) -> Event | None:
    """``silence_duration_ms``, ``prefix_padding_ms`` and ``create_response`` in force, None if VAD is off."""
    if not isinstance(turn_detection, dict):
        return None
    kind = turn_detection.get("type")
    if kind == "semantic_vad":
        silence = SEMANTIC_VAD_SILENCE_MS
    elif kind == "server_vad":
        silence = turn_detection.get("silence_duration_ms")
        silence = silence if isinstance(silence, int | float) else 500  # OpenAI's default
    else:
        return None
    prefix = turn_detection.get("prefix_padding_ms")
    return {
        "silence_duration_ms": silence,
        "prefix_padding_ms": prefix if isinstance(prefix, int | float) else 300,
        "create_response": turn_detection.get("create_response") is not False,
    }


def _rms(window: bytes) -> float:
    samples = array("h", window)
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(sample * sample for sample in samples) / len(samples))


def _ga_format(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise Problem(
            "invalid_type", f"Invalid type for '{param}': expected an object, but got {kind}.", param
        )
    _one_of(value.get("type"), _GA_FORMATS, f"{param}.type")


class Ga:
    """OpenAI's GA interface."""

    name = "ga"
    client_types = _CLIENT_TYPES
    item_added = "conversation.item.added"  # how an item entering the conversation is announced
    text_part, audio_part = "output_text", "output_audio"

    @staticmethod
    def event_name(ga_name: str) -> str:
        return ga_name

    @staticmethod
    def session(model: str) -> Event:
        audio_format = {"type": "audio/pcm", "rate": 24000}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_fake",
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "include": None,
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": audio_format,
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(_TURN_DETECTION),
                },
                "output": {"format": dict(audio_format), "voice": "alloy", "speed": 1.0},
            },
        }

    @staticmethod
    def check_session(update: Event) -> None:
        kind = update.get("type")
        _unknown(
            update, _GA_TRANSCRIPTION_FIELDS if kind == "transcription" else _GA_SESSION_FIELDS, "session"
        )
        if kind is None:  # after the unknown fields, as OpenAI reports a beta session's
            raise Problem(
                "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
            )
        _one_of(kind, ("realtime", "transcription"), "session.type")
        Ga._check_values(update, "session")

    @staticmethod
    def check_response(params: Event) -> None:
        _unknown(params, _GA_RESPONSE_FIELDS, "response")
        Ga._check_values(params, "response")

    @staticmethod
    def _check_values(obj: Event, prefix: str) -> None:
        if "output_modalities" in obj and obj["output_modalities"] not in (["text"], ["audio"]):
            raise Problem(
                "invalid_value",
                f"Invalid value: {obj['output_modalities']!r}. Supported values are: ['text'], ['audio'].",
                f"{prefix}.output_modalities",
            )
        audio = obj.get("audio") or {}
        for side in ("input", "output"):
            if "format" in (audio.get(side) or {}):
                _ga_format(audio[side]["format"], f"{prefix}.audio.{side}.format")

    @staticmethod
    def apply(session: Event, update: Event) -> None:
        for key, value in update.items():
            if key == "audio":
                for side, fields in value.items():
                    session["audio"].setdefault(side, {}).update(fields)
            else:
                session[key] = value

    @staticmethod
    def wants_audio(session: Event, params: Event) -> bool:
        return "audio" in (params.get("output_modalities") or session["output_modalities"])

    @staticmethod
    def turn_detection(session: Event) -> Event | None:
        """The session's turn detection when VAD can hear its input (PCM16 at 24 kHz), else None."""
        audio_in = session["audio"].get("input") or {}
        audio_format = audio_in.get("format") or {}
        if audio_format.get("type") != "audio/pcm" or audio_format.get("rate", 24000) != 24000:
            return None
        return _vad_settings(audio_in.get("turn_detection"))

    @staticmethod
    def response(session: Event, params: Event, audio: bool) -> Event:
        output = session["audio"]["output"]
        return {
            "object": "realtime.response",
            "conversation_id": "conv_fake",
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": output["format"], "voice": output["voice"]}},
            "metadata": params.get("metadata"),
        }


class Beta:
    """OpenAI's retired beta interface."""

    name = "beta"
    client_types = _CLIENT_TYPES | {"transcription_session.update"}
    item_added = "conversation.item.created"
    text_part, audio_part = "text", "audio"

    @staticmethod
    def event_name(ga_name: str) -> str:
        return _BETA_STREAM_NAMES.get(ga_name, ga_name)

    @staticmethod
    def session(model: str) -> Event:
        return {
            "object": "realtime.session",
            "id": "sess_fake",
            "model": model,
            "modalities": ["text", "audio"],
            "instructions": "",
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_transcription": None,
            "input_audio_noise_reduction": None,
            "turn_detection": dict(_TURN_DETECTION),
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
            "speed": 1.0,
            "tracing": None,
            "expires_at": 0,
        }

    @staticmethod
    def check_session(update: Event) -> None:
        _unknown(update, _BETA_SESSION_FIELDS, "session")
        Beta._check_values(update, "session")

    @staticmethod
    def check_response(params: Event) -> None:
        _unknown(params, _BETA_RESPONSE_FIELDS, "response")
        Beta._check_values(params, "response")

    @staticmethod
    def _check_values(obj: Event, prefix: str) -> None:
        modalities = obj.get("modalities")
        if modalities is not None and sorted(modalities) not in (["text"], ["audio", "text"]):
            raise Problem(
                "invalid_value",
                f"Invalid modalities: {modalities!r}. Supported combinations are: ['text'] and "
                "['audio', 'text'].",
                f"{prefix}.modalities",
            )
        for name in ("input_audio_format", "output_audio_format"):
            if name in obj:
                _one_of(obj[name], _BETA_FORMATS, f"{prefix}.{name}")

    @staticmethod
    def apply(session: Event, update: Event) -> None:
        session.update(update)

    @staticmethod
    def wants_audio(session: Event, params: Event) -> bool:
        return "audio" in (params.get("modalities") or session["modalities"])

    @staticmethod
    def turn_detection(session: Event) -> Event | None:
        """The session's turn detection when VAD can hear its input (``pcm16``), else None."""
        if session.get("input_audio_format") != "pcm16":
            return None
        return _vad_settings(session.get("turn_detection"))

    @staticmethod
    def response(session: Event, params: Event, audio: bool) -> Event:
        return {
            "object": "realtime.response",
            "conversation_id": "conv_fake",
            "modalities": ["text", "audio"] if audio else ["text"],
            "voice": params.get("voice", session["voice"]),
            "output_audio_format": params.get("output_audio_format", session["output_audio_format"]),
            "temperature": params.get("temperature", session["temperature"]),
            "max_output_tokens": "inf",
            "metadata": params.get("metadata"),
        }


Personality = type[Ga] | type[Beta]
_ASSISTANT_PARTS = {Ga: ("output_text", "output_audio"), Beta: ("text", "audio")}


# -- one conversation ----------------------------------------------------------------------------------


class Conversation:
    """One accepted session: client events in, the provider's events out (as dicts, in order)."""

    def __init__(self, speaks: Personality, model: str) -> None:
        self.speaks = speaks
        self.session = speaks.session(model)
        # ``live-usage-<seconds>``: GPT-Live's cumulative billable seconds, reported per response.create.
        self.live_seconds_per_response = (
            int(model.removeprefix("live-usage-")) if model.startswith("live-usage-") else 0
        )
        self._live_seconds = 0
        self._ids = itertools.count(1)
        self._last_item: str | None = None
        self._previous: dict[str, str | None] = {}  # item id -> the item before it
        self._buffered_bytes = 0
        # Server VAD: bytes of an unfinished window, ms of audio heard in the session, the speech
        # in progress (its item id) and the silence since its last loud window.
        self._vad_carry = b""
        self._vad_ms = 0
        self._speech_item: str | None = None
        self._quiet_ms = 0

    def created(self) -> list[Event]:
        return [self._event("session.created", session=self.session)]

    def receive(self, event: Event) -> list[Event]:
        kind = event.get("type")
        try:
            if kind not in self.speaks.client_types:
                raise Problem("invalid_value", f"Invalid value: {kind!r}. Unknown event type.", "type")
            handler = getattr(self, "_" + kind.replace(".", "_"), None)
            return handler(event) if handler is not None else []
        except Problem as problem:
            return [self._error(problem, event.get("event_id"))]

    # -- client events (a method per type, named after it) ------------------------------------------

    def _session_update(self, event: Event) -> list[Event]:
        update = event.get("session") or {}
        self.speaks.check_session(update)
        self.speaks.apply(self.session, update)
        return [self._event("session.updated", session=self.session)]

    def _transcription_session_update(self, event: Event) -> list[Event]:  # beta only
        update = event.get("session") or {}
        _unknown(update, _BETA_TRANSCRIPTION_FIELDS, "session")
        Beta._check_values(update, "session")
        return [
            self._event(
                "transcription_session.updated",
                session={"object": "realtime.transcription_session", **update},
            )
        ]

    def _conversation_item_create(self, event: Event) -> list[Event]:
        item = dict(event.get("item") or {})
        self._check_item(item, "item")
        item.setdefault("id", self._id("item"))
        item.update(object="realtime.item", status="completed")
        return self._enter(item) + self._finish(item)

    def _input_audio_buffer_append(self, event: Event) -> list[Event]:
        audio = base64.b64decode(event.get("audio", ""))
        self._buffered_bytes += len(audio)
        vad = self.speaks.turn_detection(self.session)
        return self._detect(audio, vad) if vad is not None else []

    def _input_audio_buffer_commit(self, event: Event) -> list[Event]:
        if self._buffered_bytes < MIN_COMMIT_BYTES:
            milliseconds = self._buffered_bytes / MIN_COMMIT_BYTES * 100
            raise Problem(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                f"audio, but buffer only has {milliseconds:.2f}ms of audio.",
            )
        return self._commit(self._speech_item or self._id("item"))

    def _commit(self, item_id: str) -> list[Event]:
        self._buffered_bytes = 0
        self._speech_item = None
        content = [{"type": "input_audio", "transcript": None}]
        item = {"id": item_id, "object": "realtime.item", "type": "message"}
        item.update(status="completed", role="user", content=content)
        committed = self._event(
            "input_audio_buffer.committed", previous_item_id=self._last_item, item_id=item["id"]
        )
        return [committed, *self._enter(item), *self._finish(item)]

    def _detect(self, audio: bytes, vad: Event) -> list[Event]:
        """Server VAD over appended PCM16 (see the module's docstring)."""
        data = self._vad_carry + audio
        usable = len(data) - len(data) % VAD_WINDOW_BYTES
        self._vad_carry = data[usable:]
        out: list[Event] = []
        for offset in range(0, usable, VAD_WINDOW_BYTES):
            loud = _rms(data[offset : offset + VAD_WINDOW_BYTES]) >= VAD_SPEECH_RMS
            start_ms, self._vad_ms = self._vad_ms, self._vad_ms + VAD_WINDOW_MS
            if self._speech_item is None:
                if loud:
                    self._speech_item, self._quiet_ms = self._id("item"), 0
                    audio_start_ms = max(0, start_ms - int(vad["prefix_padding_ms"]))
                    out.append(
                        self._event(
                            "input_audio_buffer.speech_started",
                            audio_start_ms=audio_start_ms,
                            item_id=self._speech_item,
                        )
                    )
            elif loud:
                self._quiet_ms = 0
            else:
                self._quiet_ms += VAD_WINDOW_MS
                if self._quiet_ms >= vad["silence_duration_ms"]:
                    item_id = self._speech_item
                    out.append(
                        self._event(
                            "input_audio_buffer.speech_stopped", audio_end_ms=self._vad_ms, item_id=item_id
                        )
                    )
                    out.extend(self._commit(item_id))
                    if vad["create_response"]:
                        out.extend(self._reply({}))
        return out

    def _input_audio_buffer_clear(self, event: Event) -> list[Event]:
        self._buffered_bytes = 0
        self._speech_item, self._vad_carry = None, b""
        return [self._event("input_audio_buffer.cleared")]

    def _response_cancel(self, event: Event) -> list[Event]:
        raise Problem("response_cancel_not_active", "Cancellation failed: no active response found")

    def _response_create(self, event: Event) -> list[Event]:
        params = event.get("response") or {}
        self.speaks.check_response(params)
        if self.live_seconds_per_response:
            self._live_seconds += self.live_seconds_per_response
            return [self._event("session.usage.updated", usage={"seconds": self._live_seconds})]
        for index, item in enumerate(params.get("input") or []):
            self._check_item(item, f"response.input[{index}]")
        return self._reply(params)

    # -- the reply --------------------------------------------------------------------------------------

    def _reply(self, params: Event) -> list[Event]:
        speaks = self.speaks
        audio = speaks.wants_audio(self.session, params)
        response = {"id": self._id("resp"), **speaks.response(self.session, params, audio)}
        item = {"id": self._id("item"), "object": "realtime.item", "type": "message"}
        item.update(status="in_progress", role="assistant", content=[])
        at = {"response_id": response["id"], "item_id": item["id"], "output_index": 0, "content_index": 0}
        # response.content_part.* parts are "audio" / "text" in both interfaces (OpenAI's GA reference
        # and SDKs declare them so); only the item's content is GA "output_audio" / "output_text".
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        out = [
            self._event("response.created", response={**response, "status": "in_progress", "output": []}),
            self._event("response.output_item.added", response_id=response["id"], output_index=0, item=item),
            *self._enter(item),
            self._event("response.content_part.added", **at, part=part),
        ]
        for word in REPLY_WORDS:
            if audio:
                out.append(self._event("response.output_audio.delta", **at, delta=AUDIO_CHUNK))
                out.append(self._event("response.output_audio_transcript.delta", **at, delta=word))
            else:
                out.append(self._event("response.output_text.delta", **at, delta=word))
        if audio:
            out.append(self._event("response.output_audio.done", **at))
            out.append(self._event("response.output_audio_transcript.done", **at, transcript=REPLY_TEXT))
            part = {**part, "transcript": REPLY_TEXT}
        else:
            out.append(self._event("response.output_text.done", **at, text=REPLY_TEXT))
            part = {**part, "text": REPLY_TEXT}
        content = {**part, "type": speaks.audio_part if audio else speaks.text_part}
        item = {**item, "status": "completed", "content": [content]}
        done = {**response, "status": "completed", "output": [item], "usage": USAGE}
        return [
            *out,
            self._event("response.content_part.done", **at, part=part),
            self._event("response.output_item.done", response_id=response["id"], output_index=0, item=item),
            *self._finish(item),
            self._event("response.done", response=done),
        ]

    # -- helpers ----------------------------------------------------------------------------------------

    def _enter(self, item: Event) -> list[Event]:
        """The item enters the conversation: GA ``conversation.item.added``, beta ``.created``."""
        previous = self._previous[item["id"]] = self._last_item
        self._last_item = item["id"]
        return [self._event(self.speaks.item_added, previous_item_id=previous, item=item)]

    def _finish(self, item: Event) -> list[Event]:
        """The item is final: GA ``conversation.item.done``; beta says nothing more."""
        if self.speaks is Beta:
            return []
        previous = self._previous[item["id"]]
        return [self._event("conversation.item.done", previous_item_id=previous, item=item)]

    def _check_item(self, item: Any, param: str) -> None:
        if not isinstance(item, dict) or item.get("role") != "assistant":
            return
        allowed = _ASSISTANT_PARTS[self.speaks]
        for index, part in enumerate(item.get("content") or []):
            _one_of(part.get("type"), allowed, f"{param}.content[{index}].type")

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids)}"

    def _event(self, ga_name: str, **fields: Any) -> Event:
        return {"type": self.speaks.event_name(ga_name), "event_id": self._id("event"), **fields}

    def _error(self, problem: Problem, client_event_id: Any) -> Event:
        error = {"type": "invalid_request_error", "code": problem.code, "message": problem.message}
        error.update(param=problem.param, event_id=client_event_id)
        return self._event("error", error=error)


def refusal(speaks: Personality, headers: dict[str, str]) -> Event | None:
    """The ``error`` event with which the endpoint refuses a request for the other interface."""
    beta_header = "realtime=v1" in headers.get("openai-beta", "").replace(" ", "").split(",")
    if speaks is Ga and beta_header:
        code, message = "beta_api_shape_disabled", BETA_API_SHAPE_DISABLED
    elif speaks is Beta and not beta_header:
        code, message = "invalid_beta", BETA_HEADER_REQUIRED
    else:
        return None
    error = {"type": "invalid_request_error", "code": code, "message": message, "param": None}
    return {"type": "error", "event_id": "event_refused", "error": error}


def _error_response(status: int, message: str, code: str | None = None) -> web.Response:
    body = {"error": {"type": "invalid_request_error", "code": code, "message": message, "param": None}}
    return web.json_response(body, status=status)


# -- the server ----------------------------------------------------------------------------------------


class FakeUpstream:
    """Start with :meth:`start`; ``url`` / ``beta_url`` are its endpoints; ``connections`` what it saw."""

    def __init__(self) -> None:
        from support.fake_live import LiveRegistry

        self.connections: list[UpstreamConnection] = []
        self.live_sessions = LiveRegistry()  # GPT-Live sessions running or stored (for sidebands, forks)
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The GA endpoint, like ``wss://api.openai.com/v1/realtime``."""
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def beta_url(self) -> str:
        """The beta endpoint, as OpenAI's was before it retired beta."""
        return f"ws://127.0.0.1:{self.port}/beta/v1/realtime"

    @property
    def openai_base(self) -> str:
        """For ``OPENAI_BASE_URL``: GPT-Live on ``/v1/live/sessions``, translation on
        ``/v1/realtime/translations``, the GA personality on ``/v1/realtime``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def http_base(self) -> str:
        """For ``AZURE_OPENAI_ENDPOINT``: GA on ``/openai/v1/realtime``, beta on ``/openai/realtime``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """Block until ``predicate(self.connections)`` is truthy; return its value."""
        with self._changed:
            result = self._changed.wait_for(lambda: predicate(self.connections), timeout)
        if not result:
            raise AssertionError(f"fake upstream: condition not met within {timeout} s")
        return result

    def connection_for(self, model: str, timeout: float = 10.0) -> UpstreamConnection:
        """The newest connection that asked for ``model`` (or Azure ``deployment``)."""

        def newest(connections: list[UpstreamConnection]) -> UpstreamConnection | None:
            found = [c for c in connections if model in (c.query.get("model"), c.query.get("deployment"))]
            return found[-1] if found else None

        return self.wait_for(newest, timeout)

    def mark(self) -> int:
        """A place in ``connections``, for :meth:`connection_after`."""
        return len(self.connections)

    def connection_after(self, mark: int, timeout: float = 10.0) -> UpstreamConnection:
        """The first connection made after :meth:`mark` returned ``mark``."""
        return self.wait_for(lambda c: len(c) > mark and c[mark], timeout)

    def frames_of(self, model: str, count: int, timeout: float = 10.0) -> list[str | bytes]:
        """Wait until the connection for ``model`` has received ``count`` frames; return them."""
        return self.frames_received(self.connection_for(model, timeout), count, timeout)

    def frames_received(
        self, connection: UpstreamConnection, count: int, timeout: float = 10.0
    ) -> list[str | bytes]:
        """Wait until ``connection`` has received ``count`` frames; return them."""
        self.wait_for(lambda _: len(connection.frames) >= count, timeout)
        return list(connection.frames)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from support import fake_live  # it builds on this module

        speaks: Personality | None = (
            Ga if request.path in GA_PATHS else Beta if request.path in BETA_PATHS else None
        )
        live = fake_live.route(request.path)
        connection = UpstreamConnection(
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            personality=speaks.name if speaks is not None else live[0] if live is not None else "",
        )
        self.connections.append(connection)
        self._notify()
        if speaks is None and live is None:
            return _error_response(404, f"Invalid URL (GET {request.path})")
        if "authorization" not in connection.headers and "api-key" not in connection.headers:
            return _error_response(401, "You didn't provide an API key.", "missing_api_key")
        key = connection.headers.get("authorization", "").removeprefix("Bearer ")
        key = key or connection.headers["api-key"]
        if key.startswith("rgw_"):
            return _error_response(401, "Incorrect API key provided.", "invalid_api_key")
        model = connection.query.get("model") or connection.query.get("deployment") or ""
        scenario = model
        if not scenario and key.startswith("scenario-"):  # no model in the URL: the key names it
            scenario = key.removeprefix("scenario-")
        if scenario.startswith("reject-"):
            return _error_response(int(scenario.removeprefix("reject-")), "scripted", "scripted")
        if scenario.startswith("slow-"):
            await asyncio.sleep(int(scenario.removeprefix("slow-")) / 1000)
        call_id = connection.query.get("call_id")
        if speaks is not None and call_id is not None and not call_id.startswith("rtc_"):
            return _error_response(404, f"Call '{call_id}' not found.", "call_not_found")
        if live is not None and live[0] != "translation":
            refused = fake_live.live_handshake_refusal(self.live_sessions, *live)
            if refused is not None:
                return _error_response(refused[0], refused[1], "session_not_found")
        socket = web.WebSocketResponse()
        try:
            await socket.prepare(request)
        except ConnectionResetError:  # the gateway gave up waiting (``slow-``)
            connection.closed.set()
            return socket
        try:
            if live is None:
                assert speaks is not None
                await self._converse(socket, connection, speaks, model)
            elif live[0] == "translation":
                await fake_live.converse_translation(socket, connection, model, self._send, self._notify)
            else:
                await fake_live.converse_live(
                    self.live_sessions, socket, connection, *live, scenario, self._send, self._notify
                )
        finally:
            connection.close_code = socket.close_code
            connection.closed.set()
            self._notify()
        return socket

    async def _send(
        self, socket: web.WebSocketResponse, connection: UpstreamConnection, event: Event
    ) -> None:
        frame = json.dumps(event)
        connection.sent.append(frame)  # before sending: once a client has it, a test can see it here
        await socket.send_str(frame)

    async def _converse(
        self, socket: web.WebSocketResponse, connection: UpstreamConnection, speaks: Personality, model: str
    ) -> None:
        refused = refusal(speaks, connection.headers)
        if refused is not None:
            await self._send(socket, connection, refused)
            reason = f"invalid_request_error.{refused['error']['code']}"
            await socket.close(code=REFUSAL_CLOSE_CODE, message=reason.encode())
            return
        conversation = Conversation(speaks, model)
        if model != "silent" and "call_id" not in connection.query:  # a call's sideband is not greeted
            for event in conversation.created():
                await self._send(socket, connection, event)
        if model.startswith("close-"):
            await socket.close(code=int(model.removeprefix("close-")), message=b"scripted")
            return
        if model == "drop":
            assert socket._writer is not None
            socket._writer.transport.abort()  # type: ignore[union-attr]
            return
        if model.startswith("burst-"):
            for number in range(int(model.removeprefix("burst-"))):
                await self._send(socket, connection, {"type": "test.burst", "seq": number})
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            connection.frames.append(message.data)
            self._notify()
            event = json.loads(message.data) if message.type is WSMsgType.TEXT else None
            if isinstance(event, dict):  # the gateway relays nothing else; tests check that
                for answer in conversation.receive(event):
                    await self._send(socket, connection, answer)
