"""Circuit breakers: pure logic over ``BreakerState`` and a wall clock passed in (tests inject it).

- loss breaker: the executions booked within ``loss_window_s`` sum to a loss of ``loss_breaker_usd`` or
  more -> halt for ``breaker_cooldown_s``.
- failure breaker: ``failure_breaker_count`` executions ending unwound, hedged, orphaned or rejected within
  ``failure_window_s`` -> halt for the cooldown. The funding carry has its own (same limits): its orders go to
  the perpetual venues, so the spot strategies' unwinds halt the spot strategies and the carry's the carry.
- orphan latch: an orphaned execution left exposure nobody hedged; trading halts at once and stays halted
  until an operator resumes (no cooldown: a human has to look at the position).

A trip consumes the history that caused it: after the cooldown the window starts empty, so the same losses
cannot trip the breaker again on the next (even profitable) execution. Every trip yields an ``Alert``.
"""

from __future__ import annotations

import math
import time
from typing import TypeVar

from services.risk.state import BreakerState
from shared.config import Risk
from shared.messages import (
    OUTCOME_HEDGED,
    OUTCOME_ORPHANED,
    OUTCOME_REJECTED,
    OUTCOME_UNWOUND,
    STRATEGY_FUNDING,
    Alert,
    Execution,
)

LOSS_BUCKET_MS = 1000  # executions in the same wall-clock second share one loss entry

FAILURE_OUTCOMES = frozenset({OUTCOME_UNWOUND, OUTCOME_HEDGED, OUTCOME_ORPHANED, OUTCOME_REJECTED})

LOSS = "loss"
FAILURE = "failure"
CARRY_FAILURE = "carry_failure"
ORPHAN = "orphan"

ALERT_LOSS = "loss_breaker"
ALERT_FAILURE = "failure_breaker"
ALERT_ORPHAN = "orphan"

T = TypeVar("T")


def alert(kind: str, message: str, until_ms: int) -> Alert:
    """Alerts are stamped with the wall clock, as the executor's are: the bridge records ``ts_ns`` as is."""
    return Alert(source="risk", kind=kind, message=message, until_ms=until_ms, ts_ns=time.time_ns())


class Breakers:
    def __init__(self, limits: Risk, state: BreakerState) -> None:
        self.state = state
        self.loss_limit = limits.loss_breaker_usd
        self.loss_window_ms = int(limits.loss_window_s * 1000)
        self.failure_count = limits.failure_breaker_count
        self.failure_window_ms = int(limits.failure_window_s * 1000)
        self.cooldown_ms = int(limits.breaker_cooldown_s * 1000)
        self.trips: dict[str, int] = {LOSS: 0, FAILURE: 0, ORPHAN: 0}

    # ----- queries (the decision path reads state fields directly; these are for status and gauges)
    def loss_open(self, wall_ms: int) -> bool:
        return self.state.loss_until_ms > wall_ms

    def failure_open(self, wall_ms: int) -> bool:
        return self.state.orphan or self.state.failure_until_ms > wall_ms

    def status(self, wall_ms: int) -> dict[str, object]:
        s = self.state
        return {
            "loss": {"open": self.loss_open(wall_ms), "until_ms": s.loss_until_ms,
                     "window_pnl_usd": sum(p for _, p in s.losses), "trips": self.trips[LOSS]},
            "failure": {"open": self.failure_open(wall_ms), "until_ms": s.failure_until_ms,
                        "window_failures": len(s.failures), "trips": self.trips[FAILURE]},
            "carry_failure": {"open": s.carry_failure_until_ms > wall_ms, "until_ms": s.carry_failure_until_ms,
                              "window_failures": len(s.carry_failures)},
            "orphan": {"open": s.orphan, "note": s.orphan_note, "trips": self.trips[ORPHAN]},
        }

    # ----- events
    def record(self, exe: Execution, wall_ms: int) -> list[Alert]:
        """Book one execution into the windows; the alerts of every breaker it trips."""
        s = self.state
        out: list[Alert] = []
        if exe.pnl_usd != 0 and math.isfinite(exe.pnl_usd):
            _prune(s.losses, wall_ms - self.loss_window_ms)
            if s.losses and s.losses[-1][0] // LOSS_BUCKET_MS == wall_ms // LOSS_BUCKET_MS:
                # One entry per wall-clock second at most: the window (and the state file) stays small at any
                # execution rate; the entry keeps the second's latest stamp, so nothing leaves the window early.
                s.losses[-1] = (wall_ms, s.losses[-1][1] + exe.pnl_usd)
            else:
                s.losses.append((wall_ms, exe.pnl_usd))
            window_pnl = math.fsum(p for _, p in s.losses)
            if window_pnl <= -self.loss_limit and not self.loss_open(wall_ms):
                s.loss_until_ms = wall_ms + self.cooldown_ms
                s.losses.clear()
                self.trips[LOSS] += 1
                out.append(alert(
                    ALERT_LOSS,
                    f"loss breaker: {window_pnl:.2f} USD within {self.loss_window_ms // 1000}s "
                    f"(limit -{self.loss_limit:.2f}); trading halted for {self.cooldown_ms // 1000}s",
                    s.loss_until_ms,
                ))
        if exe.outcome in FAILURE_OUTCOMES:
            carry = exe.strategy == STRATEGY_FUNDING
            failures = s.carry_failures if carry else s.failures
            until = s.carry_failure_until_ms if carry else s.failure_until_ms
            _prune(failures, wall_ms - self.failure_window_ms)
            failures.append((wall_ms, exe.outcome))
            if len(failures) >= self.failure_count and not until > wall_ms:
                outcomes = ", ".join(o for _, o in failures)
                until = wall_ms + self.cooldown_ms
                if carry:
                    s.carry_failure_until_ms = until
                else:
                    s.failure_until_ms = until
                failures.clear()
                self.trips[FAILURE] += 1
                what = "funding carries" if carry else "trading"
                out.append(alert(
                    ALERT_FAILURE,
                    f"failure breaker: {self.failure_count} failed executions within "
                    f"{self.failure_window_ms // 1000}s ({outcomes}); {what} halted for {self.cooldown_ms // 1000}s",
                    until,
                ))
        if exe.outcome == OUTCOME_ORPHANED:
            note = f"opportunity {exe.opportunity_id} orphaned: {exe.note or 'imbalance outlived the deadline'}"
            latched = self.latch_orphan(note)
            if latched is not None:
                out.append(latched)
        return out

    def latch_orphan(self, note: str) -> Alert | None:
        """Halt until an operator resumes; None when already latched (one alert per halt)."""
        s = self.state
        self.trips[ORPHAN] += 1
        if s.orphan:
            s.orphan_note = f"{s.orphan_note}; {note}"[-500:]
            return None
        s.orphan = True
        s.orphan_note = note
        return alert(ALERT_ORPHAN, f"{note}; unhedged exposure: trading halted until an operator resumes", 0)

    def poll(self, wall_ms: int) -> list[str]:
        """Cooldowns that have ended since the last poll (each reported once, for the log)."""
        s = self.state
        ended: list[str] = []
        if s.loss_until_ms and s.loss_until_ms <= wall_ms:
            s.loss_until_ms = 0
            ended.append(LOSS)
        if s.failure_until_ms and s.failure_until_ms <= wall_ms:
            s.failure_until_ms = 0
            ended.append(FAILURE)
        if s.carry_failure_until_ms and s.carry_failure_until_ms <= wall_ms:
            s.carry_failure_until_ms = 0
            ended.append(CARRY_FAILURE)
        return ended

    def reset(self) -> list[str]:
        """Operator override: close every breaker and forget the windows; the names of those that were open."""
        s = self.state
        cleared = [name for name, on in ((LOSS, s.loss_until_ms), (FAILURE, s.failure_until_ms),
                                         (CARRY_FAILURE, s.carry_failure_until_ms), (ORPHAN, s.orphan)) if on]
        s.loss_until_ms = s.failure_until_ms = s.carry_failure_until_ms = 0
        s.carry_failures.clear()
        s.orphan = False
        s.orphan_note = ""
        s.losses.clear()
        s.failures.clear()
        return cleared


def _prune(history: list[tuple[int, T]], oldest_ms: int) -> None:
    """Drop entries older than the window (the list is in time order)."""
    i = 0
    while i < len(history) and history[i][0] < oldest_ms:
        i += 1
    if i:
        del history[:i]
