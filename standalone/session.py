"""One realtime session on aiohttp: pump frames between the two sockets through the relay core.

Only I/O lives here: reading each socket, carrying out the relay's actions, running its timer,
and the transport-level duties the relay cannot see. What a frame means and what to do about it
is decided in :mod:`shared.relay`.

- **Backpressure.** Each socket's write buffer is capped at MAX_BUFFERED_BYTES (the transport's
  high-water mark). A send to a peer that is not reading waits for its buffer to drain, and the
  task that sent it (the reader of the other socket) reads nothing meanwhile, so that socket's
  kernel buffers fill and its sender is slowed in turn. Nothing is dropped and no buffer grows
  without bound.
- **Liveness.** aiohttp's heartbeat pings each peer after PING_INTERVAL_SECONDS without a frame
  from it and drops the socket when no pong comes within PING_TIMEOUT_SECONDS; the reader of
  that socket then tells the relay which side stopped, and the relay tells the other side.
- **Closing.** A close (and the sends before it) gets CLOSE_TIMEOUT_SECONDS; a peer that does not
  complete it in time is aborted, which also frees any send stuck behind it.
- **Shutdown.** :meth:`StandaloneSession.shut_down` and :meth:`StandaloneSession.abort`, called by
  the server on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from shared.actions import Action, CloseClient, CloseUpstream, SendToClient, SendToUpstream
from shared.config import Settings
from shared.handshake import SessionPlan
from shared.relay import Relay, UpstreamFailure

logger = logging.getLogger("realtime_gateway")

# How long a closing handshake (and the sends queued before it) may take before the socket is dropped.
CLOSE_TIMEOUT_SECONDS = 5.0
# A send that had to wait this long for a peer's buffer to drain counts as that peer stalling.
STALL_SECONDS = 0.5

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


class _Outbound:
    """The sending side of one socket: sends in order (one lock), and when they last stalled."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.lock = asyncio.Lock()
        self.sending = False  # seen True by another task only while a send waits for a drain
        self.stalled_at = -1e18  # when a send to this peer last waited STALL_SECONDS or more

    async def send(self, socket: Socket, data: str | bytes) -> None:
        """Send one frame; a socket that is gone is not an error here (its reader reports it)."""
        started = self._loop.time()
        self.sending = True
        try:
            if isinstance(data, str):
                await socket.send_str(data)
            else:
                await socket.send_bytes(data)
        except ConnectionError:
            pass
        finally:
            self.sending = False
            finished = self._loop.time()
            if finished - started >= STALL_SECONDS:
                self.stalled_at = finished

    def stalled_within(self, seconds: float) -> bool:
        """Whether sends to this peer are stuck now, or were within the last ``seconds``."""
        return self.sending or self._loop.time() - self.stalled_at <= seconds


class StandaloneSession:
    """Carries out one :class:`Relay` over an aiohttp server socket and an aiohttp client socket."""

    def __init__(self, plan: SessionPlan, settings: Settings, http: aiohttp.ClientSession) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = http
        self._settings = settings
        self.relay = Relay(plan, settings, self._loop.time())
        self._heartbeat = settings.ping_interval_seconds or None
        self.client = web.WebSocketResponse(
            protocols=(plan.subprotocol,) if plan.subprotocol else (),
            # Frames between the relay's limit and twice it get an error event from the relay;
            # beyond that aiohttp closes with 1009 before buffering the whole frame.
            max_msg_size=2 * settings.max_client_message_bytes,
            compress=False,  # deflate costs latency and CPU on every audio frame
            timeout=CLOSE_TIMEOUT_SECONDS,
            heartbeat=self._heartbeat,
        )
        _set_pong_timeout(self.client, settings.ping_timeout_seconds)
        self.upstream: aiohttp.ClientWebSocketResponse | None = None
        self._client_transport: Any = None
        self._upstream_task: asyncio.Task[None] | None = None
        # Sends to one socket, from the two reader tasks and the timer, go out in the order their
        # batches were made; each socket has its own lock, so a stalled peer holds up only itself.
        self._to_client = _Outbound(self._loop)
        self._to_upstream = _Outbound(self._loop)
        self._timer_wake = asyncio.Event()
        self._armed_deadline: float | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()  # set once run() is over

    async def run(self, request: web.Request) -> web.WebSocketResponse:
        relay = self.relay
        if relay.upstream_request is not None:
            # Open the provider while the client's handshake completes: one round trip saved.
            self._upstream_task = asyncio.create_task(self._upstream_side())
        timer = asyncio.create_task(self._timer())
        try:
            await self.client.prepare(request)
            self._client_transport = request.transport
            _limit_write_buffer(self._client_transport, self._settings.max_buffered_bytes)
            await self._execute(relay.client_connected(self._loop.time()))
            await self._client_side()
        finally:
            timer.cancel()
            if self._upstream_task is not None:
                await self._finish_upstream()
            for socket in (self.client, self.upstream):
                _stop_heartbeat(socket)
            self.finished.set()
        return self.client

    # -- asked by the server --------------------------------------------------------------------------

    def shut_down(self) -> None:
        """The server is going down: the client is told (``server_shutting_down``, 1001), both close."""
        self._spawn(self._execute(self.relay.shutting_down()))

    def abort(self) -> None:
        """Drop both connections now (the shutdown deadline passed)."""
        _abort(self._client_transport)
        if self.upstream is not None:
            _abort(_transport_of(self.upstream))
        elif self._upstream_task is not None:
            self._upstream_task.cancel()

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
                actions = self._client_gone()
            await self._execute(actions)
        await self._execute(self._client_gone())

    def _client_gone(self) -> list[Action]:
        """The client socket is closed: by the client, or by the heartbeat because it stopped answering."""
        if _ping_timed_out(self.client):
            _abort(self._client_transport)  # aiohttp only closes it, which waits for unsent data
            return self.relay.client_unresponsive()
        return self.relay.client_closed(self.client.close_code, "")

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
                heartbeat=self._heartbeat,
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
        _set_pong_timeout(upstream, self._settings.ping_timeout_seconds)
        _limit_write_buffer(_transport_of(upstream), self._settings.max_buffered_bytes)
        self.upstream = upstream
        await self._execute(relay.upstream_connected(self._loop.time()))
        while not upstream.closed:
            message = await upstream.receive()
            if message.type is WSMsgType.TEXT or message.type is WSMsgType.BINARY:
                actions = relay.upstream_frame(message.data)
            elif message.type is WSMsgType.CLOSE:
                actions = relay.upstream_closed(message.data, message.extra or "")
            elif message.type is WSMsgType.CLOSING:
                # Our own close() (another task) woke this receive(): reading again would make
                # aiohttp close first, with its default code, instead of the one the relay chose.
                break
            else:  # the connection broke: no close frame was received
                actions = self._upstream_gone(None)
            await self._execute(actions)
        await self._execute(self._upstream_gone(upstream.close_code))

    def _upstream_gone(self, code: int | None) -> list[Action]:
        """The provider socket is closed: by the provider, or by the heartbeat (no pong in time)."""
        upstream = self.upstream
        assert upstream is not None
        if _ping_timed_out(upstream):
            _abort(_transport_of(upstream))
            # While the client was not draining, the provider was not being read: its pong may be
            # sitting unread, and the client is the one to blame.
            window = self._settings.ping_interval_seconds + self._settings.ping_timeout_seconds
            return self.relay.upstream_unresponsive(client_stalled=self._to_client.stalled_within(window))
        return self.relay.upstream_closed(code)

    async def _finish_upstream(self) -> None:
        """After the client side ended: make sure the provider side ends too, promptly."""
        task = self._upstream_task
        assert task is not None
        if self.upstream is None:
            task.cancel()  # still connecting: nothing to close politely
        elif not self.upstream.closed:
            await self._close_upstream(1000, "")
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, CLOSE_TIMEOUT_SECONDS)
        if not task.done():
            task.cancel()

    # -- carrying out the relay's answers ----------------------------------------------------------

    async def _execute(self, actions: list[Action]) -> None:
        if actions:
            first = actions[0]
            if len(actions) == 1 and isinstance(first, SendToClient):  # the hot paths
                async with self._to_client.lock:
                    if not self.client.closed:
                        await self._to_client.send(self.client, first.data)
            elif len(actions) == 1 and isinstance(first, SendToUpstream):
                async with self._to_upstream.lock:
                    if self.upstream is not None and not self.upstream.closed:
                        await self._to_upstream.send(self.upstream, first.data)
            else:
                await self._carry_out(actions)
        deadline = self.relay.next_deadline()
        if deadline != self._armed_deadline:
            self._timer_wake.set()

    async def _carry_out(self, actions: list[Action]) -> None:
        """A batch: each socket's part in order under its lock; the two parts side by side."""
        to_client = [a for a in actions if isinstance(a, SendToClient | CloseClient)]
        to_upstream = [a for a in actions if isinstance(a, SendToUpstream | CloseUpstream)]
        parts = []
        if to_client:
            parts.append(self._client_part(to_client))
        if to_upstream:
            parts.append(self._upstream_part(to_upstream))
        if len(parts) == 1:
            await parts[0]
        else:
            await asyncio.gather(*parts)

    async def _client_part(self, actions: list[SendToClient | CloseClient]) -> None:
        async def send_then_close() -> None:
            async with self._to_client.lock:
                for action in actions:
                    if isinstance(action, SendToClient):
                        if not self.client.closed:
                            await self._to_client.send(self.client, action.data)
                    elif not self.client.closed:
                        with contextlib.suppress(ConnectionError):
                            await self.client.close(code=action.code, message=action.reason.encode())

        if not isinstance(actions[-1], CloseClient):
            await send_then_close()
            return
        # Closing: everything before the close and the close itself get CLOSE_TIMEOUT_SECONDS; a
        # client that has stopped reading is then dropped (which frees any send stuck on it).
        try:
            await asyncio.wait_for(send_then_close(), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            _abort(self._client_transport)

    async def _upstream_part(self, actions: list[SendToUpstream | CloseUpstream]) -> None:
        # A close, when there is one, comes last (the relay sends nothing after closing a side).
        close = actions[-1] if isinstance(actions[-1], CloseUpstream) else None
        sends = [action for action in actions if isinstance(action, SendToUpstream)]
        if sends:
            async with self._to_upstream.lock:  # the whole batch: held frames stay in order
                for action in sends:
                    if self.upstream is not None and not self.upstream.closed:
                        await self._to_upstream.send(self.upstream, action.data)
        if close is None:
            return
        if self.upstream is not None:
            await self._close_upstream(close.code, close.reason)
        elif self._upstream_task is not None:
            self._upstream_task.cancel()  # still connecting: abandon the handshake

    async def _close_upstream(self, code: int, reason: str) -> None:
        """Close the provider socket after what was sent before, or drop it if that takes too long."""
        upstream = self.upstream
        assert upstream is not None

        async def close() -> None:
            async with self._to_upstream.lock:
                with contextlib.suppress(ConnectionError):
                    await upstream.close(code=code, message=reason.encode())

        try:
            await asyncio.wait_for(close(), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            _abort(_transport_of(upstream))

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

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


# -- aiohttp details ----------------------------------------------------------------------------------


def _set_pong_timeout(socket: Socket, seconds: float) -> None:
    """PING_TIMEOUT_SECONDS: aiohttp waits ``heartbeat / 2`` for a pong and takes no parameter for
    it; this attribute has held that wait since aiohttp 3.0 (and is only read when a ping is sent)."""
    if hasattr(socket, "_pong_heartbeat"):
        socket._pong_heartbeat = seconds


def _stop_heartbeat(socket: Socket | None) -> None:
    """Cancel aiohttp's heartbeat timers of a finished socket. aiohttp re-arms them when the peer's
    close frame arrives after its own close() cancelled them, and the loop then holds the socket,
    and with it the session's buffers, for up to two heartbeat periods (the soak saw ~9 KiB of RSS
    per session churned). The method is private; without it the socket is only kept longer."""
    cancel = getattr(socket, "_cancel_heartbeat", None)
    if socket is not None and socket.closed and cancel is not None:
        cancel()


def _ping_timed_out(socket: Socket) -> bool:
    """Whether aiohttp's heartbeat closed ``socket`` because no pong came in time."""
    return isinstance(socket.exception(), asyncio.TimeoutError)


def _transport_of(socket: Socket) -> Any:
    """The transport under an aiohttp WebSocket (its writer's; aiohttp has no public accessor)."""
    return getattr(getattr(socket, "_writer", None), "transport", None)


# Transports are duck-typed: uvloop's (standalone/cli.py runs on uvloop where installed) do not
# derive from asyncio's transport classes.


def _limit_write_buffer(transport: Any, high: int) -> None:
    """Writes to this transport wait (drain) once more than ``high`` bytes are unsent."""
    if transport is not None and hasattr(transport, "set_write_buffer_limits"):
        transport.set_write_buffer_limits(high=high)


def _abort(transport: Any) -> None:
    """Drop a connection at once, unsent data and all (``close()`` would wait for a peer not reading)."""
    if transport is not None and hasattr(transport, "abort"):
        with contextlib.suppress(RuntimeError):  # an SSL transport already torn down
            transport.abort()


def _unreachable_detail(exc: BaseException) -> str:
    """A short reason for a failed connection, built from the OS error only (never the URL)."""
    os_error = getattr(exc, "os_error", None) or (exc if isinstance(exc, OSError) else None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno).lower()  # asyncio's own text carries the address
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return type(exc).__name__
