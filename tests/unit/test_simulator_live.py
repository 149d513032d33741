"""The simulator's GPT-Live personality, sans I/O: every frame it sends is one of the SDK's Live
server events, in the order and with the fields the API documents."""

from __future__ import annotations

import base64
import itertools
import json
import math
import sys
from array import array
from typing import Any

import pytest
from openai._models import construct_type_unchecked
from openai.types.live import ServerEvent
from pydantic import TypeAdapter

from shared.simulator.live import LiveSimulator

SERVER_EVENTS: TypeAdapter[Any] = TypeAdapter(ServerEvent)


def tone(seconds: float, rate: int = 24000, silence: float = 0.8) -> bytes:
    """``seconds`` of a 440 Hz tone then ``silence`` s of nothing, PCM16 LE mono at ``rate``."""
    loud = [round(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(rate * seconds))]
    samples = array("h", loud + [0] * int(rate * silence))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


class Session:
    """A simulator and everything it sent, each frame checked against the SDK's server events."""

    def __init__(self, pace: float = 0.0) -> None:
        self.sim = LiveSimulator(pace=pace, now=0.0, opened_at=1_800_000_000.0)
        self.sent: list[dict[str, Any]] = []
        assert self.sim.start(0.0) == []  # the client speaks first

    def send(self, event: dict[str, Any], now: float = 0.0) -> list[dict[str, Any]]:
        return self._record(self.sim.receive(event, now))

    def poll(self, now: float) -> list[dict[str, Any]]:
        return self._record(self.sim.poll(now))

    def _record(self, frames: list[str]) -> list[dict[str, Any]]:
        events = [json.loads(frame) for frame in frames]
        for event in events:
            parsed = SERVER_EVENTS.validate_python(event)
            assert parsed.type == event["type"]
            assert construct_type_unchecked(value=event, type_=ServerEvent).type == event["type"]  # type: ignore[arg-type]
        self.sent += events
        return events

    def start(self, **session: Any) -> dict[str, Any]:
        (started,) = self.send(
            {"type": "session.start", "event_id": "go", "session": {"model": "gpt-live-1", **session}}
        )
        return started

    def speak(self, pcm: bytes, chunk: int = 4800, now: float = 0.0) -> list[dict[str, Any]]:
        out = []
        for i in range(0, len(pcm), chunk):
            out += self.send(
                {
                    "type": "session.input_audio.append",
                    "audio": base64.b64encode(pcm[i : i + chunk]).decode(),
                },
                now,
            )
        return out


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def test_start_answers_with_the_session() -> None:
    session = Session()
    started = session.start(audio={"output": {"voice": "cedar"}}, instructions="Sois bref.", store=True)
    assert started["type"] == "session.started"
    assert started["client_event_id"] == "go"
    resource = started["session"]
    assert resource["id"].startswith("sess_")
    assert resource["model"] == "gpt-live-1"
    assert resource["status"] == "active"
    assert resource["expires_at"] == 1_800_000_000 + 3600
    assert resource["audio"] == {"format": {"type": "audio/pcm", "rate": 24000}, "output": {"voice": "cedar"}}
    assert (resource["instructions"], resource["store"]) == ("Sois bref.", True)


def test_commands_before_the_start_and_a_second_start_are_errors() -> None:
    session = Session()
    (early,) = session.send({"type": "session.input_audio.mute", "event_id": "m"})
    assert (early["error"]["code"], early["client_event_id"]) == ("session_not_started", "m")
    session.start()
    (again,) = session.send({"type": "session.start", "session": {"model": "gpt-live-1"}})
    assert again["error"]["code"] == "session_already_started"
    (delegated,) = session.send({"type": "decision.create", "event_id": "d"})
    assert delegated["error"]["code"] == "delegation_not_configured"


@pytest.mark.parametrize(
    ("rate", "fmt"),
    [(24000, {"type": "audio/pcm", "rate": 24000}), (16000, {"type": "audio/pcm", "rate": 16000})],
)
def test_an_utterance_is_transcribed_and_answered_aloud(rate: int, fmt: dict[str, Any]) -> None:
    session = Session()
    session.start(audio={"format": fmt})
    events = session.speak(tone(1.0, rate), chunk=rate // 5)
    assert types(events)[0] == "session.input_transcript.delta"
    heard = events[0]
    assert heard["delta"].endswith("seconds of audio)")
    assert heard["start_ms"] < heard["end_ms"]
    said = "".join(e["delta"] for e in events if e["type"] == "session.output_transcript.delta")
    assert said.startswith("I heard ")
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "session.output_audio.delta"
    )
    assert len(audio) % 2 == 0
    assert len(audio) / 2 / rate == pytest.approx(len(said) * 0.065, rel=0.25)  # ~65 ms a character
    assert any(audio)
    assert types(events)[-1] == "session.usage.updated"
    # The words fall on the session's timeline after the speech they answer, in order.
    spans = [(e["start_ms"], e["end_ms"]) for e in events if e["type"] == "session.output_transcript.delta"]
    assert spans[0][0] > heard["end_ms"]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_a_paced_reply_comes_over_time_and_speech_cuts_it_off() -> None:
    session = Session(pace=1.0)
    session.start()
    assert types(session.speak(tone(0.6))) == ["session.input_transcript.delta"]  # the reply is due later
    assert session.sim.next_deadline() == pytest.approx(0.25)
    first = session.poll(0.3)
    assert "session.output_audio.delta" in types(first)
    session.speak(tone(0.5, silence=0.0), now=0.4)  # the user talks over it
    assert session.poll(10.0) == []  # cut off: nothing more of it
    assert session.sim.next_deadline() is None


def test_mute_silences_the_input() -> None:
    session = Session()
    session.start()
    (muted,) = session.send({"type": "session.input_audio.mute", "event_id": "m"})
    assert (muted["type"], muted["client_event_id"]) == ("session.input_audio.muted", "m")
    assert session.speak(tone(1.0)) == []  # heard as silence
    (unmuted,) = session.send({"type": "session.input_audio.unmute"})
    assert unmuted["type"] == "session.input_audio.unmuted"
    assert "session.input_transcript.delta" in types(session.speak(tone(1.0)))


def test_context_is_acknowledged_and_commentary_spoken() -> None:
    session = Session()
    session.start()
    for kind in ("instructions", "thinking"):
        (ack,) = session.send(
            {"type": f"session.{kind}.append", "content": "x", "delegation_id": None, "event_id": kind}
        )
        assert (ack["type"], ack["client_event_id"]) == (f"session.{kind}.appended", kind)
        assert ack["start_ms"] == ack["end_ms"]
    events = session.send(
        {"type": "session.commentary.append", "content": "Votre colis arrive", "delegation_id": None}
    )
    assert events[0]["type"] == "session.commentary.appended"
    assert "Votre colis arrive" in "".join(
        e.get("delta", "") for e in events if e["type"] == "session.output_transcript.delta"
    )


def test_update_and_fixture() -> None:
    session = Session(pace=1.0)
    session.start()
    (updated,) = session.send({"type": "session.update", "session": {"delegation": {"type": "client"}}})
    assert updated["session"]["delegation"] == {"type": "client"}
    fixture = base64.b64encode(bytes(48000)).decode()  # one second
    (playing,) = session.send(
        {"type": "session.output_audio.fixture.play", "audio": fixture, "event_id": "f"}
    )
    assert playing["type"] == "session.output_audio.fixture.playing"
    (busy,) = session.send({"type": "session.output_audio.fixture.play", "audio": fixture})
    assert busy["error"]["code"] == "fixture_active"
    assert session.poll(0.5) == []
    (played,) = session.poll(1.0)
    assert (played["type"], played["client_event_id"]) == ("session.output_audio.fixture.played", "f")


def test_close_reports_the_usage_and_ends_the_session() -> None:
    session = Session()
    session.start()
    (closed,) = session.send({"type": "session.close", "event_id": "bye"}, now=12.7)
    assert closed["type"] == "session.closed"
    assert (closed["reason"], closed["client_event_id"]) == ("close_requested", "bye")
    assert closed["usage"] == {"seconds": 12}
    assert session.sim.ended
    assert session.send({"type": "session.input_audio.mute"}) == []
