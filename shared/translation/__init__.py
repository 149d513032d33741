"""Translation between the Realtime beta and GA protocols, for sessions whose client and provider differ.

Pure functions over parsed JSON; no I/O. The relay constructs a :class:`Translator` only when the
client's protocol differs from the provider's (same-protocol sessions are relayed byte for byte).

What maps (``beta`` <-> ``GA``):

- ``session.update`` and ``session.created`` / ``.updated``: ``modalities`` <-> ``output_modalities``
  (``["text", "audio"]`` <-> ``["audio"]``: GA audio output carries its transcript); formats
  ``pcm16`` / ``g711_ulaw`` / ``g711_alaw`` <-> ``{"type": "audio/pcm", "rate": 24000}`` /
  ``audio/pcmu`` / ``audio/pcma``; ``input_audio_format``, ``turn_detection``,
  ``input_audio_transcription``, ``input_audio_noise_reduction`` <-> ``audio.input.*``;
  ``output_audio_format``, ``voice``, ``speed`` <-> ``audio.output.*``;
  ``max_response_output_tokens`` <-> ``max_output_tokens``; GA sessions get ``type: "realtime"``.
- ``transcription_session.update`` / ``.created`` / ``.updated`` <-> ``session.*`` with
  ``session.type == "transcription"`` (``audio.input.*`` as above).
- ``response.create``'s ``response`` and the response of ``response.created`` / ``.done`` likewise
  (``audio.output.format`` / ``.voice``); usage is alike.
- Assistant content part types ``text`` / ``audio`` <-> ``output_text`` / ``output_audio`` in items
  (``conversation.item.create``, ``response.create`` input, every server event carrying items).
- Stream events ``response.text.*`` / ``response.audio.*`` / ``response.audio_transcript.*`` <->
  ``response.output_text.*`` / ``response.output_audio.*`` / ``response.output_audio_transcript.*``.
- ``conversation.item.created`` <-> ``conversation.item.added`` + ``conversation.item.done``
  (see :mod:`.server`).

Anything not named here (shared fields, fields the gateway does not know, GA-only server events
such as ``mcp_list_tools.*``) passes through untouched.

Fields with no counterpart, and how the client hears of them
------------------------------------------------------------
A client field the provider's protocol lacks (beta ``temperature`` and ``client_secret`` for GA;
GA ``prompt``, ``truncation``, ``reasoning``, ``include`` and ``parallel_tool_calls`` of a realtime
session, ``prompt`` / ``reasoning`` / ``parallel_tool_calls`` of a response, and ``audio`` keys
without a beta field, for beta; ``modalities`` of a beta transcription session) is left out, since
the provider would refuse the whole event, and the client is told once per field per session.
Provider events keep such fields (SDK models keep unknown fields), so nothing the provider says
is lost. ``tracing`` is in both protocols (the beta SDK's session has it) and is relayed. Values
are never judged: one with no counterpart (a GA custom voice object, an MCP tool, a sample rate
other than 24 kHz) is relayed as it is, for the provider to accept or refuse with its own error.

The notice is an OpenAI-shaped ``error`` event, ``error.type: "invalid_request_error"``,
``error.code: "field_dropped"``, ``error.param`` the field's path (``session.temperature``), not a
new event type such as ``gateway.warning``. Why: the ``openai`` SDK parses server events without
validating them (``construct_type_unchecked``), so it tolerates either; but the openai-agents SDK
validates every server event against the GA union with a pydantic ``TypeAdapter`` and treats an
unknown ``type`` as a failure (logged at ERROR with a traceback and surfaced as a
``RealtimeModelErrorEvent`` carrying a ``ValidationError``), whereas an ``error`` event is its
ordinary, typed path (a ``RealtimeError``). OpenAI itself sends non-fatal ``invalid_request_error``
events mid-session (the session goes on), which is what this is. Two details keep it from being
mistaken for the failure of a pending ``response.create`` (the agents SDK assumes that of any error
with an ``error.event_id``, or whose message names ``response.create``, while one is pending):
``error.event_id`` is null and the message never names the event type.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from ..errors import GatewayError
from .client import beta_to_ga, ga_to_beta
from .gemini import Frames as GeminiFrames
from .gemini import GeminiTranslator, Reconnect
from .server import BetaToGa, GaToBeta, ServerTranslator
from .wire import dumps, leading_type, parse
from .xai import XaiNormalizer

logger = logging.getLogger("realtime_gateway")

Protocol = Literal["ga", "beta"]

# Client event types whose form differs between the protocols; every other one is relayed as sent.
CLIENT_TYPES_TRANSLATED = frozenset(
    {"session.update", "transcription_session.update", "response.create", "conversation.item.create"}
)

_NAMES = {"ga": "GA", "beta": "beta"}


class Translator:
    """Translates one session's events between the client's protocol and the provider's."""

    def __init__(self, client: Protocol, upstream: Protocol) -> None:
        if {client, upstream} != {"ga", "beta"}:
            raise ValueError(f"no translation from {client!r} to {upstream!r}")
        self.client = client
        self.upstream = upstream
        self._to_upstream = beta_to_ga if client == "beta" else ga_to_beta
        self._server: ServerTranslator = BetaToGa() if upstream == "beta" else GaToBeta()
        self._renames = self._server.renames
        self._handled = self._server.handled
        self._warned: set[str] = set()

    def to_upstream(self, event: dict[str, Any], raw: str | None = None) -> tuple[list[str], list[str]]:
        """A validated client event (parsed dict) -> (frames to send upstream, frames to send the
        client now: a one-time notice per dropped field). Frames are compact JSON strings.

        ``raw``, the frame ``event`` was parsed from, is what is sent when the event needs no
        change (so ``input_audio_buffer.append`` is not re-serialised); without it, ``event`` is.
        """
        if event.get("type") not in CLIENT_TYPES_TRANSLATED:
            return [raw if raw is not None else dumps(event)], []
        dropped: list[str] = []
        translated = self._to_upstream(event, dropped)
        frame = raw if translated is event and raw is not None else dumps(translated)
        return [frame], self._notices(dropped)

    def to_client(self, frame: str) -> list[str]:
        """A provider frame (JSON text) -> frames for the client: usually one; a GA
        ``conversation.item.added`` + ``.done`` pair becomes one beta ``conversation.item.created``
        (the ``done`` becomes none), a beta ``conversation.item.created`` becomes GA ``added`` and
        ``done``. Frames needing no change, and frames that are not JSON events, are returned as is.
        """
        if not isinstance(frame, str):
            return [frame]
        head = leading_type(frame)
        if head is not None:
            kind, start, end = head
            renamed = self._renames.get(kind)
            if renamed is not None:  # the hot path: a stream delta, renamed in place
                return [frame[:start] + renamed + frame[end:]]
            if kind not in self._handled:
                return [frame]
        event = parse(frame)
        if not isinstance(event, dict):
            return [frame]
        kind = event.get("type")
        if not isinstance(kind, str):
            return [frame]
        renamed = self._renames.get(kind)
        if renamed is not None:
            return [dumps({**event, "type": renamed})]
        if kind not in self._handled:
            return [frame]
        try:
            events = self._server.translate(event)
            return [frame] if events is None else [dumps(out) for out in events]
        except (RecursionError, TypeError, ValueError, AttributeError, KeyError):
            # A provider event of an unexpected shape: relay it as it came rather than lose it.
            logger.warning("could not translate a %s event; relayed unchanged", kind, exc_info=True)
            return [frame]

    def _notices(self, dropped: list[str]) -> list[str]:
        notices = []
        for param in dropped:
            if param in self._warned:
                continue
            self._warned.add(param)
            message = (
                f"'{param}' was not relayed: the provider speaks the Realtime {_NAMES[self.upstream]} "
                f"interface, which has no such field. The rest of the event was relayed. "
                f"(Reported once per field per session.)"
            )
            notices.append(GatewayError("field_dropped", message, param=param).to_event())
        return notices


__all__ = [
    "CLIENT_TYPES_TRANSLATED",
    "GeminiFrames",
    "GeminiTranslator",
    "Protocol",
    "Reconnect",
    "Translator",
    "XaiNormalizer",
]
