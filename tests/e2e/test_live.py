"""GPT-Live through the gateway, with the official SDK's own methods, on both runtimes.

``client.live.connect()``, ``client.live.sideband.connect(session_id=...)`` and
``client.live.forks.connect(session_id=...)``, pointed at the gateway by ``websocket_base_url``,
against the fake provider (:mod:`support.fake_live`: as strict as the SDK's types, it refuses any
field they do not declare, and commands out of order) and against ``provider=simulator``. The SDK
parses every event it gets into its own types; a test fails if the provider sent an ``error``.

Bad input is answered by the gateway in GPT-Live's error shape (``client_event_id``), and the
provider sees none of it; every provider failure reaches the client in that shape, with the close
code the README gives.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets
from clients.harness import speech_pcm16
from conftest import OPERATOR_KEY
from openai import AsyncOpenAI
from openai.types.live import ErrorEvent
from support.fake_live import HEARD
from support.fake_upstream import REPLY_TEXT, FakeUpstream, UpstreamConnection
from support.gateway_process import GatewayProcess

CLIENT_KEY = "sk-live-client-key-97531"
MODEL = "gpt-live-1"
EVENT_TIMEOUT = 10.0
AUDIO_CHUNK_BYTES = 4800  # 100 ms of PCM16 at 24 kHz


def sdk(gateway: GatewayProcess, key: str = CLIENT_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, websocket_base_url=f"{gateway.base}/v1", max_retries=0)


def speech_chunks() -> list[str]:
    pcm = speech_pcm16()
    return [
        base64.b64encode(pcm[i : i + AUDIO_CHUNK_BYTES]).decode()
        for i in range(0, len(pcm), AUDIO_CHUNK_BYTES)
    ]


async def events_until(connection: Any, last: str, timeout: float = EVENT_TIMEOUT) -> list[Any]:
    """The SDK's events up to and including the first of type ``last``."""
    events = []
    async with asyncio.timeout(timeout):
        while True:
            event = await connection.recv()
            events.append(event)
            if event.type == last:
                return events


async def until_closed(connection: Any, timeout: float = EVENT_TIMEOUT) -> tuple[list[Any], int | None]:
    """Every event until the gateway closes the socket, and the close code."""
    events = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                events.append(await connection.recv())
        except websockets.ConnectionClosed as closed:
            return events, closed.rcvd.code if closed.rcvd else None


def assert_live_error(event: Any, code: str, client_event_id: str | None = None) -> None:
    """A GPT-Live ``error`` event, as the SDK parsed it, with the client's id where it sent one."""
    assert isinstance(event, ErrorEvent), event
    assert event.error.code == code, event
    assert event.error.message
    assert event.error.type in {"invalid_request_error", "server_error"}
    assert event.event_id.startswith("event_")
    assert event.error.client_event_id == client_event_id
    assert event.client_event_id == client_event_id


def no_provider_errors(*connections: UpstreamConnection) -> None:
    for connection in connections:
        assert connection.errors == [], connection.errors


async def spoken_turn(connection: Any) -> list[Any]:
    """Speech appended in 100 ms chunks, as a microphone streams it; the events until the usage."""
    for chunk in speech_chunks():
        await connection.session.input_audio.append(audio=chunk)
    return await events_until(connection, "session.usage.updated")


def transcript(events: list[Any], kind: str) -> str:
    return "".join(event.delta for event in events if event.type == kind)


# -- a Live session --------------------------------------------------------------------------------


async def test_a_spoken_turn_against_the_provider(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    async with sdk(gateway).live.connect() as connection:
        await connection.session.start(session={"model": MODEL, "instructions": "Sois bref ✓"}, event_id="go")
        (started,) = await events_until(connection, "session.started")
        assert started.client_event_id == "go"
        assert started.session.model == MODEL
        assert started.session.status == "active"
        events = await spoken_turn(connection)
        await connection.session.close(event_id="bye")
        closed = await events_until(connection, "session.closed")
        _, code = await until_closed(connection)
    upstream = fake_upstream.connection_after(mark)
    upstream.closed.wait(5)
    assert transcript(events, "session.input_transcript.delta") == HEARD
    assert transcript(events, "session.output_transcript.delta") == REPLY_TEXT
    assert [e for e in events if e.type == "session.output_audio.delta"]
    assert events[-1].usage.seconds >= 0
    assert closed[-1].reason == "close_requested"
    assert closed[-1].client_event_id == "bye"
    assert code == 1000
    # The provider: OpenAI's Live path, the client's key as a bearer token, no error sent.
    assert upstream.path == "/v1/live/sessions"
    assert upstream.query == {}
    assert upstream.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    no_provider_errors(upstream)
    assert upstream.received[0]["type"] == "session.start"


async def test_a_spoken_turn_against_the_simulator(gateway: GatewayProcess) -> None:
    async with sdk(gateway).live.connect(extra_query={"provider": "simulator"}) as connection:
        await connection.session.start(
            session={"model": MODEL, "audio": {"output": {"voice": "cedar"}}}, event_id="go"
        )
        (started,) = await events_until(connection, "session.started")
        assert started.session.id.startswith("sess_")
        assert started.session.audio.output.voice == "cedar"
        assert started.session.expires_at > 0
        events = await spoken_turn(connection)
        await connection.session.close()
        closed = await events_until(connection, "session.closed")
        _, code = await until_closed(connection)
    heard = transcript(events, "session.input_transcript.delta")
    assert heard.endswith("seconds of audio)"), heard
    said = transcript(events, "session.output_transcript.delta")
    assert said.startswith("I heard"), said
    assert said.endswith("seconds of audio."), said
    audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "session.output_audio.delta")
    assert len(audio) > 24_000  # more than half a second of PCM16 at 24 kHz: it spoke the sentence
    assert any(audio), "the simulator's voice is not silence"
    assert closed[-1].reason == "close_requested"
    assert code == 1000


async def test_commentary_is_spoken_by_the_simulator(gateway: GatewayProcess) -> None:
    async with sdk(gateway).live.connect(extra_query={"provider": "simulator"}) as connection:
        await connection.session.start(session={"model": MODEL})
        await events_until(connection, "session.started")
        await connection.session.commentary.append(content="le colis arrive demain", delegation_id=None)
        events = await events_until(connection, "session.usage.updated")
    assert events[0].type == "session.commentary.appended"
    assert "le colis arrive demain" in transcript(events, "session.output_transcript.delta")


async def test_a_sideband_sees_the_session_and_controls_it(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    client = sdk(gateway)
    async with client.live.connect() as primary:
        await primary.session.start(session={"model": MODEL})
        (started,) = await events_until(primary, "session.started")
        session_id = started.session.id
        async with client.live.sideband.connect(session_id=session_id, graceful_close=True) as sideband:
            # Answered once the sideband is attached upstream: from then on it sees the session.
            await sideband.session.instructions.append(content="Parle plus lentement", delegation_id=None)
            (appended,) = await events_until(sideband, "session.instructions.appended")
            heard = await spoken_turn(primary)
            await primary.session.input_audio.mute()  # answered after every append before it
            await events_until(primary, "session.input_audio.muted")
            await sideband.session.close(event_id="from-sideband")
            seen = await events_until(sideband, "session.closed")
            primary_closed = await events_until(primary, "session.closed")
    first, second = fake_upstream.connections[mark : mark + 2]
    assert transcript(heard, "session.output_transcript.delta") == REPLY_TEXT
    assert transcript(seen, "session.input_transcript.delta") == HEARD
    assert transcript(seen, "session.output_transcript.delta") == REPLY_TEXT
    reflected = [e for e in seen if e.type == "session.input_audio.append"]
    assert b"".join(base64.b64decode(e.audio) for e in reflected) == speech_pcm16()
    audio = [e for e in seen if e.type == "session.output_audio.delta"]
    assert audio
    assert all(e.start_ms is not None and e.end_ms is not None for e in audio)
    assert appended.start_ms <= appended.end_ms
    assert seen[-1].client_event_id == "from-sideband"
    assert primary_closed[-1].reason == "close_requested"
    assert second.path == f"/v1/live/sessions/{session_id}/attach"
    assert second.query == {"graceful_close": "true"}
    assert second.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    no_provider_errors(first, second)


async def test_a_fork_of_a_stored_session(gateway: GatewayProcess, fake_upstream: FakeUpstream) -> None:
    client = sdk(gateway)
    async with client.live.connect() as primary:
        await primary.session.start(session={"model": MODEL, "store": True})
        (started,) = await events_until(primary, "session.started")
        await primary.session.close()
        await events_until(primary, "session.closed")
    mark = fake_upstream.mark()
    async with client.live.forks.connect(session_id=started.session.id) as fork:
        await fork.session.start(session={}, event_id="fork-go")
        (forked,) = await events_until(fork, "session.started")
        events = await spoken_turn(fork)
    upstream = fake_upstream.connection_after(mark)
    assert forked.session.id != started.session.id
    assert forked.session.model == MODEL  # inherited
    assert forked.client_event_id == "fork-go"
    assert transcript(events, "session.output_transcript.delta") == REPLY_TEXT
    assert upstream.path == f"/v1/live/sessions/{started.session.id}/fork"
    no_provider_errors(upstream)


async def test_a_sideband_of_no_session_is_the_providers_404(gateway: GatewayProcess) -> None:
    async with sdk(gateway).live.sideband.connect(session_id="sess_nowhere") as sideband:
        events, code = await until_closed(sideband)
    (error,) = events
    assert_live_error(error, "upstream_not_found")
    assert "HTTP 404" in error.error.message
    assert code == 1008


# -- bad input ----------------------------------------------------------------------------------------

# (frame, the error code, the client_event_id it carries)
BAD_FRAMES: list[tuple[str | bytes, str, str | None]] = [
    ("{not json", "invalid_json", None),
    ("[1, 2]", "invalid_event", None),
    (json.dumps({"event_id": "e1"}), "missing_required_parameter", "e1"),
    (json.dumps({"type": "session.nonsense", "event_id": "e2"}), "unknown_event_type", "e2"),
    (
        json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e3"}),
        "unknown_event_type",
        "e3",
    ),
    (
        json.dumps({"type": "session.start", "session": {}, "event_id": "e4"}),
        "missing_required_parameter",
        "e4",
    ),
    (json.dumps({"type": "session.start", "session": {"model": 5}, "event_id": "e5"}), "invalid_value", "e5"),
    (
        json.dumps({"type": "session.input_audio.append", "audio": "%%%%", "event_id": "e6"}),
        "invalid_audio",
        "e6",
    ),
    (
        json.dumps({"type": "session.input_audio.append", "event_id": "e7"}),
        "missing_required_parameter",
        "e7",
    ),
    (json.dumps({"type": "session.commentary.append", "event_id": "e8"}), "missing_required_parameter", "e8"),
    (json.dumps({"type": "decision.create"}), "missing_required_parameter", None),
    (
        json.dumps(
            {"type": "session.start", "session": {"model": MODEL, "audio": {"format": {"type": "audio/pcm"}}}}
        ),
        "missing_required_parameter",
        None,
    ),
    (b"\x00\x01binary", "binary_frame_unsupported", None),
]


async def test_bad_input_gets_lives_error_and_never_reaches_the_provider(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    async with websockets.connect(gateway.url("/v1/live/sessions"), additional_headers=headers) as socket:
        for frame, code, client_event_id in BAD_FRAMES:
            await socket.send(frame)
            error = ErrorEvent.model_validate(
                json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT))
            )
            assert_live_error(error, code, client_event_id)
        # The session goes on: a good start is relayed and answered.
        await socket.send(json.dumps({"type": "session.start", "session": {"model": MODEL}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT))["type"] == "session.started"
    upstream = fake_upstream.connection_after(mark)
    upstream.closed.wait(5)
    assert [event["type"] for event in upstream.received] == ["session.start"]
    assert upstream.frames == [json.dumps({"type": "session.start", "session": {"model": MODEL}})]


async def test_unknown_fields_are_the_providers_to_refuse(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """As on /v1/realtime, the gateway checks what the SDK's types require and lets fields it does not
    know through (the API grows): the strict provider refuses them in its own words."""
    mark = fake_upstream.mark()
    async with sdk(gateway).live.connect() as connection:
        await connection.send_raw(
            json.dumps({"type": "session.start", "session": {"model": MODEL, "voice": "x"}, "event_id": "v"})
        )
        (error,) = await events_until(connection, "error")
    assert_live_error(error, "unknown_parameter", "v")
    assert error.error.param == "session.voice"
    assert fake_upstream.connection_after(mark).errors


async def test_a_sideband_takes_only_sideband_commands(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    client = sdk(gateway)
    async with client.live.connect() as primary:
        await primary.session.start(session={"model": MODEL})
        (started,) = await events_until(primary, "session.started")
        mark = fake_upstream.mark()
        async with client.live.sideband.connect(session_id=started.session.id) as sideband:
            for event in (
                {"type": "session.start", "session": {"model": MODEL}, "event_id": "s1"},
                {"type": "session.input_audio.append", "audio": "AAAA", "event_id": "s2"},
            ):
                await sideband.send_raw(json.dumps(event))
                (error,) = await events_until(sideband, "error")
                assert_live_error(error, "unknown_event_type", event["event_id"])
    upstream = fake_upstream.connection_after(mark)
    upstream.closed.wait(5)
    assert upstream.frames == []


# -- provider failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "close_code"),
    [
        (401, "upstream_unauthorized", 1008),
        (403, "upstream_forbidden", 1008),
        (429, "upstream_rate_limited", 1013),
        (500, "upstream_error", 1014),
        (503, "upstream_error", 1014),
    ],
)
async def test_a_refused_handshake_reaches_the_client_in_lives_shape(
    gateway: GatewayProcess, status: int, code: str, close_code: int
) -> None:
    async with sdk(gateway, key=f"scenario-reject-{status}").live.connect() as connection:
        events, close = await until_closed(connection)
    (error,) = events
    assert_live_error(error, code)
    assert f"HTTP {status}" in error.error.message
    assert close == close_code


async def test_an_unreachable_provider(unreachable_gateway: GatewayProcess) -> None:
    async with sdk(unreachable_gateway).live.connect() as connection:
        events, close = await until_closed(connection)
    (error,) = events
    assert_live_error(error, "upstream_unreachable")
    assert close == 1014


async def test_a_provider_dropping_the_session(gateway: GatewayProcess) -> None:
    async with sdk(gateway, key="scenario-drop").live.connect() as connection:
        await connection.session.start(session={"model": MODEL})
        events, close = await until_closed(connection)
    assert [event.type for event in events] == ["session.started", "error"]
    assert_live_error(events[1], "upstream_connection_lost")
    assert close == 1014


async def test_a_providers_close_code_reaches_the_client(gateway: GatewayProcess) -> None:
    async with sdk(gateway, key="scenario-close-4002").live.connect() as connection:
        await connection.session.start(session={"model": MODEL})
        events, close = await until_closed(connection)
    assert [event.type for event in events] == ["session.started"]
    assert close == 4002


async def test_a_provider_slower_than_the_connect_timeout(gateway: GatewayProcess) -> None:
    async with sdk(gateway, key="scenario-slow-10000").live.connect() as connection:
        await connection.session.start(session={"model": MODEL})
        events, close = await until_closed(connection)
    (error,) = events
    assert_live_error(error, "upstream_timeout")
    assert close == 1014


async def test_a_quiet_provider_is_not_a_timeout(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """The client speaks first on GPT-Live: a provider that says nothing until ``session.start`` has
    connected (UPSTREAM_CONNECT_TIMEOUT_SECONDS is 2 on the test gateway)."""
    async with sdk(gateway).live.connect() as connection:
        await asyncio.sleep(2.5)
        await connection.session.start(session={"model": MODEL})
        (started,) = await events_until(connection, "session.started")
    assert started.session.model == MODEL


# -- what only the gateway decides ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "code", "close_code"),
    [
        ("/v1/live/sessions", {"provider": "azure"}, "endpoint_not_supported", 1008),
        ("/v1/live/sessions/sess_1/attach", {"provider": "azure"}, "endpoint_not_supported", 1008),
        ("/v1/live/sessions/sess_1/attach", {"provider": "simulator"}, "session_not_found", 1008),
        ("/v1/live/sessions/sess_1/fork", {"provider": "simulator"}, "session_not_found", 1008),
        ("/v1/live/sessions", {"provider": "nope"}, "unknown_provider", 1008),
    ],
)
async def test_what_cannot_be_served_is_said_in_lives_shape(
    gateway: GatewayProcess, path: str, query: dict[str, str], code: str, close_code: int
) -> None:
    async with websockets.connect(gateway.url(path, **query)) as socket:
        error = ErrorEvent.model_validate(json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT)))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT)
    assert_live_error(error, code)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == close_code


@pytest.mark.parametrize(
    ("headers", "subprotocols", "query"),
    [
        ({"api-key": CLIENT_KEY}, None, {}),
        ({}, ["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"], {}),
        ({}, None, {"api_key": CLIENT_KEY}),
    ],
    ids=["api-key", "subprotocol", "query"],
)
async def test_every_key_form_reaches_openai_as_a_bearer_token(
    gateway: GatewayProcess,
    fake_upstream: FakeUpstream,
    headers: dict[str, str],
    subprotocols: list[str] | None,
    query: dict[str, str],
) -> None:
    mark = fake_upstream.mark()
    url = gateway.url("/v1/live/sessions", **query)
    async with websockets.connect(url, additional_headers=headers, subprotocols=subprotocols) as socket:  # type: ignore[arg-type]
        await socket.send(json.dumps({"type": "session.start", "session": {"model": MODEL}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT))["type"] == "session.started"
    upstream = fake_upstream.connection_after(mark)
    assert upstream.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert "api-key" not in upstream.headers
    assert upstream.query == {}


async def test_the_operators_key_goes_upstream_when_the_client_sends_none(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    mark = fake_upstream.mark()
    async with websockets.connect(gateway.url("/v1/live/sessions")) as socket:
        await socket.send(json.dumps({"type": "session.start", "session": {"model": MODEL}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), EVENT_TIMEOUT))["type"] == "session.started"
    assert fake_upstream.connection_after(mark).headers["authorization"] == f"Bearer {OPERATOR_KEY}"


def test_keys_never_logged(gateway: GatewayProcess) -> None:
    log = gateway.log()
    for name in ("live", "live_attach", "live_fork"):
        assert f"endpoint={name} " in log
    assert OPERATOR_KEY not in log
    assert CLIENT_KEY not in log
