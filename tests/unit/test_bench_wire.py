"""The benchmark's lean WebSocket layer (bench/wire.py) against python-websockets' reference.

The audio frames the load generator builds by patching bytes must be the RFC 6455 frames and the
payloads websockets itself would make, and the receiver must read them, and their relayed copies,
whatever way the bytes are cut into reads; anything else goes through websockets' protocol.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.recording_transport import RecordingTransport
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from bench.common import APPEND_HEAD, APPEND_TAIL, DELTA_HEAD, DELTA_TAIL, stamp_of
from bench.wire import APPEND_FRAME, DELTA_FRAME, ServerConnection

SEQ, SENT_NS = 42, 1_234_567_890_123


def _open_pair() -> tuple[ClientProtocol, ServerProtocol]:
    """A client and a server protocol past the handshake."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/v1/realtime"), max_size=None)
    server = ServerProtocol(max_size=None)
    client.send_request(client.connect())
    for data in client.data_to_send():
        server.receive_data(data)
    server.send_response(server.accept(server.events_received()[0]))
    for data in server.data_to_send():
        client.receive_data(data)
    client.events_received()  # the 101
    assert client.state is State.OPEN
    assert server.state is State.OPEN
    return client, server


def _parsed(receiver: Protocol, frame: bytes) -> Frame:
    receiver.receive_data(frame)
    [event] = receiver.events_received()
    assert isinstance(event, Frame)
    return event


def _payload(head: str, tail: str) -> str:
    return f"{head}{SEQ:08d}_{SENT_NS:019d}{tail}"


def test_an_append_is_the_masked_text_frame_websockets_reads() -> None:
    _, server = _open_pair()
    frame = _parsed(server, APPEND_FRAME.build(SEQ, SENT_NS))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    text = frame.data.decode()
    assert text == _payload(APPEND_HEAD, APPEND_TAIL)
    event = json.loads(text)
    assert event["type"] == "input_audio_buffer.append"
    assert stamp_of(event["event_id"]) == (SEQ, SENT_NS)


def test_a_delta_is_the_unmasked_text_frame_websockets_reads() -> None:
    client, _ = _open_pair()
    frame = _parsed(client, DELTA_FRAME.build(SEQ, SENT_NS))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data.decode() == _payload(DELTA_HEAD, DELTA_TAIL)


def test_a_relayed_append_is_read_whatever_its_mask_key() -> None:
    client, _ = _open_pair()  # websockets masks each frame with a random key, as the gateway does
    client.send_text(_payload(APPEND_HEAD, APPEND_TAIL).encode())
    [relayed] = client.data_to_send()
    assert APPEND_FRAME.read(relayed) == (SEQ, SENT_NS)
    assert APPEND_FRAME.read(APPEND_FRAME.build(SEQ, SENT_NS)) == (SEQ, SENT_NS)
    assert DELTA_FRAME.read(DELTA_FRAME.build(SEQ, SENT_NS)) == (SEQ, SENT_NS)


def _one_byte_changed(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(json.loads(_payload(APPEND_HEAD, APPEND_TAIL))),  # re-serialised: other spacing
        _one_byte_changed(_payload(APPEND_HEAD, APPEND_TAIL)),
    ],
)
def test_an_append_with_other_bytes_is_not_hot(payload: str) -> None:
    client, _ = _open_pair()
    client.send_text(payload.encode())
    [frame] = client.data_to_send()
    assert APPEND_FRAME.read(frame) is None


def test_a_delta_with_other_bytes_is_not_hot() -> None:
    _, server = _open_pair()
    server.send_text(_one_byte_changed(_payload(DELTA_HEAD, DELTA_TAIL)).encode())
    [frame] = server.data_to_send()
    assert DELTA_FRAME.read(frame) is None


class _Server(ServerConnection):
    def __init__(self) -> None:
        super().__init__(receives=APPEND_FRAME)
        self.events: list[Any] = []

    def on_open(self) -> None:
        self.events.append("open")

    def on_hot(self, seq: int, sent_ns: int, received_ns: int) -> None:
        self.events.append((seq, sent_ns))

    def on_message(self, data: str | bytes, received_ns: int) -> None:
        self.events.append(data)


@pytest.mark.parametrize("read_size", [1, 7, 100, 1 << 20])
async def test_the_server_reads_every_frame_whatever_the_reads(read_size: int) -> None:
    client = ClientProtocol(parse_uri("ws://127.0.0.1/v1/realtime"))
    client.send_request(client.connect())
    stream = b"".join(client.data_to_send())
    stream += APPEND_FRAME.build(0, SENT_NS)
    stream += Frame(Opcode.TEXT, b'{"type":"response.', fin=False).serialize(mask=True)
    stream += Frame(Opcode.CONT, b'create"}').serialize(mask=True)
    stream += Frame(Opcode.PING, b"p").serialize(mask=True)
    stream += APPEND_FRAME.build(1, SENT_NS)
    server, transport = _Server(), RecordingTransport()
    server.connection_made(transport)
    for start in range(0, len(stream), read_size):
        server.data_received(stream[start : start + read_size])
    assert server.events == ["open", (0, SENT_NS), '{"type":"response.create"}', (1, SENT_NS)]
    client.receive_data(bytes(transport.written))
    [response, pong] = client.events_received()
    assert getattr(response, "status_code", None) == 101
    assert pong.opcode is Opcode.PONG
    assert pong.data == b"p"


async def test_the_server_answers_healthz_and_closes() -> None:
    server, transport = _Server(), RecordingTransport()
    server.connection_made(transport)
    server.data_received(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.closed
    assert server.events == []
