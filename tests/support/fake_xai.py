"""A fake of xAI's Grok Voice Agent API on 127.0.0.1, with xAI's deviations from OpenAI's GA events.

Written from docs.x.ai/docs/guides/voice/agent (``wss://api.x.ai/v1/realtime``, a Bearer key,
the session's ``voice`` / ``turn_detection`` / ``instructions`` / ``tools`` / ``audio.*.format``,
voices Eve, Ara, Rex, Sal, Leo; ``conversation.created`` first) and from what other projects'
xAI code repairs or parses (BerriAI/litellm's xAI realtime normaliser, pipecat's Grok event
models): it sends ``ping`` keep-alives, no ``session.created``, a flat session, streaming events
without ``output_index`` / ``content_index``, ``response.content_part.done`` without ``part``,
``response.output_audio_transcript.done`` without ``transcript``, function-call items with
``role: "tool"``, ``response.function_call_arguments.done`` with only the call's id, name and
arguments, ``usage: {}`` in responses and the usage beside ``response.done``'s response, speech
events without their times, and transcriptions without ``content_index`` or ``usage``.

It answers a text turn or a turn of speech (server VAD: audio louder than about -30 dBFS, then
500 ms of quiet; or a commit) with "Hello from Grok" spoken (24 kHz PCM16 chunks and their
transcript), and a turn naming a declared function with a call to it; the function's output comes
back as "Result: <output>". A voice it does not have, put where xAI reads it, is refused with an
``error`` event.
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

PATH = "/v1/realtime"
API_KEY = "xai-test-key"
VOICES = ("Eve", "Ara", "Rex", "Sal", "Leo")
REPLY_WORDS = ("Hello", " from", " Grok")
REPLY_TEXT = "".join(REPLY_WORDS)
HEARD_TEXT = "What is the weather in Paris?"
SPEECH_RMS = 1000.0
SILENCE_MS = 500


def _tone(ms: int) -> str:
    count = 24_000 * ms // 1000
    samples = array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / 24_000)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return base64.b64encode(samples.tobytes()).decode()


def _rms(pcm: bytes) -> float:
    samples = array("h", pcm[: len(pcm) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


@dataclass
class XaiConnection:
    headers: dict[str, str]
    query: dict[str, str]
    received: list[Event] = field(default_factory=list)
    sent: list[Event] = field(default_factory=list)
    session: Event = field(default_factory=dict)  # as xAI holds it (flat)
    closed: threading.Event = field(default_factory=threading.Event)

    def of_type(self, kind: str) -> list[Event]:
        return [event for event in self.received if event.get("type") == kind]


class _Conversation:
    def __init__(self, fake: FakeXai, connection: XaiConnection) -> None:
        self.fake = fake
        self.connection = connection
        self.session: Event = {
            "id": "sess_xai",
            "object": "realtime.session",
            "model": connection.query.get("model", "grok-voice-latest"),
            "voice": "Ara",
            "instructions": "",
            "turn_detection": {"type": "server_vad"},
            "tools": [],
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}},
            },
        }
        connection.session = self.session
        self.user_text = ""
        self.speaking: str | None = None  # the user item being spoken
        self.quiet_ms = 0
        self.buffer_ms = 0

    def id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.fake.numbers)}"

    def event(self, kind: str, **fields: Any) -> Event:
        return {"event_id": self.id("event"), "type": kind, **fields}

    def opening(self) -> list[Event]:
        return [
            self.event(
                "conversation.created",
                conversation={"id": self.id("conv"), "object": "realtime.conversation"},
            ),
            self.event("ping", timestamp=0),
        ]

    def receive(self, event: Event) -> list[Event]:
        kind = event.get("type")
        if kind == "session.update":
            update = event.get("session") or {}
            voice = update.get("voice")
            if voice is not None and (not isinstance(voice, str) or voice.capitalize() not in VOICES):
                error = {
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": f"Invalid voice: {voice!r}.",
                    "param": "session.voice",
                }
                return [self.event("error", error=error)]
            for key in ("voice", "instructions", "turn_detection", "tools"):
                if key in update:
                    self.session[key] = update[key]
            return [self.event("session.updated", session=self.session)]
        if kind == "conversation.item.create":
            item = dict(event.get("item") or {})
            item.setdefault("id", self.id("item"))
            for part in item.get("content") or []:
                if part.get("type") == "input_text":
                    self.user_text += part.get("text", "")
            return [self.event("conversation.item.added", item=item)]
        if kind == "input_audio_buffer.append":
            return self.audio(base64.b64decode(event.get("audio", "")))
        if kind == "input_audio_buffer.commit":
            item_id = self.speaking or self.id("item")
            self.speaking, self.buffer_ms = None, 0
            return self.heard(item_id, speech_events=False)
        if kind == "response.create":
            return self.reply()
        return []

    def audio(self, pcm: bytes) -> list[Event]:
        ms = len(pcm) * 1000 // (2 * 24_000)
        self.buffer_ms += ms
        if not isinstance(self.session.get("turn_detection"), dict):
            return []
        if _rms(pcm) >= SPEECH_RMS:
            self.quiet_ms = 0
            if self.speaking is None:
                self.speaking = self.id("item")
                return [self.event("input_audio_buffer.speech_started", item_id=self.speaking)]
            return []
        if self.speaking is not None:
            self.quiet_ms += ms
            if self.quiet_ms >= SILENCE_MS:
                item_id, self.speaking = self.speaking, None
                return self.heard(item_id, speech_events=True) + self.reply()
        return []

    def heard(self, item_id: str, speech_events: bool) -> list[Event]:
        out = [self.event("input_audio_buffer.speech_stopped", item_id=item_id)] if speech_events else []
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.user_text += HEARD_TEXT
        return [
            *out,
            self.event("input_audio_buffer.committed", item_id=item_id),
            self.event("conversation.item.added", item=item),
            self.event(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                transcript=HEARD_TEXT,
            ),
        ]

    def reply(self) -> list[Event]:
        text, self.user_text = self.user_text, ""
        response_id = self.id("resp")
        response = {
            "id": response_id,
            "object": "realtime.response",
            "status": "in_progress",
            "output": [],
            "usage": {},
        }
        out = [self.event("ping", timestamp=1), self.event("response.created", response=response)]
        call = self.call_for(text)
        usage = {"total_tokens": 12, "input_tokens": 5, "output_tokens": 7}
        if call is not None:
            item = {
                "id": self.id("item"),
                "object": "realtime.item",
                "type": "function_call",
                "status": "completed",
                "role": "tool",
                "name": call,
                "call_id": self.id("call"),
                "arguments": '{"city":"Paris"}',
            }
            out += [
                self.event("response.output_item.added", response_id=response_id, item=item),
                self.event("conversation.item.added", item=item),
                self.event(
                    "response.function_call_arguments.done",
                    call_id=item["call_id"],
                    name=call,
                    arguments=item["arguments"],
                ),
                self.event("response.output_item.done", response_id=response_id, item=item),
            ]
            done = {**response, "status": "completed", "output": [item]}
            return [*out, self.event("response.done", response=done, usage=usage)]
        words = list(REPLY_WORDS)
        if "Result:" in text:
            words = text.split("|")[-1:]
        item_id = self.id("item")
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        at = {"response_id": response_id, "item_id": item_id}
        out += [
            self.event("response.output_item.added", response_id=response_id, item=item),
            self.event("conversation.item.added", item=item),
            self.event("response.content_part.added", **at, part={"type": "audio", "transcript": ""}),
        ]
        for word in words:
            out.append(
                self.event(
                    "response.output_audio.delta", **at, output_index=0, content_index=0, delta=_tone(40)
                )
            )
            out.append(self.event("response.output_audio_transcript.delta", **at, delta=word))
        spoken = "".join(words)
        final = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": spoken}]}
        out += [
            self.event("response.output_audio.done", **at),
            self.event("response.output_audio_transcript.done", **at),
            self.event("response.content_part.done", **at),
            self.event("response.output_item.done", response_id=response_id, item=final),
            self.event(
                "response.done", response={**response, "status": "completed", "output": [final]}, usage=usage
            ),
        ]
        return out

    def call_for(self, text: str) -> str | None:
        for tool in self.session.get("tools") or []:
            name = tool.get("name", "")
            if name and (name in text or ("weather" in text.lower() and "weather" in name)):
                return name
        return None

    def function_output(self, output: str) -> None:
        self.user_text += f"|Result: {output}"


class FakeXai:
    """Start with :meth:`start`; ``url`` is its endpoint; ``connections`` what it saw."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.connections: list[XaiConnection] = []
        self.numbers = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{PATH}"

    def __enter__(self) -> FakeXai:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        connection = XaiConnection(
            headers={name.lower(): value for name, value in request.headers.items()},
            query=dict(request.query),
        )
        self.connections.append(connection)
        if request.path != PATH:
            return web.json_response({"error": "Not found"}, status=404)
        if connection.headers.get("authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "Incorrect API key provided."}, status=401)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        conversation = _Conversation(self, connection)
        try:
            for event in conversation.opening():
                await self._send(socket, connection, event)
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    break
                event = json.loads(message.data)
                connection.received.append(event)
                item = event.get("item") or {}
                if (
                    event.get("type") == "conversation.item.create"
                    and item.get("type") == "function_call_output"
                ):
                    conversation.function_output(item.get("output", ""))
                for answer in conversation.receive(event):
                    await self._send(socket, connection, answer)
        finally:
            connection.closed.set()
        return socket

    async def _send(self, socket: web.WebSocketResponse, connection: XaiConnection, event: Event) -> None:
        connection.sent.append(event)
        await socket.send_str(json.dumps(event))
