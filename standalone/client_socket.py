"""The client's side: answer the upgrade with aiohttp, then carry the frames with websockets' protocol.

aiohttp serves every HTTP request and writes the ``101 Switching Protocols`` answer; then the
connection is handed to a :class:`ClientSocket`, which becomes the transport's protocol, so bytes
go from the transport's callback straight to the relay (see :meth:`ClientSocket.listen`; what that
takes from aiohttp beyond its documented API is :class:`standalone.internals.AiohttpConnection`).
"""

from __future__ import annotations

from aiohttp import web
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.protocol import Side
from websockets.server import ServerProtocol

from shared.answers import error_body
from shared.routes import HttpAnswer

from .internals import AiohttpConnection
from .websocket import PROTOCOL_LOGGER, Listener, PeerSocket

# aiohttp writes its own Date and Server headers.
_HEADERS_AIOHTTP_WRITES = frozenset({"date", "server"})


def upgrade_answer(request: web.Request, subprotocol: str | None) -> dict[str, str] | HttpAnswer:
    """The headers of the 101 answer to a WebSocket handshake, or why the handshake is refused.

    websockets checks the handshake (version, key, Upgrade and Connection headers) and computes
    ``Sec-WebSocket-Accept``; the subprotocol is the one the gateway chose from the client's offer.
    """
    handshake = ServerProtocol(subprotocols=[subprotocol] if subprotocol else None, logger=PROTOCOL_LOGGER)
    response = handshake.accept(Request(request.path_qs, Headers(request.headers.items())))
    if response.status_code != 101:
        reason = str(handshake.handshake_exc) if handshake.handshake_exc else "not a WebSocket handshake"
        message = f"Bad WebSocket handshake: {reason}."
        return HttpAnswer(400, error_body("invalid_websocket_handshake", message))
    return {
        name: value
        for name, value in response.headers.raw_items()
        if name.lower() not in _HEADERS_AIOHTTP_WRITES
    }


class ClientSocket(PeerSocket):
    """A client's WebSocket on a connection aiohttp accepted and upgraded."""

    # Not while the provider holds it back: the relay can blame a client for a provider pong it
    # could not read (``client_too_slow``), not the other way round; the provider's own pings find
    # a provider that stopped reading.
    ping_while_paused = False

    def __init__(
        self,
        listener: Listener,
        *,
        max_size: int,
        ping_interval: float,
        ping_timeout: float,
    ) -> None:
        super().__init__(
            listener,
            side=Side.SERVER,
            max_size=max_size or None,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        self._aiohttp: AiohttpConnection | None = None  # the transport's first protocol

    async def accept(
        self, request: web.Request, headers: dict[str, str], max_buffered_bytes: int
    ) -> web.StreamResponse:
        """Write the 101 answer; the socket can send from now on (:meth:`listen` to receive)."""
        response = web.StreamResponse(status=101, headers=headers)
        await response.prepare(request)
        if request.transport is None:  # the connection was lost while the answer was written
            raise ConnectionResetError("the client left during the handshake")
        self._aiohttp = AiohttpConnection(request)
        self.start(request.transport, max_buffered_bytes)
        return response

    def listen(self) -> None:
        """Take the connection over from aiohttp: its bytes come here from now on, starting with
        any that arrived since the answer was written.

        The transport's protocol becomes this socket, not only its payload parser: aiohttp's handler
        drops the bytes of every connection once a shutdown begins, and this socket must still read
        the client's answer to its close frame then. The end of the connection is passed back to
        aiohttp's handler, which does its own bookkeeping with it.
        """
        aiohttp, transport = self._aiohttp, self.transport
        if aiohttp is None or transport is None or self.lost:
            return
        if aiohttp.ended:  # aiohttp already saw the connection end: so must we
            self.feed_eof()
            return
        aiohttp.hand_over(self)
        transport.set_protocol(self)

    # -- asyncio.Protocol, once listening -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.feed_eof()
        if self._aiohttp is not None:
            self._aiohttp.lost(exc)
