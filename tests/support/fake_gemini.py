"""A fake Gemini Live endpoint on 127.0.0.1, as strict as Google documents its own, that records what
it is sent.

Written from the public documentation and the official SDK's wire names, not from Gemini itself:
ai.google.dev/api/live (the WebSocket reference: the first message must be ``setup`` and only the
first; a client message holds exactly one of ``setup``, ``clientContent``, ``realtimeInput``,
``toolResponse``; a server message exactly one of its kinds, ``usageMetadata`` aside),
ai.google.dev/gemini-api/docs/live-guide (audio: 16-bit PCM, the rate in the MIME type, 24 kHz
out; ``activityStart`` / ``activityEnd`` only with automatic activity detection disabled,
``audioStreamEnd`` only with it enabled; one response modality per session), live-session
(``sessionResumptionUpdate``: a new handle when the session can be resumed, ``resumable: false``
while function calls are pending; ``goAway``), live-tools (``toolCall``, ``toolResponse`` by call
id), the model pages (the served Live models; the native-audio ones answer in audio only), and
googleapis/python-genai ``types.py`` / ``_live_converters.py`` (every field's JSON name; the key
in the ``x-goog-api-key`` header; ``sessionResumption.transparent`` is Vertex AI's only). Google's
APIs parse JSON strictly into protobuf: an unknown field, or an enum value that is not one, is
refused with the messages Google's APIs use for those ("Invalid JSON payload received. Unknown
name ..."); Gemini Live reports a refusal by closing the socket with 1007, and an unknown model
with 1008 (livekit/agents' google plugin documents both codes). Field names are accepted in
either of proto3 JSON's spellings (``generationConfig`` or ``generation_config``).

Its messages go out as binary WebSocket frames holding JSON, as Gemini's do (the official JS SDK
reads them as ``Blob`` data); ``binary=False`` makes them text.

The conversation (the same in every connection)
-----------------------------------------------
- ``setup`` -> ``setupComplete``, then (with ``sessionResumption`` in the setup)
  ``sessionResumptionUpdate`` with a fresh handle; again after every turn, ``resumable: false``
  while function calls wait for their results. A setup with a handle resumes that session (its
  history) on a new connection, and may change everything but the model.
- a user turn -> a reply, "Hello from Gemini", in the session's one response modality: ``TEXT``
  as ``modelTurn`` text parts; ``AUDIO`` as ``modelTurn`` ``inlineData`` 24 kHz PCM16 chunks (not
  silence) with ``outputTranscription`` of the same words when ``outputAudioTranscription`` is set;
  then ``generationComplete``, and ``turnComplete`` with ``usageMetadata`` (counts by modality:
  text tokens one per word, audio 32 per second, as Gemini counts audio).
- a user turn is a ``clientContent`` with ``turnComplete: true``; or speech: with automatic
  activity detection, audio louder than about -30 dBFS then ``silenceDurationMs`` (default 500)
  of quiet, or ``audioStreamEnd`` after speech; without it, ``activityStart`` ... ``activityEnd``.
  A turn of speech is transcribed as ``HEARD`` (``inputTranscription``, when
  ``inputAudioTranscription`` is set).
- a turn whose text names a declared function (or says "weather" when a declared function's name
  holds it) -> ``toolCall`` with one call, arguments filled from its schema (strings "Paris",
  numbers 1, booleans true); once every call has its ``toolResponse`` (right id and name), the
  reply is "Result: " and the response's ``output`` (or the whole response).

Tests may also make it say anything (:meth:`FakeGemini.inject`: ``interrupted``, ``goAway``,
``toolCallCancellation``, ...) and close a connection (:meth:`FakeGemini.close`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import math
import re
import sys
import threading
from array import array
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

Message = dict[str, Any]

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
API_KEY = "gemini-test-key"
MODELS = frozenset(
    {
        "gemini-3.8-live",
        "gemini-3.8-live-extended-thinking",
        "gemini-3.1-flash-live-preview",
        "gemini-2.5-flash-native-audio-preview-12-2025",
    }
)
AUDIO_ONLY_MODELS = frozenset(
    {"gemini-3.8-live", "gemini-3.8-live-extended-thinking", "gemini-2.5-flash-native-audio-preview-12-2025"}
)
VOICES = frozenset(
    {
        "Zephyr",
        "Puck",
        "Charon",
        "Kore",
        "Fenrir",
        "Leda",
        "Orus",
        "Aoede",
        "Callirrhoe",
        "Autonoe",
        "Enceladus",
        "Iapetus",
        "Umbriel",
        "Algieba",
        "Despina",
        "Erinome",
        "Algenib",
        "Rasalgethi",
        "Laomedeia",
        "Achernar",
        "Alnilam",
        "Schedar",
        "Gacrux",
        "Pulcherrima",
        "Achird",
        "Zubenelgenubi",
        "Vindemiatrix",
        "Sadachbia",
        "Sadaltager",
        "Sulafat",
    }
)
REPLY_WORDS = ("Hello", " from", " Gemini")
REPLY_TEXT = "".join(REPLY_WORDS)
HEARD = ("What is", " the weather", " in Paris?")
HEARD_TEXT = "".join(HEARD)
OUTPUT_RATE = 24_000
AUDIO_CHUNK_MS = 40
AUDIO_TOKENS_PER_SECOND = 32
SPEECH_RMS = 1000.0  # PCM16 units: about -30 dBFS
DEFAULT_SILENCE_MS = 500
INVALID_ARGUMENT = "Request contains an invalid argument."
MISSING_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
BAD_KEY = "API key not valid. Please pass a valid API key."

# -- the schema of what a client may send (proto field names; either JSON spelling accepted) ---------

_ANY = None  # a scalar, or a free-form value (a JSON Schema, function arguments, a response)
_BLOB = {"mime_type": _ANY, "data": _ANY}
_PART = {
    "text": _ANY,
    "inline_data": _BLOB,
    "file_data": {"mime_type": _ANY, "file_uri": _ANY},
    "function_call": {"id": _ANY, "name": _ANY, "args": _ANY},
    "function_response": {
        "id": _ANY,
        "name": _ANY,
        "response": _ANY,
        "will_continue": _ANY,
        "scheduling": _ANY,
    },
    "thought": _ANY,
    "thought_signature": _ANY,
}
_CONTENT = {"role": _ANY, "parts": [_PART]}
_TRANSCRIPTION = {"language_codes": _ANY, "custom_vocabulary": _ANY}
_SETUP = {
    "model": _ANY,
    "generation_config": {
        "candidate_count": _ANY,
        "max_output_tokens": _ANY,
        "temperature": _ANY,
        "top_p": _ANY,
        "top_k": _ANY,
        "presence_penalty": _ANY,
        "frequency_penalty": _ANY,
        "response_modalities": _ANY,
        "speech_config": {
            "voice_config": {"prebuilt_voice_config": {"voice_name": _ANY}},
            "language_code": _ANY,
        },
        "media_resolution": _ANY,
        "seed": _ANY,
        "thinking_config": {"thinking_budget": _ANY, "thinking_level": _ANY, "include_thoughts": _ANY},
        "enable_affective_dialog": _ANY,
    },
    "system_instruction": _CONTENT,
    "tools": [
        {
            "function_declarations": [
                {
                    "name": _ANY,
                    "description": _ANY,
                    "parameters": _ANY,
                    "parameters_json_schema": _ANY,
                    "response": _ANY,
                    "response_json_schema": _ANY,
                    "behavior": _ANY,
                }
            ],
            "google_search": _ANY,
            "code_execution": _ANY,
            "url_context": _ANY,
        }
    ],
    "realtime_input_config": {
        "automatic_activity_detection": {
            "disabled": _ANY,
            "start_of_speech_sensitivity": _ANY,
            "end_of_speech_sensitivity": _ANY,
            "prefix_padding_ms": _ANY,
            "silence_duration_ms": _ANY,
        },
        "activity_handling": _ANY,
        "turn_coverage": _ANY,
    },
    "session_resumption": {"handle": _ANY},
    "context_window_compression": {"trigger_tokens": _ANY, "sliding_window": {"target_tokens": _ANY}},
    "input_audio_transcription": _TRANSCRIPTION,
    "output_audio_transcription": _TRANSCRIPTION,
    "proactivity": {"proactive_audio": _ANY},
    "history_config": {"initial_history_in_client_content": _ANY},
}
_CLIENT_MESSAGE = {
    "setup": _SETUP,
    "client_content": {"turns": [_CONTENT], "turn_complete": _ANY},
    "realtime_input": {
        "media_chunks": [_BLOB],
        "audio": _BLOB,
        "video": _BLOB,
        "text": _ANY,
        "activity_start": {},
        "activity_end": {},
        "audio_stream_end": _ANY,
    },
    "tool_response": {
        "function_responses": [
            {"id": _ANY, "name": _ANY, "response": _ANY, "will_continue": _ANY, "scheduling": _ANY}
        ]
    },
}
_ENUMS = {
    "setup.generation_config.response_modalities": ("GenerationConfig.Modality", {"TEXT", "AUDIO", "IMAGE"}),
    "setup.tools.function_declarations.behavior": ("Behavior", {"UNSPECIFIED", "BLOCKING", "NON_BLOCKING"}),
    "setup.realtime_input_config.automatic_activity_detection.start_of_speech_sensitivity": (
        "StartSensitivity",
        {"START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"},
    ),
    "setup.realtime_input_config.automatic_activity_detection.end_of_speech_sensitivity": (
        "EndSensitivity",
        {"END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"},
    ),
    "setup.realtime_input_config.activity_handling": (
        "ActivityHandling",
        {"ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"},
    ),
    "client_content.turns.role": ("role", {"user", "model"}),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Refused(Exception):
    """Gemini closes the socket: ``code`` (1007 a bad request, 1008 a policy problem) and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _check_fields(value: Any, schema: Any, path: str) -> Any:
    """``value`` with every name in snake case; refuses a name ``schema`` does not have, or a bad
    enum value, as Google's JSON parsing does."""
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise Refused(1007, f"Invalid JSON payload received. Expected an array at '{path}'.")
        return [_check_fields(entry, schema[0], path) for entry in value]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise Refused(1007, f"Invalid JSON payload received. Expected an object at '{path}'.")
        checked = {}
        for name, inner in value.items():
            key = _snake(name)
            if key not in schema:
                where = f" at '{path}'" if path else ""
                raise Refused(
                    1007, f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'
                )
            checked[key] = _check_fields(inner, schema[key], f"{path}.{key}" if path else key)
        return checked
    enum = _ENUMS.get(path)
    if enum is not None:
        type_name, allowed = enum
        for entry in value if isinstance(value, list) else [value]:
            if entry not in allowed:
                raise Refused(1007, f"Invalid value at '{path}' ({type_name}), \"{entry}\"")
    return value


def _rms(pcm: bytes) -> float:
    samples = array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def _tone(ms: int, rate: int = OUTPUT_RATE) -> str:
    count = rate * ms // 1000
    samples = array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return base64.b64encode(samples.tobytes()).decode()


def _arguments(schema: Any) -> dict[str, Any]:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    args: dict[str, Any] = {}
    for name, spec in (properties or {}).items():
        kind = str((spec or {}).get("type", "string")).lower()
        args[name] = {"number": 1, "integer": 1, "boolean": True}.get(kind, "Paris")
    return args


@dataclass
class GeminiConnection:
    """What one connection looked like from Gemini's side."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    received: list[Message] = field(default_factory=list)  # client messages, as parsed (camelCase kept)
    sent: list[Message] = field(default_factory=list)
    setup: Message | None = None  # the setup, snake_case names
    input_rates: list[int] = field(default_factory=list)  # the rate of every audio chunk received
    input_audio_bytes: int = 0
    close_code: int | None = None
    close_reason: str = ""
    closed: threading.Event = field(default_factory=threading.Event)
    socket: web.WebSocketResponse | None = None

    @property
    def key(self) -> str | None:
        return self.query.get("key") or self.headers.get("x-goog-api-key")

    def of_kind(self, kind: str) -> list[Message]:
        """Received messages holding ``kind`` (``"realtimeInput"``, ``"clientContent"``, ...)."""
        return [m for m in self.received if kind in m or _snake(kind) in m]


@dataclass
class _Session:
    """The conversation a connection serves (restored from a handle on resumption)."""

    model: str
    history: list[Message] = field(default_factory=list)


class _Conversation:
    """One connection's protocol state."""

    def __init__(self, fake: FakeGemini, connection: GeminiConnection) -> None:
        self.fake = fake
        self.connection = connection
        self.session: _Session | None = None
        self.setup: Message = {}
        self.automatic = True
        self.silence_ms = DEFAULT_SILENCE_MS
        self.in_speech = False
        self.quiet_ms = 0
        self.speech_ms = 0
        self.activity = False
        self.pending_calls: dict[str, str] = {}  # id -> name
        self.results: list[Message] = []
        self.turn_text: list[str] = []  # clientContent text since the last reply

    @property
    def modality(self) -> str:
        return self.setup.get("generation_config", {}).get("response_modalities", ["AUDIO"])[0]

    def receive(self, message: Any) -> list[Message]:
        if not isinstance(message, dict):
            raise Refused(1007, "Invalid JSON payload received. Expected an object.")
        checked = _check_fields(message, _CLIENT_MESSAGE, "")
        if len(checked) != 1:
            raise Refused(1007, INVALID_ARGUMENT)  # exactly one of setup, clientContent, ...
        ((kind, body),) = checked.items()
        if kind == "setup":
            if self.session is not None:
                raise Refused(1007, INVALID_ARGUMENT)  # setup only in the first message
            return self._setup(body)
        if self.session is None:
            raise Refused(1007, INVALID_ARGUMENT)  # the first message must be setup
        if kind == "client_content":
            return self._client_content(body)
        if kind == "realtime_input":
            return self._realtime_input(body)
        return self._tool_response(body)

    # -- setup --------------------------------------------------------------------------------------

    def _setup(self, setup: Message) -> list[Message]:
        model = str(setup.get("model", "")).removeprefix("models/")
        if model not in MODELS:
            raise Refused(
                1008,
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "bidiGenerateContent. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        generation = setup.get("generation_config", {})
        modalities = generation.get("response_modalities", ["AUDIO"])
        if len(modalities) != 1 or (modalities == ["TEXT"] and model in AUDIO_ONLY_MODELS):
            raise Refused(1007, INVALID_ARGUMENT)  # one modality; native audio answers in audio only
        voice = generation.get("speech_config", {}).get("voice_config", {}).get("prebuilt_voice_config", {})
        if "voice_name" in voice and voice["voice_name"] not in VOICES:
            raise Refused(1007, INVALID_ARGUMENT)
        for tool in setup.get("tools", []):
            for declaration in tool.get("function_declarations", []):
                if not declaration.get("name") or (
                    "parameters" in declaration and "parameters_json_schema" in declaration
                ):
                    raise Refused(1007, INVALID_ARGUMENT)
        handle = setup.get("session_resumption", {}).get("handle")
        if handle:
            session = self.fake.handles.get(handle)
            if session is None or session.model != model:
                raise Refused(1007, INVALID_ARGUMENT)  # resumption may change anything but the model
            self.session = _Session(model, list(session.history))
        else:
            self.session = _Session(model)
        self.setup = setup
        self.connection.setup = setup
        detection = setup.get("realtime_input_config", {}).get("automatic_activity_detection", {})
        self.automatic = not detection.get("disabled", False)
        self.silence_ms = detection.get("silence_duration_ms", DEFAULT_SILENCE_MS)
        return [{"setupComplete": {}}, *self._resumption_update()]

    def _resumption_update(self) -> list[Message]:
        if "session_resumption" not in self.setup:
            return []
        if self.pending_calls:
            return [{"sessionResumptionUpdate": {"resumable": False}}]
        assert self.session is not None
        handle = f"handle-{next(self.fake.handle_numbers)}"
        self.fake.handles[handle] = _Session(self.session.model, list(self.session.history))
        return [{"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}]

    # -- input --------------------------------------------------------------------------------------

    def _client_content(self, body: Message) -> list[Message]:
        assert self.session is not None
        for turn in body.get("turns", []):
            self.session.history.append(turn)
            if turn.get("role", "user") == "user":
                self.turn_text += [part["text"] for part in turn.get("parts", []) if "text" in part]
        if not body.get("turn_complete"):
            return []
        text, self.turn_text = " ".join(self.turn_text), []
        return self._answer(text, heard_ms=0)

    def _realtime_input(self, body: Message) -> list[Message]:
        if "activity_start" in body:
            if self.automatic:
                raise Refused(1007, INVALID_ARGUMENT)  # only with automatic activity detection disabled
            self.activity, self.speech_ms = True, 0
        if "audio" in body:
            return self._audio(body["audio"])
        if "activity_end" in body:
            if self.automatic or not self.activity:
                raise Refused(1007, INVALID_ARGUMENT)
            self.activity = False
            return self._heard()
        if body.get("audio_stream_end"):
            if not self.automatic:
                raise Refused(1007, INVALID_ARGUMENT)  # only with automatic activity detection enabled
            if self.in_speech:
                self.in_speech = False
                return self._heard()
        if "text" in body:
            return self._answer(str(body["text"]), heard_ms=0)
        return []

    def _audio(self, blob: Message) -> list[Message]:
        mime = str(blob.get("mime_type", ""))
        match = re.fullmatch(r"audio/pcm(?:;rate=(\d+))?", mime)
        if match is None:
            raise Refused(1007, INVALID_ARGUMENT)
        rate = int(match.group(1) or 16_000)
        try:
            pcm = base64.b64decode(str(blob.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(
                1007, "Invalid value at 'realtime_input.audio.data' (TYPE_BYTES), Base64 decoding failed"
            ) from None
        self.connection.input_rates.append(rate)
        self.connection.input_audio_bytes += len(pcm)
        ms = len(pcm) * 1000 // (2 * rate)
        if not self.automatic:
            if not self.activity:
                raise Refused(1007, INVALID_ARGUMENT)  # audio outside an activity
            self.speech_ms += ms
            return []
        loud = _rms(pcm) >= SPEECH_RMS
        if loud:
            if not self.in_speech:
                self.in_speech, self.speech_ms = True, 0
            self.quiet_ms = 0
            self.speech_ms += ms
            return []
        if self.in_speech:
            self.quiet_ms += ms
            self.speech_ms += ms
            if self.quiet_ms >= self.silence_ms:
                self.in_speech = False
                return self._heard()
        return []

    def _heard(self) -> list[Message]:
        assert self.session is not None
        out: list[Message] = []
        if "input_audio_transcription" in self.setup:
            out += [
                {"serverContent": {"inputTranscription": {"text": " " * (i == 0) + t}}}
                for i, t in enumerate(HEARD)
            ]
        self.session.history.append({"role": "user", "parts": [{"text": HEARD_TEXT}]})
        return out + self._answer(HEARD_TEXT, heard_ms=self.speech_ms)

    def _tool_response(self, body: Message) -> list[Message]:
        for response in body.get("function_responses", []):
            call_id = response.get("id")
            if call_id not in self.pending_calls or self.pending_calls[call_id] != response.get("name"):
                raise Refused(1007, INVALID_ARGUMENT)  # a response to a call that was not made
            if not isinstance(response.get("response"), dict):
                raise Refused(1007, INVALID_ARGUMENT)
            del self.pending_calls[call_id]
            self.results.append(response["response"])
        if self.pending_calls:
            return []
        results, self.results = self.results, []
        shown = [r.get("output", r) for r in results]
        text = "Result: " + "; ".join(v if isinstance(v, str) else json.dumps(v) for v in shown)
        return self._reply(re.findall(r"\s*\S+", text), prompt_tokens=len(text.split()), prompt_audio_ms=0)

    # -- output -------------------------------------------------------------------------------------

    def _answer(self, text: str, heard_ms: int) -> list[Message]:
        call = self._call_for(text)
        if call is not None:
            name, schema = call
            call_id = f"function-call-{next(self.fake.call_numbers)}"
            self.pending_calls[call_id] = name
            usage = self._usage(len(text.split()), heard_ms, {"TEXT": 5})
            return [
                {"toolCall": {"functionCalls": [{"id": call_id, "name": name, "args": _arguments(schema)}]}},
                {"usageMetadata": usage, "serverContent": {"turnComplete": True}},
                *self._resumption_update(),
            ]
        words = list(REPLY_WORDS)
        return self._reply(words, prompt_tokens=len(text.split()), prompt_audio_ms=heard_ms)

    def _call_for(self, text: str) -> tuple[str, Any] | None:
        lowered = text.lower()
        for tool in self.setup.get("tools", []):
            for declaration in tool.get("function_declarations", []):
                name = declaration["name"]
                if name.lower() in lowered or ("weather" in lowered and "weather" in name.lower()):
                    schema = declaration.get("parameters_json_schema", declaration.get("parameters"))
                    return name, schema
        return None

    def _reply(self, words: list[str], prompt_tokens: int, prompt_audio_ms: int) -> list[Message]:
        assert self.session is not None
        out: list[Message] = []
        text = "".join(words)
        if self.modality == "TEXT":
            out += [{"serverContent": {"modelTurn": {"parts": [{"text": w}]}}} for w in words]
            reply = {"TEXT": len(words)}
        else:
            transcribe = "output_audio_transcription" in self.setup
            for word in words:
                content: Message = {
                    "modelTurn": {
                        "parts": [
                            {
                                "inlineData": {
                                    "mimeType": f"audio/pcm;rate={OUTPUT_RATE}",
                                    "data": _tone(AUDIO_CHUNK_MS),
                                }
                            }
                        ]
                    }
                }
                out.append({"serverContent": content})
                if transcribe:
                    out.append({"serverContent": {"outputTranscription": {"text": word}}})
            seconds = len(words) * AUDIO_CHUNK_MS / 1000
            reply = {"AUDIO": math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)}
        self.session.history.append({"role": "model", "parts": [{"text": text}]})
        out.append({"serverContent": {"generationComplete": True}})
        usage = self._usage(prompt_tokens, prompt_audio_ms, reply)
        out.append({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        return out + self._resumption_update()

    @staticmethod
    def _usage(text_tokens: int, audio_ms: int, reply: dict[str, int]) -> Message:
        audio_tokens = math.ceil(audio_ms / 1000 * AUDIO_TOKENS_PER_SECOND)
        prompt = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if audio_tokens:
            prompt.append({"modality": "AUDIO", "tokenCount": audio_tokens})
        response_total = sum(reply.values())
        return {
            "promptTokenCount": text_tokens + audio_tokens,
            "responseTokenCount": response_total,
            "totalTokenCount": text_tokens + audio_tokens + response_total,
            "promptTokensDetails": prompt,
            "responseTokensDetails": [{"modality": k, "tokenCount": v} for k, v in reply.items()],
        }


class FakeGemini:
    """Start with :meth:`start`; ``url`` is its endpoint; ``connections`` what it saw."""

    def __init__(self, *, api_key: str = API_KEY, binary: bool = True) -> None:
        self.api_key = api_key
        self.binary = binary
        self.connections: list[GeminiConnection] = []
        self.handles: dict[str, _Session] = {}
        self.handle_numbers = itertools.count(1)
        self.call_numbers = itertools.count(1)
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Like ``wss://generativelanguage.googleapis.com/ws/...BidiGenerateContent``."""
        return f"ws://127.0.0.1:{self.port}{PATH}"

    def start(self) -> FakeGemini:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """Block until ``predicate(self.connections)`` is truthy; return its value."""
        with self._changed:
            result = self._changed.wait_for(lambda: predicate(self.connections), timeout)
        if not result:
            raise AssertionError(f"fake Gemini: condition not met within {timeout} s")
        return result

    def inject(self, connection: GeminiConnection, message: Message) -> None:
        """Send ``message`` on ``connection`` as Gemini would (a test's scripted event)."""
        asyncio.run_coroutine_threadsafe(self._send(connection, message), self._loop).result(10)

    def close(self, connection: GeminiConnection, code: int, reason: str = "") -> None:
        async def close() -> None:
            assert connection.socket is not None
            await connection.socket.close(code=code, message=reason.encode())

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

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

    async def _send(self, connection: GeminiConnection, message: Message) -> None:
        connection.sent.append(message)
        assert connection.socket is not None
        text = json.dumps(message)
        if self.binary:
            await connection.socket.send_bytes(text.encode())
        else:
            await connection.socket.send_str(text)
        self._notify()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        connection = GeminiConnection(
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        self.connections.append(connection)
        self._notify()
        if request.path != PATH:
            return web.json_response(
                {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}, status=404
            )
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        connection.socket = socket
        conversation = _Conversation(self, connection)
        try:
            if connection.key is None:
                raise Refused(1008, MISSING_KEY)
            if connection.key != self.api_key:
                raise Refused(1007, BAD_KEY)
            async for frame in socket:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    message = json.loads(frame.data)
                except ValueError:
                    raise Refused(1007, "Invalid JSON payload received.") from None
                connection.received.append(message)
                self._notify()
                for answer in conversation.receive(message):
                    await self._send(connection, answer)
        except Refused as refused:
            connection.close_reason = refused.reason[:123]
            await socket.close(code=refused.code, message=connection.close_reason.encode())
        finally:
            connection.close_code = socket.close_code
            connection.closed.set()
            self._notify()
        return socket
