"""The relay core: one client session as a sans-I/O state machine, for any endpoint.

An adapter feeds it what happened (the client connected, a frame arrived from either side, the
provider connection opened or failed, a side closed, time passed) and carries out the actions it
returns, in order. It reads no clock: every input that can start or end a timer takes ``now``
(seconds, monotonic), and :meth:`Relay.next_deadline` says when to call :meth:`Relay.tick`.

Timers: the provider handshake (UPSTREAM_CONNECT_TIMEOUT_SECONDS), the session's length
(MAX_SESSION_SECONDS and a gateway token's own limit), the client's silence (IDLE_TIMEOUT_SECONDS)
and the simulator's pacing. A limit that ends a session is counted in :mod:`shared.limits`.
Liveness is observed by the adapter (WebSocket pings, where the runtime has them) and reported with
:meth:`Relay.client_unresponsive` / :meth:`Relay.upstream_unresponsive`; a server going down
reports :meth:`Relay.shutting_down`, and a revoked gateway token :meth:`Relay.token_revoked`.

Accounting: given a :class:`~shared.usage.meter.UsageMeter`, the relay feeds it every frame, returns
a :class:`RecordUsage` every USAGE_CHECKPOINT_SECONDS and one when the session ends (however it
ends: a fallback that runs out and a revoked token too), logs the session's usage line, and enforces
the budgets (:mod:`shared.usage.budget`). Methods that end a session take an optional ``now``, so the
record's end is exact. The meter counts the provider's frames and bytes as they arrive, and reads
their numbers (tokens, audio) in the events the client is sent: after xAI's normaliser, a beta/GA
translation or Gemini's translator, those are OpenAI's events. After a fallback, the record names the
provider (and prices the model) that answered.

States: ``CONNECTING`` (provider handshake under way; client events are held, bounded),
``OPEN`` (frames flow both ways), ``CLOSED`` (both sides done or being closed; inputs are ignored).

Providers: the session's translation is chosen from the registry once (none, beta <-> GA, xAI's
normaliser, or Gemini Live's translator, which may move the session to a new connection:
:class:`~shared.actions.ReconnectUpstream`). With FALLBACK_PROVIDERS, a provider that fails before
its first event is replaced by the next (the same action), and the client's events so far go to it.

What differs between endpoints (:mod:`shared.endpoints`) is read from the plan once, when the
session starts: how client frames are checked and how errors look (its vocabulary), whether the
provider speaks first, and which simulator serves ``provider=simulator``; no frame pays for it.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import replace
from enum import Enum
from typing import Any

from .actions import (
    Action,
    CloseClient,
    CloseUpstream,
    ReconnectUpstream,
    RecordUsage,
    SendToClient,
    SendToUpstream,
)
from .config import Settings
from .errors import CloseCode, GatewayError, close_reason, sendable_close_code
from .handshake import Fallback, SessionPlan
from .inbound import Parser, RejectedFrame, oversize
from .limits import LIMIT_COUNTERS, LimitCounters
from .logs import USAGE_LOGGER, Structured
from .providers import UpstreamRequest
from .simulator import SimulatedSession
from .tokens import model_allowed
from .translation.gemini import Frames
from .translation.session import GeminiSession, SessionTranslation, gemini_session, session_translation
from .usage.meter import UsageMeter

logger = logging.getLogger("realtime_gateway")
usage_logger = logging.getLogger(USAGE_LOGGER)

# Where the provider speaks first, the gateway's own events (errors, notices) wait for its first
# event, so the client hears ``session.created`` first, as it would from the provider itself; this
# many at most, so a client sending garbage while the provider connects cannot grow the session's
# memory: past it, they go out at once, in order. (Where the client speaks first, as on GPT-Live,
# nothing comes before the answer to its first event, so nothing is held.)
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
        endpoint = plan.endpoint
        self._vocabulary = endpoint.vocabulary
        self._error_event = endpoint.vocabulary.error_event
        self._parse: Parser = endpoint.vocabulary.parse
        if plan.model_scope:
            self._parse = _model_scoped(self._parse, plan.model_scope)
        self.state = State.CONNECTING
        self.client_ready = False
        spec = settings.registry.get(plan.provider)
        self._name = spec.title if spec is not None else plan.provider  # what messages call the provider
        simulated = spec is not None and spec.kind == "simulator"
        # Client events held until the provider connection opens, and their size in bytes.
        self._held_for_upstream: deque[str] = deque()
        self._held_bytes = 0
        # Provider events held until the client socket is accepted (the adapter may open the
        # provider first to save a round trip; ``session.created`` must not be lost meanwhile).
        self._held_for_client: list[str | bytes] = []
        self._close_held_for_client: CloseClient | None = None
        # Whether the gateway's own events wait for the provider's first event: until it arrives,
        # at most MAX_HELD_GATEWAY_EVENTS of them.
        self._hold_gateway_events = endpoint.greets and not simulated and plan.upstream is not None
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
        self._simulator: SimulatedSession | None = None
        # Only sessions whose client and provider speak different interfaces, or whose provider
        # deviates from the one it claims to speak, pay for translation.
        self._translator: SessionTranslation | None = None
        # Gemini Live speaks neither OpenAI protocol: its translation also talks to the provider on its
        # own (the setup, tool responses) and may move the session to a new connection.
        self._gemini: GeminiSession | None = None
        self._reconnecting = False  # a ReconnectUpstream told, the new connection not open yet
        if plan.error is None:
            self._choose_translation()
        # FALLBACK_PROVIDERS: until the provider's first event, the client's events (raw, parsed) are
        # kept, so the next provider gets each exactly once if this one fails; the attempts share
        # UPSTREAM_CONNECT_TIMEOUT_SECONDS.
        self._fallbacks: list[Fallback] = list(plan.fallbacks)
        self._early: list[tuple[str, dict[str, Any]]] = []
        self._early_bytes = 0
        self._heard_provider = False
        self._connect_ends = now + settings.upstream_connect_timeout_seconds
        self._attempt_seconds = settings.upstream_connect_timeout_seconds / (1 + len(self._fallbacks))
        if plan.error is None:
            if simulated:
                assert callable(endpoint.simulator)  # the handshake refused the endpoints without one
                self._simulator = endpoint.simulator(plan.target, settings.simulator_pace, now)
            else:
                self._connect_deadline = now + self._attempt_seconds

    def _choose_translation(self) -> None:
        plan, settings = self.plan, self.settings
        spec = settings.registry.get(plan.provider)
        self._name = spec.title if spec is not None else plan.provider
        self._translator, self._gemini = None, None
        if spec is not None and spec.kind == "gemini":
            self._gemini = gemini_session(
                plan.client_protocol,
                plan.target.requested or plan.model,
                plan.model,
                settings.gemini_input_rate,
                (settings.max_pending_client_messages, settings.max_pending_client_bytes),
            )
        else:
            self._translator = session_translation(
                plan.client_protocol, plan.upstream_protocol, spec, plan.model
            )

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
            "session start endpoint=%s provider=%s model=%s protocol=%s->%s%s",
            plan.endpoint.name,
            plan.provider,
            plan.model or "-",
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
            self._reconnecting = False  # a connection the session moved to
            return [CloseUpstream(CloseCode.NORMAL, "client went away")] if self.closed else []
        self.state = State.OPEN
        if self.meter is not None:
            self.meter.connected(now)
        if self._gemini is not None:
            return self._gemini_opened()
        # Where the provider speaks first, the connect deadline keeps running until its first event
        # (session.created): a provider that accepts the socket and then says nothing has not
        # connected either. Where the client speaks first, the handshake is the connection.
        if not self.plan.endpoint.greets:
            self._connect_deadline = None
        actions: list[Action] = [SendToUpstream(frame) for frame in self._held_for_upstream]
        self._held_for_upstream.clear()
        self._held_bytes = 0
        return actions

    def upstream_failed(
        self, failure: UpstreamFailure, status: int | None = None, detail: str = "", now: float | None = None
    ) -> list[Action]:
        """The provider connection could not be opened. ``detail`` must hold no secret."""
        self._note_time(now)
        if self._reconnecting and self.state is State.OPEN:
            return self._connection_lost()
        if self.state is not State.CONNECTING:
            return []
        if failure is not UpstreamFailure.REJECTED or status is None or status == 429 or status >= 500:
            reason = f"HTTP {status}" if status is not None else failure.value
            fallback = self._fall_back(f"{reason}{f' ({detail})' if detail else ''}", now)
            if fallback is not None:
                return fallback
        name = self._name
        suffix = f" ({detail})" if detail else ""
        if failure is UpstreamFailure.REJECTED and status is not None:
            code, close = _REJECTION_CODES.get(status, ("upstream_error", CloseCode.BAD_GATEWAY))
            hint = _REJECTION_HINTS.get(status, "")
            message = f"{name} refused the connection: HTTP {status}{suffix}.{hint}"
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
            return self._report(self._vocabulary.too_large_error(size, limit), data, now)
        try:
            event = self._parse(data)
        except RejectedFrame as rejected:
            return self._report(rejected.error, data, now)
        if self.meter is not None:  # here, not in _client_event: a fallback's replay is not counted again
            self.meter.client_event(data, event, now)
        if self._fallbacks and not self._heard_provider:
            self._keep_early(data, event)
        return self._client_event(data, event, now)

    def _client_event(self, data: str, event: dict[str, Any], now: float) -> list[Action]:
        if self._gemini is not None and self.state is State.OPEN:
            return self._from_gemini(self._gemini.to_provider(event, data))
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
        return self._report(self._vocabulary.binary_frame_error(), data, now)

    def upstream_frame(self, data: str | bytes, now: float | None = None) -> list[Action]:
        """A frame from the provider: relayed to the client in order, translated if it must be."""
        if self.state is not State.OPEN:
            return []
        self._connect_deadline = None
        if not self._heard_provider:
            self._heard_provider = True
            self._fallbacks.clear()
            self._early.clear()
        meter = self.meter
        if self._gemini is not None:
            if meter is not None:
                meter.provider_arrived(data, now)
            return self._from_gemini(self._gemini.to_client(data))
        if self._translator is not None and isinstance(data, str):
            if meter is not None:
                meter.provider_arrived(data, now)
            return self._deliver(list(self._translator.to_client(data)), read=True)
        # Untranslated (the hot path): counted and read in one call. True: the cost may have moved.
        costed = meter is not None and meter.provider_frame(data, now)
        actions = self._deliver([data])
        if costed:
            actions += self._apply_budget()
        return actions

    def _deliver(self, frames: list[str | bytes], read: bool = False) -> list[Action]:
        """Provider frames (translated) to the client: held until it is accepted; the first ones
        release the gateway's own events held until then. ``read``: the meter reads their numbers
        (translated frames; the provider's own were read as they arrived)."""
        costed = False
        if read and self.meter is not None:
            for frame in frames:
                costed = self.meter.client_view(frame) or costed
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
        if not self._heard_provider and self.plan.endpoint.greets:
            fallback = self._fall_back(f"closed {code} before its first event", now)
            if fallback is not None:
                return fallback
        if self._gemini is not None:  # Gemini's session may go on, resumed on a new connection
            resumed = self._gemini.resume()
            if resumed.reconnect is not None:
                logger.info("gemini connection closed code=%s: resuming on a new one", code)
                return self._from_gemini(resumed)
        logger.info("session end by provider code=%s", code)
        name = self._name
        if code is None or code == 1006:
            return self._connection_lost()
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
        name = self._name
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

    def token_revoked(self, now: float | None = None) -> list[Action]:
        """The gateway token the session was opened with has been revoked: tell the client
        (``token_revoked``), close it (1008) and the provider (1001)."""
        if self.state is State.CLOSED:
            return []
        self._note_time(now)
        self._counters.hit("token_revoked", self._who())
        error = GatewayError(
            "token_revoked",
            "The gateway token this session was opened with has been revoked; the session was closed.",
        )
        return self._fail(
            error, CloseCode.POLICY_VIOLATION, close_upstream=True, upstream_reason="gateway token revoked"
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
            fallback = self._fall_back("timed out", now)
            if fallback is not None:
                return fallback
            seconds = self.settings.upstream_connect_timeout_seconds
            name = self._name
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

    def _keep_early(self, data: str, event: dict[str, Any]) -> None:
        """Keep a client event for the next provider; past the held-event limits, the session gives
        up its fallbacks rather than replay part of what the client said."""
        size = len(data.encode())  # exact here: only until the provider's first event
        settings = self.settings
        if (
            len(self._early) >= settings.max_pending_client_messages
            or self._early_bytes + size > settings.max_pending_client_bytes
        ):
            self._fallbacks.clear()
            self._early.clear()
            return
        self._early.append((data, event))
        self._early_bytes += size

    def _fall_back(self, reason: str, now: float | None = None) -> list[Action] | None:
        """The provider failed before its first event: the next of FALLBACK_PROVIDERS, if any is left;
        the client's events so far go to it, translated for it."""
        if not self._fallbacks or self._heard_provider or self.state is State.CLOSED:
            return None
        failed = self.plan.provider
        fallback = self._fallbacks.pop(0)
        logger.warning(
            "upstream attempt failed provider=%s reason=%s; trying provider=%s",
            failed,
            reason,
            fallback.provider,
        )
        self.plan = replace(
            self.plan,
            provider=fallback.provider,
            model=fallback.model,
            upstream_protocol=fallback.upstream_protocol,
            upstream=fallback.upstream,
            fallbacks=tuple(self._fallbacks),
        )
        self._choose_translation()
        if self.meter is not None:  # the record names the provider that answers, priced for its model
            self.meter.moved_to(self.plan)
        self.state = State.CONNECTING
        self._reconnecting = False
        self._held_for_upstream.clear()
        self._held_bytes = 0
        # Each attempt gets an equal share of the connect timeout, from when the last one gave up (a
        # refusal before its deadline leaves its time to the next), never past the overall end.
        since = now if now is not None else self._connect_deadline or self._connect_ends
        self._connect_deadline = min(self._connect_ends, since + self._attempt_seconds)
        actions: list[Action] = [ReconnectUpstream(fallback.upstream)]
        for data, event in self._early:  # held for the new provider, as if they came now
            actions += self._client_event(data, event, self._last_client_frame)
        return actions

    def _connection_lost(self) -> list[Action]:
        error = GatewayError(
            "upstream_connection_lost", f"The connection to {self._name} was lost.", type="server_error"
        )
        return self._fail(error, CloseCode.BAD_GATEWAY, close_upstream=False)

    def _gemini_opened(self) -> list[Action]:
        """Gemini's socket is open: the client's ``session.created``, then what it sent meanwhile."""
        assert self._gemini is not None
        self._connect_deadline = None  # Gemini says nothing before the setup; the socket is the answer
        actions = self._from_gemini(self._gemini.opened())
        for frame in self._held_for_upstream:
            actions += self._from_gemini(self._gemini.to_provider(json.loads(frame), frame))
        self._held_for_upstream.clear()
        self._held_bytes = 0
        return actions

    def _from_gemini(self, out: Frames) -> list[Action]:
        actions: list[Action] = []
        if out.reconnect is not None and self.plan.upstream is not None:
            self._reconnecting = True
            actions.append(ReconnectUpstream(self.plan.upstream, out.reconnect.setup))
        actions += [SendToUpstream(frame) for frame in out.provider]
        if out.client:
            actions += self._deliver(list(out.client), read=True)
        return actions

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
                    return actions
        assert self._simulator is not None
        if self._simulator.ended:  # it said its last (GPT-Live's session.closed): the session is over
            self.state = State.CLOSED
            actions.append(CloseClient(CloseCode.NORMAL, "session closed"))
            actions += self._finish("provider", CloseCode.NORMAL, "provider_closed")
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
        self._held_for_client.append(self._error_event(error))
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
        return self._to_client(self._error_event(error))

    def _note_time(self, now: float | None) -> None:
        if now is not None and self.meter is not None:
            self.meter.now = now

    def _apply_budget(self) -> list[Action]:
        """After a frame that moved the cost: a budget's notice, or the end of the session."""
        assert self.meter is not None
        event = self.meter.budget_event()
        if event is None or self.state is State.CLOSED:
            return []
        if not event.cut:
            return self._to_client(self._error_event(event.error))
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


def _model_scoped(parse: Parser, allowed: tuple[str, ...]) -> Parser:
    """``parse``, also refusing a ``session.start`` whose model a gateway token does not allow (the
    model GPT-Live names there, not in the URL). Only sessions with such a token pay for it."""

    def parse_scoped(data: str) -> dict[str, Any]:
        event = parse(data)
        if event.get("type") != "session.start":
            return event
        model = event["session"]["model"]  # validated: session.start needs session.model
        if model_allowed(allowed, model):
            return event
        event_id = event.get("event_id")
        raise RejectedFrame(
            GatewayError(
                "token_scope_denied",
                f"This token does not allow model {model!r}; it allows: {', '.join(allowed)}.",
                param="session.model",
                client_event_id=event_id if isinstance(event_id, str) else None,
            )
        )

    return parse_scoped
