"""The fake provider's GPT-Live and realtime-translation personalities (see :mod:`support.fake_upstream`).

As strict as the SDK's own types: every client event is validated against the ``openai`` package's
model for its type (``openai.types.live.ClientEvent`` on a primary socket, ``ConnectClientEvent``
on a sideband, ``ForkClientEvent`` on a fork, ``RealtimeTranslationClientEvent`` for translation),
and a field that model does not declare, at any depth, is refused as ``unknown_parameter``, as the
real API refuses it. The event is answered with an ``error`` (GPT-Live's shape, with
``client_event_id``; translation's is Realtime's) and the session goes on.

GPT-Live (``/v1/live/sessions``), as OpenAI documents it:

- the client speaks first: ``session.start`` (the model in ``session.model``) -> ``session.started``
  with the session (``id``, ``model``, ``status``, ``expires_at``, audio); any other command before
  it -> ``session_not_started``; a second ``session.start`` -> ``session_already_started``;
- appended PCM16 at 24 kHz goes through an energy VAD (:class:`SpeechDetector`); at the end of an
  utterance: ``session.input_transcript.delta``, then the reply "Hello from upstream" a word at a
  time (``session.output_transcript.delta``) with its audio (``session.output_audio.delta``), then
  ``session.usage.updated``; ``session.commentary.append`` is spoken the same way;
- ``session.close`` -> ``session.closed`` (reason ``close_requested``, the final usage) to every
  socket of the session, then each is closed (1000).

A sideband (``/v1/live/sessions/{id}/attach``) reaches a session this fake is running: it gets every
event the session's primary socket gets, the primary's input audio reflected
(``session.input_audio.append``), and may send the sideband's commands. A fork
(``/v1/live/sessions/{id}/fork``) reaches a session started with ``store: true``: its
``session.start`` (overrides only; no model) starts a new session with the stored one's model. An
unknown id is answered 404.

Realtime translation (``/v1/realtime/translations?model=``): ``session.created`` first, then
``session.update`` -> ``session.updated``; appended speech -> ``session.input_transcript.delta``
(when the session transcribes its input), the translation's ``session.output_transcript.delta`` and
``session.output_audio.delta``; ``session.close`` -> ``session.closed`` and a close (1000).

Scenarios: GPT-Live's URL names no model, so its handshake scenarios (``reject-<status>``,
``slow-<ms>``) come from the key (``Bearer scenario-reject-429``), as do ``close-<code>`` (after
``session.started``) and ``drop``; translation's come from ``model``, as Realtime's.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from openai.types import live as live_types
from openai.types.realtime import RealtimeTranslationClientEvent
from pydantic import BaseModel, ValidationError
from support.fake_upstream import (
    AUDIO_CHUNK,
    REPLY_WORDS,
    VAD_SPEECH_RMS,
    VAD_WINDOW_BYTES,
    VAD_WINDOW_MS,
    Event,
    Problem,
    UpstreamConnection,
    _rms,
)

LIVE_PATH = "/v1/live/sessions"
TRANSLATIONS_PATH = "/v1/realtime/translations"
_BY_ID = re.compile(r"/v1/live/sessions/([^/]+)/(attach|fork)")
SILENCE_MS = 500  # the end of an utterance
TRANSLATION = "Hola desde el proveedor"
HEARD = "Bonjour"  # the transcript of any utterance


def route(path: str) -> tuple[str, str | None] | None:
    """``(personality, session id)`` for a path this module serves: ``live``, ``attach``, ``fork``
    or ``translation``; None for any other."""
    if path == LIVE_PATH:
        return "live", None
    if path == TRANSLATIONS_PATH:
        return "translation", None
    found = _BY_ID.fullmatch(path)
    return (found.group(2), found.group(1)) if found else None


# -- as strict as the SDK's types -----------------------------------------------------------------------


def _members(union: Any) -> dict[str, type[BaseModel]]:
    """Event type -> the SDK model of that type, for the members of an SDK event union."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    return {
        name: member
        for member in typing.get_args(union)
        for name in typing.get_args(member.model_fields["type"].annotation)
    }


PRIMARY_EVENTS = _members(live_types.ClientEvent)
SIDEBAND_EVENTS = _members(live_types.ConnectClientEvent)
FORK_EVENTS = _members(live_types.ForkClientEvent)
TRANSLATION_EVENTS = _members(RealtimeTranslationClientEvent)


def strict_check(models: dict[str, type[BaseModel]], event: Event) -> None:
    """Refuse ``event`` (:class:`Problem`) unless it is exactly of its SDK type: known, complete, and
    with no field its model (or a nested one) does not declare."""
    kind = event.get("type")
    model = models.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise Problem("invalid_value", f"Invalid value: {kind!r}. Unknown event type.", "type")
    try:
        parsed = model.model_validate(event)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        param = ".".join(str(part) for part in first["loc"] if not str(part)[:1].isupper())
        if first["type"] == "missing":
            message = f"Missing required parameter: '{param}'."
            raise Problem("missing_required_parameter", message, param) from None
        raise Problem("invalid_value", f"Invalid value for '{param}': {first['msg']}.", param) from None
    unknown = _first_unknown(parsed, "")
    if unknown is not None:
        raise Problem("unknown_parameter", f"Unknown parameter: '{unknown}'.", unknown)


def _first_unknown(value: Any, prefix: str) -> str | None:
    if isinstance(value, BaseModel):
        for name in value.model_extra or {}:
            return f"{prefix}.{name}" if prefix else name
        for name in value.model_fields_set:
            found = _first_unknown(getattr(value, name), f"{prefix}.{name}" if prefix else name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_unknown(item, f"{prefix}[{index}]")
            if found is not None:
                return found
    return None


# -- speech ----------------------------------------------------------------------------------------------


class SpeechDetector:
    """Utterances in appended PCM16 at 24 kHz: a loud 10 ms window starts one, ``SILENCE_MS`` of
    quiet ends it. Returns ``(start_ms, end_ms)`` for each utterance that ended."""

    def __init__(self) -> None:
        self._carry = b""
        self.heard_ms = 0
        self._speech_start: int | None = None
        self._quiet_ms = 0

    def feed(self, audio: bytes) -> list[tuple[int, int]]:
        data = self._carry + audio
        usable = len(data) - len(data) % VAD_WINDOW_BYTES
        self._carry = data[usable:]
        ended = []
        for offset in range(0, usable, VAD_WINDOW_BYTES):
            loud = _rms(data[offset : offset + VAD_WINDOW_BYTES]) >= VAD_SPEECH_RMS
            at, self.heard_ms = self.heard_ms, self.heard_ms + VAD_WINDOW_MS
            if self._speech_start is None:
                if loud:
                    self._speech_start, self._quiet_ms = at, 0
            elif loud:
                self._quiet_ms = 0
            else:
                self._quiet_ms += VAD_WINDOW_MS
                if self._quiet_ms >= SILENCE_MS:
                    ended.append((self._speech_start, self.heard_ms - self._quiet_ms))
                    self._speech_start = None
        return ended


# -- GPT-Live --------------------------------------------------------------------------------------------

Send = Callable[[Event], Awaitable[None]]


@dataclass(eq=False)
class Peer:
    """One socket of a Live session: its primary socket, or a sideband."""

    send: Send
    close: Callable[[], Awaitable[None]]
    sideband: bool


@dataclass(eq=False)
class LiveSession:
    """A started Live session, as the fake keeps it while it runs (and, stored, afterwards)."""

    resource: Event
    peers: list[Peer] = field(default_factory=list)
    detector: SpeechDetector = field(default_factory=SpeechDetector)
    started: float = field(default_factory=time.monotonic)
    closed: bool = False
    spoken_until_ms: int = 0  # the end of the last reply on the session's timeline

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    def usage(self) -> Event:
        return {"seconds": int(time.monotonic() - self.started)}


class LiveRegistry:
    """The sessions the fake runs (a sideband attaches to them) or stored (a fork starts from them)."""

    def __init__(self) -> None:
        self.running: dict[str, LiveSession] = {}
        self.stored: dict[str, Event] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"sess_live_fake{next(self._ids)}"


def live_error(problem: Problem, client_event_id: Any) -> Event:
    client_id = client_event_id if isinstance(client_event_id, str) else None
    error = {"type": "invalid_request_error", "code": problem.code, "message": problem.message}
    error.update(param=problem.param, client_event_id=client_id)
    return {"type": "error", "event_id": _event_id(), "client_event_id": client_id, "error": error}


_event_ids = itertools.count(1)


def _event_id() -> str:
    return f"event_live_fake{next(_event_ids)}"


def _event(kind: str, client_event_id: Any = None, **fields: Any) -> Event:
    event = {"type": kind, "event_id": _event_id(), **fields}
    if isinstance(client_event_id, str):
        event["client_event_id"] = client_event_id
    return event


class LiveSocket:
    """One gateway connection to a Live endpoint: ``kind`` is ``live``, ``attach`` or ``fork``."""

    def __init__(
        self, registry: LiveRegistry, kind: str, peer: Peer, session: LiveSession | None, stored: Event | None
    ) -> None:
        self.registry = registry
        self.kind = kind
        self.peer = peer
        self.session = session  # set for a sideband from the start; for the others by session.start
        self.stored = stored  # the session a fork starts from
        self.models = {"live": PRIMARY_EVENTS, "attach": SIDEBAND_EVENTS, "fork": FORK_EVENTS}[kind]

    async def receive(self, event: Event) -> str | None:
        """Handle one client event; returns the scenario to play out after it, if any."""
        client_id = event.get("event_id")
        try:
            strict_check(self.models, event)
            return await self._handle(event, client_id)
        except Problem as problem:
            await self.peer.send(live_error(problem, client_id))
            return None

    async def _handle(self, event: Event, client_id: Any) -> str | None:
        kind = event["type"]
        session = self.session
        if kind == "session.start":
            if session is not None:
                raise Problem("session_already_started", "The session has already started.")
            return await self._start(event["session"], client_id)
        if session is None:
            message = f"Send session.start and wait for session.started before {kind}."
            raise Problem("session_not_started", message)
        if session.closed:
            raise Problem("session_closed", "The session has closed.")
        if kind == "session.input_audio.append":
            await self._append(session, base64.b64decode(event["audio"]))
        elif kind == "session.commentary.append":
            await self._broadcast(session, self._appended("session.commentary.appended", session, client_id))
            await self._speak(session, session.spoken_until_ms)
        elif kind in ("session.instructions.append", "session.thinking.append"):
            await self.peer.send(self._appended(kind.removesuffix("append") + "appended", session, client_id))
        elif kind in ("session.input_audio.mute", "session.input_audio.unmute"):
            await self.peer.send(_event(kind + "d", client_id))
        elif kind == "session.update":
            session.resource.update(event["session"])
            await self._broadcast(session, _event("session.updated", client_id, session=session.resource))
        elif kind == "session.output_audio.fixture.play":
            await self.peer.send(_event("session.output_audio.fixture.playing", client_id))
            await self.peer.send(_event("session.output_audio.fixture.played", client_id))
        elif kind == "transport.dtmf.send":
            raise Problem("not_a_sip_call", "DTMF can only be sent on a SIP call.", "type")
        elif kind == "session.close":
            await self.close_session(session, "close_requested", client_id)
        else:  # decision.*, response.*: they need a delegation this fake does not run
            raise Problem("delegation_not_configured", f"{kind} needs a Responses or Decisions delegation.")
        return None

    async def _start(self, config: Event, client_id: Any) -> str | None:
        registry = self.registry
        if self.kind == "fork":
            assert self.stored is not None
            resource = {**self.stored, **config, "id": registry.new_id()}
        else:
            resource = {
                "id": registry.new_id(),
                "model": config["model"],
                "status": "active",
                "audio": {"format": {"type": "audio/pcm", "rate": 24000}, "output": {"voice": "marin"}},
                **{name: value for name, value in config.items() if name != "model"},
            }
        resource["expires_at"] = int(time.time()) + 3600
        session = self.session = LiveSession(resource, [self.peer])
        registry.running[session.id] = session
        if resource.get("store"):
            registry.stored[session.id] = resource
        await self.peer.send(_event("session.started", client_id, session=resource))
        return str(resource["model"]) if self.kind == "live" else None

    async def _append(self, session: LiveSession, audio: bytes) -> None:
        reflected = {"type": "session.input_audio.append", "audio": base64.b64encode(audio).decode()}
        for peer in list(session.peers):
            if peer.sideband:
                await peer.send(reflected)
        for start_ms, end_ms in session.detector.feed(audio):
            span = {"start_ms": start_ms, "end_ms": end_ms}
            await self._broadcast(session, _event("session.input_transcript.delta", delta=HEARD, **span))
            await self._speak(session, end_ms)

    async def _speak(self, session: LiveSession, after_ms: int) -> None:
        """The reply, a word and 100 ms of audio at a time, then the usage so far."""
        at = max(after_ms, session.spoken_until_ms) + 200
        for word in REPLY_WORDS:
            span = {"start_ms": at, "end_ms": at + 100}
            await self._broadcast(session, _event("session.output_transcript.delta", delta=word, **span))
            for peer in list(session.peers):  # reflected to a sideband with its place on the timeline
                audio = {"type": "session.output_audio.delta", "delta": AUDIO_CHUNK}
                await peer.send({**audio, **span} if peer.sideband else audio)
            at += 100
        session.spoken_until_ms = at
        await self._broadcast(session, _event("session.usage.updated", usage=session.usage()))

    @staticmethod
    def _appended(kind: str, session: LiveSession, client_id: Any) -> Event:
        at = session.spoken_until_ms
        return _event(kind, client_id, start_ms=at, end_ms=at)

    @staticmethod
    async def _broadcast(session: LiveSession, event: Event) -> None:
        for peer in list(session.peers):
            await peer.send(event)

    async def close_session(self, session: LiveSession, reason: str, client_id: Any = None) -> None:
        """The session ends: ``session.closed`` to every socket still there, then each is closed."""
        if session.closed:
            return
        session.closed = True
        self.registry.running.pop(session.id, None)
        closed = _event(
            "session.closed", client_id, reason=reason, session=session.resource, usage=session.usage()
        )
        for peer in list(session.peers):
            if peer is not self.peer or reason == "close_requested":
                await peer.send(closed)
        for peer in list(session.peers):
            await peer.close()

    async def gone(self) -> None:
        """This socket closed: a sideband leaves its session; a primary's session ends with it."""
        session = self.session
        if session is None:
            return
        if self.peer.sideband:
            if self.peer in session.peers:
                session.peers.remove(self.peer)
        else:
            await self.close_session(session, "connection_lost")


async def converse_live(
    registry: LiveRegistry,
    socket: web.WebSocketResponse,
    connection: UpstreamConnection,
    kind: str,
    session_id: str | None,
    scenario: str,
    send: Callable[[web.WebSocketResponse, UpstreamConnection, Event], Awaitable[None]],
    notify: Callable[[], None],
) -> None:
    """Serve one accepted Live socket until it closes."""

    async def close() -> None:
        await socket.close(code=1000, message=b"session closed")

    peer = Peer(lambda event: send(socket, connection, event), close, sideband=kind == "attach")
    session = registry.running.get(session_id) if kind == "attach" and session_id else None
    if session is not None:
        session.peers.append(peer)
    live = LiveSocket(registry, kind, peer, session, registry.stored.get(session_id or ""))
    try:
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            connection.frames.append(message.data)
            notify()
            if message.type is not WSMsgType.TEXT:
                continue
            event = _json(message.data)
            if not isinstance(event, dict):
                await peer.send(live_error(Problem("invalid_json", "The frame is not a JSON object."), None))
                continue
            started = await live.receive(event)
            if started is not None and scenario.startswith("close-"):
                await socket.close(code=int(scenario.removeprefix("close-")), message=b"scripted")
                break
            if started is not None and scenario == "drop":
                assert socket._writer is not None
                socket._writer.transport.abort()  # type: ignore[union-attr]
                break
    finally:
        await live.gone()


def live_handshake_refusal(
    registry: LiveRegistry, kind: str, session_id: str | None
) -> tuple[int, str] | None:
    """A sideband or fork of a session the fake does not have: ``(404, message)``."""
    if kind == "attach" and (session_id not in registry.running):
        return 404, f"No running Live session with id '{session_id}'."
    if kind == "fork" and (session_id not in registry.stored):
        return 404, f"No stored Live session with id '{session_id}' (start it with store: true to fork it)."
    return None


# -- realtime translation ------------------------------------------------------------------------------


def translation_error(problem: Problem, client_event_id: Any) -> Event:
    error = {"type": "invalid_request_error", "code": problem.code, "message": problem.message}
    error.update(param=problem.param, event_id=client_event_id if isinstance(client_event_id, str) else None)
    return {"type": "error", "event_id": _event_id(), "error": error}


async def converse_translation(
    socket: web.WebSocketResponse,
    connection: UpstreamConnection,
    model: str,
    send: Callable[[web.WebSocketResponse, UpstreamConnection, Event], Awaitable[None]],
    notify: Callable[[], None],
) -> None:
    """Serve one accepted translation socket until it closes."""
    session: Event = {
        "id": "sess_translation_fake",
        "type": "translation",
        "model": model,
        "expires_at": int(time.time()) + 3600,
        "audio": {"input": {"transcription": None, "noise_reduction": None}, "output": {"language": "es"}},
    }
    detector = SpeechDetector()
    await send(socket, connection, _event("session.created", session=session))
    if model.startswith("close-"):
        await socket.close(code=int(model.removeprefix("close-")), message=b"scripted")
        return
    if model == "drop":
        assert socket._writer is not None
        socket._writer.transport.abort()  # type: ignore[union-attr]
        return
    async for message in socket:
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            break
        connection.frames.append(message.data)
        notify()
        event = _json(message.data) if message.type is WSMsgType.TEXT else None
        if not isinstance(event, dict):
            continue
        try:
            strict_check(TRANSLATION_EVENTS, event)
        except Problem as problem:
            await send(socket, connection, translation_error(problem, event.get("event_id")))
            continue
        kind = event["type"]
        if kind == "session.update":
            audio = event["session"].get("audio") or {}
            for side in ("input", "output"):
                session["audio"][side].update(audio.get(side) or {})
            await send(socket, connection, _event("session.updated", session=session))
        elif kind == "session.input_audio_buffer.append":
            for start_ms, _ in detector.feed(base64.b64decode(event["audio"])):
                if session["audio"]["input"].get("transcription"):
                    delta = _event("session.input_transcript.delta", delta=HEARD, elapsed_ms=start_ms)
                    await send(socket, connection, delta)
                for word in TRANSLATION.split(" "):
                    text = _event("session.output_transcript.delta", delta=word + " ", elapsed_ms=start_ms)
                    await send(socket, connection, text)
                    audio = _event(
                        "session.output_audio.delta",
                        delta=AUDIO_CHUNK,
                        format="pcm16",
                        sample_rate=24000,
                        channels=1,
                        elapsed_ms=start_ms,
                    )
                    await send(socket, connection, audio)
        elif kind == "session.close":
            await send(socket, connection, _event("session.closed"))
            await socket.close(code=1000, message=b"session closed")
            return


def _json(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
