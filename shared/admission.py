"""Whether a new session may open now: sessions per process, per token subject, per subject per minute.

Sans-I/O bookkeeping that an adapter holds one of per process (on Cloudflare: per isolate) and
consults once the upgrade request has been planned, passing the time in (monotonic seconds). An
admitted session holds a :class:`Ticket` that the adapter releases when the session ends.

A session over a limit is not refused before the upgrade: the socket is accepted and the client
gets an ``error`` event (``too_many_sessions`` or ``rate_limited``) and a close 1013 (try again
later), which every client can read (a browser cannot read a refused upgrade's status or body).
The plan carries the refusal (:meth:`Admission.admit_plan`), so the relay reports it as it reports
any error known at the handshake, and no provider connection is opened.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from .config import Settings
from .errors import CloseCode, GatewayError
from .handshake import SessionPlan
from .limits import LIMIT_COUNTERS, LimitCounters

WINDOW_SECONDS = 60.0  # the sliding window of SESSIONS_PER_MINUTE_PER_SUBJECT


@dataclass(eq=False, slots=True)
class Ticket:
    """An admitted session's place; give it back with :meth:`Admission.release` when it ends."""

    subject: str | None
    released: bool = False
    started: float | None = None  # the start it added to its subject's window, if it added one


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a session may not open now: the error event to send, then the close code."""

    error: GatewayError
    close_code: int


class Admission:
    """Counts of live sessions (all, per subject) and each subject's recent starts."""

    def __init__(self, settings: Settings, counters: LimitCounters = LIMIT_COUNTERS) -> None:
        self._settings = settings
        self._counters = counters
        self.live = 0
        self._live_by_subject: dict[str, int] = {}
        # Start times of each subject's sessions in the last WINDOW_SECONDS, oldest first.
        self._starts: dict[str, deque[float]] = {}
        self._next_sweep = -math.inf

    def live_for(self, subject: str) -> int:
        return self._live_by_subject.get(subject, 0)

    def admit(self, subject: str | None, now: float) -> Ticket | Refusal:
        """Admit a session for ``subject`` (None: no gateway token) at ``now``, or refuse it."""
        settings = self._settings
        started = None
        if settings.max_sessions and self.live >= settings.max_sessions:
            return self._refuse(
                "too_many_sessions",
                f"This gateway is serving its maximum of {settings.max_sessions} sessions "
                "(MAX_SESSIONS); try again later.",
                "MAX_SESSIONS",
                subject,
                type="server_error",
            )
        if subject is not None:
            limit = settings.max_sessions_per_subject
            if limit and self._live_by_subject.get(subject, 0) >= limit:
                return self._refuse(
                    "too_many_sessions",
                    f"You already have {limit} sessions open, the most allowed at once "
                    "(MAX_SESSIONS_PER_SUBJECT); close one and try again.",
                    "MAX_SESSIONS_PER_SUBJECT",
                    subject,
                )
            too_soon = self.count_start(subject, now)
            if too_soon is not None:
                return too_soon
            if self._settings.sessions_per_minute_per_subject:
                started = now  # the start count_start added to the window
            self._live_by_subject[subject] = self._live_by_subject.get(subject, 0) + 1
        self.live += 1
        return Ticket(subject, started=started)

    def count_start(self, subject: str, now: float) -> Refusal | None:
        """Count a session ``subject`` starts at ``now`` against SESSIONS_PER_MINUTE_PER_SUBJECT, or
        refuse it (not counted). Also for sessions the gateway does not hold: a minted client secret,
        a WebRTC call, a Live session, relayed over HTTP."""
        per_minute = self._settings.sessions_per_minute_per_subject
        if not per_minute:
            return None
        starts = self._recent_starts(subject, now)
        if len(starts) >= per_minute:
            wait = self.retry_after(subject, now)
            return self._refuse(
                "rate_limited",
                f"You opened {per_minute} sessions in the last {WINDOW_SECONDS:g} s, the most "
                f"allowed (SESSIONS_PER_MINUTE_PER_SUBJECT); try again in {wait} s.",
                "SESSIONS_PER_MINUTE_PER_SUBJECT",
                subject,
            )
        starts.append(now)
        return None

    def retry_after(self, subject: str, now: float) -> int:
        """Whole seconds until ``subject``'s oldest start in the window leaves it (at least 1)."""
        starts = self._starts.get(subject)
        if not starts:
            return 1
        return max(1, math.ceil(starts[0] + WINDOW_SECONDS - now))

    def admit_plan(self, plan: SessionPlan, now: float) -> tuple[SessionPlan, Ticket | None]:
        """Admit the session ``plan`` describes: the plan unchanged and a ticket, or a plan carrying
        the refusal (reported on the accepted socket, no provider connection) and no ticket.

        A plan that already carries an error (no key, unknown provider) is not counted: it ends as
        soon as the client is told.
        """
        if plan.error is not None:
            return plan, None
        outcome = self.admit(plan.subject, now)
        if isinstance(outcome, Refusal):
            refused = replace(plan, upstream=None, error=outcome.error, error_close_code=outcome.close_code)
            return refused, None
        return plan, outcome

    def release(self, ticket: Ticket | None) -> None:
        """The session holding ``ticket`` ended (releasing twice, or None, does nothing)."""
        if ticket is None or ticket.released:
            return
        ticket.released = True
        self.live -= 1
        subject = ticket.subject
        if subject is not None:
            left = self._live_by_subject.get(subject, 0) - 1
            if left > 0:
                self._live_by_subject[subject] = left
            else:
                self._live_by_subject.pop(subject, None)

    def withdraw(self, ticket: Ticket) -> None:
        """Release ``ticket`` as if it had never been admitted: its start leaves the window too
        (another limit, such as the fleet's, refused the session after this one admitted it)."""
        if ticket.released:
            return
        self.release(ticket)
        starts = self._starts.get(ticket.subject) if ticket.subject is not None else None
        if starts is not None and ticket.started is not None and ticket.started in starts:
            starts.remove(ticket.started)

    # -- helpers -------------------------------------------------------------------------------------

    def _recent_starts(self, subject: str, now: float) -> deque[float]:
        """``subject``'s starts within the window (older ones dropped); stale subjects swept now and then."""
        if now >= self._next_sweep:
            self._next_sweep = now + WINDOW_SECONDS
            stale = [
                name
                for name, starts in self._starts.items()
                if not starts or starts[-1] <= now - WINDOW_SECONDS
            ]
            for name in stale:
                del self._starts[name]
        starts = self._starts.setdefault(subject, deque())
        while starts and starts[0] <= now - WINDOW_SECONDS:
            starts.popleft()
        return starts

    def _refuse(
        self, code: str, message: str, setting: str, subject: str | None, type: str = "invalid_request_error"
    ) -> Refusal:
        detail = f"limit={setting}" + (f" subject={subject!r}" if subject is not None else "")
        self._counters.hit(code, detail)
        return Refusal(GatewayError(code, message, type=type), CloseCode.TRY_AGAIN_LATER)
