"""A fake realtime provider on 127.0.0.1 that records what the gateway sends it.

It runs an aiohttp server on its own thread and event loop, so any test (sync or async, any event
loop) can use it. The model name the client asks for picks the behaviour, which lets one gateway
process serve every scenario:

- ``gpt-realtime`` or any other name: accept, send ``session.created``, then answer each
  ``response.create`` with a short text reply (``response.output_text.delta`` x3 + ``response.done``).
- ``reject-<status>``: answer the handshake with that HTTP status and an OpenAI-style JSON body.
- ``close-<code>``: accept, send ``session.created``, then close with ``code`` and reason "scripted".
- ``drop``: accept, send ``session.created``, then abort the TCP connection.
- ``burst-<n>``: accept, send ``session.created`` and ``n`` numbered events at once.
- ``slow-<ms>``: wait ``ms`` before answering the handshake (client events must be held meanwhile).
- ``silent``: accept and send nothing until the client speaks.
- ``beta-turn`` or any name starting with it: like the default, but the reply uses the beta event
  names (``response.text.delta``), as OpenAI does for a client that sent ``OpenAI-Beta: realtime=v1``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class UpstreamConnection:
    """What one gateway connection looked like from the provider's side."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    frames: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    closed: threading.Event = field(default_factory=threading.Event)


def _event(event_type: str, **fields: Any) -> str:
    return json.dumps({"type": event_type, "event_id": f"event_{event_type}", **fields})


class FakeUpstream:
    """Start with :meth:`start`; ``url`` is its ws:// base; ``connections`` what it saw."""

    def __init__(self) -> None:
        self.connections: list[UpstreamConnection] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def http_base(self) -> str:
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
        """The newest connection that asked for ``model``."""

        def newest(connections: list[UpstreamConnection]) -> UpstreamConnection | None:
            found = [c for c in connections if c.query.get("model") == model]
            return found[-1] if found else None

        return self.wait_for(newest, timeout)

    def frames_of(self, model: str, count: int, timeout: float = 10.0) -> list[str | bytes]:
        """Wait until the connection for ``model`` has received ``count`` frames; return them."""
        connection = self.connection_for(model, timeout)
        self.wait_for(lambda _: len(connection.frames) >= count, timeout)
        return list(connection.frames)

    # -- the server ----------------------------------------------------------------------------

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
        connection = UpstreamConnection(
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        self.connections.append(connection)
        self._notify()
        model = connection.query.get("model") or connection.query.get("deployment") or ""
        if model.startswith("reject-"):
            status = int(model.removeprefix("reject-"))
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "code": "scripted",
                    "message": "scripted",
                }
            }
            return web.json_response(body, status=status)
        if model.startswith("slow-"):
            await asyncio.sleep(int(model.removeprefix("slow-")) / 1000)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        try:
            await self._converse(socket, connection, model)
        finally:
            connection.close_code = socket.close_code
            connection.closed.set()
            self._notify()
        return socket

    async def _converse(
        self, socket: web.WebSocketResponse, connection: UpstreamConnection, model: str
    ) -> None:
        if model != "silent":
            session = {
                "type": "realtime",
                "object": "realtime.session",
                "id": "sess_fake",
                "model": model,
            }
            await socket.send_str(_event("session.created", session=session))
        if model.startswith("close-"):
            await socket.close(code=int(model.removeprefix("close-")), message=b"scripted")
            return
        if model == "drop":
            assert socket._writer is not None
            socket._writer.transport.abort()  # type: ignore[union-attr]
            return
        if model.startswith("burst-"):
            for number in range(int(model.removeprefix("burst-"))):
                await socket.send_str(_event("test.burst", seq=number))
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            connection.frames.append(message.data)
            self._notify()
            if message.type is WSMsgType.TEXT and json.loads(message.data).get("type") == "response.create":
                await self._reply(socket, beta=model.startswith("beta-turn"))

    async def _reply(self, socket: web.WebSocketResponse, *, beta: bool = False) -> None:
        response = {"id": "resp_fake", "object": "realtime.response", "status": "in_progress"}
        await socket.send_str(_event("response.created", response=response))
        delta_type = "response.text.delta" if beta else "response.output_text.delta"
        for word in ("Hello", " from", " upstream"):
            await socket.send_str(_event(delta_type, response_id="resp_fake", delta=word))
        done = {**response, "status": "completed", "usage": {"total_tokens": 3}}
        await socket.send_str(_event("response.done", response=done))
