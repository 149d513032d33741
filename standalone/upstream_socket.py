"""The provider's side: a WebSocket client connection on an asyncio transport of our own.

:func:`connect` opens the TCP (and TLS) connection; the handshake is websockets'
:class:`ClientProtocol`, and its answer is parsed in the same callback as the frames that follow
it, so a ``session.created`` that arrives with the ``101`` is relayed at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any
from typing import Protocol as Interface

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response
from websockets.protocol import Side
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from shared.providers import UpstreamRequest
from shared.relay import UpstreamFailure

from .websocket import PROTOCOL_LOGGER, Listener, PeerSocket

_SUBPROTOCOL_HEADER = "sec-websocket-protocol"


class UpstreamListener(Listener, Interface):
    def on_upstream_open(self, upstream: UpstreamSocket) -> None: ...

    def on_upstream_refused(
        self, upstream: UpstreamSocket, failure: UpstreamFailure, status: int | None, detail: str
    ) -> None:
        """The handshake failed: refused with ``status``, not a WebSocket answer, or cut short."""


class UpstreamSocket(PeerSocket, asyncio.Protocol):
    """A WebSocket client connection to the provider."""

    def __init__(
        self,
        request: UpstreamRequest,
        listener: UpstreamListener,
        *,
        max_size: int,
        max_buffered_bytes: int,
        ping_interval: float,
        ping_timeout: float,
    ) -> None:
        headers = dict(request.headers)
        offered = [
            Subprotocol(part.strip())
            for name in [n for n in headers if n.lower() == _SUBPROTOCOL_HEADER]
            for part in headers.pop(name).split(",")
        ]
        self.uri = parse_uri(request.url)
        protocol = ClientProtocol(
            self.uri, subprotocols=offered or None, max_size=max_size or None, logger=PROTOCOL_LOGGER
        )
        super().__init__(
            listener,
            side=Side.CLIENT,
            max_size=max_size or None,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            protocol=protocol,
        )
        self._upstream_listener = listener
        self._headers = headers
        self._max_buffered_bytes = max_buffered_bytes
        self.opened = False
        self._queued: list[str | bytes] = []  # sent before the handshake completed (a moved session)
        self._head_read = False  # whether the answer's head (up to its blank line) has come
        self._head_tail = b""  # the last bytes of the answer until then: the blank line may straddle reads

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        handshake = self.ws.connect()
        handshake.headers.update(self._headers)
        self.ws.send_request(handshake)
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.opened:
            self.feed(data)
            return
        # The answer's head goes to websockets; frames after a 101 are fed as frames.
        head_end = self._head_end(data)
        ws = self.ws
        ws.receive_data(data if head_end < 0 else data[:head_end])
        events = ws.events_received()
        if not events and 0 <= head_end < len(data):  # a refusal, and its body follows
            ws.receive_data(data[head_end:])
            events, head_end = ws.events_received(), -1
        self.flush()
        for event in events:
            if isinstance(event, Response):
                if self._answered(event) and 0 <= head_end < len(data):
                    self.feed(data[head_end:])
                return

    def _head_end(self, data: bytes) -> int:
        """Where the answer's head ends in ``data`` (after its blank line), or -1 if not in it."""
        if self._head_read:
            return -1
        tail = self._head_tail
        blank = (tail + data).find(b"\r\n\r\n")
        if blank < 0:
            self._head_tail = (tail + data)[-3:]
            return -1
        self._head_read = True
        return blank + 4 - len(tail)

    def _answered(self, response: Response) -> bool:
        """The provider's answer to the handshake: open, or refused (the socket is then closed)."""
        error = self.ws.handshake_exc
        if error is None:
            self.opened = True
            self.start(self.transport, self._max_buffered_bytes)
            queued, self._queued = self._queued, []
            for data in queued:
                self.send(data)
            self._upstream_listener.on_upstream_open(self)
            return True
        refused = isinstance(error, InvalidStatus)
        self.lost = True
        self._cancel_timers()  # the close deadline the failed handshake armed: nothing left to close
        self.abort()
        self._upstream_listener.on_upstream_refused(
            self,
            UpstreamFailure.REJECTED if refused else UpstreamFailure.PROTOCOL,
            response.status_code,
            "",
        )
        return False

    def send(self, data: str | bytes) -> None:
        """Send now, or once the handshake completes if it has not yet."""
        if not self.opened and not self.lost:
            self._queued.append(data)
            return
        super().send(data)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened:
            self._cancel_timers()
            if not self.lost:
                self.lost = True
                self._upstream_listener.on_upstream_refused(
                    self, UpstreamFailure.UNREACHABLE, None, "connection closed during handshake"
                )
            return
        self.feed_eof()


async def connect(upstream: UpstreamSocket) -> None:
    """Open the TCP (and TLS) connection; the handshake goes out at once and its answer reaches the
    socket's listener. Raises OSError (refused, unreachable, TLS): :func:`unreachable_detail` says
    why without the address."""
    uri = upstream.uri
    await asyncio.get_running_loop().create_connection(
        lambda: upstream,
        uri.host,
        uri.port,
        ssl=_tls_context() if uri.secure else None,
        server_hostname=uri.host if uri.secure else None,
    )


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every provider connection (building one reads the CA store)."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


def unreachable_detail(exc: BaseException) -> str:
    """A short reason for a failed connection, built from the OS error only (never the URL)."""
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, socket.gaierror):
        return "the provider's host name did not resolve"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # asyncio's own text carries the address
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return type(exc).__name__
