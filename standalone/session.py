"""One realtime session on aiohttp: pump frames between the two sockets through the relay core.

Only I/O lives here: reading each socket, carrying out the relay's actions, running its timer.
What a frame means and what to do about it is decided in :mod:`shared.relay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import aiohttp
from aiohttp import WSMsgType, web

from shared.actions import Action, CloseClient, CloseUpstream, SendToClient, SendToUpstream
from shared.config import Settings
from shared.handshake import SessionPlan
from shared.relay import Relay, UpstreamFailure

logger = logging.getLogger("realtime_gateway")

# How long a closing handshake may take before the socket is dropped.
CLOSE_TIMEOUT_SECONDS = 5.0


class StandaloneSession:
    """Carries out one :class:`Relay` over an aiohttp server socket and an aiohttp client socket."""

    def __init__(self, plan: SessionPlan, settings: Settings, http: aiohttp.ClientSession) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = http
        self._settings = settings
        self.relay = Relay(plan, settings, self._loop.time())
        self.client = web.WebSocketResponse(
            protocols=(plan.subprotocol,) if plan.subprotocol else (),
            # Frames between the relay's limit and twice it get an error event from the relay;
            # beyond that aiohttp closes with 1009 before buffering the whole frame.
            max_msg_size=2 * settings.max_client_message_bytes,
            compress=False,  # deflate costs latency and CPU on every audio frame
            timeout=CLOSE_TIMEOUT_SECONDS,
        )
        self.upstream: aiohttp.ClientWebSocketResponse | None = None
        self._upstream_task: asyncio.Task[None] | None = None
        # Sends from the two reader tasks and the timer must not interleave within one batch.
        self._send_lock = asyncio.Lock()
        self._timer_wake = asyncio.Event()
        self._armed_deadline: float | None = None

    async def run(self, request: web.Request) -> web.WebSocketResponse:
        relay = self.relay
        if relay.upstream_request is not None:
            # Open the provider while the client's handshake completes: one round trip saved.
            self._upstream_task = asyncio.create_task(self._upstream_side())
        timer = asyncio.create_task(self._timer())
        try:
            await self.client.prepare(request)
            await self._execute(relay.client_connected(self._loop.time()))
            await self._client_side()
        finally:
            timer.cancel()
            if self._upstream_task is not None:
                await self._finish_upstream()
        return self.client

    # -- the two sides -----------------------------------------------------------------------------

    async def _client_side(self) -> None:
        client, relay = self.client, self.relay
        while not client.closed:
            message = await client.receive()
            if message.type is WSMsgType.TEXT:
                actions = relay.client_text(message.data, self._loop.time())
            elif message.type is WSMsgType.BINARY:
                actions = relay.client_binary(message.data, self._loop.time())
            elif message.type is WSMsgType.CLOSE:
                actions = relay.client_closed(message.data, message.extra or "")
            else:  # CLOSING, CLOSED, ERROR (aiohttp has already answered with a close)
                actions = relay.client_closed(client.close_code, "")
            await self._execute(actions)
        await self._execute(relay.client_closed(client.close_code, ""))

    async def _upstream_side(self) -> None:
        relay = self.relay
        request = relay.upstream_request
        assert request is not None
        try:
            upstream = await self._http.ws_connect(
                request.url,
                headers=request.headers,
                max_msg_size=self._settings.max_upstream_message_bytes,
                compress=0,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_SECONDS),
            )
        except aiohttp.WSServerHandshakeError as exc:
            failure = UpstreamFailure.REJECTED if exc.status != 101 else UpstreamFailure.PROTOCOL
            await self._execute(relay.upstream_failed(failure, exc.status))
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await self._execute(
                relay.upstream_failed(UpstreamFailure.UNREACHABLE, detail=_unreachable_detail(exc))
            )
            return
        self.upstream = upstream
        await self._execute(relay.upstream_connected(self._loop.time()))
        while not upstream.closed:
            message = await upstream.receive()
            if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
                actions = relay.upstream_frame(message.data)
            elif message.type is WSMsgType.CLOSE:
                actions = relay.upstream_closed(message.data, message.extra or "")
            else:  # the connection broke: no close frame was received
                actions = relay.upstream_closed(None)
            await self._execute(actions)
        await self._execute(relay.upstream_closed(upstream.close_code))

    async def _finish_upstream(self) -> None:
        """After the client side ended: make sure the provider side ends too, promptly."""
        task = self._upstream_task
        assert task is not None
        if self.upstream is None:
            task.cancel()  # still connecting: nothing to close politely
        elif not self.upstream.closed:
            await self.upstream.close()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, CLOSE_TIMEOUT_SECONDS)

    # -- carrying out the relay's answers ----------------------------------------------------------

    async def _execute(self, actions: list[Action]) -> None:
        if actions:
            async with self._send_lock:
                for action in actions:
                    await self._carry_out(action)
        deadline = self.relay.next_deadline()
        if deadline != self._armed_deadline:
            self._timer_wake.set()

    async def _carry_out(self, action: Action) -> None:
        if isinstance(action, SendToUpstream):
            if self.upstream is not None and not self.upstream.closed:
                await _send(self.upstream, action.data)
        elif isinstance(action, SendToClient):
            if not self.client.closed:
                await _send(self.client, action.data)
        elif isinstance(action, CloseClient):
            await self.client.close(code=action.code, message=action.reason.encode())
        elif isinstance(action, CloseUpstream):
            if self.upstream is not None:
                await self.upstream.close(code=action.code, message=action.reason.encode())
            elif self._upstream_task is not None:
                self._upstream_task.cancel()  # still connecting: abandon the handshake

    async def _timer(self) -> None:
        """Call ``relay.tick`` at each deadline the relay asks for."""
        relay = self.relay
        while not relay.closed:
            deadline = self._armed_deadline = relay.next_deadline()
            self._timer_wake.clear()
            if deadline is None:
                await self._timer_wake.wait()
                continue
            delay = deadline - self._loop.time()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._timer_wake.wait(), delay)
                if self._loop.time() < deadline:
                    continue  # woken early: the deadline moved
            await self._execute(relay.tick(self._loop.time()))


async def _send(socket: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, data: str | bytes) -> None:
    if isinstance(data, str):
        await socket.send_str(data)
    else:
        await socket.send_bytes(data)


def _unreachable_detail(exc: BaseException) -> str:
    """A short reason for a failed connection, built from the OS error only (never the URL)."""
    os_error = getattr(exc, "os_error", None) or (exc if isinstance(exc, OSError) else None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno).lower()  # asyncio's own text carries the address
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return type(exc).__name__
