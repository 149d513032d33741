"""One realtime session on workerd: pump frames between two JS WebSockets through the relay core.

Only I/O lives here, and everything the Workers runtime needs that CPython does not: JS event
listeners held by ``create_proxy`` for the session's lifetime, ``ArrayBuffer`` frames turned into
bytes, ``setTimeout`` for the relay's timer, and the outbound ``fetch`` with ``Upgrade: websocket``.

workerd exposes no ping frames and no write buffer to a Worker: liveness rests on Cloudflare's own
connection timeouts and the relay's IDLE_TIMEOUT_SECONDS, and workerd buffers what is sent (the
isolate's memory limit bounds it), so PING_* and MAX_BUFFERED_BYTES do not apply here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from js import AbortController, Object, WebSocketPair, clearTimeout, fetch, setTimeout
from pyodide.ffi import JsException, JsProxy, create_once_callable, create_proxy, to_js

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

logger = logging.getLogger("realtime_gateway")


def _now() -> float:
    return time.monotonic()


def _http_url(url: str) -> str:
    """workerd's ``fetch`` upgrades only http(s) URLs: ws:// and wss:// are spelled so."""
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    return url


def _frame(data: Any) -> str | bytes:
    """A message event's data: text stays ``str``; an ``ArrayBuffer`` becomes ``bytes``."""
    return data if isinstance(data, str) else data.to_bytes()


class WorkerSession:
    """Carries out one :class:`Relay` over workerd's server-side socket and an outbound one."""

    def __init__(
        self,
        plan: SessionPlan,
        settings: Settings,
        on_end: Callable[[], None] | None = None,
        token_revoked: Callable[[], Awaitable[bool]] | None = None,
        meter: Callable[[float], UsageMeter] | None = None,
        record: Callable[[UsageRecord], None] | None = None,
    ) -> None:
        now = _now()
        # Accounting: ``meter`` makes the session's meter at its start, ``record`` takes its records.
        self.relay = Relay(plan, settings, now, meter=meter(now) if meter is not None else None)
        self._record = record
        self._on_end = on_end  # called once, when the session is over (admission release)
        # Asked every REVOCATION_POLL_SECONDS while the session is open (None: nothing to ask).
        self._token_revoked = token_revoked
        self._poll_seconds = settings.revocation_poll_seconds
        self._watch: asyncio.Task[None] | None = None
        # ``{0: client, 1: server}``: the client end goes back in the 101, the server end is ours.
        client_end, server_end = WebSocketPair.new().object_values()
        self.client_socket: JsProxy = client_end
        self._client: JsProxy = server_end
        self._handshake: JsProxy | None = None  # the AbortController of the provider handshake
        self._upstream: JsProxy | None = None
        # Frames for a connection the session is moving to (Gemini's resumption), until it opens.
        self._queued: list[str | bytes] | None = None
        self._moves: set[asyncio.Future[None]] = set()
        # (socket, event, callback): JS holds these; removed and freed once the session ends.
        self._listeners: list[tuple[JsProxy, str, JsProxy]] = []
        self._timer: Any = None
        self._armed_deadline: float | None = None

    def start(self) -> asyncio.Future[None] | None:
        """Accept the client side and start the provider handshake; return that work, if any."""
        self._client.binaryType = "arraybuffer"  # the default, "blob", would need an await to read
        self._listen(self._client, self._on_client_message, self._on_client_close)
        self._client.accept()
        self._execute(self.relay.client_connected(_now()))
        if self._token_revoked is not None and not self.relay.closed:
            self._watch = asyncio.ensure_future(self._watch_token(self._token_revoked))
        if self.relay.upstream_request is None:
            return None
        return asyncio.ensure_future(self._open_upstream())

    # -- events from the two sockets -----------------------------------------------------------------

    def _on_client_message(self, event: JsProxy) -> None:
        data = _frame(event.data)
        if isinstance(data, str):
            self._execute(self.relay.client_text(data, _now()))
        else:
            self._execute(self.relay.client_binary(data, _now()))

    def _on_client_close(self, event: JsProxy) -> None:
        code, reason = getattr(event, "code", None), getattr(event, "reason", "") or ""
        self._execute(self.relay.client_closed(code, reason, _now()))
        _close_quietly(self._client, 1000, "")  # completes the closing handshake
        self._end()

    def _on_upstream_message(self, socket: JsProxy, event: JsProxy) -> None:
        if socket is self._upstream:  # not a connection the session moved from
            self._execute(self.relay.upstream_frame(_frame(event.data), _now()))

    def _on_upstream_close(self, socket: JsProxy, event: JsProxy) -> None:
        if socket is not self._upstream:
            return
        code = getattr(event, "code", None)
        code = None if event.type == "error" else code
        self._execute(self.relay.upstream_closed(code, getattr(event, "reason", "") or "", _now()))

    async def _open_upstream(self, request: UpstreamRequest | None = None) -> None:
        request = request or self.relay.upstream_request
        assert request is not None
        headers = {**request.headers, "Upgrade": "websocket"}
        handshake = self._handshake = AbortController.new()  # so a session that ends first can abandon it
        options = to_js({"headers": headers, "signal": handshake.signal}, dict_converter=Object.fromEntries)
        try:
            response = await fetch(_http_url(request.url), options)
        except Exception:  # JsException or pyodide.http.AbortError: the text may hold the URL
            if handshake is not self._handshake:
                return  # abandoned for another connection (the next provider)
            failed = self.relay.upstream_failed(
                UpstreamFailure.UNREACHABLE, detail="connection failed", now=_now()
            )
            self._execute(failed)
            return
        upstream = response.webSocket
        if handshake is not self._handshake:  # abandoned for another connection meanwhile
            if upstream:
                upstream.accept()
                _close_quietly(upstream, 1000, "")
            return
        if not upstream:  # JS null: the provider answered the upgrade with a plain HTTP response
            failure = UpstreamFailure.PROTOCOL if response.status == 101 else UpstreamFailure.REJECTED
            self._execute(self.relay.upstream_failed(failure, response.status, now=_now()))
            return
        upstream.binaryType = "arraybuffer"
        self._listen(
            upstream,
            lambda event: self._on_upstream_message(upstream, event),
            lambda event: self._on_upstream_close(upstream, event),
        )
        upstream.accept()
        self._upstream = upstream
        queued, self._queued = self._queued or [], None
        for data in queued:
            _send(upstream, data)
        self._execute(self.relay.upstream_connected(_now()))

    async def _watch_token(self, token_revoked: Callable[[], Awaitable[bool]]) -> None:
        """End the session (``token_revoked``, 1008) once its gateway token is revoked."""
        while not self.relay.closed:
            await asyncio.sleep(self._poll_seconds)
            if not self.relay.closed and await token_revoked():
                self._execute(self.relay.token_revoked(_now()))

    # -- carrying out the relay's answers --------------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendToUpstream):
                if self._queued is not None:
                    self._queued.append(action.data)
                elif self._upstream is not None:
                    _send(self._upstream, action.data)
            elif isinstance(action, ReconnectUpstream):
                if self._upstream is not None:  # the session moves from it: it is no longer heard
                    _close_quietly(self._upstream, 1000, "")
                    self._upstream = None
                elif self._handshake is not None:
                    self._handshake.abort()  # still connecting: abandoned
                    self._handshake = None
                self._queued = [action.first_frame] if action.first_frame is not None else []
                move = asyncio.ensure_future(self._open_upstream(action.request))
                self._moves.add(move)
                move.add_done_callback(self._moves.discard)
            elif isinstance(action, SendToClient):
                _send(self._client, action.data)
            elif isinstance(action, CloseClient):
                _close_quietly(self._client, action.code, action.reason)
            elif isinstance(action, CloseUpstream):
                if self._upstream is not None:
                    _close_quietly(self._upstream, action.code, action.reason)
                elif self._handshake is not None:
                    self._handshake.abort()  # still connecting: drop the provider's handshake
            elif isinstance(action, RecordUsage) and self._record is not None:
                self._record(action.record)
        if self.relay.closed:
            self._end()
        elif self.relay.next_deadline() != self._armed_deadline:
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            clearTimeout(self._timer)
            self._timer = None
        deadline = self._armed_deadline = self.relay.next_deadline()
        if deadline is not None:
            delay_ms = max(0.0, (deadline - _now()) * 1000)
            self._timer = setTimeout(create_once_callable(self._on_timer), delay_ms)

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_deadline = None
        self._execute(self.relay.tick(_now()))

    def _listen(
        self, socket: JsProxy, on_message: Callable[[JsProxy], None], on_close: Callable[[JsProxy], None]
    ) -> None:
        for kind, handler in (("message", on_message), ("close", on_close), ("error", on_close)):
            proxy = create_proxy(handler)
            self._listeners.append((socket, kind, proxy))
            socket.addEventListener(kind, proxy)

    def _end(self) -> None:
        """The relay is closed: stop the timer and, once this event is handled, the listeners."""
        if self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._timer is not None:
            clearTimeout(self._timer)
            self._timer = None
        if self._listeners:
            # Not now: the callback running this may be one of them.
            setTimeout(create_once_callable(self._release_listeners), 0)

    def _release_listeners(self) -> None:
        listeners, self._listeners = self._listeners, []
        for socket, kind, proxy in listeners:
            socket.removeEventListener(kind, proxy)
            proxy.destroy()


def _send(socket: JsProxy, data: str | bytes) -> None:
    if isinstance(data, str):
        socket.send(data)
    else:
        socket.send(to_js(data))


def _close_quietly(socket: JsProxy, code: int, reason: str) -> None:
    """Close ``socket``; closing one that is already closed is not an error here."""
    with contextlib.suppress(JsException):
        socket.close(code, reason)
