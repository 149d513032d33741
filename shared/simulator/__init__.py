"""The simulator provider (``provider=simulator``): an in-process stand-in for OpenAI's realtime model.

It speaks the GA protocol as OpenAI does (session, conversation items, server VAD, input
transcription, paced audio/text responses, function calls, cancellation, OpenAI-shaped errors),
so clients can be developed and demonstrated with no key and no network. Sans-I/O like the rest
of ``shared``: time is only the ``now`` passed in (monotonic seconds); the caller sends the frames
returned and calls :meth:`Simulator.poll` at :meth:`Simulator.next_deadline`.

Modules: ``session`` (state machine), ``response`` (a paced response stream), ``audio``
(synthetic voice and energy VAD), ``replies`` (what it says), ``events`` (server event builders),
``config`` (the session object), ``conversation`` (bounded item store), ``transcription``,
``g711`` and ``ids``; ``live`` is its GPT-Live personality (``/v1/live/sessions``), built from the
same voice, VAD and replies.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..wire import dumps
from .events import Event
from .session import SimSession


class SimulatedSession(Protocol):
    """An in-process provider session (``provider=simulator``), whatever its protocol: client events
    in, server frames out (see :class:`Simulator`)."""

    @property
    def ended(self) -> bool:
        """The session is over (its last frames were returned): the gateway closes the client (1000)."""
        ...

    def start(self, now: float) -> list[str]: ...
    def receive(self, event: dict[str, Any], now: float) -> list[str]: ...
    def poll(self, now: float) -> list[str]: ...
    def next_deadline(self) -> float | None: ...


__all__ = ["SimulatedSession", "Simulator"]


class Simulator:
    """One simulated realtime session; every method returns the frames to send, in order."""

    ended = False  # a Realtime session ends when the client goes

    def __init__(self, model: str, *, pace: float, now: float) -> None:
        self._session = SimSession(model, pace)

    def start(self, now: float) -> list[str]:
        """The frames to send when the session opens: ``session.created``."""
        return self._frames(self._session.created())

    def receive(self, event: dict[str, Any], now: float) -> list[str]:
        """Handle a client event (parsed and validated by the gateway); returns the frames due now."""
        session = self._session
        out = session.due(now)  # what came due before this event goes first
        out.extend(session.handle(event, now))
        out.extend(session.due(now))
        return self._frames(out)

    def poll(self, now: float) -> list[str]:
        """The frames that became due by ``now``, in order."""
        return self._frames(self._session.due(now))

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next has something to send; None while idle."""
        return self._session.next_deadline()

    def _frames(self, events: list[Event]) -> list[str]:
        new_id = self._session.ids.event
        frames = []
        for event in events:
            event["event_id"] = new_id()
            frames.append(dumps(event))  # lone surrogates from the client's text stay escaped
        return frames
