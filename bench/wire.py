"""The lean WebSocket layer of figure 3's load generator: the audio clients and the upstream.

At 500 sessions the clients and the upstream each handle 10,000 audio frames a second, on the same
two cores as the relay they measure, so what they spend per frame is taken from the relay. Here:

- a connection is an :class:`asyncio.Protocol` (on uvloop where installed: :func:`run`); frames are
  handled in the transport's callbacks, with no task, future or lock per frame;
- the handshake, control frames, fragmented or unexpected messages and the closing handshake are
  websockets' sans-I/O protocol (:class:`ClientProtocol`, :class:`ServerProtocol`);
- the hot frames (the audio appends and deltas, whose payload is fixed but for a stamp) bypass it:
  a :class:`HotFrame` is a pre-serialised (and, client to server, pre-masked) frame into which the
  sender patches the stamp, and which the receiver recognises by comparing bytes and reads the
  stamp of at a known offset. A frame that differs in any byte but the stamp (a relay that
  re-serialised it: LiteLLM) goes through the protocol and a JSON parse instead.

Every frame on the wire is a valid RFC 6455 frame and every payload a valid realtime event: the
gateway relays the appends and deltas byte for byte, so they keep this layout through it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode, apply_mask
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from .common import APPEND_HEAD, APPEND_TAIL, DELTA_HEAD, DELTA_TAIL

T = TypeVar("T")

# A stamp is ``<seq>_<monotonic ns at send>`` in fixed widths, so that it has a fixed offset and
# length in the frame: 8 digits of sequence, an underscore, 19 digits of nanoseconds (any int64).
STAMP_LENGTH = 28
_SEQ = slice(0, 8)
_SENT_NS = slice(9, 28)

# The clients mask every frame with this one key. RFC 6455 asks browsers for a fresh, unpredictable
# key per frame, so that a script cannot choose the bytes an intermediary sees; a load generator
# sending its own fixed payloads over the loopback has no such script, and a server cannot tell.
CLIENT_MASK = b"\x5a\x3c\x96\xe1"

_TEXT_FIN = 0x81
_MASKED = 0x80
_LENGTH_16 = 126  # the payload length is in the next 2 bytes
_LENGTH_64 = 127  # ... in the next 8 bytes
_END_OF_HEAD = b"\r\n\r\n"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where installed (less CPU per callback and per system call), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


class HotFrame:
    """A text frame whose payload is ``head + stamp + tail``, built and read by bytes alone."""

    def __init__(self, head: str, tail: str, mask: bytes = b"") -> None:
        self._head = head.encode()
        self._tail = tail.encode()
        self._stamp_at = len(self._head)
        length = self._stamp_at + STAMP_LENGTH + len(self._tail)
        if not _LENGTH_16 <= length < 2**16:
            raise ValueError(f"a hot frame's payload must take the 16-bit length form, not {length} bytes")
        # What every such frame starts with, whatever its mask key: FIN + text, the mask bit, the length.
        self._masked = bool(mask)
        self._header = bytes([_TEXT_FIN, (_MASKED if mask else 0) | _LENGTH_16]) + length.to_bytes(2, "big")
        payload = self._head + bytes(STAMP_LENGTH) + self._tail
        if mask:
            payload = apply_mask(payload, mask)
        self._before = self._header + mask + payload[: self._stamp_at]
        self._after = payload[self._stamp_at + STAMP_LENGTH :]
        # The stamp starts at this offset in the payload: the mask key, rotated to line up with it.
        shift = self._stamp_at % 4
        self._stamp_mask = mask[shift:] + mask[:shift]

    def build(self, seq: int, sent_ns: int) -> bytes:
        """The whole frame, stamped ``seq`` and ``sent_ns``."""
        stamp = b"%08d_%019d" % (seq, sent_ns)
        if self._masked:
            stamp = apply_mask(stamp, self._stamp_mask)
        return b"".join((self._before, stamp, self._after))

    def read(self, frame: bytes) -> tuple[int, int] | None:
        """``(seq, sent_ns)`` if ``frame`` (one whole frame; masked with any key if this one is) is
        this hot frame byte for byte but the stamp, else None."""
        if not frame.startswith(self._header):
            return None
        if self._masked:
            payload, start = apply_mask(frame[8:], frame[4:8]), 0
        else:
            payload, start = frame, len(self._header)
        if not (payload.startswith(self._head, start) and payload.endswith(self._tail)):
            return None
        stamp = payload[start + self._stamp_at : start + self._stamp_at + STAMP_LENGTH]
        try:
            return int(stamp[_SEQ]), int(stamp[_SENT_NS])
        except ValueError:
            return None


# What the clients send and the upstream receives, and the other way round.
APPEND_FRAME = HotFrame(APPEND_HEAD, APPEND_TAIL, mask=CLIENT_MASK)
DELTA_FRAME = HotFrame(DELTA_HEAD, DELTA_TAIL)


def frame_end(data: bytes, start: int) -> int | None:
    """Where the frame that starts at ``start`` ends (possibly past the end of ``data``), or None
    while its header is incomplete."""
    available = len(data) - start
    if available < 2:
        return None
    second = data[start + 1]
    length = second & 0x7F
    header = 2
    if length >= _LENGTH_16:
        extra = 2 if length == _LENGTH_16 else 8
        if available < 2 + extra:
            return None
        length = int.from_bytes(data[start + 2 : start + 2 + extra], "big")
        header += extra
    if second & _MASKED:
        header += 4
    return start + header + length


class Connection(asyncio.Protocol):
    """One WebSocket connection: the hot frame it receives is read here, the rest goes through
    websockets' protocol ``ws``. Subclasses handle the handshake's event and what arrives."""

    def __init__(self, ws: Protocol, receives: HotFrame) -> None:
        # Held, not looked up per frame: asyncio.get_running_loop() makes a getpid() system call.
        self.loop = asyncio.get_running_loop()
        self.ws = ws
        self._hot = receives
        self.transport: Any = None  # asyncio's or uvloop's (uvloop's are not asyncio.Transport)
        self._unread = b""  # the start of a frame (or of the handshake) whose end has not come yet
        self._head_fed = False  # the handshake's head went to the protocol
        self._framing = False  # the handshake was accepted: bytes are split into frames here
        self._fragments: list[bytes] = []
        self._fragmented: Opcode | None = None

    # -- what subclasses handle ----------------------------------------------------------------------

    def on_handshake(self, event: Request | Response) -> None:
        """The peer's side of the handshake; the connection is open if ``is_open`` is then true."""
        raise NotImplementedError

    def on_hot(self, seq: int, sent_ns: int, received_ns: int) -> None:
        raise NotImplementedError

    def on_message(self, data: str | bytes, received_ns: int) -> None:
        """A text (``str``) or binary message that is not a hot frame."""
        raise NotImplementedError

    def on_lost(self) -> None:
        """The TCP connection ended (the closing handshake may or may not have happened)."""

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        received_ns = time.monotonic_ns()  # every frame of this read arrived now
        if self._unread:
            data, self._unread = self._unread + data, b""
        if self._framing:
            self._read_frames(data, received_ns)
        elif self._head_fed:
            self._through_protocol(data, received_ns)  # the body of a refusal
        else:
            self._handshake(data, received_ns)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()
        self.ws.data_to_send()  # nothing can be written any more
        self.on_lost()

    # -- receiving -----------------------------------------------------------------------------------

    def _handshake(self, data: bytes, received_ns: int) -> None:
        """Give the protocol the handshake's head once it is all here. Frames parsed by the protocol
        would leave a partial one in its buffer, so the bytes after the head of an accepted
        handshake are split into frames here; after a refused one they are its body."""
        end = data.find(_END_OF_HEAD)
        if end < 0:
            self._unread = data
            return
        end += len(_END_OF_HEAD)
        self._head_fed = True
        self._through_protocol(data[:end], received_ns)
        if self.is_open:
            self._framing = True
            self._read_frames(data[end:], received_ns)
        elif end < len(data):
            self._through_protocol(data[end:], received_ns)

    def _read_frames(self, data: bytes, received_ns: int) -> None:
        start, size = 0, len(data)
        while start < size:
            end = frame_end(data, start)
            if end is None or end > size:
                self._unread = data[start:]
                return
            frame = data if start == 0 and end == size else data[start:end]
            stamp = self._hot.read(frame) if self.is_open else None
            if stamp is not None:
                self.on_hot(*stamp, received_ns)
            else:
                self._through_protocol(frame, received_ns)
            start = end

    def _through_protocol(self, data: bytes, received_ns: int) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if not isinstance(event, Frame):
                self.on_handshake(event)
                continue
            message = self._message(event)
            if message is not None:
                self.on_message(message, received_ns)
        self.flush()  # the handshake's answer, pongs, the close frame's answer, the end of the stream

    def _message(self, frame: Frame) -> str | bytes | None:
        """The message ``frame`` completes, if any (control frames are the protocol's)."""
        opcode, data = frame.opcode, frame.data
        if opcode is Opcode.CONT:
            self._fragments.append(data)
            if not frame.fin or self._fragmented is None:
                return None
            opcode, data, self._fragments = self._fragmented, b"".join(self._fragments), []
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragmented, self._fragments = opcode, [data]
                return None
        else:
            return None
        if opcode is Opcode.BINARY:
            return data
        try:
            return data.decode()
        except UnicodeDecodeError:
            self.ws.fail(1007, "invalid UTF-8 in a text frame")
            return None

    # -- sending -------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.ws.state is State.OPEN

    def send_text(self, text: str) -> None:
        if self.is_open:
            self.ws.send_text(text.encode())
            self.flush()

    def send_frame(self, frame: bytes) -> bool:
        """Write a whole frame built elsewhere (a :class:`HotFrame`); False once the connection is
        closing or closed."""
        if not self.is_open:
            return False
        self.transport.write(frame)
        return True

    def close(self) -> None:
        """Start the closing handshake."""
        if self.is_open:
            self.ws.send_close(1000)
            self.flush()

    def flush(self) -> None:
        """Write what the protocol has queued; its end-of-stream marker closes the transport."""
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:
                self.transport.close()


class ClientConnection(Connection):
    """The client side: the handshake goes out as soon as the TCP connection is made."""

    def __init__(self, url: str, headers: dict[str, str], receives: HotFrame) -> None:
        self.uri = parse_uri(url)
        self._client = ClientProtocol(self.uri, max_size=None)
        super().__init__(self._client, receives)
        self._headers = headers

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        request = self._client.connect()
        request.headers.update(Headers(self._headers))
        self._client.send_request(request)
        self.flush()

    def on_handshake(self, event: Request | Response) -> None:
        error = self.ws.handshake_exc
        if error is None:
            self.on_open()
        else:
            self.on_refused(error)  # the protocol has queued the end of the stream

    def on_open(self) -> None:
        raise NotImplementedError

    def on_refused(self, error: Exception) -> None:
        raise NotImplementedError


async def connect(connection: ClientConnection) -> None:
    """Open the TCP connection of ``connection`` (its handshake follows by itself)."""
    uri = connection.uri
    await asyncio.get_running_loop().create_connection(lambda: connection, uri.host, uri.port)


class ServerConnection(Connection):
    """The server side: any path opens a WebSocket, but for ``/healthz``, which answers 200."""

    def __init__(self, receives: HotFrame) -> None:
        self._server = ServerProtocol(max_size=None)
        super().__init__(self._server, receives)

    def on_handshake(self, event: Request | Response) -> None:
        assert isinstance(event, Request)
        healthz = event.path == "/healthz"
        self._server.send_response(self._server.reject(200, "ok") if healthz else self._server.accept(event))
        if self.is_open:
            self.on_open()

    def on_open(self) -> None:
        raise NotImplementedError
