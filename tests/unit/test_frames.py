"""The standalone relay's own framing (standalone/frames.py) against python-websockets' reference.

The relay reads whole text frames itself and hands websockets every other frame, whole: whatever
way the bytes are cut into reads, the messages, pongs and close codes must be the ones websockets
alone would give.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.recording_transport import RecordingTransport
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.server import ServerProtocol

from shared.providers import UpstreamRequest
from standalone.frames import MaskKeys, frame_size, text_frame
from standalone.upstream_socket import UpstreamSocket
from standalone.websocket import PeerSocket


class Recorder:
    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.closes: list[int | None] = []
        self.opened = False

    def on_message(self, socket: PeerSocket, data: str | bytes) -> None:
        self.messages.append(data)

    def on_close_frame(self, socket: PeerSocket, code: int | None, reason: str) -> None:
        self.closes.append(code)

    def on_lost(self, socket: PeerSocket, unresponsive: bool) -> None: ...

    def on_upstream_open(self, upstream: UpstreamSocket) -> None:
        self.opened = True

    def on_upstream_refused(self, *args: Any) -> None:
        raise AssertionError("refused")


def server_socket(max_size: int | None = None) -> tuple[PeerSocket, Recorder, RecordingTransport]:
    """The gateway's end of a client connection (it reads masked frames)."""
    recorder, transport = Recorder(), RecordingTransport()
    socket = PeerSocket(recorder, side=Side.SERVER, max_size=max_size, ping_interval=0, ping_timeout=0)
    socket.start(transport, 1 << 20)
    return socket, recorder, transport


def client_frames(frames: list[Frame]) -> bytes:
    """``frames`` as a client sends them (masked), serialised by websockets."""
    client = Protocol(Side.CLIENT)
    for frame in frames:
        client.send_frame(frame)
    return b"".join(client.data_to_send())


def server_frames(data: bytes) -> list[Frame]:
    """What websockets reads in frames a server sent."""
    reader = Protocol(Side.CLIENT)
    reader.receive_data(data)
    return [event for event in reader.events_received() if isinstance(event, Frame)]


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("mask", [True, False])
def test_text_frame_is_read_by_websockets(size: int, mask: bool) -> None:
    payload = bytes(ord("a") + i % 26 for i in range(size))
    reader = Protocol(Side.SERVER if mask else Side.CLIENT, max_size=None)
    reader.receive_data(text_frame(payload, mask=mask))
    [frame] = reader.events_received()
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)


def test_text_frame_masks_each_frame_with_a_new_key() -> None:
    keys = {text_frame(b"same", mask=True)[2:6] for _ in range(100)}
    assert len(keys) == 100


def test_mask_keys_come_a_page_at_a_time_and_all_differ() -> None:
    keys = MaskKeys()
    drawn = [keys.next() for _ in range(3 * MaskKeys.PAGE_BYTES // 4)]
    assert all(len(key) == 4 for key in drawn)
    assert len(set(drawn)) > len(drawn) - 5  # 3,072 draws of 32 bits: a repeat is unlikely


def test_frame_size_reads_each_length_encoding() -> None:
    assert frame_size(b"\x81", 0) is None
    assert frame_size(b"\x81\x05hello", 0) == (2, 5)
    assert frame_size(b"\x81\x85", 0) == (6, 5)
    assert frame_size(b"\x81\x7e\x01", 0) is None
    assert frame_size(b"\x81\x7e\x01\x00", 0) == (4, 256)
    assert frame_size(b"xx\x81\xff" + (1 << 40).to_bytes(8, "big"), 2) == (14, 1 << 40)


messages = st.lists(
    st.one_of(
        st.text(max_size=300).map(lambda t: [Frame(Opcode.TEXT, t.encode())]),
        st.binary(max_size=40).map(lambda b: [Frame(Opcode.BINARY, b)]),
        st.binary(max_size=20).map(lambda b: [Frame(Opcode.PING, b)]),
        st.lists(st.text(min_size=1, max_size=50), min_size=2, max_size=4).map(
            lambda parts: [
                Frame(Opcode.TEXT if i == 0 else Opcode.CONT, p.encode(), fin=i == len(parts) - 1)
                for i, p in enumerate(parts)
            ]
        ),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=messages, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
async def test_any_cut_of_the_stream_gives_websockets_messages_and_pongs(
    messages: list[list[Frame]], cuts: list[int]
) -> None:
    frames = [frame for message in messages for frame in message]
    stream = client_frames(frames)
    expected: list[str | bytes] = []
    for message in messages:
        first = message[0]
        if first.opcode is Opcode.PING:
            continue
        data = b"".join(frame.data for frame in message)
        expected.append(data.decode() if first.opcode is Opcode.TEXT else data)

    socket, recorder, transport = server_socket()
    for chunk in cut(stream, cuts):
        socket.feed(chunk)
    assert recorder.messages == expected
    pongs = [f.data for f in server_frames(bytes(transport.written)) if f.opcode is Opcode.PONG]
    assert pongs == [f.data for f in frames if f.opcode is Opcode.PING]


async def test_a_large_frame_read_in_small_pieces_arrives_whole_once() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(100_000))
    stream = client_frames([Frame(Opcode.TEXT, text.encode()), Frame(Opcode.TEXT, b"next")])
    socket, recorder, _ = server_socket(max_size=1 << 20)
    for start in range(0, len(stream), 1000):
        socket.feed(stream[start : start + 1000])
    assert recorder.messages == [text, "next"]


async def test_an_unmasked_client_frame_fails_the_connection() -> None:
    socket, recorder, transport = server_socket()
    socket.feed(b"\x81\x02hi" + client_frames([Frame(Opcode.TEXT, b"after")]))
    assert recorder.messages == []
    [close] = server_frames(bytes(transport.written))
    assert close.opcode is Opcode.CLOSE
    assert close.data[:2] == (1002).to_bytes(2, "big")


async def test_a_whole_text_frame_inside_a_fragmented_message_fails_the_connection() -> None:
    socket, recorder, transport = server_socket()
    socket.feed(client_frames([Frame(Opcode.TEXT, b"start", fin=False), Frame(Opcode.TEXT, b"whole")]))
    assert recorder.messages == []
    [close] = server_frames(bytes(transport.written))
    assert close.data[:2] == (1002).to_bytes(2, "big")


async def test_a_frame_over_the_limit_is_refused_before_it_is_all_read() -> None:
    socket, recorder, transport = server_socket(max_size=1000)
    stream = client_frames([Frame(Opcode.TEXT, b"x" * 5000)])
    socket.feed(stream[:100])  # the header says 5000: no need to wait for the rest
    [close] = server_frames(bytes(transport.written))
    assert close.data[:2] == (1009).to_bytes(2, "big")
    socket.feed(stream[100:])
    assert recorder.messages == []
    assert socket._partial == b""


async def test_a_non_minimal_length_is_read_as_websockets_reads_it() -> None:
    payload = b"hello"
    frame = b"\x81\xfe" + len(payload).to_bytes(2, "big") + b"\x00\x00\x00\x00" + payload
    socket, recorder, _ = server_socket()
    for byte in range(len(frame)):
        socket.feed(frame[byte : byte + 1])
    socket.feed(client_frames([Frame(Opcode.TEXT, b"next")]))
    assert recorder.messages == ["hello", "next"]


async def test_invalid_utf8_in_a_whole_text_frame_closes_with_1007() -> None:
    socket, recorder, transport = server_socket()
    socket.feed(client_frames([Frame(Opcode.TEXT, b"\xff\xfe"), Frame(Opcode.TEXT, b"later")]))
    assert recorder.messages == []
    [close] = server_frames(bytes(transport.written))
    assert close.data[:2] == (1007).to_bytes(2, "big")


def provider_answer(request: bytes, frames: list[bytes]) -> bytes:
    """A provider's 101 to the gateway's handshake ``request``, and frames right behind it."""
    server = ServerProtocol()
    server.receive_data(request)
    [handshake] = server.events_received()
    server.send_response(server.accept(handshake))
    for frame in frames:
        server.send_text(frame)
    return b"".join(server.data_to_send())


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
async def test_the_provider_s_first_frames_are_read_whatever_the_cut_after_its_answer(step: int) -> None:
    recorder, transport = Recorder(), RecordingTransport()
    upstream = UpstreamSocket(
        UpstreamRequest("ws://provider.test/v1/realtime", {}),
        recorder,  # type: ignore[arg-type]
        max_size=1 << 20,
        max_buffered_bytes=1 << 20,
        ping_interval=0,
        ping_timeout=0,
    )
    upstream.connection_made(transport)
    events = [b'{"type":"session.created"}', b'{"type":"x","n":"' + b"y" * 300 + b'"}']
    answer = provider_answer(bytes(transport.written), events)
    for start in range(0, len(answer), step):
        upstream.data_received(answer[start : start + step])
    assert recorder.opened
    assert recorder.messages == [event.decode() for event in events]
    await asyncio.sleep(0)
