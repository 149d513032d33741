"""What the standalone server relies on in its libraries beyond their documented API: all of it here.

Everything else it takes from websockets and aiohttp is their documented API. These few things are
deliberate: they make the relay fast (the frame path of :mod:`standalone.frames`) or let a socket
take its connection over from aiohttp once upgraded (:mod:`standalone.client_socket`). Each held for
every release ``make test`` ran: the oldest and the newest that the ranges declared in
``pyproject.toml`` admit (``tests/deps/check.py``, docs/dependencies.md). :func:`check` tries each
one on the releases installed, and ``realtime-gateway serve`` runs it before it listens: a release
that breaks one stops the gateway at start-up, named, instead of failing every session.

websockets, its Sans-I/O :class:`~websockets.protocol.Protocol`:

* ``websockets.speedups.apply_mask``, its C masking routine (not part of its API; absent when
  websockets was built without its C extension, and then its pure Python one is used).
* Its parser passes each frame on as it is (a fragment as a fragment) and keeps nothing from one
  frame to the next but the state of a fragmented message and of the closing handshake: the fast
  path reads the whole text frames that come outside a fragmented message itself and feeds it
  every other frame whole, so it parses a stream with frames missing.
* A frame whose header announces more than its ``max_size`` is refused (1009) from the header
  alone: the fast path hands it such a frame as soon as its header is in.

aiohttp, the handler of an upgraded connection (``request.protocol``, a
``aiohttp.web_protocol.RequestHandler``), as its own ``WebSocketResponse`` uses it:

* ``keep_alive(False)``: no HTTP request follows on the connection.
* ``set_parser(parser)``: the bytes it reads from then on go to ``parser.feed_data(data)``, which
  returns ``(eof, tail)``, and the end of the stream to ``parser.feed_eof()``.
* ``transport`` is None once it saw the connection end; ``connection_lost(exc)`` does its own
  bookkeeping for a connection whose transport another protocol took over.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from typing import Any
from typing import Protocol as Interface

from aiohttp import web, web_protocol
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["AiohttpConnection", "UnsupportedRelease", "apply_mask", "check"]

# The check's own protocols log where the gateway's do (standalone.websocket): warnings only.
_LOGGER = logging.getLogger("realtime_gateway.websocket")


class UnsupportedRelease(RuntimeError):
    """An installed library no longer does what this module says the server relies on."""


class Receiver(Interface):
    """What takes an upgraded connection over: bytes in, then the end of the stream."""

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...


class AiohttpConnection:
    """aiohttp's handler of one upgraded connection, whose bytes a :class:`Receiver` takes over."""

    def __init__(self, request: web.Request) -> None:
        self._handler: Any = request.protocol
        self._handler.keep_alive(False)  # no HTTP request follows a WebSocket on this connection

    @property
    def ended(self) -> bool:
        """Whether aiohttp already saw the connection end."""
        return self._handler.transport is None

    def hand_over(self, receiver: Receiver) -> None:
        """From now on the bytes aiohttp reads (and any it read since the upgrade) go to ``receiver``."""
        self._handler.set_parser(_Tail(receiver))

    def lost(self, exc: Exception | None) -> None:
        """The connection ended while ``receiver`` held its transport: aiohttp's own bookkeeping."""
        self._handler.connection_lost(exc)


class _Tail:
    """The payload parser aiohttp gives the bytes it reads after the upgrade."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._receiver.feed(data)
        return False, b""

    def feed_eof(self) -> None:
        self._receiver.feed_eof()


# -- the check ------------------------------------------------------------------------------------------


def check() -> None:
    """Try each assumption above on the installed releases; raise :class:`UnsupportedRelease`
    naming the release and the assumption that does not hold."""
    _expect("websockets", _mask_is_xor(), "apply_mask does not mask as RFC 6455 5.3 says")
    _expect("websockets", _parser_passes_each_frame_on(), "its parser does not pass each frame on as it is")
    _expect("websockets", _oversized_header_is_refused(), "an oversized frame is not refused by its header")
    _expect("aiohttp", _handler_can_be_taken_over(), "its connection handler cannot be taken over")


def _expect(library: str, holds: bool, what: str) -> None:
    if not holds:
        version = importlib.metadata.version(library)
        raise UnsupportedRelease(
            f"{library} {version}: {what} (standalone/internals.py); install a release within the "
            "range realtime-gateway declares"
        )


def _mask_is_xor() -> bool:
    key = b"\x01\x80\x7f\xff"
    data = bytes(range(256)) * 3
    return apply_mask(data, key) == bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


def _client_frames(*sends: Callable[[Protocol], None]) -> list[bytes]:
    """What a client writes for each of ``sends``, one frame each (masked, as clients send them)."""
    client = Protocol(Side.CLIENT, logger=_LOGGER)
    frames = []
    for send in sends:
        send(client)
        frames.append(b"".join(client.data_to_send()))
    return frames


def _parser_passes_each_frame_on() -> bool:
    """Fed a client's frames with one missing, it passes on the others one by one, fragments too."""
    first, _skipped, start, end, ping, close = _client_frames(
        lambda ws: ws.send_text(b"first"),
        lambda ws: ws.send_text(b"read by the fast path"),
        lambda ws: ws.send_text(b"frag", fin=False),
        lambda ws: ws.send_continuation(b"ment", fin=True),
        lambda ws: ws.send_ping(b"ping"),
        lambda ws: ws.send_close(1000, "bye"),
    )
    server = Protocol(Side.SERVER, max_size=1 << 10, logger=_LOGGER)
    events: list[Any] = []
    for frame in (first, start, end, ping, close):  # the second text frame never reaches it
        server.receive_data(frame)
        events += server.events_received()
    seen = [(event.opcode, bytes(event.data)) for event in events if isinstance(event, Frame)]
    return seen == [
        (Opcode.TEXT, b"first"),
        (Opcode.TEXT, b"frag"),
        (Opcode.CONT, b"ment"),
        (Opcode.PING, b"ping"),
        (Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye"),
    ]


def _oversized_header_is_refused() -> bool:
    server = Protocol(Side.SERVER, max_size=1 << 10, logger=_LOGGER)
    # A masked text frame of 1 MiB: its header only (64-bit length, then the masking key).
    server.receive_data(b"\x81\xff" + (1 << 20).to_bytes(8, "big") + b"\x00\x00\x00\x00")
    written = b"".join(server.data_to_send())
    return written[:1] == b"\x88" and written[2:4] == (1009).to_bytes(2, "big")


def _handler_can_be_taken_over() -> bool:
    handler = web_protocol.RequestHandler
    methods = ("keep_alive", "set_parser", "connection_lost")
    return (
        isinstance(getattr(web.BaseRequest, "protocol", None), property)
        and all(callable(getattr(handler, name, None)) for name in methods)
        and hasattr(handler, "transport")
    )
