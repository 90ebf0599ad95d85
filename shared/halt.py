"""Why approvals stop, as risk tells it in its heartbeat gauges, and as one line for an operator.

Risk publishes its halt state as gauges (floats: a flag, or the wall-clock millisecond a cooldown ends); the bridge
carries every service's gauges into shared memory; readers (the status line, ``draizer status``, the API) turn
them into conditions with ``halt_conditions`` and into words with ``halt_text``. The conditions hold end times,
not seconds left, so the same snapshot reads the same whenever it is read; the seconds are counted by the reader.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Gauge names risk publishes (services/risk/service.py). Not "breaker_*": those are 0/1 open flags already.
KILL = "halt.kill"  # 1: an operator's kill switch (persisted: until resume)
KILL_SESSION = "halt.kill_session"  # 1: the end-of-run wind-down's kill (this process's life only)
ORPHAN = "halt.orphan"  # 1: an orphaned execution latched trading off until an operator resumes
LOSS_UNTIL = "halt.loss_until_ms"  # wall clock ms the loss breaker's cooldown ends; 0: closed
FAILURE_UNTIL = "halt.failure_until_ms"
CARRY_FAILURE_UNTIL = "halt.carry_failure_until_ms"  # the funding carry's own failure breaker
DAILY_LOSS_UNTIL = "halt.daily_loss_until_ms"  # the day's loss limit is reached: until the next UTC day
GAUGES = (KILL, KILL_SESSION, ORPHAN, LOSS_UNTIL, FAILURE_UNTIL, CARRY_FAILURE_UNTIL, DAILY_LOSS_UNTIL)

# reason -> (words, which approvals it stops)
REASONS: dict[str, tuple[str, str]] = {
    "kill_switch": ("kill switch", "all"),
    "wind_down": ("end-of-run wind-down", "all"),
    "orphan": ("orphaned position", "all"),
    "loss_breaker": ("loss breaker", "all"),
    "failure_breaker": ("failure breaker", "spot"),  # the spot strategies: cross-exchange and triangular
    "carry_failure_breaker": ("carry failure breaker", "carry"),
    "max_daily_loss": ("daily loss limit", "all"),
}
_UNTIL = ((LOSS_UNTIL, "loss_breaker"), (FAILURE_UNTIL, "failure_breaker"),
          (CARRY_FAILURE_UNTIL, "carry_failure_breaker"), (DAILY_LOSS_UNTIL, "max_daily_loss"))


def halt_conditions(risk_gauges: Mapping[str, float] | None) -> list[dict[str, Any]] | None:
    """Every halt risk reported, in the order above: ``{"reason", "until_ms" (0: until an operator resumes),
    "scope"}``. None when risk has not reported its halt state (not heard from, or an older risk)."""
    if not risk_gauges or not any(name in risk_gauges for name in GAUGES):
        return None
    out: list[dict[str, Any]] = []
    for flag, reason in ((KILL, "kill_switch"), (KILL_SESSION, "wind_down"), (ORPHAN, "orphan")):
        if risk_gauges.get(flag):
            out.append({"reason": reason, "until_ms": 0, "scope": REASONS[reason][1]})
    for name, reason in _UNTIL:
        until = risk_gauges.get(name, 0.0)
        if until > 0 and math.isfinite(until):
            out.append({"reason": reason, "until_ms": int(until), "scope": REASONS[reason][1]})
    return out


def active(conditions: list[dict[str, Any]] | None, now_ms: int) -> list[dict[str, Any]]:
    """The conditions still in force at ``now_ms`` (a cooldown that ended stays in risk's gauges until its next
    heartbeat)."""
    return [c for c in conditions or () if c["until_ms"] == 0 or c["until_ms"] > now_ms]


def halt_text(conditions: list[dict[str, Any]] | None, now_ms: int) -> str | None:
    """``HALTED failure breaker 23s``, ``HALTED kill switch (until resume)``; None when nothing is halted. Which
    strategies a condition stops is in its words (the failure breaker stops the spot strategies, the carry's
    breaker the carry) and in its ``scope``."""
    now = active(conditions, now_ms)
    if not now:
        return None
    parts = []
    for c in now:
        words = REASONS.get(c["reason"], (c["reason"], "all"))[0]
        if c["until_ms"]:
            left = _left(math.ceil((c["until_ms"] - now_ms) / 1000))
        elif c["reason"] == "wind_down":
            left = "(until the run ends)"
        else:
            left = "(until resume)"
        parts.append(f"{words} {left}")
    return "HALTED " + ", ".join(parts)


def _left(seconds: int) -> str:
    """Seconds as a breaker's cooldown reads best (``45s``), longer spans (the day's limit) in minutes or hours."""
    if seconds < 600:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
