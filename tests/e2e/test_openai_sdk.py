"""The official ``openai`` SDK, pointed at the gateway by ``websocket_base_url``, works unchanged.

The SDK builds ``{websocket_base_url}/realtime?model=...``, so the base is the gateway's ``/v1``.
Each client flavour (GA ``client.realtime`` and beta ``client.beta.realtime``, async and sync) runs
one scripted text turn against a fake provider speaking its protocol (GA: ``gateway``; beta:
``beta_gateway``), where the gateway relays byte for byte; the tests check what the provider saw
and what the SDK made of the events relayed back. The beta flavours then hold the same turn against
the GA provider, through the gateway's translation. GA text and audio turns against
``provider=simulator`` follow. The SDK always sends its ``api_key`` as a bearer token, which the
gateway passes on instead of its operator key unless the header is omitted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import OPERATOR_KEY
from openai import AsyncOpenAI, OpenAI, omit
from openai.types import realtime as ga_types
from openai.types.beta import realtime as beta_types
from support.fake_upstream import FakeUpstream, UpstreamConnection
from support.gateway_process import GatewayProcess

SDK_KEY = "sk-sdk-client-key-13579"
TURN_TIMEOUT_SECONDS = 15.0

GA_SESSION = {"type": "realtime", "output_modalities": ["text"], "instructions": "Réponds en une phrase ✓"}
BETA_SESSION = {"modalities": ["text"], "instructions": "Réponds en une phrase ✓"}
USER_MESSAGE = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": 'Bonjour, "gateway"!'}],
}


@dataclass(frozen=True)
class Flavour:
    """One way of using the SDK: GA or beta interface, async or sync client."""

    name: str
    beta: bool
    sync: bool

    @property
    def types(self) -> Any:
        """The SDK module whose event classes this interface parses into."""
        return beta_types if self.beta else ga_types

    @property
    def session(self) -> dict[str, Any]:
        return BETA_SESSION if self.beta else GA_SESSION


FLAVOURS = [
    Flavour("ga-async", beta=False, sync=False),
    Flavour("ga-sync", beta=False, sync=True),
    Flavour("beta-async", beta=True, sync=False),
    Flavour("beta-sync", beta=True, sync=True),
]


@dataclass
class Turn:
    """One scripted text turn, seen from both ends."""

    model: str
    sent: list[str]  # the frames the SDK wrote to its socket, as it serialised them
    events: list[Any]  # what the SDK's recv() returned, session.created to response.done
    upstream: UpstreamConnection  # what the fake provider saw
    upstream_frames: list[str | bytes]


# -- driving the SDK -------------------------------------------------------------------------------


def sdk_base_url(gateway: GatewayProcess) -> str:
    return gateway.url(path="/v1")  # the SDK appends /realtime


def record_sends(connection: Any, *, sync: bool) -> list[str]:
    """Record every frame the SDK connection writes, exactly as written.

    Wraps ``send`` of the websockets connection under the SDK object (``_connection``, private).
    """
    socket = connection._connection
    original = socket.send
    sent: list[str] = []

    def sync_send(data: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(data)
        return original(data, *args, **kwargs)

    async def async_send(data: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(data)
        return await original(data, *args, **kwargs)

    socket.send = sync_send if sync else async_send
    return sent


async def async_text_turn(
    flavour: Flavour, gateway: GatewayProcess, model: str
) -> tuple[list[str], list[Any]]:
    async with AsyncOpenAI(api_key=SDK_KEY, websocket_base_url=sdk_base_url(gateway)) as client:
        realtime = client.beta.realtime if flavour.beta else client.realtime
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), realtime.connect(model=model) as connection:
            sent = record_sends(connection, sync=False)
            events = [await connection.recv()]
            await connection.session.update(session=flavour.session)
            await connection.conversation.item.create(item=USER_MESSAGE)
            await connection.response.create()
            while events[-1].type != "response.done":
                events.append(await connection.recv())
    return sent, events


def sync_text_turn(flavour: Flavour, gateway: GatewayProcess, model: str) -> tuple[list[str], list[Any]]:
    with OpenAI(api_key=SDK_KEY, websocket_base_url=sdk_base_url(gateway)) as client:
        realtime = client.beta.realtime if flavour.beta else client.realtime
        with realtime.connect(model=model) as connection:
            sent = record_sends(connection, sync=True)
            events = [connection.recv()]
            connection.session.update(session=flavour.session)
            connection.conversation.item.create(item=USER_MESSAGE)
            connection.response.create()
            while events[-1].type != "response.done":
                events.append(connection.recv())
    return sent, events


@pytest.fixture(params=FLAVOURS, ids=lambda flavour: flavour.name)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return request.param


async def run_turn(
    flavour: Flavour, gateway: GatewayProcess, fake_upstream: FakeUpstream, model: str
) -> Turn:
    if flavour.sync:
        sent, events = await asyncio.to_thread(sync_text_turn, flavour, gateway, model)
    else:
        sent, events = await async_text_turn(flavour, gateway, model)
    frames = await asyncio.to_thread(fake_upstream.frames_of, model, len(sent))
    return Turn(model, sent, events, fake_upstream.connection_for(model), frames)


@pytest.fixture
async def turn(
    runtime: str, flavour: Flavour, fake_upstream: FakeUpstream, request: pytest.FixtureRequest
) -> Turn:
    """A text turn of ``flavour`` against the fake provider speaking its protocol, under a model
    name of its own. (``runtime`` parametrizes the test; the gateway is looked up by protocol.)"""
    gateway = request.getfixturevalue("beta_gateway" if flavour.beta else "gateway")
    model = f"sdk-{flavour.name}-{request.node.originalname.removeprefix('test_')}"
    return await run_turn(flavour, gateway, fake_upstream, model)


@pytest.fixture(params=[flavour for flavour in FLAVOURS if flavour.beta], ids=lambda flavour: flavour.name)
async def translated_turn(
    gateway: GatewayProcess, fake_upstream: FakeUpstream, request: pytest.FixtureRequest
) -> Turn:
    """A text turn of a beta flavour against the GA provider: the gateway translates both ways."""
    flavour: Flavour = request.param
    model = f"sdk-translated-{flavour.name}-{request.node.originalname.removeprefix('test_')}"
    return await run_turn(flavour, gateway, fake_upstream, model)


# -- against the fake provider ---------------------------------------------------------------------


async def test_sdk_reaches_the_provider_realtime_path_with_its_model(turn: Turn, flavour: Flavour) -> None:
    assert turn.upstream.path == ("/beta/v1/realtime" if flavour.beta else "/v1/realtime")
    assert turn.upstream.query == {"model": turn.model}


async def test_sdk_api_key_reaches_the_provider_as_bearer(turn: Turn) -> None:
    assert turn.upstream.headers["authorization"] == f"Bearer {SDK_KEY}"
    assert OPERATOR_KEY not in json.dumps(turn.upstream.headers)


async def test_beta_header_reaches_only_the_beta_provider(turn: Turn, flavour: Flavour) -> None:
    if flavour.beta:
        assert turn.upstream.headers["openai-beta"] == "realtime=v1"
    else:
        assert "openai-beta" not in turn.upstream.headers


async def test_the_strict_provider_accepted_every_event(turn: Turn) -> None:
    assert turn.upstream.errors == []


async def test_sdk_frames_reach_the_provider_exactly_as_serialised(turn: Turn) -> None:
    assert len(turn.sent) == 3  # the recorder saw every frame the SDK sent
    assert turn.upstream_frames == turn.sent  # byte for byte, in order


async def test_sdk_serialised_the_events_it_was_asked_to_send(turn: Turn, flavour: Flavour) -> None:
    assert [json.loads(frame) for frame in turn.upstream_frames] == [
        {"type": "session.update", "session": flavour.session},
        {"type": "conversation.item.create", "item": USER_MESSAGE},
        {"type": "response.create"},
    ]


async def test_sdk_parses_the_relayed_session_created(turn: Turn, flavour: Flavour) -> None:
    created = turn.events[0]
    assert isinstance(created, flavour.types.SessionCreatedEvent)
    assert created.session.model == turn.model
    assert created.session.id == "sess_fake"


async def test_sdk_parses_the_relayed_text_deltas(turn: Turn, flavour: Flavour) -> None:
    deltas = [event for event in turn.events if "delta" in event.type]
    assert deltas
    assert all(isinstance(event, flavour.types.ResponseTextDeltaEvent) for event in deltas)
    assert "".join(event.delta for event in deltas) == "Hello from upstream"


async def test_sdk_parses_the_relayed_response_done(turn: Turn, flavour: Flavour) -> None:
    done = turn.events[-1]
    assert isinstance(done, flavour.types.ResponseDoneEvent)
    assert done.response.status == "completed"
    assert done.response.usage is not None
    assert done.response.usage.total_tokens == 3


async def test_sdk_omitting_authorization_gets_the_operator_key_upstream(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    # The SDK insists on an api_key and sends it; omitting the header defers to the gateway's key.
    model = "sdk-ga-operator-key"
    async with AsyncOpenAI(api_key="placeholder", websocket_base_url=sdk_base_url(gateway)) as client:
        manager = client.realtime.connect(model=model, extra_headers={"Authorization": omit})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), manager as connection:
            assert isinstance(await connection.recv(), ga_types.SessionCreatedEvent)
    assert fake_upstream.connection_for(model).headers["authorization"] == f"Bearer {OPERATOR_KEY}"


# -- a beta SDK against the GA provider, through translation ---------------------------------------

# What the beta SDK gets for its turn: session.created, then session.updated, its user item, and the
# reply. GA's conversation.item.added + .done pairs arrive as one beta conversation.item.created.
TRANSLATED_TURN_TYPES = [
    "session.created",
    "session.updated",
    "conversation.item.created",
    "response.created",
    "response.output_item.added",
    "conversation.item.created",
    "response.content_part.added",
    *["response.text.delta"] * 3,
    "response.text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.done",
]


async def test_beta_sdk_through_translation_sends_ga_upstream(translated_turn: Turn) -> None:
    turn = translated_turn
    assert turn.upstream.path == "/v1/realtime"
    assert "openai-beta" not in turn.upstream.headers  # the GA endpoint would refuse the session
    assert turn.upstream.errors == []  # and it refuses any beta field: none reached it
    update, item, response = turn.upstream_frames
    assert json.loads(update) == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["text"],
            "instructions": BETA_SESSION["instructions"],
        },
    }
    assert [item, response] == turn.sent[1:]  # the same in both protocols: relayed as serialised


async def test_beta_sdk_through_translation_receives_beta_events(translated_turn: Turn) -> None:
    events = translated_turn.events
    assert [event.type for event in events] == TRANSLATED_TURN_TYPES
    assert all(sdk_knows(event) for event in events)
    assert isinstance(events[0], beta_types.SessionCreatedEvent)
    assert events[0].session.modalities == ["text", "audio"]  # GA's ["audio"], as beta says it
    assert events[0].session.input_audio_format == "pcm16"
    assert isinstance(events[1], beta_types.SessionUpdatedEvent)
    assert events[1].session.modalities == ["text"]
    created = of_type(events, "conversation.item.created", beta_types.ConversationItemCreatedEvent)
    assert [event.item.role for event in created] == ["user", "assistant"]
    deltas = of_type(events, "response.text.delta", beta_types.ResponseTextDeltaEvent)
    assert "".join(event.delta for event in deltas) == "Hello from upstream"
    (text_done,) = of_type(events, "response.text.done", beta_types.ResponseTextDoneEvent)
    assert text_done.text == "Hello from upstream"
    (part_done,) = of_type(events, "response.content_part.done", beta_types.ResponseContentPartDoneEvent)
    assert part_done.part.type == "text"
    done = events[-1]
    assert isinstance(done, beta_types.ResponseDoneEvent)
    assert done.response.status == "completed"
    assert done.response.output[0].content[0].type == "text"
    assert done.response.usage is not None
    assert done.response.usage.total_tokens == 3


# -- against the simulator -------------------------------------------------------------------------


PCM16_BYTES_PER_SECOND = 24_000 * 2  # GA "audio/pcm": 16-bit mono at 24 kHz


async def simulator_turn(gateway: GatewayProcess, output_modalities: list[str]) -> list[Any]:
    """A GA turn against ``provider=simulator``: every event the SDK parsed up to response.done."""
    async with AsyncOpenAI(api_key=SDK_KEY, websocket_base_url=sdk_base_url(gateway)) as client:
        manager = client.realtime.connect(model="gpt-realtime", extra_query={"provider": "simulator"})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), manager as connection:
            await connection.session.update(
                session={"type": "realtime", "output_modalities": output_modalities}
            )
            await connection.conversation.item.create(item=USER_MESSAGE)
            await connection.response.create()
            events = [await connection.recv()]
            while events[-1].type not in ("response.done", "error"):
                events.append(await connection.recv())
    return events


def of_type(events: list[Any], event_type: str, cls: Callable[..., Any]) -> list[Any]:
    """The events of ``event_type``, checking the SDK parsed each into ``cls``."""
    found = [event for event in events if event.type == event_type]
    assert all(isinstance(event, cls) for event in found), [type(event).__name__ for event in found]
    return found


def sdk_knows(event: Any) -> bool:
    """Whether the SDK parsed ``event`` into the class for its type (unknown types fall back)."""
    annotation = type(event).model_fields["type"].annotation
    return event.type in typing.get_args(annotation)


async def test_simulator_text_turn_through_the_sdk(gateway: GatewayProcess) -> None:
    events = await simulator_turn(gateway, ["text"])
    deltas = of_type(events, "response.output_text.delta", ga_types.ResponseTextDeltaEvent)
    assert "".join(event.delta for event in deltas).strip()
    done = events[-1]
    assert isinstance(done, ga_types.ResponseDoneEvent), done
    assert done.response.usage is not None
    assert done.response.usage.total_tokens


async def test_simulator_events_are_all_known_to_the_sdk(gateway: GatewayProcess) -> None:
    events = await simulator_turn(gateway, ["text"])
    assert [event.type for event in events if not sdk_knows(event)] == []


async def test_simulator_audio_turn_through_the_sdk(gateway: GatewayProcess) -> None:
    events = await simulator_turn(gateway, ["audio"])
    assert isinstance(events[-1], ga_types.ResponseDoneEvent), events[-1]
    chunks = [
        base64.b64decode(event.delta)
        for event in of_type(events, "response.output_audio.delta", ga_types.ResponseAudioDeltaEvent)
    ]
    transcript = "".join(
        event.delta
        for event in of_type(
            events, "response.output_audio_transcript.delta", ga_types.ResponseAudioTranscriptDeltaEvent
        )
    )
    assert transcript.strip()
    assert chunks
    assert all(len(chunk) % 2 == 0 for chunk in chunks)  # whole PCM16 samples in every delta
    samples = array("h", b"".join(chunks))
    assert max(map(abs, samples)) > 0  # a voice, not silence
    seconds = len(samples) * 2 / PCM16_BYTES_PER_SECOND
    # Speech runs at roughly 15 characters a second; allow a wide margin either side.
    assert len(transcript) / 60 <= seconds <= len(transcript) / 2


def test_sdk_key_never_logged(gateway: GatewayProcess, beta_gateway: GatewayProcess) -> None:
    """Runs after the other tests of this module, which sent the SDK's key on every connection."""
    for process, model in ((gateway, "sdk-ga-async"), (beta_gateway, "sdk-beta-async")):
        log = process.log()
        assert f"provider=openai model={model}" in log  # the log is being written
        assert SDK_KEY not in log
