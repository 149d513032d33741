"""One realtime session: the two sockets' callbacks into the relay core, its answers out to them.

Only I/O lives here: carrying out the relay's actions, running its timer, and the transport-level
duties the relay cannot see. What a frame means and what to do about it is decided in
:mod:`shared.relay`; framing and the WebSocket protocol are python-websockets'
(:mod:`standalone.websocket`).

Everything runs in transport callbacks: a frame from one socket is parsed, given to the relay and
its answer written to the other socket before the callback returns. There are no per-frame tasks,
futures or locks, and order is kept because nothing runs in between.

- **Backpressure.** Each socket's write buffer is capped at MAX_BUFFERED_BYTES (the transport's
  high-water mark). When a write leaves a peer's buffer above it, the gateway stops reading the
  other socket until that buffer drains, so the other sender's kernel buffers fill and it is
  slowed in turn. Nothing is dropped and no buffer grows by more than one read's worth.
- **Liveness.** Each socket pings its peer after PING_INTERVAL_SECONDS without a frame from it and
  drops it when nothing comes back within PING_TIMEOUT_SECONDS; the relay tells the other side.
- **Closing.** A close (and the frames queued before it) gets CLOSE_TIMEOUT_SECONDS; a peer that
  does not complete it in time is dropped.
- **Shutdown.** :meth:`StandaloneSession.shut_down` and :meth:`StandaloneSession.abort`, called by
  the server on SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from shared.actions import (
    Action,
    CloseClient,
    CloseUpstream,
    ReconnectUpstream,
    RecordUsage,
    SendToClient,
    SendToUpstream,
)
from shared.config import Settings
from shared.handshake import SessionPlan
from shared.providers import UpstreamRequest
from shared.relay import Relay, UpstreamFailure
from shared.usage.meter import UsageMeter
from shared.usage.record import UsageRecord

from .client_socket import ClientSocket
from .upstream_socket import UpstreamSocket, connect, unreachable_detail
from .websocket import PeerSocket, close_code_of

# A pause of reading the provider this long, because the client was not reading, counts as the
# client stalling (a provider that then misses a ping is not blamed for it).
STALL_SECONDS = 0.5


class StandaloneSession:
    """Carries out one :class:`Relay` between a client socket and a provider socket."""

    def __init__(
        self,
        plan: SessionPlan,
        settings: Settings,
        meter: Callable[[float], UsageMeter] | None = None,
        record: Callable[[UsageRecord], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._settings = settings
        now = self._loop.time()
        # Accounting: ``meter`` makes the session's meter at its start, ``record`` takes its records.
        self.relay = Relay(plan, settings, now, meter=meter(now) if meter is not None else None)
        self._record = record
        # Frames between the relay's limit and twice it get an error event from the relay; beyond
        # that the socket is closed with 1009 before the whole frame is buffered.
        self.client = ClientSocket(
            self,
            max_size=2 * settings.max_client_message_bytes,
            ping_interval=settings.ping_interval_seconds,
            ping_timeout=settings.ping_timeout_seconds,
        )
        self.upstream: UpstreamSocket | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_deadline: float | None = None
        self._draining: set[PeerSocket] = set()  # peers whose buffers are over the limit
        self._client_stalled_at = -1e18  # when a stall of STALL_SECONDS or more on the client ended
        self._background: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()  # set once both sockets are gone

    async def run(self, request: web.Request, upgrade_headers: dict[str, str]) -> web.StreamResponse:
        """Answer the upgrade, relay until both sockets are closed, return the answer for aiohttp."""
        relay = self.relay
        request_upstream = relay.upstream_request
        if request_upstream is not None:
            # Open the provider while the client's handshake completes: one round trip saved.
            self._open_upstream(request_upstream)
            await asyncio.sleep(0)  # let it send its SYN before the client's answer is written
        buffered = self._settings.max_buffered_bytes
        try:
            try:
                response = await self.client.accept(request, upgrade_headers, buffered)
            except (ConnectionError, RuntimeError):
                self.client.feed_eof()  # gone before the answer was written
                await self.finished.wait()
                raise
            self._execute(relay.client_connected(self._loop.time()))
            self.client.listen()
            await self.finished.wait()
        finally:
            self._end()
        return response

    def _open_upstream(self, request: UpstreamRequest) -> None:
        settings = self._settings
        self.upstream = UpstreamSocket(
            request,
            self,
            max_size=settings.max_upstream_message_bytes,
            max_buffered_bytes=settings.max_buffered_bytes,
            ping_interval=settings.ping_interval_seconds,
            ping_timeout=settings.ping_timeout_seconds,
        )
        upstream = self.upstream
        self._connecting = asyncio.ensure_future(self._connect(upstream))
        self._connecting.add_done_callback(lambda task: self._connect_done(task, upstream))

    def _reconnect(self, action: ReconnectUpstream) -> None:
        """Move to a new provider connection; the old one is closed and no longer heard."""
        self._close_upstream(1000, "")  # or abandon its handshake
        self._open_upstream(action.request)
        assert self.upstream is not None
        if action.first_frame is not None:
            self.upstream.send(action.first_frame)

    # -- asked by the server ------------------------------------------------------------------------------

    def shut_down(self) -> None:
        """The server is going down: the client is told (``server_shutting_down``, 1001), both close."""
        self._execute(self.relay.shutting_down(self._loop.time()))

    def token_revoked(self) -> None:
        """The session's gateway token was revoked: the client is told (``token_revoked``, 1008)."""
        self._execute(self.relay.token_revoked(self._loop.time()))

    def abort(self) -> None:
        """Drop both connections now (the shutdown deadline passed)."""
        self.client.abort()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.upstream is not None:
            self.upstream.abort()

    # -- what the sockets report (standalone.websocket.Listener) -------------------------------------------

    def on_message(self, socket: PeerSocket, data: str | bytes) -> None:
        relay = self.relay
        if socket is self.client:
            if isinstance(data, str):
                self._execute(relay.client_text(data, self._loop.time()))
            else:
                self._execute(relay.client_binary(data, self._loop.time()))
        elif socket is self.upstream:  # not a connection the session moved from
            self._execute(relay.upstream_frame(data, self._loop.time()))

    def on_close_frame(self, socket: PeerSocket, code: int | None, reason: str) -> None:
        if socket is self.client:
            self._execute(self.relay.client_closed(code, reason, self._loop.time()))
        elif socket is self.upstream:
            self._execute(self.relay.upstream_closed(code, reason, self._loop.time()))

    def on_lost(self, socket: PeerSocket, unresponsive: bool) -> None:
        relay = self.relay
        now = self._loop.time()
        if socket is self.client:
            if unresponsive:
                self._execute(relay.client_unresponsive(now))
            else:
                self._execute(relay.client_closed(close_code_of(socket), now=now))
            self._after_client_lost()
        elif socket is not self.upstream:
            pass  # a connection the session moved from
        elif unresponsive:
            # While the client was not draining, the provider was not being read: its pong may be
            # sitting unread, and the client is the one to blame.
            window = self._settings.ping_interval_seconds + self._settings.ping_timeout_seconds
            stalled = self._client_stalled_within(window)
            self._execute(relay.upstream_unresponsive(client_stalled=stalled, now=now))
        else:
            self._execute(relay.upstream_closed(close_code_of(socket), now=now))
        self._finish_if_done()

    def on_upstream_open(self, upstream: UpstreamSocket) -> None:
        if upstream is self.upstream:
            self._execute(self.relay.upstream_connected(self._loop.time()))

    def on_upstream_refused(
        self, upstream: UpstreamSocket, failure: UpstreamFailure, status: int | None, detail: str
    ) -> None:
        if upstream is self.upstream:
            self._execute(self.relay.upstream_failed(failure, status, detail, self._loop.time()))
        self._finish_if_done()

    # -- the provider connection ------------------------------------------------------------------------

    async def _connect(self, upstream: UpstreamSocket) -> None:
        try:
            await connect(upstream)
        except (TimeoutError, OSError) as exc:
            upstream.lost = True
            if upstream is not self.upstream:
                return  # a connection the session has moved from
            detail = unreachable_detail(exc)
            self._execute(
                self.relay.upstream_failed(UpstreamFailure.UNREACHABLE, detail=detail, now=self._loop.time())
            )

    def _connect_done(self, task: asyncio.Task[None], upstream: UpstreamSocket) -> None:
        if self._connecting is task:  # a finished task (and its context) need not outlive its use
            self._connecting = None
        # Failed before a connection was made, or cancelled (the session ended while connecting):
        # either way that provider connection is over. A cancelled create_connection() closes the
        # transport it made, and uvloop's does so without calling connection_lost() even when
        # connection_made() has already run (the connect deadline or the client's close can land
        # between the two): waiting for connection_lost() would keep the session open for good.
        if upstream.transport is None or task.cancelled():
            upstream.lost = True
        self._finish_if_done()

    def _after_client_lost(self) -> None:
        """The client is gone: make sure the provider side ends too, promptly."""
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        upstream = self.upstream
        if upstream is not None and not upstream.lost:
            if upstream.open:
                upstream.close(1000, "")  # the relay had already ended the session
            elif not upstream.opened:
                upstream.abort()  # mid-handshake: nothing to close politely

    def _finish_if_done(self) -> None:
        upstream_done = self.upstream is None or self.upstream.lost
        if self.client.lost and upstream_done and not self.finished.is_set():
            self.finished.set()

    def _end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in self._background:
            task.cancel()

    # -- carrying out the relay's answers ----------------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        client, upstream = self.client, self.upstream
        for action in actions:
            if type(action) is SendToUpstream:
                if upstream is not None:
                    upstream.send(action.data)
            elif type(action) is SendToClient:
                client.send(action.data)
            elif type(action) is CloseClient:
                client.close(action.code, action.reason)
            elif type(action) is CloseUpstream:
                self._close_upstream(action.code, action.reason)
            elif type(action) is ReconnectUpstream:
                self._reconnect(action)
                upstream = self.upstream
            elif type(action) is RecordUsage and self._record is not None:
                self._record(action.record)
        if client.writing_paused or (upstream is not None and upstream.writing_paused):
            self._hold_back()
        if self.relay.next_deadline() != self._armed_deadline:
            self._arm_timer()

    def _close_upstream(self, code: int, reason: str) -> None:
        upstream = self.upstream
        if upstream is None:
            return
        if upstream.opened:
            upstream.close(code, reason)
        else:  # still connecting: abandon the handshake
            if self._connecting is not None and not self._connecting.done():
                self._connecting.cancel()
            upstream.abort()

    def _hold_back(self) -> None:
        """A peer's write buffer is over the limit: stop reading the other socket until it drains."""
        for slow, other in ((self.client, self.upstream), (self.upstream, self.client)):
            if slow is None or other is None or slow in self._draining or not slow.writing_paused:
                continue
            self._draining.add(slow)
            other.pause_reading()
            task = asyncio.ensure_future(self._resume_after_drain(slow, other))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _resume_after_drain(self, slow: PeerSocket, other: PeerSocket) -> None:
        started = self._loop.time()
        try:
            await slow.drained()
        finally:
            self._draining.discard(slow)
            other.resume_reading()
            finished = self._loop.time()
            if slow is self.client and finished - started >= STALL_SECONDS:
                self._client_stalled_at = finished

    def _client_stalled_within(self, seconds: float) -> bool:
        """Whether the client's buffer is over the limit now, or was for long within ``seconds``."""
        return self.client in self._draining or self._loop.time() - self._client_stalled_at <= seconds

    def _arm_timer(self) -> None:
        """Call ``relay.tick`` at the deadline the relay asks for."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._armed_deadline = self.relay.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._armed_deadline = None
        self._execute(self.relay.tick(self._loop.time()))
