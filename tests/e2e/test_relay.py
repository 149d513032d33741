"""Relaying through a real gateway process to the fake provider: what arrives, where, and in order."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from conftest import AZURE_PREVIEW_API_VERSION, OPERATOR_KEY
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess
from websockets.protocol import Protocol, Side

CLIENT_KEY = "sk-client-key-abcdef987654"


async def recv_json(socket: websockets.ClientConnection, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


def assert_beta_session(event: dict) -> None:
    """A ``session.created`` in the beta shape (the fake's GA session, translated)."""
    assert event["type"] == "session.created"
    session = event["session"]
    assert "type" not in session
    assert "audio" not in session
    assert session["modalities"] == ["text", "audio"]
    assert session["input_audio_format"] == "pcm16"
    assert session["voice"] == "alloy"


@pytest.mark.deps
async def test_session_created_is_relayed_and_upstream_gets_the_operator_key(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    async with websockets.connect(gateway.url(model="gpt-realtime")) as socket:
        created = await recv_json(socket)
        assert created["type"] == "session.created"
        assert created["session"]["model"] == "gpt-realtime"
    seen = fake_upstream.connection_for("gpt-realtime")
    assert seen.path == "/v1/realtime"
    assert seen.headers["authorization"] == f"Bearer {OPERATOR_KEY}"
    assert "openai-beta" not in seen.headers


async def test_default_model_is_sent_upstream_as_its_ga_successor(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    # DEFAULT_MODEL is the retired gpt-4o-realtime-preview; MODEL_ALIASES maps it to gpt-realtime.
    mark = fake_upstream.mark()
    async with websockets.connect(gateway.url()) as socket:
        created = await recv_json(socket)
    assert created["type"] == "session.created"
    assert created["session"]["model"] == "gpt-realtime"  # the client is told the model really used
    assert fake_upstream.connection_after(mark).query == {"model": "gpt-realtime"}


@pytest.mark.parametrize(
    ("how", "model"),
    [
        ("authorization", "key-auth"),
        ("api-key", "key-apikey"),
        ("query", "key-query"),
        ("query_camel", "key-camel"),
    ],
)
async def test_client_key_forms_reach_upstream_as_bearer(
    gateway: GatewayProcess, fake_upstream: FakeUpstream, how: str, model: str
) -> None:
    headers: dict[str, str] = {}
    query = {"model": model}
    if how == "authorization":
        headers["Authorization"] = f"Bearer {CLIENT_KEY}"
    elif how == "api-key":
        headers["api-key"] = CLIENT_KEY
    elif how == "query":
        query["api_key"] = CLIENT_KEY
    else:
        query["apiKey"] = CLIENT_KEY
    async with websockets.connect(gateway.url(**query), additional_headers=headers) as socket:
        await recv_json(socket)
    seen = fake_upstream.connection_for(model)
    assert seen.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert CLIENT_KEY not in json.dumps(seen.query)


BROWSER_OFFER = ["realtime", f"openai-insecure-api-key.{CLIENT_KEY}", "openai-beta.realtime-v1"]


@pytest.mark.deps
async def test_browser_subprotocols_are_answered_with_realtime(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """A browser's beta offer to a GA provider: its key goes upstream, its protocol is translated."""
    async with websockets.connect(gateway.url(model="browser"), subprotocols=BROWSER_OFFER) as socket:
        assert socket.subprotocol == "realtime"
        created = await recv_json(socket)
    seen = fake_upstream.connection_for("browser")
    assert seen.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert "openai-beta" not in seen.headers  # the GA endpoint would refuse it
    assert seen.errors == []
    assert_beta_session(created)  # the GA session.created, in the beta shape the browser asked for


async def test_browser_beta_subprotocol_to_a_beta_provider(
    beta_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    async with websockets.connect(
        beta_gateway.url(model="browser-beta"), subprotocols=BROWSER_OFFER
    ) as socket:
        assert socket.subprotocol == "realtime"
        created = await socket.recv()
    seen = fake_upstream.connection_for("browser-beta")
    assert seen.path == "/beta/v1/realtime"
    assert seen.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert seen.headers["openai-beta"] == "realtime=v1"
    assert created == seen.sent[0]  # same protocol: relayed byte for byte


BETA_ASKS = [
    pytest.param({"OpenAI-Beta": "realtime=v1"}, {}, id="header"),
    pytest.param({}, {"protocol": "beta"}, id="query"),
]


@pytest.mark.parametrize(("headers", "query"), BETA_ASKS)
async def test_beta_clients_send_no_beta_header_to_a_ga_provider(
    gateway: GatewayProcess, fake_upstream: FakeUpstream, headers: dict, query: dict
) -> None:
    model = f"beta-client-{next(iter(headers or query))}"
    async with websockets.connect(gateway.url(model=model, **query), additional_headers=headers) as socket:
        created = await recv_json(socket)
    seen = fake_upstream.connection_for(model)
    assert "openai-beta" not in seen.headers
    assert seen.errors == []
    assert_beta_session(created)


@pytest.mark.parametrize(("headers", "query"), BETA_ASKS)
async def test_beta_clients_send_the_beta_header_to_a_beta_provider(
    beta_gateway: GatewayProcess, fake_upstream: FakeUpstream, headers: dict, query: dict
) -> None:
    model = f"beta-to-beta-{next(iter(headers or query))}"
    connect = websockets.connect(beta_gateway.url(model=model, **query), additional_headers=headers)
    async with connect as socket:
        created = await socket.recv()
    seen = fake_upstream.connection_for(model)
    assert seen.headers["openai-beta"] == "realtime=v1"
    assert created == seen.sent[0]


async def test_ga_clients_send_the_beta_header_to_a_beta_provider(
    beta_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    async with websockets.connect(beta_gateway.url(model="ga-to-beta")) as socket:
        created = await recv_json(socket)
    seen = fake_upstream.connection_for("ga-to-beta")
    assert seen.headers["openai-beta"] == "realtime=v1"
    assert seen.errors == []
    assert created["session"]["type"] == "realtime"  # the beta session.created, in the GA shape
    assert created["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert "modalities" not in created["session"]


async def test_azure_is_reached_on_its_path_with_api_key(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    url = gateway.url(provider="azure", deployment="my-deployment")
    async with websockets.connect(url, additional_headers={"api-key": CLIENT_KEY}) as socket:
        await recv_json(socket)
    seen = fake_upstream.connection_for("my-deployment")
    assert seen.path == "/openai/v1/realtime"
    assert seen.headers["api-key"] == CLIENT_KEY
    assert "authorization" not in seen.headers


async def test_azure_deployment_names_are_not_aliased(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    url = gateway.url(provider="azure", deployment="gpt-4o-realtime-preview")
    async with websockets.connect(url, additional_headers={"api-key": CLIENT_KEY}) as socket:
        await recv_json(socket)
    seen = fake_upstream.connection_after(mark)
    assert seen.path == "/openai/v1/realtime"
    assert seen.query == {"model": "gpt-4o-realtime-preview"}  # the operator's own name


async def test_azure_preview_path_speaks_beta(
    beta_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    url = beta_gateway.url(provider="azure", deployment="my-preview-deployment")
    async with websockets.connect(url, additional_headers={"api-key": CLIENT_KEY}) as socket:
        created = await recv_json(socket)
    seen = fake_upstream.connection_for("my-preview-deployment")
    assert seen.path == "/openai/realtime"
    assert seen.query == {"api-version": AZURE_PREVIEW_API_VERSION, "deployment": "my-preview-deployment"}
    assert seen.headers["api-key"] == CLIENT_KEY
    assert seen.headers["openai-beta"] == "realtime=v1"
    assert seen.errors == []
    assert created["session"]["type"] == "realtime"  # a GA client: the beta session, translated


@pytest.mark.deps
async def test_frames_reach_upstream_byte_for_byte(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    frames = [
        '{"type":"session.update","session":{"type":"realtime","instructions":"Sé breve ✓"}}',
        '{ "event_id" : "evt_1",\n  "type": "input_audio_buffer.append", "audio": "AAAA" }',
        '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
        '"content":[{"type":"input_text","text":"\\u00e9 \\"quoted\\""}]},"extra_field":[1,2.50,null]}',
        '{"type":"input_audio_buffer.commit"}',
    ]
    async with websockets.connect(gateway.url(model="bytes")) as socket:
        await recv_json(socket)
        for frame in frames:
            await socket.send(frame)
        received = await asyncio.to_thread(fake_upstream.frames_of, "bytes", len(frames))
    assert received == frames


@pytest.mark.deps
async def test_a_fragmented_client_message_reaches_upstream_whole(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """RFC 6455 lets a client split a message into frames; the provider gets the one message."""
    message = json.dumps({"type": "input_audio_buffer.append", "event_id": "frag", "audio": "QUJD" * 3000})
    parts = [message[:5000], message[5000:9000], message[9000:]]
    async with websockets.connect(gateway.url(model="fragments")) as socket:
        await recv_json(socket)
        await socket.send(iter(parts))  # websockets sends an iterable as one fragmented message
        await socket.send('{"type":"input_audio_buffer.commit"}')
        received = await asyncio.to_thread(fake_upstream.frames_of, "fragments", 2)
    assert received == [message, '{"type":"input_audio_buffer.commit"}']


async def until_closed(socket: websockets.ClientConnection) -> websockets.ConnectionClosed:
    """Read (and drop) events until the gateway closes the socket; how it closed."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), 5)
    except websockets.ConnectionClosed as closed:
        return closed


@pytest.mark.deps
async def test_invalid_utf8_from_the_client_closes_1007_and_reaches_no_one(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    async with websockets.connect(gateway.url(model="bad-utf8")) as socket:
        await recv_json(socket)
        await socket.send('{"type":"input_audio_buffer.commit"}')
        # A text frame that is not UTF-8 and a valid one behind it, in one write (so one read):
        # the gateway fails the connection at the first and must not relay the second.
        frames = Protocol(Side.CLIENT)
        frames.send_text(b'{"type":"\xff"}')
        frames.send_text(b'{"type":"input_audio_buffer.commit","event_id":"after"}')
        socket.transport.write(b"".join(frames.data_to_send()))
        closed = await until_closed(socket)  # the provider may answer the first commit meanwhile
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1007
    upstream = fake_upstream.connection_for("bad-utf8")
    await asyncio.to_thread(upstream.closed.wait, 5)
    assert upstream.frames == ['{"type":"input_audio_buffer.commit"}']


async def test_client_burst_keeps_order(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    count = 500
    async with websockets.connect(gateway.url(model="client-burst")) as socket:
        await recv_json(socket)
        for number in range(count):
            await socket.send(
                json.dumps({"type": "input_audio_buffer.append", "event_id": f"e{number}", "audio": "AAAA"})
            )
        received = await asyncio.to_thread(fake_upstream.frames_of, "client-burst", count)
    assert [json.loads(frame)["event_id"] for frame in received] == [f"e{n}" for n in range(count)]


@pytest.mark.deps
async def test_upstream_burst_keeps_order(gateway: GatewayProcess) -> None:
    count = 2000
    async with websockets.connect(gateway.url(model=f"burst-{count}")) as socket:
        assert (await recv_json(socket))["type"] == "session.created"
        numbers = [(await recv_json(socket))["seq"] for _ in range(count)]
    assert numbers == list(range(count))


async def test_events_sent_before_upstream_opens_are_held_then_delivered(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    sent = [
        json.dumps({"type": "input_audio_buffer.append", "event_id": f"early{n}", "audio": "AAAA"})
        for n in range(20)
    ]
    async with websockets.connect(gateway.url(model="slow-400")) as socket:
        for frame in sent:
            await socket.send(frame)
        assert (await recv_json(socket))["type"] == "session.created"
        received = await asyncio.to_thread(fake_upstream.frames_of, "slow-400", len(sent))
    assert received == sent


async def test_text_turn_round_trip(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    async with websockets.connect(gateway.url(model="turn")) as socket:
        await recv_json(socket)
        await socket.send(
            json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}})
        )
        events = [await recv_json(socket)]
        while events[-1]["type"] != "response.done":
            events.append(await recv_json(socket))
    assert [event["type"] for event in events] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "Hello from upstream"
    assert fake_upstream.connection_for("turn").errors == []


@pytest.mark.deps
async def test_client_close_reaches_upstream(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    async with websockets.connect(gateway.url(model="client-close")) as socket:
        await recv_json(socket)
        await socket.close(code=1000, reason="bye")
    seen = fake_upstream.connection_for("client-close")
    await asyncio.to_thread(seen.closed.wait, 5)
    assert seen.close_code == 1000
