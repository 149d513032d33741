"""One WebSocket connection: websockets' sans-I/O protocol over an asyncio transport, by callbacks.

Frames are handled in the transport's ``data_received`` callback and the relay's answer is written
before it returns: a relayed frame costs no task switch, no future and no lock, and frames leave in
the order they came because nothing runs in between. The protocol itself (framing, masking, UTF-8,
size limit, ping answers, the closing handshake) is python-websockets' :class:`Protocol`; this
module adds only what a sans-I/O protocol leaves to its user: the transport, timers (pings and the
close deadline) and telling the owner what happened.

The owner (:class:`standalone.session.StandaloneSession`) is told, through :class:`Listener`:
a message, the peer's close frame, and the end of the connection (with whether the peer had
stopped answering pings). It learns whether writing is paused from :attr:`PeerSocket.writing_paused`
and waits for the buffer to drain with :meth:`PeerSocket.drained`. Both sides are the protocol
(:class:`asyncio.Protocol`) of their transport.

Only websockets' documented Sans-I/O API is used here (``receive_data``, ``events_received``,
``data_to_send``, ``send_*``, ``fail``, ``close_expected``, ``state``, and the :class:`Frame` and
:class:`Close` events); what the socket needs to know of itself (its side, its size limit, the
peer's close frame) it keeps, rather than reading the protocol's attributes back: those changed
between releases (``max_size`` became ``max_message_size`` in websockets 16). What the frame fast
path relies on beyond that is in :mod:`standalone.frames`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from typing import Protocol as Interface

from websockets.frames import Close, Frame, Opcode
from websockets.protocol import SEND_EOF, Protocol, Side, State

from shared.errors import close_reason

from .frames import frame_size, text_frame, text_payload

# websockets logs every handshake header at DEBUG level, provider keys included: its protocols log
# here, a logger that never passes DEBUG on, whatever level the operator sets for the rest. Its INFO
# lines ("connection closed" for every session since websockets 16) say less than the gateway's own
# session lines, so only its warnings and errors pass.
PROTOCOL_LOGGER = logging.getLogger("realtime_gateway.websocket")
PROTOCOL_LOGGER.setLevel(logging.WARNING)

# How long a closing handshake (and the frames queued before it) may take before the socket is dropped.
CLOSE_TIMEOUT_SECONDS = 5.0


class Listener(Interface):
    """What a :class:`PeerSocket` tells its owner; each call comes from a transport callback."""

    def on_message(self, socket: PeerSocket, data: str | bytes) -> None: ...

    def on_close_frame(self, socket: PeerSocket, code: int | None, reason: str) -> None: ...

    def on_lost(self, socket: PeerSocket, unresponsive: bool) -> None: ...


class PeerSocket:
    """The common part of both sides: feed bytes in, get messages out, send, ping, close."""

    # Whether this peer is still pinged while the gateway is not reading it (backpressure from the
    # other side): its pong then goes unread, so a missed pong says the other side stalled it.
    ping_while_paused = True

    def __init__(
        self,
        listener: Listener,
        *,
        side: Side,
        max_size: int | None,
        ping_interval: float,
        ping_timeout: float,
        protocol: Protocol | None = None,
    ) -> None:
        """A connection's ``side`` (the gateway's: SERVER to a client), with ``max_size`` the largest
        message accepted in bytes (None: no limit). ``protocol`` is websockets' for the connection
        when it needs more than frames (a handshake), made with the same side and ``max_size``."""
        self._loop = asyncio.get_running_loop()
        self.ws = protocol or Protocol(side, max_size=max_size, logger=PROTOCOL_LOGGER)
        self._listener = listener
        self.transport: Any = None  # asyncio or uvloop transport (duck-typed: uvloop's are not asyncio's)
        # Framing (standalone.frames): frames from a server are unmasked, frames to it masked.
        self._peer_masks = side is Side.SERVER
        self._masks = side is Side.CLIENT
        self._max_size = max_size
        self.close_received: Close | None = None  # the peer's close frame, once it came
        self._partial = bytearray()  # the start of a frame not all read yet
        self._partial_needed = 0  # its whole length, once its header is in
        self._unsplit = False  # set once a frame is too large to wait for: websockets reads the rest
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self.lost = False
        self.unresponsive = False
        self._failed = False
        # Liveness: a timer every ping_interval; a peer silent for a whole interval gets a ping and
        # ping_timeout to answer (any frame counts as an answer).
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._heard = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- the transport ---------------------------------------------------------------------------------

    def start(self, transport: Any, max_buffered_bytes: int) -> None:
        """The connection is open: ``transport`` carries its frames from now on."""
        self.transport = transport
        if hasattr(transport, "set_write_buffer_limits"):
            transport.set_write_buffer_limits(high=max_buffered_bytes)
        if self._ping_interval > 0:
            self._ping_timer = self._loop.call_later(self._ping_interval, self._ping_due)

    def feed(self, data: bytes) -> None:
        """Bytes from the peer: parse them, answer what the protocol answers, report messages.

        The stream is cut into whole frames (:mod:`standalone.frames`): a whole text frame of an
        open connection is read here, every other frame goes to websockets, whole.
        """
        self._heard = True
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        if self._unsplit:
            self._parse(data)
            return
        if self._partial:
            self._partial += data
            if len(self._partial) < self._partial_needed:
                return  # a large frame still coming in: no copy of it per read
            data = bytes(self._partial)
            self._partial.clear()
        start, size, max_size, needed = 0, len(data), self._max_size, 0
        while start < size and not self._failed:
            lengths = frame_size(data, start)
            if lengths is None:
                break
            header, length = lengths
            if max_size is not None and length > max_size:
                self._unsplit = True  # websockets refuses it (1009) before it is all read
                self._parse(data[start:])
                return
            end = start + header + length
            if end > size:
                needed = end - start
                break
            self._frame(data, start, header, end)
            start = end
        if start < size and not self._failed:
            self._partial += data[start:]
            self._partial_needed = needed

    def _frame(self, data: bytes, start: int, header: int, end: int) -> None:
        """One whole frame, ``data[start:end]``."""
        if self._fragment_opcode is None and self.ws.state is State.OPEN:
            payload = text_payload(data, start, header, end, masked=self._peer_masks)
            if payload is not None:
                self._deliver(Opcode.TEXT, payload)
                return
        self._parse(data[start:end])

    def _parse(self, data: bytes) -> None:
        """Bytes for websockets' parser: whole frames, or everything once the stream is unsplit."""
        ws = self.ws
        ws.receive_data(data)
        events = ws.events_received()
        self.flush()
        for event in events:
            if self._failed:
                break  # RFC 6455 7.1.7: nothing more from a peer whose connection was failed
            self._dispatch(event)

    def feed_eof(self) -> None:
        """The peer closed the TCP connection (or it broke): the end of this socket."""
        if self.lost:
            return
        with contextlib.suppress(EOFError):  # already at EOF: a second end of stream
            self.ws.receive_eof()
        self.ws.data_to_send()  # nothing can be written any more
        self.lost = True
        self._cancel_timers()
        self._wake_drain_waiter()
        self._listener.on_lost(self, self.unresponsive)

    def _dispatch(self, event: Any) -> None:
        if not isinstance(event, Frame):
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if event.fin:
                self._deliver(opcode, event.data)
            else:
                self._fragment_opcode = opcode
                self._fragments = [event.data]
        elif opcode is Opcode.CONT:
            self._fragments.append(event.data)
            if event.fin and self._fragment_opcode is not None:
                opcode, self._fragment_opcode = self._fragment_opcode, None
                data, self._fragments = b"".join(self._fragments), []
                self._deliver(opcode, data)
        elif opcode is Opcode.CLOSE:
            # websockets checked the payload before it passed the frame on (1002 if malformed).
            close = self.close_received = Close.parse(event.data)
            self._listener.on_close_frame(self, close.code, close.reason)

    def _deliver(self, opcode: Opcode, data: bytes) -> None:
        if opcode is Opcode.BINARY:
            self._listener.on_message(self, data)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.fail(1007, "invalid UTF-8 in a text frame")
            return
        self._listener.on_message(self, text)

    # -- sending -----------------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self.ws.state is State.OPEN and not self.lost

    def send(self, data: str | bytes) -> None:
        """Send one message now (it joins the transport's buffer when the peer is slow)."""
        if self.ws.state is not State.OPEN or self.lost:
            return
        if isinstance(data, str):
            # websockets' own queue is always empty here (flush() follows each of its calls).
            self.transport.write(text_frame(data.encode(), mask=self._masks))
            return
        self.ws.send_binary(data)
        self.flush()

    def flush(self) -> None:
        """Write what the protocol has queued (pongs, close frames, the end of the stream)."""
        for chunk in self.ws.data_to_send():
            if chunk is SEND_EOF or not chunk:
                self._close_transport()
            elif self.transport is not None:
                self.transport.write(chunk)
        if self.ws.close_expected() and self._close_timer is None and not self.lost:
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT_SECONDS, self.abort)

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; a peer that does not finish it in time is dropped."""
        if self.ws.state is State.OPEN and not self.lost:
            self.ws.send_close(code, close_reason(reason))
            self.flush()

    def fail(self, code: int, reason: str) -> None:
        """Close because the peer broke the protocol: no more of its data is processed."""
        self._failed = True
        if not self.lost:
            self.ws.fail(code, close_reason(reason))
            self.flush()

    def abort(self) -> None:
        """Drop the connection now, unsent data and all (``close()`` would wait for a peer not reading)."""
        transport = self.transport
        if transport is not None and hasattr(transport, "abort"):
            with contextlib.suppress(RuntimeError):  # an SSL transport already torn down
                transport.abort()

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- backpressure --------------------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's write buffer went over its limit (asyncio.Protocol)."""
        self._writing_paused = True

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its limit (asyncio.Protocol)."""
        self._writing_paused = False
        self._wake_drain_waiter()

    def _wake_drain_waiter(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._drain_waiter = None

    @property
    def writing_paused(self) -> bool:
        """Whether more than the write buffer's limit is waiting to be sent to this peer."""
        return self._writing_paused

    async def drained(self) -> None:
        """Return once the write buffer is below its limit again (or the connection is gone)."""
        if not self._writing_paused or self.lost:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await self._drain_waiter

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self.lost:
            self.reading_paused = True
            self.transport.pause_reading()
            if not self.ping_while_paused and self._pong_timer is not None:
                self._pong_timer.cancel()  # its answer could not be read now
                self._pong_timer = None

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.lost:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- liveness -----------------------------------------------------------------------------------

    def _ping_due(self) -> None:
        self._ping_timer = self._loop.call_later(self._ping_interval, self._ping_due)
        paused = self.reading_paused and not self.ping_while_paused
        if self._heard or paused or self._pong_timer is not None or self.ws.state is not State.OPEN:
            self._heard = False
            return
        self.ws.send_ping(b"")
        self.flush()
        self._pong_timer = self._loop.call_later(self._ping_timeout, self._pong_missing)

    def _pong_missing(self) -> None:
        self._pong_timer = None
        self.unresponsive = True
        self.abort()  # connection_lost follows, and with it on_lost(unresponsive=True)

    def _cancel_timers(self) -> None:
        for timer in (self._ping_timer, self._pong_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = self._close_timer = None


def close_code_of(socket: PeerSocket) -> int | None:
    """The code of the close frame the peer sent, if it sent one."""
    close = socket.close_received
    return close.code if close is not None else None
