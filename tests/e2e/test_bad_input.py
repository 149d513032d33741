"""Bad client input: an error event in the OpenAI shape, nothing forwarded, the session goes on."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess

# Also run by `make test` against the oldest and newest dependency releases (tests/deps/check.py).
pytestmark = pytest.mark.deps

APPEND_OK = '{"type":"input_audio_buffer.append","audio":"AAAA"}'
BAD_FRAMES = [
    ("not json {", "invalid_json", None, None),
    ("[1, 2, 3]", "invalid_event", None, None),
    ('"just a string"', "invalid_event", None, None),
    ('{"event_id": "e1"}', "missing_required_parameter", "type", "e1"),
    ('{"type": "no.such.event", "event_id": "e2"}', "unknown_event_type", "type", "e2"),
    ('{"type": 7}', "unknown_event_type", "type", None),
    (
        '{"type": "input_audio_buffer.append", "event_id": "e3"}',
        "missing_required_parameter",
        "audio",
        "e3",
    ),
    (
        '{"type": "input_audio_buffer.append", "audio": "%%%not base64"}',
        "invalid_audio",
        "audio",
        None,
    ),
    ('{"type": "input_audio_buffer.append", "audio": 12}', "invalid_type", "audio", None),
    (
        '{"type": "conversation.item.create", "event_id": "e4"}',
        "missing_required_parameter",
        "item",
        "e4",
    ),
    ('{"type": "session.update"}', "missing_required_parameter", "session", None),
    (
        '{"type": "conversation.item.truncate", "item_id": "x"}',
        "missing_required_parameter",
        None,
        None,
    ),
]


@pytest.mark.parametrize(("frame", "code", "param", "event_id"), BAD_FRAMES)
async def test_bad_frame_gets_error_and_session_continues(
    gateway: GatewayProcess,
    fake_upstream: FakeUpstream,
    frame: str,
    code: str,
    param: str | None,
    event_id: str | None,
) -> None:
    model = f"bad-{BAD_FRAMES.index((frame, code, param, event_id))}"
    async with websockets.connect(gateway.url(model=model)) as socket:
        assert json.loads(await socket.recv())["type"] == "session.created"
        await socket.send(frame)
        error = json.loads(await asyncio.wait_for(socket.recv(), 5))
        await socket.send(APPEND_OK)
        received = await asyncio.to_thread(fake_upstream.frames_of, model, 1)
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == code
    if param is not None:
        assert error["error"]["param"] == param
    assert error["error"]["event_id"] == event_id
    assert received == [APPEND_OK]  # the bad frame never reached the provider; the good one did


async def test_binary_frame(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    async with websockets.connect(gateway.url(model="bad-binary")) as socket:
        await socket.recv()
        await socket.send(b"\x00\x01raw audio")
        error = json.loads(await asyncio.wait_for(socket.recv(), 5))
        await socket.send(APPEND_OK)
        received = await asyncio.to_thread(fake_upstream.frames_of, "bad-binary", 1)
    assert error["error"]["code"] == "binary_frame_unsupported"
    assert received == [APPEND_OK]


async def test_oversized_frame(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    """Over MAX_CLIENT_MESSAGE_BYTES (8 MiB by default): refused with an error, session goes on."""
    big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (9 * 1024 * 1024)})
    async with websockets.connect(gateway.url(model="bad-big"), max_size=None) as socket:
        await socket.recv()
        await socket.send(big)
        error = json.loads(await asyncio.wait_for(socket.recv(), 10))
        await socket.send(APPEND_OK)
        received = await asyncio.to_thread(fake_upstream.frames_of, "bad-big", 1)
    assert error["error"]["code"] == "message_too_large"
    assert received == [APPEND_OK]


async def test_session_created_comes_first_even_when_bad_input_came_before_it(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """A client that sends while the provider is still answering the handshake hears
    ``session.created`` first, as it would from the provider, then the errors, in order."""
    async with websockets.connect(gateway.url(model="slow-300")) as socket:
        await socket.send("not json {")
        await socket.send(APPEND_OK)
        await socket.send('{"type": "no.such.event", "event_id": "late"}')
        events = [json.loads(await asyncio.wait_for(socket.recv(), 5)) for _ in range(3)]
        received = await asyncio.to_thread(fake_upstream.frames_of, "slow-300", 1)
    assert [event["type"] for event in events] == ["session.created", "error", "error"]
    assert [event["error"]["code"] for event in events[1:]] == ["invalid_json", "unknown_event_type"]
    assert received == [APPEND_OK]
