"""OpenAI Realtime (GA) <-> Gemini Live: a sans-I/O translator, its setup mapping and audio.

- :mod:`.translator`: :class:`GeminiTranslator`, one per session, and what it returns
  (:class:`Frames`, :class:`Reconnect`): the relay's whole interface is in its docstring.
- :mod:`.setup`: the GA session as Gemini's ``setup`` (models, voices, tools, turn detection).
- :mod:`.usage`: ``usageMetadata`` -> ``response.done.usage``.
- :mod:`.audio`: the 24 kHz -> 16 kHz PCM16 resampler.

What was read to write this (public documentation and other projects' code; nothing copied):
ai.google.dev/api/live (the WebSocket reference: messages, "exactly one of" the client fields,
setup only first), ai.google.dev/gemini-api/docs/live-guide and live-api/capabilities (audio
formats, the MIME type's rate, transcription, VAD, interruptions), live-session (resumption,
goAway, context window compression), live-tools (function calling, BLOCKING / NON_BLOCKING),
the model pages (gemini-3.8-live, gemini-3.1-flash-live-preview, 2.5 native audio: models,
response modalities, migration notes), googleapis/python-genai (``types.py`` and
``_live_converters.py``: the wire names of every field, the API key in ``x-goog-api-key``),
BerriAI/litellm ``llms/gemini/realtime/transformation.py`` (an OpenAI -> Gemini bridge that drops
later ``session.update`` s: the gap this one closes), livekit/agents' google realtime plugin
(turn, interruption and tool-call edge cases, the 2.5 reply placeholder, usage by modality), and
pydantic/pydantic-ai#7269 (usage is reported per turn).
"""

from .setup import DEFAULT_MODEL, GEMINI_VOICES, MODEL_ALIASES, OPENAI_VOICES
from .translator import DEFAULT_INPUT_RATE, Frames, GeminiTranslator, Reconnect

__all__ = [
    "DEFAULT_INPUT_RATE",
    "DEFAULT_MODEL",
    "GEMINI_VOICES",
    "MODEL_ALIASES",
    "OPENAI_VOICES",
    "Frames",
    "GeminiTranslator",
    "Reconnect",
]
