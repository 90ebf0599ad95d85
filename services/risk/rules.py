"""Inline risk rules: pure logic, no sockets. Every opportunity gets a decision with a reason."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.config import Risk
from shared.messages import ACTION_OPEN, STRATEGY_CROSS, Execution, Opportunity

APPROVED = "approved"
KILL_SWITCH = "kill_switch"
TOO_OLD = "opportunity_too_old"
MAX_NOTIONAL = "max_notional"
MAX_DAILY_LOSS = "max_daily_loss"
MAX_CONCURRENT = "max_concurrent"
SYMBOL_IN_FLIGHT = "symbol_in_flight"
EXECUTOR_UNAVAILABLE = "executor_unavailable"
NOT_EXECUTABLE = "strategy_not_executable"

# Strategies the executor can carry out today. Triangular cycles and spot-perp carry are detected, sized and
# reported, but the executor has no three-leg or perpetual order path yet: risk refuses them by name instead
# of letting a partial strategy trade.
EXECUTABLE = frozenset({(STRATEGY_CROSS, ACTION_OPEN)})

REASONS = (
    APPROVED,
    KILL_SWITCH,
    TOO_OLD,
    MAX_NOTIONAL,
    MAX_DAILY_LOSS,
    MAX_CONCURRENT,
    SYMBOL_IN_FLIGHT,
    EXECUTOR_UNAVAILABLE,
    NOT_EXECUTABLE,
)

NS_PER_DAY = 86_400 * 1_000_000_000


def utc_day(wall_ns: int) -> int:
    return wall_ns // NS_PER_DAY


@dataclass
class RiskBook:
    """Limits, today's realized PnL and the executions in flight."""

    limits: Risk
    halted: bool = False
    day: int = field(default_factory=lambda: utc_day(time.time_ns()))
    daily_pnl_usd: float = 0.0
    in_flight: dict[int, int] = field(default_factory=dict)  # opportunity id -> symbol id
    decisions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def check(self, opp: Opportunity, now_ns: int) -> str:
        """The first rule that refuses ``opp``, or APPROVED. Cheapest and most decisive rules first."""
        lim = self.limits
        if self.halted:
            return KILL_SWITCH
        if (opp.strategy, opp.action) not in EXECUTABLE:
            return NOT_EXECUTABLE
        if now_ns - opp.detected_ns > lim.max_opportunity_age_ms * 1e6:
            return TOO_OLD
        if opp.notional_usd > lim.max_notional_usd:
            return MAX_NOTIONAL
        self._roll_day()
        if self.daily_pnl_usd <= -lim.max_daily_loss_usd:
            return MAX_DAILY_LOSS
        if len(self.in_flight) >= lim.max_concurrent:
            return MAX_CONCURRENT
        if opp.symbol in self.in_flight.values():
            return SYMBOL_IN_FLIGHT
        return APPROVED

    def decide(self, opp: Opportunity, now_ns: int) -> str:
        reason = self.check(opp, now_ns)
        if reason == APPROVED:
            self.in_flight[opp.id] = opp.symbol
        self.decisions[reason] += 1
        return reason

    def handoff_failed(self, opp: Opportunity) -> None:
        """The approved intent never reached the executor: free its slot and book the real reason."""
        if self.in_flight.pop(opp.id, None) is not None:
            self.decisions[APPROVED] -= 1
            self.decisions[EXECUTOR_UNAVAILABLE] += 1

    def on_execution(self, exe: Execution) -> bool:
        """Book an execution's outcome; False when it was not one of ours (e.g. after a restart)."""
        self._roll_day()
        self.daily_pnl_usd += exe.pnl_usd
        return self.in_flight.pop(exe.opportunity_id, None) is not None

    def _roll_day(self) -> None:
        today = utc_day(time.time_ns())
        if today != self.day:
            self.day = today
            self.daily_pnl_usd = 0.0
