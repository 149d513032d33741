"""Spend caps, decided in the core from the numbers the relay reads: a session's and a subject's day.

Two budgets may apply to a session, both in USD:

- the gateway token's ``max_cost_usd`` (claim ``mcu``), for the session alone;
- BUDGET_USD_PER_SUBJECT_PER_DAY, for everything a token's subject spends in a UTC day: what the
  ledger holds for the subject's sessions started that day, when the session opens, plus the
  session's own cost as it grows.

When the session's cost reaches WARNING_FRACTION of a budget, the client gets a ``budget_warning``
notice (an ``error`` event of type ``invalid_request_error``, like the gateway's other notices; the
session goes on). When a ``response.done`` (or a GPT-Live usage update) brings it to the budget or
past it, the response is delivered whole, then the client gets ``budget_exceeded`` and a close 1008.
A subject already at its day's budget is refused the same way when it connects, and so is a session
under a budget whose model has no price: its cost could not be counted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import Settings
from ..errors import CloseCode, GatewayError
from ..handshake import SessionPlan
from ..limits import LIMIT_COUNTERS, LimitCounters
from .prices import PriceTable

WARNING_FRACTION = 0.8


def usd(amount: float) -> str:
    """``$12.50``, ``$0.50``; under a dollar, up to four decimals (``$0.013``, ``$0.0116``)."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    if amount < 0.0001:
        return "$" + f"{amount:.8f}".rstrip("0")
    decimals = f"{amount:.4f}".rstrip("0").split(".")[1]
    return f"${amount:.{max(2, len(decimals))}f}"


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """What a budget says about the session's cost: a notice (``cut`` false), or the end of it."""

    error: GatewayError
    cut: bool


class Budget:
    """The budgets of one session, and which notice has been given."""

    def __init__(
        self, session_limit: float | None, day_limit: float | None, spent_today: float = 0.0
    ) -> None:
        self.session_limit = session_limit
        self.day_limit = day_limit
        self.spent_today = spent_today
        self._warned = False

    @classmethod
    def of(cls, plan: SessionPlan, settings: Settings, spent_today: float = 0.0) -> Budget:
        day = settings.budget_usd_per_subject_per_day
        return cls(plan.max_cost_usd, day if day and plan.subject is not None else None, spent_today)

    @property
    def active(self) -> bool:
        return self.session_limit is not None or self.day_limit is not None

    def refusal(self) -> GatewayError | None:
        """Why the session may not start at all: its subject has spent its day's budget."""
        if self.day_limit is not None and self.spent_today >= self.day_limit:
            return GatewayError(
                "budget_exceeded",
                f"You have spent {usd(self.spent_today)} today (UTC), your daily budget of "
                f"{usd(self.day_limit)} (BUDGET_USD_PER_SUBJECT_PER_DAY); no session can start until "
                "tomorrow.",
            )
        return None

    def check(self, session_cost: float) -> BudgetEvent | None:
        """The event the session's cost, now ``session_cost``, calls for, if any (each notice once)."""
        day_cost = self.spent_today + session_cost
        if self.session_limit is not None and session_cost >= self.session_limit:
            return BudgetEvent(
                GatewayError(
                    "budget_exceeded",
                    f"This session has cost {usd(session_cost)}, its budget of {usd(self.session_limit)} "
                    "(the gateway token's max_cost_usd); it ends here, after the last response.",
                ),
                cut=True,
            )
        if self.day_limit is not None and day_cost >= self.day_limit:
            return BudgetEvent(
                GatewayError(
                    "budget_exceeded",
                    f"You have spent {usd(day_cost)} today (UTC), your daily budget of {usd(self.day_limit)} "
                    "(BUDGET_USD_PER_SUBJECT_PER_DAY); this session ends here, after the last response.",
                ),
                cut=True,
            )
        if self._warned:
            return None
        if self.session_limit is not None and session_cost >= WARNING_FRACTION * self.session_limit:
            self._warned = True
            return BudgetEvent(
                GatewayError(
                    "budget_warning",
                    f"This session has cost {usd(session_cost)} of its {usd(self.session_limit)} budget "
                    "(the gateway token's max_cost_usd); it ends once a response takes it to the budget.",
                ),
                cut=False,
            )
        if self.day_limit is not None and day_cost >= WARNING_FRACTION * self.day_limit:
            self._warned = True
            return BudgetEvent(
                GatewayError(
                    "budget_warning",
                    f"You have spent {usd(day_cost)} of your {usd(self.day_limit)} daily budget "
                    "(BUDGET_USD_PER_SUBJECT_PER_DAY); this session ends once a response takes you to it.",
                ),
                cut=False,
            )
        return None


def budget_plan(
    plan: SessionPlan,
    settings: Settings,
    prices: PriceTable,
    spent_today: float = 0.0,
    counters: LimitCounters = LIMIT_COUNTERS,
) -> SessionPlan:
    """``plan``, or a plan carrying the refusal (reported on the accepted socket, close 1008) when a
    budget applies and the subject has spent its day, or the model has no price to count it by.

    ``spent_today`` is the subject's spend in the ledger for today (UTC), which the adapter reads
    only when the day budget applies (:func:`needs_spend`).
    """
    if plan.error is not None:
        return plan
    budget = Budget.of(plan, settings, spent_today)
    if not budget.active:
        return plan
    error = budget.refusal()
    if error is not None:
        counters.hit("budget_exceeded", f"limit=BUDGET_USD_PER_SUBJECT_PER_DAY subject={plan.subject!r}")
    elif prices.get(plan.model) is None:
        error = GatewayError(
            "model_not_priced",
            f"Model {plan.model!r} has no price on this gateway, so the budget this session runs under "
            "could not be counted; use a priced model, or ask the operator to price it (PRICES_FILE).",
            param="model",
        )
    if error is None:
        return plan
    return replace(plan, upstream=None, error=error, error_close_code=CloseCode.POLICY_VIOLATION)


def needs_spend(plan: SessionPlan, settings: Settings) -> bool:
    """Whether the session's subject's spend today must be read before it starts."""
    return plan.error is None and plan.subject is not None and settings.budget_usd_per_subject_per_day > 0
