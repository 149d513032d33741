"""The relay core: one client session as a sans-I/O state machine.

An adapter feeds it what happened (the client connected, a frame arrived from either side, the
provider connection opened or failed, a side closed, time passed) and carries out the actions it
returns, in order. It reads no clock: every input that can start or end a timer takes ``now``
(seconds, monotonic), and :meth:`Relay.next_deadline` says when to call :meth:`Relay.tick`.

Timers: the provider handshake (UPSTREAM_CONNECT_TIMEOUT_SECONDS), the session's length
(MAX_SESSION_SECONDS and a gateway token's own limit), the client's silence (IDLE_TIMEOUT_SECONDS)
and the simulator's pacing. A limit that ends a session is counted in :mod:`shared.limits`.
Liveness is observed by the adapter (WebSocket pings, where the runtime has them) and reported with
:meth:`Relay.client_unresponsive` / :meth:`Relay.upstream_unresponsive`; a server going down
reports :meth:`Relay.shutting_down`.

Accounting: given a :class:`~shared.usage.meter.UsageMeter`, the relay feeds it every frame, returns
a :class:`RecordUsage` every USAGE_CHECKPOINT_SECONDS and one when the session ends (however it
ends), logs the session's usage line, and enforces the budgets (:mod:`shared.usage.budget`). Methods
that end a session take an optional ``now``, so the record's end is exact.

States: ``CONNECTING`` (provider handshake under way; client events are held, bounded),
``OPEN`` (frames flow both ways), ``CLOSED`` (both sides done or being closed; inputs are ignored).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from enum import Enum
from typing import Any

from .actions import Action, CloseClient, CloseUpstream, RecordUsage, SendToClient, SendToUpstream
from .config import Settings
from .errors import CloseCode, GatewayError, close_reason, sendable_close_code
from .handshake import SessionPlan
from .inbound import (
    RejectedFrame,
    binary_frame_error,
    oversize,
    parse_client_event,
    too_large_error,
)
from .limits import LIMIT_COUNTERS, LimitCounters
from .logs import USAGE_LOGGER, Structured
from .providers import DISPLAY_NAMES, UpstreamRequest
from .simulator import Simulator
from .translation import Translator
from .usage.meter import UsageMeter

logger = logging.getLogger("realtime_gateway")
usage_logger = logging.getLogger(USAGE_LOGGER)

# The gateway's own events (errors, notices) wait for the provider's first event, so the client
# hears ``session.created`` first, as it would from the provider itself; this many at most, so a
# client sending garbage while the provider connects cannot grow the session's memory: past it,
# they go out at once, in order.
MAX_HELD_GATEWAY_EVENTS = 64


class State(Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class UpstreamFailure(Enum):
    """Why the provider connection could not be opened, as an adapter observes it."""

    UNREACHABLE = "unreachable"  # refused, DNS, TLS: no HTTP answer at all
    REJECTED = "rejected"  # an HTTP answer other than 101
    PROTOCOL = "protocol"  # a 101 that was not a valid WebSocket handshake


# How the provider's refusal of the handshake is reported: error code and close code by status.
_REJECTION_CODES: dict[int, tuple[str, int]] = {
    401: ("upstream_unauthorized", CloseCode.POLICY_VIOLATION),
    403: ("upstream_forbidden", CloseCode.POLICY_VIOLATION),
    404: ("upstream_not_found", CloseCode.POLICY_VIOLATION),
    429: ("upstream_rate_limited", CloseCode.TRY_AGAIN_LATER),
}
_REJECTION_HINTS = {
    401: " Check the API key.",
    403: " The key may not have access to this model.",
    404: " Check the model or deployment name.",
}


class Relay:
    """One client session between a client and its provider."""

    def __init__(
        self,
        plan: SessionPlan,
        settings: Settings,
        now: float,
        counters: LimitCounters = LIMIT_COUNTERS,
        meter: UsageMeter | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self._counters = counters
        # Accounting, when the adapter asked for it: the meter, and when its next checkpoint is due.
        self.meter = meter
        self._checkpoint_at = now + settings.usage_checkpoint_seconds if meter is not None else None
        self.state = State.CONNECTING
        self.client_ready = False
        # Client events held until the provider connection opens, and their size in bytes.
        self._held_for_upstream: deque[str] = deque()
        self._held_bytes = 0
        # Provider events held until the client socket is accepted (the adapter may open the
        # provider first to save a round trip; ``session.created`` must not be lost meanwhile).
        self._held_for_client: list[str | bytes] = []
        self._close_held_for_client: CloseClient | None = None
        # Whether the gateway's own events wait for the provider's first event: until it arrives,
        # at most MAX_HELD_GATEWAY_EVENTS of them.
        self._hold_gateway_events = plan.provider != "simulator" and plan.upstream is not None
        self._connect_deadline: float | None = None
        # MAX_SESSION_SECONDS or the gateway token's own limit, the shorter: the session ends then,
        # whatever it is doing. ``_session_limit`` is that length and what set it, for the message.
        self._session_deadline: float | None = None
        self._session_limit: tuple[float, str] | None = None
        # IDLE_TIMEOUT_SECONDS: the client's last frame, and when to look again. The check time moves
        # only when the timer fires, so a stream of client frames never re-arms the adapter's timer.
        self._idle_timeout: float | None = None
        self._last_client_frame = now
        self._idle_check_at: float | None = None
        if plan.error is None:
            limits = []
            if settings.max_session_seconds:
                limits.append((settings.max_session_seconds, "MAX_SESSION_SECONDS"))
            if plan.max_session_seconds is not None:
                limits.append((float(plan.max_session_seconds), "the gateway token's limit"))
            if limits:
                self._session_limit = min(limits)
                self._session_deadline = now + self._session_limit[0]
            if settings.idle_timeout_seconds:
                self._idle_timeout = settings.idle_timeout_seconds
                self._idle_check_at = now + self._idle_timeout
        self._simulator: Simulator | None = None
        # Only sessions whose client and provider speak different interfaces pay for translation.
        self._translator: Translator | None = None
        if plan.error is None and plan.client_protocol != plan.upstream_protocol:
            self._translator = Translator(plan.client_protocol, plan.upstream_protocol)
        if plan.error is None:
            if plan.provider == "simulator":
                self._simulator = Simulator(plan.model, pace=settings.simulator_pace, now=now)
            else:
                self._connect_deadline = now + settings.upstream_connect_timeout_seconds

    # -- what the adapter needs to know ----------------------------------------------------------

    @property
    def upstream_request(self) -> UpstreamRequest | None:
        """The provider handshake to make, or None when there is no socket to open."""
        return self.plan.upstream if self.plan.error is None else None

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called, or None if no timer is running."""
        if self.state is State.CLOSED:
            return None
        if self._connect_deadline is not None:
            timer = self._connect_deadline
        else:
            timer = self._simulator.next_deadline() if self._simulator is not None else None
        for limit in (self._session_deadline, self._idle_check_at, self._checkpoint_at):
            if limit is not None and (timer is None or limit < timer):
                timer = limit
        return timer

    # -- inputs ------------------------------------------------------------------------------------

    def client_connected(self, now: float) -> list[Action]:
        """The client's upgrade has been answered; frames can now be sent to it."""
        self.client_ready = True
        plan = self.plan
        logger.info(
            "session start provider=%s model=%s protocol=%s->%s%s",
            plan.provider,
            plan.model,
            plan.client_protocol,
            plan.upstream_protocol,
            f" subject={plan.subject!r}" if plan.subject is not None else "",
        )
        if plan.error is not None:
            return self._fail(plan.error, plan.error_close_code, close_upstream=False)
        if self._simulator is not None:
            self.state = State.OPEN
            return self._from_simulator(self._simulator.start(now), now)
        return self._release_held_for_client()

    def upstream_connected(self, now: float) -> list[Action]:
        """The provider accepted the WebSocket handshake: deliver what the client sent meanwhile."""
        if self.state is not State.CONNECTING:
            return [CloseUpstream(CloseCode.NORMAL, "client went away")] if self.closed else []
        self.state = State.OPEN
        if self.meter is not None:
            self.meter.connected(now)
        # The connect deadline keeps running until the provider's first event (session.created):
        # a provider that accepts the socket and then says nothing has not connected either.
        actions: list[Action] = [SendToUpstream(frame) for frame in self._held_for_upstream]
        self._held_for_upstream.clear()
        self._held_bytes = 0
        return actions

    def upstream_failed(
        self, failure: UpstreamFailure, status: int | None = None, detail: str = "", now: float | None = None
    ) -> list[Action]:
        """The provider connection could not be opened. ``detail`` must hold no secret."""
        if self.state is not State.CONNECTING:
            return []
        self._note_time(now)
        name = DISPLAY_NAMES.get(self.plan.provider, self.plan.provider)
        suffix = f" ({detail})" if detail else ""
        if failure is UpstreamFailure.REJECTED and status is not None:
            code, close = _REJECTION_CODES.get(status, ("upstream_error", CloseCode.BAD_GATEWAY))
            hint = _REJECTION_HINTS.get(status, "")
            message = f"{name} refused the realtime connection: HTTP {status}{suffix}.{hint}"
        elif failure is UpstreamFailure.PROTOCOL:
            code, close = "upstream_error", CloseCode.BAD_GATEWAY
            message = f"{name} answered with an invalid WebSocket handshake{suffix}."
        else:
            code, close = "upstream_unreachable", CloseCode.BAD_GATEWAY
            message = f"Could not reach {name}{suffix}."
        logger.warning("upstream failed provider=%s code=%s status=%s", self.plan.provider, code, status)
        return self._fail(GatewayError(code, message, type="server_error"), close, close_upstream=False)

    def client_text(self, data: str, now: float) -> list[Action]:
        """A text frame from the client: relay it as is, hold it, or answer with an error event."""
        if self.state is State.CLOSED:
            return []
        self._last_client_frame = now
        limit = self.settings.max_client_message_bytes
        size = oversize(data, limit)
        if size is not None:
            return self._report(too_large_error(size, limit), data, now)
        try:
            event = parse_client_event(data)
        except RejectedFrame as rejected:
            return self._report(rejected.error, data, now)
        if self.meter is not None:
            self.meter.client_event(data, event, now)
        if self._translator is not None:
            return self._translated_client_event(data, event, now)
        if self._simulator is not None:
            return self._from_simulator(self._simulator.receive(event, now), now)
        if self.state is State.OPEN:
            return [SendToUpstream(data)]
        return self._hold_for_upstream(data, event)

    def client_binary(self, data: bytes, now: float) -> list[Action]:
        """A binary frame from the client: the protocol has none, so it is refused, not relayed."""
        if self.state is State.CLOSED:
            return []
        self._last_client_frame = now
        return self._report(binary_frame_error(), data, now)

    def upstream_frame(self, data: str | bytes, now: float | None = None) -> list[Action]:
        """A frame from the provider: relayed to the client in order, translated if it must be."""
        if self.state is not State.OPEN:
            return []
        self._connect_deadline = None
        # Whether the frame moved the session's cost (a response.done, a Live usage update).
        costed = self.meter is not None and self.meter.provider_frame(data, now)
        if self._translator is not None and isinstance(data, str):
            frames: list[str | bytes] = list(self._translator.to_client(data))
        else:
            frames = [data]
        first, self._hold_gateway_events = self._hold_gateway_events, False
        if not self.client_ready:
            self._held_for_client += frames
            actions: list[Action] = []
        elif first:  # the provider's first event, then what the gateway held back meanwhile
            actions = [*(SendToClient(frame) for frame in frames), *self._release_held_for_client()]
        else:
            actions = [SendToClient(frame) for frame in frames]
        if costed:
            actions += self._apply_budget()
        return actions

    def client_closed(self, code: int | None, reason: str = "", now: float | None = None) -> list[Action]:
        """The client closed (or its connection dropped): close the provider side the same way."""
        if self.state is State.CLOSED:
            return []
        self.state = State.CLOSED
        logger.info("session end by client code=%s", code)
        self._note_time(now)
        record = self._finish("client", code, "client_closed")
        if self._simulator is not None:
            return record
        return [CloseUpstream(sendable_close_code(code, CloseCode.GOING_AWAY), close_reason(reason)), *record]

    def upstream_closed(self, code: int | None, reason: str = "", now: float | None = None) -> list[Action]:
        """The provider closed its side: tell the client, with the provider's code where it can."""
        if self.state is State.CLOSED:
            return []
        self._note_time(now)
        if self.state is State.CONNECTING:
            return self.upstream_failed(
                UpstreamFailure.UNREACHABLE, detail="connection closed during handshake"
            )
        logger.info("session end by provider code=%s", code)
        name = DISPLAY_NAMES.get(self.plan.provider, self.plan.provider)
        if code is None or code == 1006:
            error = GatewayError(
                "upstream_connection_lost",
                f"The connection to {name} was lost.",
                type="server_error",
            )
            return self._fail(error, CloseCode.BAD_GATEWAY, close_upstream=False)
        self.state = State.CLOSED
        reason = close_reason(reason or f"{name} closed the session")
        sent = sendable_close_code(code)
        return [
            *self._close_client(CloseClient(sent, reason)),
            *self._finish("provider", sent, "provider_closed"),
        ]

    def client_unresponsive(self, now: float | None = None) -> list[Action]:
        """The client did not answer the gateway's ping in time; the adapter has dropped its socket.

        The provider is closed (1001) with the reason; nothing can be sent to the client any more.
        """
        if self.state is State.CLOSED:
            return []
        self.state = State.CLOSED
        self._held_for_upstream.clear()
        self._counters.hit("client_unresponsive", self._who())
        self._note_time(now)
        record = self._finish("gateway", None, "client_unresponsive")
        if self._simulator is not None or self.plan.upstream is None:
            return record
        return [CloseUpstream(CloseCode.GOING_AWAY, "client stopped answering pings"), *record]

    def upstream_unresponsive(self, client_stalled: bool = False, now: float | None = None) -> list[Action]:
        """The provider did not answer the gateway's ping in time; the adapter has dropped its socket.

        ``client_stalled``: the gateway had stopped reading the provider because the client was not
        reading what it was sent (backpressure), so the provider's answer could not be read: the
        client, not the provider, stopped. Either way the client is told why, then closed.
        """
        if self.state is not State.OPEN:
            return []
        self._note_time(now)
        seconds = self.settings.ping_timeout_seconds
        if client_stalled:
            self._counters.hit("client_too_slow", self._who())
            error = GatewayError(
                "client_too_slow",
                "The client stopped reading the events sent to it, so the gateway stopped reading the "
                f"provider, whose connection then timed out ({seconds:g} s).",
            )
            return self._fail(error, CloseCode.POLICY_VIOLATION, close_upstream=False)
        self._counters.hit("upstream_unresponsive", self._who())
        name = DISPLAY_NAMES.get(self.plan.provider, self.plan.provider)
        error = GatewayError(
            "upstream_unresponsive",
            f"{name} stopped answering (no reply to a ping within {seconds:g} s); the connection "
            "to it was dropped.",
            type="server_error",
        )
        return self._fail(error, CloseCode.BAD_GATEWAY, close_upstream=False)

    def shutting_down(self, now: float | None = None) -> list[Action]:
        """The gateway is shutting down: tell the client, close both sides (1001)."""
        if self.state is State.CLOSED:
            return []
        self._note_time(now)
        logger.info("session end: server shutting down %s", self._who())
        error = GatewayError(
            "server_shutting_down",
            "The gateway is shutting down (restart or deploy); reconnect to continue.",
            type="server_error",
        )
        return self._fail(
            error, CloseCode.GOING_AWAY, close_upstream=True, upstream_reason="gateway shutting down"
        )

    def tick(self, now: float) -> list[Action]:
        """Time has passed: fire the timers that are due."""
        if self.state is State.CLOSED:
            return []
        self._note_time(now)
        if self._session_deadline is not None and now >= self._session_deadline:
            assert self._session_limit is not None
            seconds, source = self._session_limit
            self._counters.hit("session_expired", f"limit={seconds:g}s {self._who()}")
            error = GatewayError(
                "session_expired",
                f"Your session hit its maximum duration of {seconds:g} s ({source}).",
            )
            return self._fail(error, CloseCode.POLICY_VIOLATION, close_upstream=True)
        if self._idle_check_at is not None and now >= self._idle_check_at:
            assert self._idle_timeout is not None
            idle_until = self._last_client_frame + self._idle_timeout
            if now >= idle_until:
                self._counters.hit("idle_timeout", f"limit={self._idle_timeout:g}s {self._who()}")
                error = GatewayError(
                    "idle_timeout",
                    f"No event from the client for {self._idle_timeout:g} s (IDLE_TIMEOUT_SECONDS); "
                    "the session was closed.",
                )
                return self._fail(error, CloseCode.POLICY_VIOLATION, close_upstream=True)
            self._idle_check_at = idle_until
        if self._connect_deadline is not None and now >= self._connect_deadline:
            seconds = self.settings.upstream_connect_timeout_seconds
            name = DISPLAY_NAMES.get(self.plan.provider, self.plan.provider)
            if self.state is State.CONNECTING:
                what = "did not complete the handshake"
            else:
                what = "accepted the connection but sent no event (session.created)"
            error = GatewayError(
                "upstream_timeout", f"{name} {what} within {seconds:g} s.", type="server_error"
            )
            return self._fail(error, CloseCode.BAD_GATEWAY, close_upstream=True)
        actions: list[Action] = []
        if self._checkpoint_at is not None and now >= self._checkpoint_at and self.meter is not None:
            self._checkpoint_at = now + self.settings.usage_checkpoint_seconds
            actions.append(RecordUsage(self.meter.record(now)))
        if self.state is State.OPEN and self._simulator is not None:
            actions += self._from_simulator(self._simulator.poll(now), now)
        return actions

    # -- helpers -----------------------------------------------------------------------------------

    def _translated_client_event(self, data: str, event: dict[str, Any], now: float) -> list[Action]:
        assert self._translator is not None
        frames, notices = self._translator.to_upstream(event, data)
        actions: list[Action] = []
        for notice in notices:
            actions += self._to_client(notice)
        for frame in frames:
            if self._simulator is not None:
                translated = event if frame is data else json.loads(frame)
                actions += self._from_simulator(self._simulator.receive(translated, now), now)
            elif self.state is State.OPEN:
                actions.append(SendToUpstream(frame))
            else:
                actions += self._hold_for_upstream(frame, event)
        return actions

    def _from_simulator(self, frames: list[str], now: float) -> list[Action]:
        """The simulator's events to the client; metered like a provider's."""
        meter = self.meter
        actions: list[Action] = []
        for frame in frames:
            costed = meter is not None and meter.provider_frame(frame, now)
            if self._translator is None:
                actions.append(SendToClient(frame))
            else:
                actions += [SendToClient(out) for out in self._translator.to_client(frame)]
            if costed:
                actions += self._apply_budget()
                if self.state is State.CLOSED:  # the budget ended the session: nothing after that
                    break
        return actions

    def _to_client(self, frame: str) -> list[Action]:
        """An event of the gateway's own: held until the client is accepted and the provider spoke."""
        if self._hold_gateway_events and len(self._held_for_client) >= MAX_HELD_GATEWAY_EVENTS:
            self._hold_gateway_events = False
        if not self.client_ready or self._hold_gateway_events:
            self._held_for_client.append(frame)
            return []
        if self._held_for_client:
            return [*self._release_held_for_client(), SendToClient(frame)]
        return [SendToClient(frame)]

    def _hold_for_upstream(self, data: str, event: dict[str, Any]) -> list[Action]:
        settings = self.settings
        size = len(data.encode())  # exact here: only while connecting, off the hot path
        if (
            len(self._held_for_upstream) >= settings.max_pending_client_messages
            or self._held_bytes + size > settings.max_pending_client_bytes
        ):
            error = GatewayError(
                "buffer_full",
                "Too many events sent before the provider connection opened; this one was not "
                "relayed (MAX_PENDING_CLIENT_MESSAGES / MAX_PENDING_CLIENT_BYTES).",
                client_event_id=event.get("event_id") if isinstance(event.get("event_id"), str) else None,
            )
            return self._report(error)
        self._held_for_upstream.append(data)
        self._held_bytes += size
        return []

    def _release_held_for_client(self) -> list[Action]:
        actions: list[Action] = [SendToClient(frame) for frame in self._held_for_client]
        self._held_for_client.clear()
        if self._close_held_for_client is not None:
            actions.append(self._close_held_for_client)
            self._close_held_for_client = None
        return actions

    def _close_client(self, close: CloseClient) -> list[Action]:
        """Close the client after everything sent before; held until the client is accepted."""
        if self.client_ready:
            return [*self._release_held_for_client(), close]
        self._close_held_for_client = close
        return []

    def _who(self) -> str:
        """What the log says about the session: its provider and subject, never a secret."""
        plan = self.plan
        subject = f" subject={plan.subject!r}" if plan.subject is not None else ""
        return f"provider={plan.provider}{subject}"

    def _fail(
        self,
        error: GatewayError,
        close_code: int,
        *,
        close_upstream: bool,
        upstream_reason: str = "client session ended",
    ) -> list[Action]:
        """Report ``error`` to the client, then close the session."""
        self.state = State.CLOSED
        self._held_for_upstream.clear()
        self._held_for_client.append(error.to_event())
        if self.meter is not None:
            self.meter.error(error.code)
        actions: list[Action] = []
        if close_upstream:  # first: it may only mean abandoning a handshake, which is instant
            actions.append(CloseUpstream(CloseCode.GOING_AWAY, upstream_reason))
        actions += self._close_client(CloseClient(close_code, close_reason(error.message)))
        actions += self._finish("gateway", close_code, error.code)
        return actions

    # -- accounting --------------------------------------------------------------------------------

    def _report(
        self, error: GatewayError, frame: str | bytes | None = None, now: float | None = None
    ) -> list[Action]:
        """An error event for a ``frame`` the client sent, not relayed; the session goes on."""
        if self.meter is not None:
            if frame is not None and now is not None:
                self.meter.client_frame(frame, now)
            self.meter.error(error.code)
        return self._to_client(error.to_event())

    def _note_time(self, now: float | None) -> None:
        if now is not None and self.meter is not None:
            self.meter.now = now

    def _apply_budget(self) -> list[Action]:
        """After a frame that moved the cost: a budget's notice, or the end of the session."""
        assert self.meter is not None
        event = self.meter.budget_event()
        if event is None:
            return []
        if not event.cut:
            return self._to_client(event.error.to_event())
        self._counters.hit("budget_exceeded", self._who())
        return self._fail(
            event.error, CloseCode.POLICY_VIOLATION, close_upstream=True, upstream_reason="budget exceeded"
        )

    def _finish(self, closed_by: str, close_code: int | None, outcome: str) -> list[Action]:
        """The session's final usage record, and its log line (nothing without a meter)."""
        meter = self.meter
        if meter is None or meter.finished:
            return []
        self._checkpoint_at = None
        record = meter.finish(closed_by, close_code, outcome)
        usage_logger.info(Structured("session usage", record.fields()))
        return [RecordUsage(record)]
