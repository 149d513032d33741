"""Beta and GA clients and providers through the gateway: translated where they differ, not where not.

The fake provider is as strict as OpenAI's endpoints (tests/support/fake_upstream.py): its GA
endpoint refuses the beta header and every beta field, its beta endpoint every GA one. So a
translation that let a field of the wrong protocol through is answered with an ``error`` the tests
see, on top of what they assert about the frames the provider received. The first tests check that
strictness itself, without a gateway.
"""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from typing import Any

import pytest
import websockets
from openai.types import realtime as ga_types
from openai.types.beta import realtime as beta_types
from support.fake_upstream import FakeUpstream, UpstreamConnection
from support.gateway_process import GatewayProcess

BETA_HEADER = {"OpenAI-Beta": "realtime=v1"}
KEY_HEADER = {"Authorization": "Bearer sk-translation-test"}
EVENT_TIMEOUT_SECONDS = 5.0


def _event_types(union: Any) -> frozenset[str]:
    """Every ``type`` in one of the SDK's server event unions (``Annotated[Union[...], ...]``)."""
    classes = typing.get_args(typing.get_args(union)[0])
    return frozenset(name for cls in classes for name in typing.get_args(cls.model_fields["type"].annotation))


# The server event names each protocol has, as the openai SDK knows them.
BETA_EVENT_TYPES = _event_types(beta_types.RealtimeServerEvent)
GA_EVENT_TYPES = _event_types(ga_types.RealtimeServerEvent)
# Session and response fields of one protocol only (``voice`` is GA's too, under ``audio.output``).
BETA_ONLY_FIELDS = frozenset(
    {
        "modalities",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "turn_detection",
        "temperature",
        "max_response_output_tokens",
    }
)
GA_ONLY_FIELDS = frozenset({"type", "output_modalities", "audio", "truncation", "prompt", "include"})
# The fields that make a session GA-shaped. (A provider's session keeps, for the client, the fields
# the client's protocol lacks, such as GA ``truncation`` or beta ``temperature``: nothing is lost.)
GA_SHAPE_FIELDS = frozenset({"type", "output_modalities", "audio"})
BETA_SHAPE_FIELDS = BETA_ONLY_FIELDS - {"temperature"}

PCM16 = {"type": "audio/pcm", "rate": 24000}
TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
}
TRANSCRIPTION = {"model": "whisper-1"}
SILENCE_100MS = base64.b64encode(bytes(4800)).decode()  # PCM16 at 24 kHz
USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Bonjour ✓"}]}


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


# Scripts: (frame the client sends, event type the client then waits for; None: wait for nothing).
# A beta client as the original docs have it: every beta field, a text turn, then an audio turn.
BETA_SESSION = {
    "modalities": ["text", "audio"],
    "instructions": "Be brief.",
    "voice": "verse",
    "input_audio_format": "pcm16",
    "output_audio_format": "pcm16",
    "turn_detection": TURN_DETECTION,
    "input_audio_transcription": TRANSCRIPTION,
    "temperature": 0.7,
}
BETA_SCRIPT = [
    (event("session.update", session=BETA_SESSION), "session.updated"),
    (event("conversation.item.create", item=USER_TEXT), "conversation.item.created"),
    (event("response.create", response={"modalities": ["text"]}), "response.done"),
    # temperature again: the client was told once, it is not told twice
    (event("session.update", session={"instructions": "Be briefer.", "temperature": 0.6}), "session.updated"),
    (event("input_audio_buffer.append", audio=SILENCE_100MS), None),
    (event("input_audio_buffer.append", audio=SILENCE_100MS), None),
    (event("input_audio_buffer.commit"), "conversation.item.created"),
    (event("response.create"), "response.done"),
]
# The same conversation from a GA client, with one GA-only field (truncation).
GA_SESSION = {
    "type": "realtime",
    "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {"format": PCM16, "turn_detection": TURN_DETECTION, "transcription": TRANSCRIPTION},
        "output": {"format": PCM16, "voice": "verse"},
    },
    "truncation": "auto",
}
GA_SCRIPT = [
    (event("session.update", session=GA_SESSION), "session.updated"),
    (event("conversation.item.create", item=USER_TEXT), "conversation.item.done"),
    (event("response.create", response={"output_modalities": ["text"]}), "response.done"),
    (event("input_audio_buffer.append", audio=SILENCE_100MS), None),
    (event("input_audio_buffer.append", audio=SILENCE_100MS), None),
    (event("input_audio_buffer.commit"), "conversation.item.done"),
    (event("response.create"), "response.done"),
]


async def recv_until(socket: websockets.ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Every event up to and including the first of type ``kind``."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != kind:
        events.append(json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT_SECONDS)))
    return events


async def converse(url: str, script: list[tuple[str, str | None]], **connect: Any) -> list[dict[str, Any]]:
    """Connect, play ``script``; every event received, ``session.created`` first."""
    async with websockets.connect(url, **connect) as socket:
        events = await recv_until(socket, "session.created")
        for frame, wait_for in script:
            await socket.send(frame)
            if wait_for is not None:
                events += await recv_until(socket, wait_for)
    return events


def of_type(events: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] in kinds]


def part_types(response_done: dict[str, Any]) -> list[str]:
    return [part["type"] for item in response_done["response"]["output"] for part in item["content"]]


def field_notices(events: list[dict[str, Any]]) -> list[str | None]:
    """The ``param`` of each ``field_dropped`` notice; fails on any other error."""
    errors = of_type(events, "error")
    assert all(error["error"]["code"] == "field_dropped" for error in errors), errors
    return [error["error"]["param"] for error in errors]


def fields_of(frames: list[dict[str, Any]]) -> set[str]:
    """The top-level field names of every session and response the provider was sent."""
    names: set[str] = set()
    for frame in frames:
        for key in ("session", "response"):
            if isinstance(frame.get(key), dict):
                names |= frame[key].keys()
    return names


# -- the fake provider is as strict as OpenAI (no gateway) ---------------------------------------------


async def close_of(socket: websockets.ClientConnection) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT_SECONDS)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_fake_ga_endpoint_refuses_the_beta_header(fake_upstream: FakeUpstream) -> None:
    headers = {**KEY_HEADER, **BETA_HEADER}
    async with websockets.connect(f"{fake_upstream.url}?model=strict", additional_headers=headers) as socket:
        refused = json.loads(await socket.recv())
        close = await close_of(socket)
    assert refused["type"] == "error"
    assert refused["error"]["code"] == "beta_api_shape_disabled"
    assert refused["error"]["message"] == (
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
    )
    assert close == (4000, "invalid_request_error.beta_api_shape_disabled")


async def test_fake_beta_endpoint_requires_the_beta_header(fake_upstream: FakeUpstream) -> None:
    url = f"{fake_upstream.beta_url}?model=strict"
    async with websockets.connect(url, additional_headers=KEY_HEADER) as socket:
        refused = json.loads(await socket.recv())
        close = await close_of(socket)
    assert refused["error"]["code"] == "invalid_beta"
    assert close[0] == 4000


@pytest.mark.parametrize(
    ("endpoint", "headers", "wrong", "param", "right"),
    [
        pytest.param(
            "url",
            KEY_HEADER,
            {"type": "session.update", "event_id": "e1", "session": {"modalities": ["text"]}},
            "session.modalities",
            {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
            id="ga-refuses-beta-session",
        ),
        pytest.param(
            "url",
            KEY_HEADER,
            {"type": "session.update", "event_id": "e1", "session": {"instructions": "no type"}},
            "session.type",
            {"type": "session.update", "session": {"type": "realtime", "instructions": "typed"}},
            id="ga-requires-session-type",
        ),
        pytest.param(
            "url",
            KEY_HEADER,
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {"type": "realtime", "audio": {"input": {"format": "pcm16"}}},
            },
            "session.audio.input.format",
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"format": PCM16}}},
            },
            id="ga-refuses-beta-format",
        ),
        pytest.param(
            "url",
            KEY_HEADER,
            {"type": "session.update", "event_id": "e1", "session": {"type": "realtime", "voice": "verse"}},
            "session.voice",
            {"type": "response.create", "response": {"output_modalities": ["text"]}},
            id="ga-refuses-beta-field",
        ),
        pytest.param(
            "url",
            KEY_HEADER,
            {"type": "response.create", "event_id": "e1", "response": {"temperature": 0.7}},
            "response.temperature",
            {"type": "response.create", "response": {"output_modalities": ["text"]}},
            id="ga-refuses-beta-response",
        ),
        pytest.param(
            "beta_url",
            {**KEY_HEADER, **BETA_HEADER},
            {"type": "session.update", "event_id": "e1", "session": {"type": "realtime"}},
            "session.type",
            {"type": "session.update", "session": {"modalities": ["text"], "temperature": 0.7}},
            id="beta-refuses-ga-session",
        ),
    ],
)
async def test_fake_refuses_the_other_protocols_fields_and_goes_on(
    fake_upstream: FakeUpstream, endpoint: str, headers: dict, wrong: dict, param: str, right: dict
) -> None:
    url = f"{getattr(fake_upstream, endpoint)}?model=strict"
    async with websockets.connect(url, additional_headers=headers) as socket:
        await recv_until(socket, "session.created")
        await socket.send(json.dumps(wrong))
        (error,) = await recv_until(socket, "error")
        await socket.send(json.dumps(right))
        answer = json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT_SECONDS))
    assert error["error"]["param"] == param
    assert error["error"]["code"] in {"unknown_parameter", "missing_required_parameter", "invalid_type"}
    assert error["error"]["event_id"] == "e1"
    assert answer["type"] != "error"  # the session went on


# -- a beta client, a GA provider --------------------------------------------------------------------


def assert_beta_conversation(events: list[dict[str, Any]], model: str) -> None:
    """What a beta client that played BETA_SCRIPT must have seen: beta, and beta only."""
    assert {event["type"] for event in events} <= BETA_EVENT_TYPES
    assert field_notices(events) == ["session.temperature"]  # once, though it was sent twice
    created, updated, updated_again = of_type(events, "session.created", "session.updated")
    for session in (created["session"], updated["session"], updated_again["session"]):
        assert not session.keys() & GA_SHAPE_FIELDS, session
        assert session["model"] == model
    assert created["session"]["modalities"] == ["text", "audio"]
    assert created["session"]["input_audio_format"] == "pcm16"
    session = updated["session"]
    assert session["modalities"] == ["text", "audio"]
    assert session["voice"] == "verse"
    assert (session["input_audio_format"], session["output_audio_format"]) == ("pcm16", "pcm16")
    assert session["turn_detection"]["type"] == "server_vad"
    assert session["input_audio_transcription"]["model"] == "whisper-1"
    assert updated_again["session"]["instructions"] == "Be briefer."
    items = [event["item"] for event in of_type(events, "conversation.item.created")]
    assert [(item["role"], item["content"][0]["type"]) for item in items if item["role"] == "user"] == [
        ("user", "input_text"),
        ("user", "input_audio"),
    ]
    assert len([item for item in items if item["role"] == "assistant"]) == 2  # one per response
    text_turn, audio_turn = of_type(events, "response.done")
    assert part_types(text_turn) == ["text"]
    assert part_types(audio_turn) == ["audio"]
    assert "".join(event["delta"] for event in of_type(events, "response.text.delta")).strip()
    assert of_type(events, "response.audio.delta")
    assert "".join(event["delta"] for event in of_type(events, "response.audio_transcript.delta")).strip()


async def test_beta_client_of_the_original_docs_talks_to_a_ga_only_provider(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """A raw beta-speaking client using only the event names of the original docs, default model and
    all, holds a conversation through the gateway with a GA-only upstream."""
    mark = fake_upstream.mark()
    events = await converse(gateway.url(), BETA_SCRIPT, additional_headers=BETA_HEADER)
    assert_beta_conversation(events, model="gpt-realtime")

    seen = fake_upstream.connection_after(mark)
    assert (seen.path, seen.query, seen.personality) == ("/v1/realtime", {"model": "gpt-realtime"}, "ga")
    assert "openai-beta" not in seen.headers
    assert seen.errors == []  # the GA-only provider accepted every event
    received = await asyncio.to_thread(fake_upstream.frames_received, seen, len(BETA_SCRIPT))
    upstream = [json.loads(frame) for frame in received]
    assert [frame["type"] for frame in upstream] == [json.loads(frame)["type"] for frame, _ in BETA_SCRIPT]
    assert not fields_of(upstream) & BETA_ONLY_FIELDS
    first, second = of_type(upstream, "session.update")
    assert first["session"] == {
        "type": "realtime",
        "instructions": "Be brief.",
        "output_modalities": ["audio"],  # beta's ["text", "audio"]: GA audio carries its transcript
        "audio": {
            "input": {"format": PCM16, "turn_detection": TURN_DETECTION, "transcription": TRANSCRIPTION},
            "output": {"format": PCM16, "voice": "verse"},
        },
    }
    assert second["session"] == {"type": "realtime", "instructions": "Be briefer."}
    text_request, audio_request = of_type(upstream, "response.create")
    assert text_request["response"] == {"output_modalities": ["text"]}
    assert "response" not in audio_request


async def test_client_of_the_original_docs_with_no_marker_is_translated_as_beta(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """The gateway's first documentation: ``?provider=openai&apiKey=…``, no model (the default, a
    preview model) and no beta marker, then beta events. The gateway takes it for the beta client
    it is, and the conversation holds through the GA-only provider with the client's own key."""
    mark = fake_upstream.mark()
    events = await converse(gateway.url(provider="openai", apiKey="sk-original-docs-1"), BETA_SCRIPT)
    assert_beta_conversation(events, model="gpt-realtime")
    seen = fake_upstream.connection_after(mark)
    assert (seen.query, seen.personality) == ({"model": "gpt-realtime"}, "ga")
    assert seen.headers["authorization"] == "Bearer sk-original-docs-1"
    assert "openai-beta" not in seen.headers
    assert seen.errors == []


async def test_beta_client_of_the_original_docs_talks_to_the_simulator(gateway: GatewayProcess) -> None:
    """The same client against ``provider=simulator`` (a GA provider): text and audio turns, in beta."""
    url = gateway.url(provider="simulator")
    events = await converse(url, BETA_SCRIPT, additional_headers=BETA_HEADER)
    assert_beta_conversation(events, model="gpt-realtime")
    audio = b"".join(base64.b64decode(event["delta"]) for event in of_type(events, "response.audio.delta"))
    assert len(audio) % 2 == 0
    assert audio.strip(b"\x00")  # a voice, not silence


# -- a GA client, a beta provider --------------------------------------------------------------------


async def test_ga_client_talks_to_a_beta_provider(
    beta_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    events = await converse(beta_gateway.url(model="ga-client-beta-provider"), GA_SCRIPT)

    assert {event["type"] for event in events} <= GA_EVENT_TYPES
    assert not {event["type"] for event in events} & (BETA_EVENT_TYPES - GA_EVENT_TYPES)
    assert field_notices(events) == ["session.truncation"]
    created, updated = of_type(events, "session.created", "session.updated")
    for session in (created["session"], updated["session"]):
        assert session["type"] == "realtime"
        assert not session.keys() & BETA_SHAPE_FIELDS, session
        assert session["audio"]["input"]["format"] == PCM16
    assert updated["session"]["output_modalities"] == ["audio"]
    assert updated["session"]["audio"]["output"]["voice"] == "verse"
    assert updated["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert updated["session"]["audio"]["input"]["transcription"]["model"] == "whisper-1"
    text_turn, audio_turn = of_type(events, "response.done")
    assert part_types(text_turn) == ["output_text"]
    assert part_types(audio_turn) == ["output_audio"]
    assert "".join(event["delta"] for event in of_type(events, "response.output_text.delta")) == (
        "Hello from upstream"
    )
    assert of_type(events, "response.output_audio.delta")
    transcript = of_type(events, "response.output_audio_transcript.delta")
    assert "".join(event["delta"] for event in transcript) == "Hello from upstream"
    # Every item is added, then done; a response's item is done after its output item, before the
    # response (beta announced each once, with conversation.item.created).
    added = [event["item"]["id"] for event in of_type(events, "conversation.item.added")]
    done = [event["item"]["id"] for event in of_type(events, "conversation.item.done")]
    assert len(added) == 4
    assert sorted(added) == sorted(done)
    types = [event["type"] for event in events]
    for response_done in (text_turn, audio_turn):
        end = events.index(response_done)
        assert types[end - 2 : end] == ["response.output_item.done", "conversation.item.done"]

    seen = fake_upstream.connection_for("ga-client-beta-provider")
    assert (seen.path, seen.personality) == ("/beta/v1/realtime", "beta")
    assert seen.headers["openai-beta"] == "realtime=v1"
    assert seen.errors == []  # the beta provider accepted every event
    upstream = seen.received
    assert not fields_of(upstream) & GA_ONLY_FIELDS
    (session_update,) = of_type(upstream, "session.update")
    assert session_update["session"] == {
        "instructions": "Be brief.",
        "modalities": ["text", "audio"],
        "input_audio_format": "pcm16",
        "turn_detection": TURN_DETECTION,
        "input_audio_transcription": TRANSCRIPTION,
        "output_audio_format": "pcm16",
        "voice": "verse",
    }
    assert of_type(upstream, "response.create")[0]["response"] == {"modalities": ["text"]}


# -- same protocol: byte for byte, both ways -----------------------------------------------------------

GA_PASSTHROUGH = [
    '{"type":"session.update","event_id":"u1","session":{"type":"realtime","not_a_field":1}}',
    '{ "type" : "session.update", "session" : {"type":"realtime","output_modalities":["text"],'
    '"instructions":"Sé bref \\u2713", "tracing": null} }',
    '{"type":"input_audio_buffer.append","audio":"AAAA"}',
    '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
    '"content":[{"type":"input_text","text":"\\"quoted\\""}]}}',
    '{"type":"response.create","response":{"metadata":{"k":"v"}}}',
]
BETA_PASSTHROUGH = [
    '{"type":"session.update","event_id":"u1","session":{"temperature":0.6,"not_a_field":1}}',
    '{ "type" : "session.update", "session" : {"modalities":["text"],"temperature":0.6,'
    '"instructions":"Sé bref \\u2713", "input_audio_format": "pcm16"} }',
    '{"type":"input_audio_buffer.append","audio":"AAAA"}',
    '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
    '"content":[{"type":"input_text","text":"\\"quoted\\""}]}}',
    '{"type":"response.create","response":{"temperature":0.7}}',
]


@pytest.mark.parametrize(
    ("beta", "frames"),
    [
        pytest.param(False, GA_PASSTHROUGH, id="ga-to-ga"),
        pytest.param(True, BETA_PASSTHROUGH, id="beta-to-beta"),
    ],
)
async def test_same_protocol_is_relayed_byte_for_byte_both_ways(
    fake_upstream: FakeUpstream, request: pytest.FixtureRequest, runtime: str, beta: bool, frames: list[str]
) -> None:
    gateway: GatewayProcess = request.getfixturevalue("beta_gateway" if beta else "gateway")
    model = f"passthrough-{'beta' if beta else 'ga'}"
    headers = BETA_HEADER if beta else {}
    async with websockets.connect(gateway.url(model=model), additional_headers=headers) as socket:
        for frame in frames:
            await socket.send(frame)
        received: list[str] = []
        while not received or json.loads(received[-1])["type"] != "response.done":
            received.append(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT_SECONDS))
    seen: UpstreamConnection = fake_upstream.connection_for(model)
    assert seen.frames == frames  # the provider got the very bytes the client sent
    assert received == seen.sent  # and the client the very bytes the provider sent
    (refusal,) = seen.errors  # the unknown field, refused by the provider itself, not the gateway
    assert (refusal["error"]["code"], refusal["error"]["param"]) == (
        "unknown_parameter",
        "session.not_a_field",
    )
    assert refusal["error"]["event_id"] == "u1"


# -- the model really used -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "used", "query", "headers"),
    [
        pytest.param("gpt-4o-realtime-preview", "gpt-realtime", {"protocol": "ga"}, {}, id="ga"),
        pytest.param("gpt-4o-realtime-preview", "gpt-realtime", {}, {}, id="no-marker"),
        pytest.param("gpt-4o-realtime-preview-2024-12-17", "gpt-realtime", {}, BETA_HEADER, id="beta-client"),
        pytest.param("gpt-4o-mini-realtime-preview", "gpt-realtime-mini", {}, {}, id="mini"),
        pytest.param(
            "gpt-4o-realtime-preview", "gpt-realtime", {"provider": "simulator"}, BETA_HEADER, id="simulator"
        ),
    ],
)
async def test_session_created_names_the_model_really_used(
    gateway: GatewayProcess, fake_upstream: FakeUpstream, asked: str, used: str, query: dict, headers: dict
) -> None:
    mark = fake_upstream.mark()
    async with websockets.connect(gateway.url(model=asked, **query), additional_headers=headers) as socket:
        (created,) = await recv_until(socket, "session.created")
    assert created["session"]["model"] == used
    if query.get("provider") != "simulator":
        assert fake_upstream.connection_after(mark).query == {"model": used}
