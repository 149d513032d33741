"""The simulator's GPT-Live personality (``provider=simulator`` on ``/v1/live/sessions``).

GPT-Live is always listening: there are no turns to commit and no responses to request. The client
sends ``session.start`` (answered by ``session.started``), then streams audio; the simulator's
server VAD (:class:`~shared.simulator.audio.EnergyVad`, as the Realtime personality's) hears each
utterance, transcribes it (``session.input_transcript.delta``, saying how long it was) and answers
it aloud: ``session.output_transcript.delta`` a word at a time alongside
``session.output_audio.delta`` (the synthetic voice, in the session's format), paced as the Realtime
personality paces a response, then ``session.usage.updated`` (cumulative whole seconds). Speech
during a reply cuts it off. ``session.commentary.append`` is spoken too, so a client can hear a
reply without sending audio. ``session.close`` ends it: ``session.closed`` with the final usage,
then the gateway closes the socket (1000).

Times (``start_ms``, ``end_ms``) are on the session's timeline: the input audio's own clock (its
samples), on which a reply starts ``REPLY_LATENCY_MS`` after the speech it answers. Errors are
GPT-Live's (``client_event_id``). Sans-I/O like the rest: ``now`` is passed in; frames are returned.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..wire import dumps
from .audio import PCM16K, PCM24K, AudioFormat, EnergyVad, SpeechTrack
from .ids import IdMaker
from .replies import Heard, reply_text, split_words
from .response import AUDIO_DELTA_EVERY_S, FIRST_OUTPUT_S

Event = dict[str, Any]

DEFAULT_VOICE = "marin"
SESSION_SECONDS = 3600  # how long a simulated session says it lasts (``expires_at``)
VAD_THRESHOLD = 0.5  # as the Realtime personality's server_vad default
VAD_SILENCE_MS = 500
REPLY_LATENCY_MS = 250
MAX_FIXTURE_BYTES = 30 * 24000 * 2  # 30 s of PCM16 at 24 kHz, the API's limit
# Fields of ``session.start`` that the session resource reports back as given.
_ECHOED = ("client", "delegation", "input", "instructions", "safety_identifier", "triggers")
# Commands that need delegation to Responses or Decisions, which the simulator does not run.
_DELEGATED = frozenset(
    {
        "decision.create",
        "decision.item.create",
        "decision.item.delete",
        "response.create",
        "response.item.create",
    }
)


def live_format(spec: Any) -> AudioFormat:
    """The session's audio format: PCM16 at 24 kHz (the default) or 16 kHz, or G.711 at 8 kHz."""
    if isinstance(spec, dict) and spec.get("type") == "audio/pcm" and spec.get("rate") == 16000:
        return PCM16K
    return AudioFormat.of(spec)


class _Reply:
    """One spoken reply: an audio delta every ``AUDIO_DELTA_EVERY_S`` (a 100 ms chunk), its words
    alongside, each word's ``start_ms``/``end_ms`` where its audio falls on the session timeline."""

    def __init__(self, text: str, fmt: AudioFormat, start_ms: int, now: float, pace: float) -> None:
        self.track = SpeechTrack(text, fmt)
        self.words = split_words(text)
        self.start_ms = start_ms
        self._chunks = 0
        self._said = 0
        self._t0 = now
        self._pace = pace
        self.next_due: float | None = now + pace * FIRST_OUTPUT_S
        per_char = self.track.duration_ms / max(1, len(text))
        self._word_spans: list[tuple[int, int]] = []
        position = 0
        for word in self.words:
            begin = start_ms + int(position * per_char)
            position += len(word)
            self._word_spans.append((begin, start_ms + int(position * per_char)))

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.track.duration_ms

    def step(self) -> list[Event]:
        track = self.track
        chunk_end = self.start_ms + (self._chunks + 1) * track.duration_ms // track.chunks
        out: list[Event] = []
        while self._said < len(self.words) and self._word_spans[self._said][0] < chunk_end:
            begin, end = self._word_spans[self._said]
            word = self.words[self._said]
            out.append(_event("session.output_transcript.delta", delta=word, start_ms=begin, end_ms=end))
            self._said += 1
        audio = base64.b64encode(track.chunk(self._chunks)).decode("ascii")
        out.append({"type": "session.output_audio.delta", "delta": audio})  # no event_id, as the API's
        self._chunks += 1
        if self._chunks >= track.chunks:
            self.next_due = None
        else:
            self.next_due = self._t0 + self._pace * (FIRST_OUTPUT_S + AUDIO_DELTA_EVERY_S * self._chunks)
        return out


def _event(kind: str, **fields: Any) -> Event:
    return {"type": kind, "event_id": "", **fields}


class LiveSimulator:
    """One simulated GPT-Live session; every method returns the frames to send, in order."""

    def __init__(self, *, pace: float, now: float, opened_at: float = 0.0) -> None:
        self.ids = IdMaker()
        self.pace = max(0.0, pace)
        self.ended = False
        self.session: Event | None = None  # the session resource, once started
        self._opened_at = opened_at  # Unix time, for ``expires_at``
        self._started_at = now
        self._format = PCM24K
        self._written_bytes = 0  # input audio, in the session format's bytes
        self._vad = EnergyVad()
        self._speech_start = 0
        self._muted = False
        self._reply: _Reply | None = None
        self._fixture_played_at: float | None = None
        self._fixture_client_id: str | None = None
        self._reported_seconds = -1

    # -- the simulator interface ---------------------------------------------------------------------

    def start(self, now: float) -> list[str]:
        """Nothing: the client speaks first (``session.start``)."""
        return []

    def receive(self, event: dict[str, Any], now: float) -> list[str]:
        out = self._due(now)
        out.extend(self._handle(event, now))
        out.extend(self._due(now))
        return self._frames(out)

    def poll(self, now: float) -> list[str]:
        return self._frames(self._due(now))

    def next_deadline(self) -> float | None:
        deadlines = [
            d for d in (self._reply and self._reply.next_due, self._fixture_played_at) if d is not None
        ]
        return min(deadlines, default=None)

    # -- client events -------------------------------------------------------------------------------

    def _handle(self, event: dict[str, Any], now: float) -> list[Event]:
        kind = event.get("type")
        client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if self.ended:
            return []
        if kind == "session.start":
            if self.session is not None:
                return [_error("session_already_started", "The session has already started.", client_id)]
            return self._start(event, now, client_id)
        if self.session is None:
            message = f"Send session.start and wait for session.started before {kind}."
            return [_error("session_not_started", message, client_id)]
        if kind in _DELEGATED:
            message = (
                f"The simulator does not run Responses or Decisions delegation, so it cannot take {kind}."
            )
            return [_error("delegation_not_configured", message, client_id, param="type")]
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return [
                _error("invalid_value", f"The simulator does not support '{kind}' events.", client_id, "type")
            ]
        return handler(self, event, now, client_id)

    def _start(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        config = event.get("session") or {}
        audio = config.get("audio") or {}
        output = audio.get("output") or {}
        fmt_spec = audio.get("format") or {"type": "audio/pcm", "rate": 24000}
        self._format = live_format(fmt_spec)
        self._started_at = now
        session: Event = {
            "id": self.ids.new("sess"),
            "expires_at": int(self._opened_at) + SESSION_SECONDS,
            "model": config.get("model"),
            "status": "active",
            "audio": {"format": fmt_spec, "output": {"voice": output.get("voice") or DEFAULT_VOICE}},
            "store": bool(config.get("store", False)),
        }
        session.update({name: config[name] for name in _ECHOED if name in config})
        self.session = session
        return [_event("session.started", session=session, client_event_id=client_id)]

    def _update(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        assert self.session is not None
        update = event.get("session") or {}
        for name in ("delegation", "triggers"):
            if name in update:
                self.session[name] = update[name]
        return [_event("session.updated", session=self.session, client_event_id=client_id)]

    def _append(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        data = binascii.a2b_base64(event["audio"])
        if self._muted:  # a muted session hears silence: the audio still moves its clock
            data = bytes(len(data))
        self._written_bytes += len(data)
        fmt = self._format
        end_sample = self._written_bytes // fmt.sample_bytes
        out: list[Event] = []
        for started, sample in self._vad.feed(data, fmt, end_sample, VAD_THRESHOLD, VAD_SILENCE_MS):
            if started:
                self._speech_start = sample
                self._reply = None  # speech cuts a reply off
            else:
                out.extend(self._heard(self._speech_start, sample, now))
        return out

    def _heard(self, start: int, end: int, now: float) -> list[Event]:
        """An utterance from sample ``start`` to ``end``: its transcript, and a spoken reply."""
        fmt = self._format
        start_ms, end_ms = int(fmt.ms(start)), int(fmt.ms(end))
        seconds = (end_ms - start_ms) / 1000
        transcript = _event(
            "session.input_transcript.delta",
            delta=f"({seconds:.1f} seconds of audio)",
            start_ms=start_ms,
            end_ms=end_ms,
        )
        self._say(reply_text(Heard("audio", audio_ms=end_ms - start_ms)), end_ms, now)
        return [transcript]

    def _say(self, text: str, after_ms: int, now: float) -> None:
        begin = max(after_ms, self._reply.end_ms if self._reply is not None else 0) + REPLY_LATENCY_MS
        self._reply = _Reply(text, self._format, begin, now, self.pace)

    def _mute(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        self._muted = True
        return [_event("session.input_audio.muted", client_event_id=client_id)]

    def _unmute(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        self._muted = False
        return [_event("session.input_audio.unmuted", client_event_id=client_id)]

    def _appended(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        """Instructions, thinking or commentary: acknowledged at the session's current point;
        commentary is also spoken, as the model would pass it on."""
        at = self._now_ms()
        kind = str(event["type"]).removesuffix("append") + "appended"
        out = [_event(kind, start_ms=at, end_ms=at, client_event_id=client_id)]
        if event["type"] == "session.commentary.append":
            self._say(reply_text(Heard("text", text=str(event.get("content", "")))), at, now)
        return out

    def _fixture(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        try:
            size = len(base64.b64decode(event["audio"], validate=True))
        except (binascii.Error, ValueError):
            return [_error("invalid_audio", "Invalid 'audio': not valid base64.", client_id, "audio")]
        if size > MAX_FIXTURE_BYTES:
            return [_error("invalid_value", "An audio fixture lasts at most 30 seconds.", client_id, "audio")]
        if self._fixture_played_at is not None:
            return [_error("fixture_active", "An audio fixture is already playing.", client_id)]
        self._reply = None  # the fixture interrupts the model's speech
        self._fixture_played_at = now + self.pace * size / (24000 * 2)
        self._fixture_client_id = client_id
        return [_event("session.output_audio.fixture.playing", client_event_id=client_id)]

    def _close(self, event: dict[str, Any], now: float, client_id: str | None) -> list[Event]:
        assert self.session is not None
        self.ended = True
        self._reply = None
        usage = {"seconds": self._seconds(now)}
        return [
            _event(
                "session.closed",
                reason="close_requested",
                session=self.session,
                usage=usage,
                client_event_id=client_id,
            )
        ]

    _handlers = {
        "session.update": _update,
        "session.input_audio.append": _append,
        "session.input_audio.mute": _mute,
        "session.input_audio.unmute": _unmute,
        "session.instructions.append": _appended,
        "session.thinking.append": _appended,
        "session.commentary.append": _appended,
        "session.output_audio.fixture.play": _fixture,
        "session.close": _close,
    }

    # -- time ------------------------------------------------------------------------------------------

    def _due(self, now: float) -> list[Event]:
        out: list[Event] = []
        if self._fixture_played_at is not None and self._fixture_played_at <= now:
            self._fixture_played_at = None
            out.append(_event("session.output_audio.fixture.played", client_event_id=self._fixture_client_id))
        reply = self._reply
        while reply is not None and reply.next_due is not None and reply.next_due <= now:
            out.extend(reply.step())
            if reply.next_due is None:
                self._reply = None
                out.append(_event("session.usage.updated", usage={"seconds": self._seconds(now)}))
        return out

    def _seconds(self, now: float) -> int:
        """Cumulative billable whole seconds: the session's time so far, never less than reported."""
        self._reported_seconds = max(self._reported_seconds, int(now - self._started_at))
        return self._reported_seconds

    def _now_ms(self) -> int:
        """The session timeline's current point: the input audio heard so far, or a reply's end."""
        heard = int(self._format.ms(self._written_bytes // self._format.sample_bytes))
        return max(heard, self._reply.end_ms if self._reply is not None else 0)

    def _frames(self, events: list[Event]) -> list[str]:
        new_id = self.ids.event
        for event in events:
            if event.get("event_id") == "":
                event["event_id"] = new_id()
        return [dumps(event) for event in events]


def _error(code: str, message: str, client_id: str | None, param: str | None = None) -> Event:
    error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
    error["client_event_id"] = client_id
    return {"type": "error", "event_id": "", "client_event_id": client_id, "error": error}
