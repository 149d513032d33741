"""The official ``openai`` SDK, pointed at the gateway by ``websocket_base_url``, works unchanged.

The SDK builds ``{websocket_base_url}/realtime?model=...``, so the base is the gateway's ``/v1``; with
no ``provider`` in the query the gateway's default provider (OpenAI) serves it. Four flavours: GA
``client.realtime`` and beta ``client.beta.realtime``, each with ``AsyncOpenAI`` and ``OpenAI``.

The client matrix (``tests/clients/``, README "Client compatibility") has a cell per flavour's
client (``openai-python-async``, ``openai-python-sync``), interface and runtime, recorded by
``clients.compat_plugin``. A cell is a text turn and an audio turn, each on a connection of its own,
against the strict GA-only fake provider (``gateway``): a GA flavour's frames are relayed byte for
byte, a beta flavour's translated both ways. The audio turn appends PCM16 speech in 100 ms chunks
and leaves the rest to the provider's server VAD (on by default), which commits the speech and
starts the reply, as a client streaming a microphone uses the SDK. The tests check what the provider
saw (no ``error`` it sent, no beta header or field) and what the SDK made of the events relayed back.

Outside the cells: the beta flavours against a provider that speaks beta (``beta_gateway``, relayed
byte for byte), the operator key, GA turns against ``provider=simulator``, and the logs. The SDK
always sends its ``api_key`` as a bearer token, which the gateway passes on instead of its operator
key unless the header is omitted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from clients.harness import (
    FAKE_REPLY_AUDIO_BYTES,
    check_strict_provider,
    speech_pcm16,
    upstream_of,
)
from conftest import OPERATOR_KEY
from openai import AsyncOpenAI, OpenAI, omit
from openai.types import realtime as ga_types
from openai.types.beta import realtime as beta_types
from support.fake_upstream import REPLY_TEXT, USAGE, FakeUpstream, UpstreamConnection
from support.gateway_process import GatewayProcess

# Records the cells to build/compat.json, with tests/clients' (registered once, whichever is first).
pytest_plugins = ["clients.compat_plugin"]

SDK_KEY = "sk-sdk-client-key-13579"
TURN_TIMEOUT_SECONDS = 15.0

GA_SESSION = {"type": "realtime", "output_modalities": ["text"], "instructions": "Réponds en une phrase ✓"}
BETA_SESSION = {"modalities": ["text"], "instructions": "Réponds en une phrase ✓"}
GA_AUDIO_SESSION = {"type": "realtime", "output_modalities": ["audio"]}
BETA_AUDIO_SESSION = {"modalities": ["audio", "text"]}
USER_MESSAGE = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": 'Bonjour, "gateway"!'}],
}
AUDIO_CHUNK_BYTES = 4800  # 100 ms of PCM16 at 24 kHz


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

    @property
    def audio_session(self) -> dict[str, Any]:
        return BETA_AUDIO_SESSION if self.beta else GA_AUDIO_SESSION

    @property
    def client(self) -> str:
        """The client-matrix row (``tests/clients/compat_table.py``)."""
        return "openai-python-sync" if self.sync else "openai-python-async"

    @property
    def protocol(self) -> str:
        return "beta" if self.beta else "ga"


FLAVOURS = [
    Flavour("ga-async", beta=False, sync=False),
    Flavour("ga-sync", beta=False, sync=True),
    Flavour("beta-async", beta=True, sync=False),
    Flavour("beta-sync", beta=True, sync=True),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``flavour``: every flavour, each a client-matrix cell (with ``runtime``); ``beta_flavour``: the
    beta flavours, for the tests against a beta provider, which belong to no cell. (Here, not at
    import, so that ``compat`` is a registered marker by then.)"""
    if "flavour" in metafunc.fixturenames:
        cells = [
            pytest.param(
                flavour,
                id=flavour.name,
                marks=pytest.mark.compat(client=flavour.client, protocol=flavour.protocol),
            )
            for flavour in FLAVOURS
        ]
        metafunc.parametrize("flavour", cells, scope="module")
    if "beta_flavour" in metafunc.fixturenames:
        betas = [pytest.param(flavour, id=flavour.name) for flavour in FLAVOURS if flavour.beta]
        metafunc.parametrize("beta_flavour", betas, scope="module")


@dataclass
class Turn:
    """One turn, seen from both ends."""

    model: str
    sent: list[str]  # the frames the SDK wrote to its socket, as it serialised them
    events: list[Any]  # what the SDK's recv() returned, session.created to response.done
    upstream: UpstreamConnection  # what the fake provider saw, once the connection closed
    upstream_frames: list[str | bytes]


# -- driving the SDK -------------------------------------------------------------------------------

# A script: the SDK calls a turn makes after session.created, as (method path, keyword arguments).
Script = list[tuple[str, dict[str, Any]]]


def text_script(flavour: Flavour) -> Script:
    return [
        ("session.update", {"session": flavour.session}),
        ("conversation.item.create", {"item": USER_MESSAGE}),
        ("response.create", {}),
    ]


def audio_script(flavour: Flavour) -> Script:
    """Spoken replies asked for, then speech appended; the provider's server VAD does the rest."""
    pcm = speech_pcm16()
    appends = [
        (
            "input_audio_buffer.append",
            {"audio": base64.b64encode(pcm[offset : offset + AUDIO_CHUNK_BYTES]).decode()},
        )
        for offset in range(0, len(pcm), AUDIO_CHUNK_BYTES)
    ]
    return [("session.update", {"session": flavour.audio_session}), *appends]


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


def method(connection: Any, path: str) -> Any:
    target = connection
    for name in path.split("."):
        target = getattr(target, name)
    return target


def ends_turn(event: Any) -> bool:
    return event.type in ("response.done", "error")


async def async_turn(
    flavour: Flavour, gateway: GatewayProcess, model: str, script: Script
) -> tuple[list[str], list[Any]]:
    async with AsyncOpenAI(api_key=SDK_KEY, websocket_base_url=sdk_base_url(gateway)) as client:
        realtime = client.beta.realtime if flavour.beta else client.realtime
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), realtime.connect(model=model) as connection:
            sent = record_sends(connection, sync=False)
            events = [await connection.recv()]
            for path, arguments in script:
                await method(connection, path)(**arguments)
            while not ends_turn(events[-1]) or len(events) == 1:
                events.append(await connection.recv())
    return sent, events


def sync_turn(
    flavour: Flavour, gateway: GatewayProcess, model: str, script: Script
) -> tuple[list[str], list[Any]]:
    with OpenAI(api_key=SDK_KEY, websocket_base_url=sdk_base_url(gateway)) as client:
        realtime = client.beta.realtime if flavour.beta else client.realtime
        with realtime.connect(model=model) as connection:
            sent = record_sends(connection, sync=True)
            events = [connection.recv()]
            for path, arguments in script:
                method(connection, path)(**arguments)
            while not ends_turn(events[-1]) or len(events) == 1:
                events.append(connection.recv())
    return sent, events


def run_turn(
    flavour: Flavour, gateway: GatewayProcess, fake_upstream: FakeUpstream, model: str, script: Script
) -> Turn:
    """One turn of ``flavour`` on a connection of its own (an async flavour on an event loop of its
    own), and the fake provider's record of it."""
    if flavour.sync:
        sent, events = sync_turn(flavour, gateway, model, script)
    else:
        with ThreadPoolExecutor(1) as thread:
            sent, events = thread.submit(asyncio.run, async_turn(flavour, gateway, model, script)).result()
    (upstream,) = upstream_of(fake_upstream, model, 1)
    return Turn(model, sent, events, upstream, list(upstream.frames))


def of_type(events: list[Any], event_type: str, cls: Callable[..., Any]) -> list[Any]:
    """The events of ``event_type``, checking the SDK parsed each into ``cls``."""
    found = [event for event in events if event.type == event_type]
    assert all(isinstance(event, cls) for event in found), [type(event).__name__ for event in found]
    return found


def sdk_knows(event: Any) -> bool:
    """Whether the SDK parsed ``event`` into the class for its type (unknown types fall back)."""
    annotation = type(event).model_fields["type"].annotation
    return event.type in typing.get_args(annotation)


# -- the cells: every flavour against the strict GA-only provider -----------------------------------


@pytest.fixture(scope="module")
def text_turn(flavour: Flavour, gateway: GatewayProcess, fake_upstream: FakeUpstream) -> Turn:
    """The cell's text turn: a user message and ``response.create``, text replies asked for."""
    model = f"sdk-{flavour.name}-{gateway.runtime}-text"
    return run_turn(flavour, gateway, fake_upstream, model, text_script(flavour))


@pytest.fixture(scope="module")
def audio_turn(flavour: Flavour, gateway: GatewayProcess, fake_upstream: FakeUpstream) -> Turn:
    """The cell's audio turn: spoken replies asked for, speech appended, server VAD."""
    model = f"sdk-{flavour.name}-{gateway.runtime}-audio"
    return run_turn(flavour, gateway, fake_upstream, model, audio_script(flavour))


# What each interface's SDK gets for the text turn: session.created, session.updated, its user item,
# and the reply. Through translation GA's conversation.item.added + .done pairs arrive as one beta
# conversation.item.created.
TEXT_TURN_TYPES = {
    "ga": [
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
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
    ],
    "beta": [
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
    ],
}


def test_strict_provider_refused_nothing_and_saw_no_beta(text_turn: Turn, audio_turn: Turn) -> None:
    """The GA endpoint, the SDK's key as a bearer (not the operator's), no beta header or field, and
    no ``error`` from the provider, for both turns."""
    for turn in (text_turn, audio_turn):
        assert turn.upstream.query == {"model": turn.model}
        check_strict_provider([turn.upstream], key=SDK_KEY)
        assert OPERATOR_KEY not in json.dumps(turn.upstream.headers)


def test_sdk_serialised_the_events_it_was_asked_to_send(text_turn: Turn, flavour: Flavour) -> None:
    assert [json.loads(frame) for frame in text_turn.sent] == [
        {"type": "session.update", "session": flavour.session},
        {"type": "conversation.item.create", "item": USER_MESSAGE},
        {"type": "response.create"},
    ]


@pytest.mark.deps
def test_text_turn_frames_reach_the_provider(text_turn: Turn, flavour: Flavour) -> None:
    """GA: byte for byte, in order. Beta: ``session.update`` in GA's shape, the rest as serialised
    (the same in both interfaces)."""
    assert len(text_turn.upstream_frames) == len(text_turn.sent) == 3
    if not flavour.beta:
        assert text_turn.upstream_frames == text_turn.sent
        return
    update, item, response = text_turn.upstream_frames
    assert json.loads(update) == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["text"],
            "instructions": BETA_SESSION["instructions"],
        },
    }
    assert [item, response] == text_turn.sent[1:]


def test_sdk_gets_its_interfaces_events_for_the_text_turn(text_turn: Turn, flavour: Flavour) -> None:
    events = text_turn.events
    assert [event.type for event in events] == TEXT_TURN_TYPES[flavour.protocol]
    assert all(sdk_knows(event) for event in events)


def test_sdk_parses_the_relayed_session_events(text_turn: Turn, flavour: Flavour) -> None:
    created, updated = text_turn.events[:2]
    assert isinstance(created, flavour.types.SessionCreatedEvent)
    assert created.session.model == text_turn.model
    assert created.session.id == "sess_fake"
    assert isinstance(updated, flavour.types.SessionUpdatedEvent)
    if flavour.beta:
        assert created.session.modalities == ["text", "audio"]  # GA's ["audio"], as beta says it
        assert created.session.input_audio_format == "pcm16"
        assert updated.session.modalities == ["text"]
    else:
        assert updated.session.output_modalities == ["text"]


@pytest.mark.deps
def test_sdk_parses_the_relayed_text_reply(text_turn: Turn, flavour: Flavour) -> None:
    events = text_turn.events
    deltas = [event for event in events if "delta" in event.type]
    assert deltas
    assert all(isinstance(event, flavour.types.ResponseTextDeltaEvent) for event in deltas)
    assert "".join(event.delta for event in deltas) == REPLY_TEXT
    (text_done,) = of_type(
        events, deltas[0].type.replace("delta", "done"), flavour.types.ResponseTextDoneEvent
    )
    assert text_done.text == REPLY_TEXT
    (part_done,) = of_type(events, "response.content_part.done", flavour.types.ResponseContentPartDoneEvent)
    assert part_done.part.type == "text"
    items = of_type(
        events,
        "conversation.item.created" if flavour.beta else "conversation.item.added",
        beta_types.ConversationItemCreatedEvent if flavour.beta else ga_types.ConversationItemAdded,
    )
    assert [event.item.role for event in items] == ["user", "assistant"]


def test_sdk_parses_the_relayed_response_done(text_turn: Turn, flavour: Flavour) -> None:
    done = text_turn.events[-1]
    assert isinstance(done, flavour.types.ResponseDoneEvent)
    assert done.response.status == "completed"
    assert done.response.output[0].content[0].type == ("text" if flavour.beta else "output_text")
    assert done.response.usage is not None
    assert done.response.usage.total_tokens == USAGE["total_tokens"]


def test_audio_turn_server_vad_commits_and_the_reply_starts(audio_turn: Turn, flavour: Flavour) -> None:
    events = audio_turn.events
    types = [event.type for event in events]
    assert "error" not in types, [event for event in events if event.type == "error"]
    assert all(sdk_knows(event) for event in events), [event.type for event in events if not sdk_knows(event)]
    (started,) = of_type(
        events, "input_audio_buffer.speech_started", flavour.types.InputAudioBufferSpeechStartedEvent
    )
    (stopped,) = of_type(
        events, "input_audio_buffer.speech_stopped", flavour.types.InputAudioBufferSpeechStoppedEvent
    )
    (committed,) = of_type(
        events, "input_audio_buffer.committed", flavour.types.InputAudioBufferCommittedEvent
    )
    assert started.item_id == stopped.item_id == committed.item_id
    assert stopped.audio_end_ms > started.audio_start_ms
    assert types.index("input_audio_buffer.committed") < types.index("response.created")


def test_sdk_parses_the_relayed_audio_reply(audio_turn: Turn, flavour: Flavour) -> None:
    events = audio_turn.events
    prefix = "response.audio" if flavour.beta else "response.output_audio"
    chunks = [
        base64.b64decode(event.delta)
        for event in of_type(events, f"{prefix}.delta", flavour.types.ResponseAudioDeltaEvent)
    ]
    transcript = of_type(
        events, f"{prefix}_transcript.delta", flavour.types.ResponseAudioTranscriptDeltaEvent
    )
    assert "".join(event.delta for event in transcript) == REPLY_TEXT
    assert sum(map(len, chunks)) == FAKE_REPLY_AUDIO_BYTES
    done = events[-1]
    assert isinstance(done, flavour.types.ResponseDoneEvent)
    assert done.response.status == "completed"
    assert done.response.output[0].content[0].type == ("audio" if flavour.beta else "output_audio")


def test_audio_turn_frames_reach_the_provider(audio_turn: Turn, flavour: Flavour) -> None:
    """``session.update`` (in GA's shape for beta), then every appended frame as serialised."""
    update, *appends = audio_turn.upstream_frames
    if flavour.beta:
        assert json.loads(update) == {
            "type": "session.update",
            "session": {"type": "realtime", "output_modalities": ["audio"]},
        }
    else:
        assert update == audio_turn.sent[0]
    assert appends == audio_turn.sent[1:]
    audio = b"".join(base64.b64decode(json.loads(frame)["audio"]) for frame in appends)
    assert audio == speech_pcm16()


# -- beta flavours against a provider speaking beta: relayed byte for byte (no cell) ----------------


@pytest.fixture(scope="module")
def beta_turn(beta_flavour: Flavour, beta_gateway: GatewayProcess, fake_upstream: FakeUpstream) -> Turn:
    model = f"sdk-{beta_flavour.name}-{beta_gateway.runtime}-beta-provider"
    return run_turn(beta_flavour, beta_gateway, fake_upstream, model, text_script(beta_flavour))


def test_beta_sdk_reaches_the_beta_provider_with_the_beta_header(beta_turn: Turn) -> None:
    assert beta_turn.upstream.path == "/beta/v1/realtime"
    assert beta_turn.upstream.query == {"model": beta_turn.model}
    assert beta_turn.upstream.headers["openai-beta"] == "realtime=v1"
    assert beta_turn.upstream.headers["authorization"] == f"Bearer {SDK_KEY}"
    assert OPERATOR_KEY not in json.dumps(beta_turn.upstream.headers)


def test_the_strict_beta_provider_accepted_every_event(beta_turn: Turn) -> None:
    assert beta_turn.upstream.errors == []


def test_beta_sdk_frames_reach_the_beta_provider_exactly_as_serialised(beta_turn: Turn) -> None:
    assert len(beta_turn.sent) == 3  # the recorder saw every frame the SDK sent
    assert beta_turn.upstream_frames == beta_turn.sent  # byte for byte, in order


def test_beta_sdk_parses_the_beta_providers_events(beta_turn: Turn) -> None:
    events = beta_turn.events
    assert [event.type for event in events] == TEXT_TURN_TYPES["beta"]
    assert isinstance(events[0], beta_types.SessionCreatedEvent)
    assert events[0].session.model == beta_turn.model
    deltas = of_type(events, "response.text.delta", beta_types.ResponseTextDeltaEvent)
    assert "".join(event.delta for event in deltas) == REPLY_TEXT
    done = events[-1]
    assert isinstance(done, beta_types.ResponseDoneEvent)
    assert done.response.status == "completed"
    assert done.response.usage is not None
    assert done.response.usage.total_tokens == USAGE["total_tokens"]


# -- the operator key ------------------------------------------------------------------------------


async def test_sdk_omitting_authorization_gets_the_operator_key_upstream(
    gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    # The SDK insists on an api_key and sends it; omitting the header defers to the gateway's key.
    model = f"sdk-ga-operator-key-{gateway.runtime}"
    async with AsyncOpenAI(api_key="placeholder", websocket_base_url=sdk_base_url(gateway)) as client:
        manager = client.realtime.connect(model=model, extra_headers={"Authorization": omit})
        async with asyncio.timeout(TURN_TIMEOUT_SECONDS), manager as connection:
            assert isinstance(await connection.recv(), ga_types.SessionCreatedEvent)
    assert fake_upstream.connection_for(model).headers["authorization"] == f"Bearer {OPERATOR_KEY}"


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


@pytest.mark.deps
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


@pytest.mark.deps
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


# -- the logs --------------------------------------------------------------------------------------


def test_sdk_key_never_logged(
    gateway: GatewayProcess, beta_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """A GA and a beta turn of its own, then neither gateway's log (with every other connection of
    this module that ran before, all sending the SDK's key) holds the key."""
    for process, flavour in ((gateway, FLAVOURS[0]), (beta_gateway, FLAVOURS[2])):
        model = f"sdk-{flavour.name}-{process.runtime}-log"
        run_turn(flavour, process, fake_upstream, model, text_script(flavour))
        log = process.log()
        assert f"provider=openai model={model}" in log  # the log is being written
        assert SDK_KEY not in log
