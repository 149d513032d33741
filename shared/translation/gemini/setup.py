"""The GA session a client configures, as Gemini Live's one ``setup`` message.

Gemini takes its whole configuration in the first message of a connection (``setup``) and never
again on that connection; a later change needs a new connection that resumes the session with a
resumption handle ("you can change configuration parameters, except the model, when you pause and
resume via the session resumption mechanism": ai.google.dev/api/live). So the translator keeps
the session as the client sees it (GA shape) and derives the setup from it whenever one is sent.

What maps (GA session -> setup):

- ``output_modalities`` ``["audio"]`` / ``["text"]`` -> ``generationConfig.responseModalities``
  ``["AUDIO"]`` / ``["TEXT"]``. The native-audio models answer in audio only (Gemini 3.8 Live,
  2.5 native audio: "the supported response modality is audio; if your application needs text,
  enable output audio transcription"): a text session on them asks for audio with output
  transcription, and the translator turns the transcript into the text stream.
- ``audio.output.voice`` -> ``generationConfig.speechConfig.voiceConfig.prebuiltVoiceConfig
  .voiceName``: an OpenAI voice name maps to a Gemini voice of a like character, a Gemini voice
  name is used as it is (any case).
- ``instructions`` -> ``systemInstruction`` (one text part).
- function ``tools`` -> one tool of ``functionDeclarations`` (name, description, the JSON Schema
  as ``parametersJsonSchema``, ``behavior: BLOCKING`` so the model waits for the result, as an
  OpenAI client expects; Gemini 3.8 would otherwise call functions asynchronously);
  ``tool_choice: "none"`` -> no tools.
- ``audio.input.turn_detection``: ``server_vad`` / ``semantic_vad`` -> automatic activity
  detection (``prefix_padding_ms``, ``silence_duration_ms``; ``threshold`` above / below 0.5 ->
  low / high start-of-speech sensitivity; ``eagerness`` low / high -> low / high end-of-speech
  sensitivity; ``interrupt_response: false`` -> ``activityHandling: NO_INTERRUPTION``);
  ``null`` -> ``automaticActivityDetection.disabled`` (the client's commits become activity
  signals).
- ``audio.input.transcription`` -> ``inputAudioTranscription`` (``language`` ->
  ``languageCodes``); audio output always gets ``outputAudioTranscription`` (the transcript of
  the spoken reply, which OpenAI clients expect).
- ``max_output_tokens`` -> ``generationConfig.maxOutputTokens``.
- ``truncation`` (``auto`` by default) -> ``contextWindowCompression.slidingWindow`` (a session
  then outlives the context window, as an OpenAI one does); ``disabled`` -> none.
- always ``sessionResumption`` (with the handle when resuming), so the gateway can reconnect.

Refused (an ``error`` event, the update is not applied): an audio format other than 24 kHz PCM
(Gemini takes and gives PCM only; G.711 is not transcoded), a voice neither OpenAI's nor
Gemini's. Not carried (a ``field_dropped`` notice, the rest applies): see :data:`DROPPED`.
"""

from __future__ import annotations

from typing import Any

Session = dict[str, Any]

DEFAULT_MODEL = "gemini-3.8-live"
"""The documented default Live model (ai.google.dev/gemini-api/docs/models/gemini-3.8-live)."""

MODEL_ALIASES: dict[str, str] = {
    "gpt-realtime": DEFAULT_MODEL,
    "gpt-realtime-mini": DEFAULT_MODEL,
    "gpt-4o-realtime-preview": DEFAULT_MODEL,
    "gpt-4o-mini-realtime-preview": DEFAULT_MODEL,
}
"""OpenAI model names a client may send with ``provider=gemini``, to the Live model they get."""

# Models that answer in audio only (their docs' "supported response modality is audio").
_AUDIO_ONLY_MARKERS = ("native-audio", "gemini-3.8-live")

DEFAULT_VOICE = "Puck"
"""Gemini's default voice, reported when the client names none."""

GEMINI_VOICES = (
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
)
"""Gemini's prebuilt voices (ai.google.dev/gemini-api/docs/speech-generation#voices)."""

_GEMINI_VOICES_BY_LOWER = {name.lower(): name for name in GEMINI_VOICES}

OPENAI_VOICES: dict[str, str] = {
    "alloy": "Zephyr",  # bright, neutral
    "ash": "Charon",
    "ballad": "Fenrir",
    "cedar": "Orus",
    "coral": "Aoede",
    "echo": "Puck",
    "marin": "Kore",
    "sage": "Leda",
    "shimmer": "Despina",
    "verse": "Enceladus",
}
"""OpenAI's voices, each to a Gemini voice of a like register (gender and tone, by ear)."""

PCM_RATE = 24_000

DROPPED: dict[str, str] = {
    "session.audio.input.noise_reduction": "Gemini Live has no input noise reduction setting",
    "session.audio.input.turn_detection.create_response": (
        "Gemini always answers a turn its voice activity detection ends; use turn_detection null "
        "and commit to choose when it answers"
    ),
    "session.audio.input.turn_detection.idle_timeout_ms": "Gemini Live has no idle timeout",
    "session.audio.output.speed": "Gemini Live has no speaking-rate setting",
    "session.tool_choice": "Gemini Live's setup has no tool choice (only 'none', which removes the tools)",
    "session.prompt": "stored prompts are OpenAI's",
    "session.tracing": "tracing is OpenAI's",
    "session.include": "Gemini Live reports no log-probabilities",
    "session.reasoning": "Gemini Live's thinking is configured per model, not per session",
    "session.parallel_tool_calls": "Gemini Live decides how many functions it calls at once",
    "session.audio.input.transcription.prompt": "Gemini's transcription takes no prompt",
    "session.tools.mcp": "Gemini Live's MCP tools are configured differently; only function tools map",
}
"""Fields with no Gemini counterpart, with the reason the client is told (once per field)."""

# Values that mean "nothing to carry", for which no notice is due.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "session.tool_choice": (None, "auto"),
    "session.tracing": (None,),
    "session.include": (None, []),
    "session.prompt": (None,),
    "session.reasoning": (None,),
    "session.parallel_tool_calls": (None, True),
    "session.audio.input.noise_reduction": (None,),
    "session.audio.input.turn_detection.create_response": (None, True),
    "session.audio.input.turn_detection.idle_timeout_ms": (None,),
    "session.audio.output.speed": (None, 1, 1.0),
}


class Refusal(ValueError):
    """A session value the translation cannot carry: the client gets an ``error``, nothing applies."""

    def __init__(self, code: str, message: str, param: str) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def audio_only(model: str) -> bool:
    """Whether ``model`` answers in audio only."""
    return any(marker in model for marker in _AUDIO_ONLY_MARKERS)


def initial_session(session_id: str, model: str) -> Session:
    """The GA session a client is told of before it configures anything (Gemini's defaults)."""
    audio_format = {"type": "audio/pcm", "rate": PCM_RATE}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": 0,
        "audio": {
            "input": {
                "format": audio_format,
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {"type": "server_vad", "create_response": True, "interrupt_response": True},
            },
            "output": {"format": dict(audio_format), "voice": DEFAULT_VOICE, "speed": 1.0},
        },
    }


def check_update(update: dict[str, Any]) -> list[str]:
    """Refuse an update the translation cannot carry (:class:`Refusal`); else the parameter paths
    of fields it leaves out (for notices)."""
    audio = update.get("audio") if isinstance(update.get("audio"), dict) else {}
    for side in ("input", "output"):
        fields = audio.get(side) if isinstance(audio.get(side), dict) else {}
        if "format" in fields:
            _check_format(fields["format"], f"session.audio.{side}.format")
    output = audio.get("output") if isinstance(audio.get("output"), dict) else {}
    if output.get("voice") is not None:
        gemini_voice(output["voice"])
    kind = update.get("type")
    if kind not in (None, "realtime"):
        raise Refusal(
            "invalid_value",
            f"Gemini Live sessions are speech-to-speech ('realtime'); {kind!r} sessions are not supported.",
            "session.type",
        )
    if update.get("output_modalities") not in (None, ["audio"], ["text"]):
        raise Refusal(
            "invalid_value",
            f"Invalid value: {update['output_modalities']!r}. Supported values are: ['text'], ['audio'].",
            "session.output_modalities",
        )
    return _dropped_paths(update)


def _check_format(value: Any, param: str) -> None:
    if (
        isinstance(value, dict)
        and value.get("type") == "audio/pcm"
        and value.get("rate", PCM_RATE) == PCM_RATE
    ):
        return
    raise Refusal(
        "invalid_value",
        f"Gemini Live takes and gives PCM16 audio; this gateway carries it at 24 kHz only "
        f"({{'type': 'audio/pcm', 'rate': 24000}}), not {value!r}.",
        param,
    )


def _dropped_paths(update: dict[str, Any]) -> list[str]:
    found = []
    audio = update.get("audio") if isinstance(update.get("audio"), dict) else {}
    audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
    audio_out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
    values = {
        "session.tool_choice": update.get("tool_choice"),
        "session.tracing": update.get("tracing"),
        "session.include": update.get("include"),
        "session.prompt": update.get("prompt"),
        "session.reasoning": update.get("reasoning"),
        "session.parallel_tool_calls": update.get("parallel_tool_calls"),
        "session.audio.input.noise_reduction": audio_in.get("noise_reduction"),
        "session.audio.output.speed": audio_out.get("speed"),
    }
    if update.get("tool_choice") == "none":
        values.pop("session.tool_choice")
    turn_detection = audio_in.get("turn_detection")
    if isinstance(turn_detection, dict):
        values["session.audio.input.turn_detection.create_response"] = turn_detection.get("create_response")
        values["session.audio.input.turn_detection.idle_timeout_ms"] = turn_detection.get("idle_timeout_ms")
    found += [path for path, value in values.items() if value not in _NEUTRAL[path]]
    transcription = audio_in.get("transcription")
    if isinstance(transcription, dict) and transcription.get("prompt"):
        found.append("session.audio.input.transcription.prompt")
    tools = update.get("tools")
    if isinstance(tools, list) and any(isinstance(t, dict) and t.get("type") == "mcp" for t in tools):
        found.append("session.tools.mcp")
    return found


def apply_update(session: Session, update: dict[str, Any]) -> None:
    """Merge a GA ``session.update`` into ``session`` (``audio.input`` / ``audio.output`` key by key)."""
    for key, value in update.items():
        if key == "audio" and isinstance(value, dict):
            for side, fields in value.items():
                if isinstance(fields, dict):
                    session["audio"].setdefault(side, {}).update(fields)
        elif key not in ("id", "object", "expires_at"):
            session[key] = value


def gemini_voice(voice: Any) -> str:
    """The Gemini voice for a client's voice (:class:`Refusal` when there is none)."""
    if isinstance(voice, str):
        name = OPENAI_VOICES.get(voice.lower()) or _GEMINI_VOICES_BY_LOWER.get(voice.lower())
        if name is not None:
            return name
    raise Refusal(
        "invalid_value",
        f"Invalid value: {voice!r}. Gemini Live voices are its prebuilt ones "
        f"({', '.join(GEMINI_VOICES[:8])}, ...) or an OpenAI voice name "
        f"({', '.join(OPENAI_VOICES)}), which maps to one of them.",
        "session.audio.output.voice",
    )


def wants_text(session: Session) -> bool:
    return session.get("output_modalities") == ["text"]


def build_setup(session: Session, model: str, handle: str | None = None) -> dict[str, Any]:
    """The ``setup`` message (its body, under ``"setup"``) for ``session`` on ``model``."""
    audio = session.get("audio") or {}
    audio_in = audio.get("input") or {}
    audio_out = audio.get("output") or {}
    text = wants_text(session)
    spoken = not text or audio_only(model)
    generation: dict[str, Any] = {"responseModalities": ["AUDIO"] if spoken else ["TEXT"]}
    if spoken:
        voice = audio_out.get("voice")
        name = gemini_voice(voice) if voice is not None else DEFAULT_VOICE
        generation["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": name}}}
    max_tokens = session.get("max_output_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        generation["maxOutputTokens"] = max_tokens
    setup: dict[str, Any] = {"model": f"models/{model}", "generationConfig": generation}
    instructions = session.get("instructions")
    if isinstance(instructions, str) and instructions:
        setup["systemInstruction"] = {"parts": [{"text": instructions}]}
    declarations = function_declarations(session)
    if declarations:
        setup["tools"] = [{"functionDeclarations": declarations}]
    setup["realtimeInputConfig"] = realtime_input_config(audio_in.get("turn_detection"))
    transcription = audio_in.get("transcription")
    if isinstance(transcription, dict):
        config: dict[str, Any] = {}
        if isinstance(transcription.get("language"), str) and transcription["language"]:
            config["languageCodes"] = [transcription["language"]]
        setup["inputAudioTranscription"] = config
    if spoken:
        setup["outputAudioTranscription"] = {}
    if session.get("truncation", "auto") != "disabled":
        setup["contextWindowCompression"] = {"slidingWindow": {}}
    setup["sessionResumption"] = {"handle": handle} if handle else {}
    return setup


def function_declarations(session: Session) -> list[dict[str, Any]]:
    if session.get("tool_choice") == "none":
        return []
    declarations = []
    for tool in session.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        declaration: dict[str, Any] = {"name": tool.get("name")}
        if tool.get("description"):
            declaration["description"] = tool["description"]
        parameters = tool.get("parameters")
        if isinstance(parameters, dict) and parameters:
            declaration["parametersJsonSchema"] = parameters
        declaration["behavior"] = "BLOCKING"
        declarations.append(declaration)
    return declarations


def realtime_input_config(turn_detection: Any) -> dict[str, Any]:
    if not isinstance(turn_detection, dict):
        return {"automaticActivityDetection": {"disabled": True}}
    detection: dict[str, Any] = {"disabled": False}
    threshold = turn_detection.get("threshold")
    if isinstance(threshold, int | float) and threshold != 0.5:
        detection["startOfSpeechSensitivity"] = (
            "START_SENSITIVITY_LOW" if threshold > 0.5 else "START_SENSITIVITY_HIGH"
        )
    eagerness = turn_detection.get("eagerness")
    if eagerness in ("low", "high"):
        detection["endOfSpeechSensitivity"] = f"END_SENSITIVITY_{eagerness.upper()}"
    for name, key in (("prefix_padding_ms", "prefixPaddingMs"), ("silence_duration_ms", "silenceDurationMs")):
        value = turn_detection.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            detection[key] = value
    config: dict[str, Any] = {"automaticActivityDetection": detection}
    if turn_detection.get("interrupt_response") is False:
        config["activityHandling"] = "NO_INTERRUPTION"
    return config


def automatic_detection(session: Session) -> bool:
    audio_in = (session.get("audio") or {}).get("input") or {}
    return isinstance(audio_in.get("turn_detection"), dict)


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_VOICE",
    "DROPPED",
    "GEMINI_VOICES",
    "MODEL_ALIASES",
    "OPENAI_VOICES",
    "Refusal",
    "apply_update",
    "audio_only",
    "build_setup",
    "check_update",
    "initial_session",
]
