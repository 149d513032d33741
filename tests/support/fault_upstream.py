"""A misbehaving realtime provider on 127.0.0.1, scripted below the WebSocket layer.

:class:`tests.support.fake_upstream.FakeUpstream` is a well-behaved provider built on aiohttp; this
one is a bare ``asyncio`` TCP server that writes the HTTP handshake and every WebSocket frame by
hand, so it can fail where a library would not let it: mid-frame, with frames no server may send,
or by never finishing the handshake. It runs on its own thread and event loop, so any test (sync
or async, any loop) can use it.

The fault is chosen per connection by the ``model`` the gateway forwards (``?model=<fault>``), or,
where the URL names no model (GPT-Live), by the key (``Bearer scenario-<fault>``); :data:`FAULTS`
lists them. Unless a fault says otherwise, it completes the handshake, sends one
``session.created`` (GA shape), does its thing, then reads what the gateway sends until it goes.

A refused TCP connection needs no server: :func:`closed_port` gives a port nothing listens on.

What it saw: ``connections`` has a :class:`FaultConnection` per TCP connection (request, the frames
the gateway sent, its close code, when the gateway dropped the connection), so a test can check
that the gateway let go of the provider side too, not only what the client was told.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from support.gateway_process import refused_port

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# WebSocket opcodes (RFC 6455 5.2).
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# How long a fault that keeps its socket open waits for the gateway before giving up on it.
HOLD_SECONDS = 120.0
# A small receive buffer makes a stalled provider push back on the gateway after little data.
RECEIVE_BUFFER_BYTES = 64 * 1024
TCP_ESTABLISHED = 1  # the first byte of Linux's TCP_INFO: the connection's state


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections while the tests run (:func:`refused_port`)."""
    return refused_port()


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """One WebSocket frame, as bytes. ``length`` overrides the announced payload length (to
    announce more than is sent); ``mask`` masks it (which a server must never do); ``rsv`` sets
    the RSV1-3 bits (0-7), which mean nothing without a negotiated extension."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if mask is not None:
        payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        head += mask
    return head + payload


def text_frame(event: dict[str, Any]) -> bytes:
    return frame(OP_TEXT, json.dumps(event).encode())


def close_frame(code: int | None, reason: str = "") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
    return frame(OP_CLOSE, payload)


def session_created(model: str) -> dict[str, Any]:
    """A GA ``session.created``, as the provider's first event."""
    return {
        "type": "session.created",
        "event_id": "event_fault_created",
        "session": {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_fault",
            "model": model,
            "output_modalities": ["audio"],
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
            },
        },
    }


@dataclass
class FaultConnection:
    """One TCP connection from the gateway, as the provider saw it."""

    fault: str
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    opened_at: float = field(default_factory=time.monotonic)
    upgraded: bool = False  # a 101 was sent
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (opcode, payload) from the gateway
    received_bytes: int = 0  # WebSocket payload bytes read from the gateway
    close_code: int | None = None  # in the gateway's close frame (None: none received)
    close_reason: str = ""
    gone_at: float | None = None  # when the gateway closed or reset the TCP connection
    ended: threading.Event = field(default_factory=threading.Event)  # the provider side is closed

    @property
    def texts(self) -> list[str]:
        return [payload.decode() for opcode, payload in self.frames if opcode == OP_TEXT]


class _Gone(Exception):
    """The gateway closed or reset the connection."""


class FaultUpstream:
    """Start with :meth:`start`; ``url`` is its endpoint; ``connections`` what it saw."""

    def __init__(self) -> None:
        self.connections: list[FaultConnection] = []
        self.port = 0
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-upstream")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._release: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def start(self) -> FaultUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def release(self) -> None:
        """Let every connection held open (``hang``, ``stall``, ``silent``...) go: they are closed."""
        self._loop.call_soon_threadsafe(self._release_now)

    # -- what it saw ------------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.connections)

    def since(self, mark: int) -> list[FaultConnection]:
        return self.connections[mark:]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Block until ``predicate()`` is truthy; return its value (AssertionError on timeout)."""
        with self._changed:
            result = self._changed.wait_for(predicate, timeout)
        if not result:
            raise AssertionError(f"fault upstream: condition not met within {timeout} s")
        return result

    def open_connections(self) -> list[FaultConnection]:
        """Connections the gateway has not let go of yet (nor the provider closed)."""
        return [c for c in self.connections if c.gone_at is None and not c.ended.is_set()]

    # -- the server -------------------------------------------------------------------------------

    async def _start(self) -> None:
        self._release = asyncio.Event()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)  # inherited
        listener.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._handle, sock=listener, backlog=256)
        self.port = listener.getsockname()[1]

    async def _stop(self) -> None:
        self._release_now()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.sleep(0)

    def _release_now(self) -> None:
        assert self._release is not None
        self._release.set()
        self._release = asyncio.Event()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = FaultConnection(fault="?")
        self.connections.append(connection)
        self._writers.add(writer)
        release = self._release
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                raise _Gone from None
            request_line, *lines = head.decode("latin-1").split("\r\n")
            target = request_line.split(" ")[1]
            parts = urlsplit(target)
            connection.path = parts.path
            connection.query = dict(parse_qsl(parts.query))
            for line in lines:
                name, _, value = line.partition(":")
                if name:
                    connection.headers[name.strip().lower()] = value.strip()
            key = connection.headers.get("authorization", "").removeprefix("Bearer ")
            by_key = key.removeprefix("scenario-") if key.startswith("scenario-") else ""
            connection.fault = connection.query.get("model") or by_key
            self._notify()
            handler, argument = _handler_for(connection.fault)
            assert release is not None
            await handler(self, connection, reader, writer, argument, release)
        except _Gone:
            connection.gone_at = connection.gone_at or time.monotonic()
        except (ConnectionError, asyncio.IncompleteReadError):
            connection.gone_at = connection.gone_at or time.monotonic()
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.transport.abort()
            connection.ended.set()
            self._notify()

    # -- pieces the faults are made of ------------------------------------------------------------

    @staticmethod
    async def write(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            raise _Gone from None

    async def upgrade(self, connection: FaultConnection, writer: asyncio.StreamWriter) -> None:
        """Answer the handshake with a valid 101."""
        key = connection.headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        await self.write(
            writer,
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode(),
        )
        connection.upgraded = True

    async def read_frame(
        self, connection: FaultConnection, reader: asyncio.StreamReader
    ) -> tuple[int, bytes]:
        """The gateway's next frame (unmasked), recorded; a close frame is recorded as such."""
        try:
            first, second = await reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
            payload = bytearray(await reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            raise _Gone from None
        for index in range(len(payload)):
            payload[index] ^= mask[index % 4]
        opcode, data = first & 0x0F, bytes(payload)
        connection.received_bytes += len(data)
        if opcode == OP_CLOSE:
            connection.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
            connection.close_reason = data[2:].decode(errors="replace")
        connection.frames.append((opcode, data))
        self._notify()
        return opcode, data

    async def converse(
        self,
        connection: FaultConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        release: asyncio.Event,
    ) -> None:
        """Read the gateway's frames until it closes: answer a close, a ping; stop on release."""
        reading = asyncio.ensure_future(self._read_until_close(connection, reader, writer))
        releasing = asyncio.ensure_future(release.wait())
        try:
            await asyncio.wait(
                {reading, releasing}, timeout=HOLD_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            releasing.cancel()
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, _Gone):
                    await reading
            elif reading.exception() is not None:
                raise reading.exception()  # type: ignore[misc]

    async def _read_until_close(
        self, connection: FaultConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            opcode, data = await self.read_frame(connection, reader)
            if opcode == OP_CLOSE:  # answer it, then close TCP first, as a server should (7.1.1)
                with contextlib.suppress(_Gone):
                    await self.write(writer, frame(OP_CLOSE, data[:2]))
                writer.close()
                return
            if opcode == OP_PING:
                await self.write(writer, frame(OP_PONG, data))

    async def wait_gone(
        self, connection: FaultConnection, reader: asyncio.StreamReader, timeout: float
    ) -> None:
        """Wait (up to ``timeout``) for the gateway to close the TCP connection, reading what comes."""
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout):
                while await reader.read(65536):
                    pass
                connection.gone_at = time.monotonic()

    async def hold(
        self, connection: FaultConnection, writer: asyncio.StreamWriter, release: asyncio.Event
    ) -> None:
        """Keep the connection open without reading a byte, until the gateway goes or release."""
        deadline = time.monotonic() + HOLD_SECONDS
        while not release.is_set() and time.monotonic() < deadline:
            if _peer_gone(writer):
                connection.gone_at = time.monotonic()
                self._notify()
                return
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(0.05):
                    await release.wait()

    @staticmethod
    def reset(writer: asyncio.StreamWriter) -> None:
        """Reset the TCP connection: SO_LINGER 0 then close sends RST instead of FIN."""
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


def _peer_gone(writer: asyncio.StreamWriter) -> bool:
    """Whether the gateway has closed or reset the connection, without reading from it (data it
    sent may be unread: the TCP state says, Linux's ``TCP_INFO``, whose first byte it is)."""
    if writer.transport.is_closing():
        return True
    sock = writer.get_extra_info("socket")
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return True
    return state != TCP_ESTABLISHED


# -- the faults ------------------------------------------------------------------------------------
# Each takes (upstream, connection, reader, writer, argument, release); ``argument`` is what follows
# the fault's name in the model (``status-429`` -> ``"429"``).


async def _ok(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """A healthy provider: session.created, then read until the gateway closes."""
    await up.upgrade(c, w)
    await up.write(w, text_frame(session_created(c.fault)))
    await up.converse(c, r, w, release)


async def _status(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """Refuse the handshake with HTTP ``status`` and an OpenAI-style JSON body."""
    status = int(arg)
    body = json.dumps(
        {"error": {"type": "invalid_request_error", "code": "scripted", "message": f"scripted {status}"}}
    ).encode()
    head = (
        f"HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    await up.write(w, head.encode() + body)
    await up.wait_gone(c, r, 5.0)


async def _hang(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """Take the request, never answer it: the handshake never completes."""
    await up.hold(c, w, release)


async def _reset_before_answer(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """Take the request, then reset the connection without answering."""
    up.reset(w)


async def _bad_accept(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """A 101 whose Sec-WebSocket-Accept is wrong: not a valid WebSocket handshake."""
    head = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBhY2NlcHQ=\r\n\r\n"
    )
    await up.write(w, head.encode())
    await up.wait_gone(c, r, 10.0)


async def _silent(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """Complete the handshake, then never send anything (no session.created); read what comes."""
    await up.upgrade(c, w)
    await up.converse(c, r, w, release)


async def _close(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """session.created, then a close frame with ``code`` (``empty``: no code) and a reason."""
    await up.upgrade(c, w)
    await up.write(w, text_frame(session_created(c.fault)))
    code = None if arg == "empty" else int(arg)
    await up.write(w, close_frame(code, "" if code is None else f"scripted close {code}"))
    # The gateway answers with its own close frame; then the server closes TCP first (7.1.1).
    with contextlib.suppress(asyncio.TimeoutError):
        async with asyncio.timeout(5.0):
            while (await up.read_frame(c, r))[0] != OP_CLOSE:
                pass
    w.close()


async def _reset_mid(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """session.created, then part of a frame (``header``: one byte of its header; ``payload``: the
    header and some of the payload it announces), then RST (``reset-``) or FIN (``fin-``)."""
    await up.upgrade(c, w)
    await up.write(w, text_frame(session_created(c.fault)))
    payload = json.dumps({"type": "response.output_text.delta", "delta": "x" * 200}).encode()
    whole = frame(OP_TEXT, payload)
    part = whole[:1] if arg == "header" else whole[: 4 + len(payload) // 3]
    await up.write(w, part)
    await asyncio.sleep(0.1)  # the gateway has read the partial frame: the cut is mid-frame
    if c.fault.startswith("fin-"):
        w.close()
        await up.wait_gone(c, r, 5.0)
    else:
        up.reset(w)


_INVALID_FRAMES: dict[str, Callable[[], bytes]] = {
    # opcode 3 is reserved (RFC 6455 5.2): the connection must fail
    "opcode": lambda: frame(0x3, b'{"type":"x"}'),
    # a server must not mask its frames (5.1)
    "masked": lambda: frame(OP_TEXT, b'{"type":"test.masked"}', mask=b"\x01\x02\x03\x04"),
    # text frames carry UTF-8 (8.1)
    "utf8": lambda: frame(OP_TEXT, b'{"type":"test.\xff\xfe"}'),
    # RSV1 without a negotiated extension (5.2)
    "rsv1": lambda: frame(OP_TEXT, b'{"type":"test.rsv"}', rsv=4),
    # control frames may not be fragmented (5.5)
    "fragmented-ping": lambda: frame(OP_PING, b"ping", fin=False),
    # 1006 is reserved and must never be sent in a close frame (7.4.1)
    "close-code": lambda: close_frame(1006, "reserved"),
    # a continuation with no message to continue (5.4)
    "continuation": lambda: frame(OP_CONTINUATION, b"orphan"),
}


async def _invalid(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """session.created, then a frame no WebSocket server may send (see :data:`_INVALID_FRAMES`)."""
    await up.upgrade(c, w)
    await up.write(w, text_frame(session_created(c.fault)))
    await up.write(w, _INVALID_FRAMES[arg]())
    await up.converse(c, r, w, release)


async def _stall(
    up: FaultUpstream, c: FaultConnection, r: Any, w: Any, arg: str, release: asyncio.Event
) -> None:
    """session.created, then never read again (the gateway's sends back up), until released; the
    socket is then closed with the gateway's data unread, which makes it a reset (RST)."""
    await up.upgrade(c, w)
    await up.write(w, text_frame(session_created(c.fault)))
    await up.hold(c, w, release)


_FAULTS: dict[str, Callable[..., Awaitable[None]]] = {
    "ok": _ok,
    "status": _status,
    "hang": _hang,
    "reset-before-answer": _reset_before_answer,
    "bad-accept": _bad_accept,
    "silent": _silent,
    "close": _close,
    "reset": _reset_mid,
    "fin": _reset_mid,
    "invalid": _invalid,
    "stall": _stall,
}

FAULTS = (
    "ok",
    "status-<http status>",
    "hang",
    "reset-before-answer",
    "bad-accept",
    "silent",
    "close-<code>",
    "close-empty",
    "reset-header",
    "reset-payload",
    "fin-header",
    "fin-payload",
    *(f"invalid-{name}" for name in _INVALID_FRAMES),
    "stall",
)
"""Every fault, by the model that selects it."""


def _handler_for(model: str) -> tuple[Callable[..., Awaitable[None]], str]:
    if model in _FAULTS:
        return _FAULTS[model], ""
    for name, handler in _FAULTS.items():
        if model.startswith(name + "-"):
            return handler, model[len(name) + 1 :]
    return _ok, ""
