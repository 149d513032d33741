"""Relaying through a real gateway process to the fake provider: what arrives, where, and in order."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from conftest import OPERATOR_KEY
from support.fake_upstream import FakeUpstream
from support.gateway_process import GatewayProcess

CLIENT_KEY = "sk-client-key-abcdef987654"


async def recv_json(socket: websockets.ClientConnection, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


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


async def test_default_model_is_sent_upstream(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    before = len(fake_upstream.connections)
    async with websockets.connect(gateway.url()) as socket:
        assert (await recv_json(socket))["type"] == "session.created"
    newest = fake_upstream.wait_for(lambda c: len(c) > before and c[-1])
    assert newest.query == {"model": "gpt-4o-realtime-preview"}


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


async def test_browser_subprotocols_are_answered_with_realtime(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    offer = ["realtime", f"openai-insecure-api-key.{CLIENT_KEY}", "openai-beta.realtime-v1"]
    async with websockets.connect(gateway.url(model="browser"), subprotocols=offer) as socket:
        assert socket.subprotocol == "realtime"
        await recv_json(socket)
    seen = fake_upstream.connection_for("browser")
    assert seen.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert seen.headers["openai-beta"] == "realtime=v1"


@pytest.mark.parametrize(
    ("model", "headers", "query"),
    [
        ("beta-header", {"OpenAI-Beta": "realtime=v1"}, {}),
        ("beta-query", {}, {"protocol": "beta"}),
    ],
)
async def test_beta_clients_get_the_beta_header_upstream(
    gateway: GatewayProcess, fake_upstream: FakeUpstream, model: str, headers: dict, query: dict
) -> None:
    async with websockets.connect(gateway.url(model=model, **query), additional_headers=headers) as socket:
        await recv_json(socket)
    assert fake_upstream.connection_for(model).headers["openai-beta"] == "realtime=v1"


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


async def test_text_turn_round_trip(gateway: GatewayProcess) -> None:
    async with websockets.connect(gateway.url(model="turn")) as socket:
        await recv_json(socket)
        await socket.send(json.dumps({"type": "response.create"}))
        events = [await recv_json(socket) for _ in range(5)]
    assert [event["type"] for event in events] == [
        "response.created",
        *["response.output_text.delta"] * 3,
        "response.done",
    ]
    assert "".join(event["delta"] for event in events[1:4]) == "Hello from upstream"


async def test_client_close_reaches_upstream(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    async with websockets.connect(gateway.url(model="client-close")) as socket:
        await recv_json(socket)
        await socket.close(code=1000, reason="bye")
    seen = fake_upstream.connection_for("client-close")
    await asyncio.to_thread(seen.closed.wait, 5)
    assert seen.close_code == 1000
