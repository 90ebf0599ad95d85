"""The web monitor's tape (services/api/tape.py): executions and PnL by strategy, risk's breakers with their
cooldowns, the kill switch and rate budgets, folded from the events the executor and risk publish."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from services.api.tape import MAX_EXECUTIONS, MAX_POINTS, Tape, thin
from shared.messages import (
    ROLE_LEG,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_TRIANGULAR,
    Alert,
    Execution,
    LegFill,
    Stats,
    VenueState,
)
from tests.test_bridge_state import registry, stats

pytestmark = pytest.mark.unit

T0_MS = time.time_ns() // 1_000_000 - 60_000  # a minute ago: executions stamped now come after it


class Clock:
    def __init__(self) -> None:
        self.ms = T0_MS

    def __call__(self) -> int:
        return self.ms


def execution(i: int, pnl: float, strategy: int = STRATEGY_CROSS, outcome: str = "filled") -> Execution:
    now = time.monotonic_ns()
    legs = (
        LegFill(ROLE_LEG, 0, 0, 0, SIDE_BUY, f"c{i}b", "0.5", "0.5", "50.0", "FILLED", 0.05),
        LegFill(ROLE_LEG, 1, 1, 0, SIDE_SELL, f"c{i}s", "0.5", "0.25", "25.1", "EXPIRED", 0.02),
    )
    return Execution(i, 0, 0, 1, 0.5, 0.25, 100.0, 100.4, 0.07, pnl, 50.0, outcome, now - 900_000, now - 800_000,
                     now - 700_000, now - 600_000, now, strategy=strategy, legs=legs)


def alert(kind: str, until_ms: int, message: str = "", source: str = "risk") -> Alert:
    return Alert(source=source, kind=kind, message=message or kind, until_ms=until_ms, ts_ns=T0_MS * 1_000_000)


def risk_stats(pid: int = 4242, **gauges: float) -> Stats:
    s = stats("risk", gauges={"halted": 0.0, "breaker_loss": 0.0, "breaker_failure": 0.0, "daily_pnl_usd": -3.5,
                              "in_flight": 1.0, **gauges})
    return msgspec.structs.replace(s, pid=pid)


def test_executions_newest_first_and_cumulative_pnl_per_strategy() -> None:
    tape = Tape(registry(), wall_ms=Clock())
    for i, (pnl, strategy) in enumerate([(1.5, STRATEGY_CROSS), (-0.5, STRATEGY_TRIANGULAR), (-2.0, STRATEGY_CROSS)]):
        tape.on_event(execution(i + 1, pnl, strategy))
    view = tape.view(executions=2)
    assert [e["opportunity_id"] for e in view["executions"]] == [3, 2]  # newest first, as many as asked
    assert view["executions_seen"] == 3
    first = view["executions"][1]
    assert (first["strategy"], first["outcome"], first["buy_venue"], first["sell_venue"]) == (
        "triangular", "filled", "binance", "mexc")
    assert [(leg["venue"], leg["side"], leg["filled_qty"], leg["qty"], leg["status"]) for leg in first["legs"]] == [
        ("binance", "buy", "0.5", "0.5", "FILLED"), ("mexc", "sell", "0.25", "0.5", "EXPIRED")]
    cross = view["pnl_by_strategy"]["cross_exchange"]
    assert cross[0] == [T0_MS, 0.0]  # each series starts at zero when the monitor started
    assert [v for _, v in cross[1:]] == [1.5, -0.5]
    assert [v for _, v in view["pnl_by_strategy"]["triangular"][1:]] == [-0.5]


def test_the_tape_keeps_a_bounded_number_of_executions_and_points() -> None:
    tape = Tape(registry(), wall_ms=Clock())
    n = 3 * MAX_POINTS
    for i in range(n):
        tape.on_event(execution(i, 1.0))
    view = tape.view(executions=1000)
    assert len(view["executions"]) == MAX_EXECUTIONS
    series = view["pnl_by_strategy"]["cross_exchange"]
    assert len(series) <= MAX_POINTS
    assert series[-1][1] == float(n)  # thinning never drops the latest total
    assert [t for t, _ in series] == sorted(t for t, _ in series)


def test_thin_keeps_the_first_and_the_last_point() -> None:
    points = [(t, float(t)) for t in range(11)]
    thin(points, 10)
    assert points[0] == (0, 0.0) and points[-1] == (10, 10.0) and len(points) <= 10
    even = [(t, float(t)) for t in range(12)]
    thin(even, 10)
    assert even[0] == (0, 0.0) and even[-1] == (11, 11.0)


def test_a_tripped_breaker_counts_down_and_a_resume_closes_it() -> None:
    clock = Clock()
    tape = Tape(registry(), wall_ms=clock)
    assert tape.view(0)["risk"]["heard"] is False
    tape.on_event(risk_stats())
    risk = tape.view(0)["risk"]
    assert (risk["heard"], risk["halted"], risk["daily_pnl_usd"], risk["in_flight"]) == (True, False, -3.5, 1)

    tape.on_event(alert("failure_breaker", T0_MS + 60_000, "failure breaker: 5 failed executions; trading halted"))
    clock.ms += 15_000
    risk = tape.view(0)["risk"]
    assert risk["breakers"]["failure"] == {"open": True, "until_ms": T0_MS + 60_000, "left_s": 45.0}
    assert risk["halted"] and risk["halt_reasons"] == ["failure breaker, 45 s left"]
    tape.on_event(risk_stats(breaker_failure=1.0))  # risk's gauge agrees: still counting
    assert tape.view(0)["risk"]["breakers"]["failure"]["left_s"] == 45.0

    tape.on_event(risk_stats(breaker_failure=0.0))  # an operator resumed: risk's next gauges say closed
    risk = tape.view(0)["risk"]
    assert risk["breakers"]["failure"]["open"] is False and not risk["halted"]


def test_a_cooldown_ends_on_time_and_an_unheard_trip_shows_open_without_an_end() -> None:
    clock = Clock()
    tape = Tape(registry(), wall_ms=clock)
    tape.on_event(alert("loss_breaker", T0_MS + 10_000))
    clock.ms += 10_001
    assert tape.view(0)["risk"]["breakers"]["loss"]["open"] is False
    tape.on_event(risk_stats(breaker_loss=1.0))  # a trip this process did not hear the alert of
    clock.ms += 5_000
    tape.on_event(risk_stats(breaker_loss=1.0))
    loss = tape.view(0)["risk"]["breakers"]["loss"]
    assert loss == {"open": True, "until_ms": 0, "left_s": None}


def test_the_carry_breaker_kill_switch_and_orphan_latch() -> None:
    clock = Clock()
    tape = Tape(registry(), wall_ms=clock)
    tape.on_event(risk_stats())
    tape.on_event(alert("failure_breaker", T0_MS + 30_000, "failure breaker: ...; funding carries halted for 30s"))
    risk = tape.view(0)["risk"]
    assert risk["breakers"]["carry_failure"]["open"] and not risk["breakers"]["failure"]["open"]

    tape.on_event(alert("kill_switch", 0, "kill switch engaged: operator command"))
    assert tape.view(0)["risk"]["kill_switch"] is True  # at once, before risk's next heartbeat
    tape.on_event(alert("orphan", 0, "opportunity 7 orphaned"))
    tape.on_event(risk_stats(halted=1.0, breaker_failure=1.0))
    risk = tape.view(0)["risk"]
    assert risk["breakers"]["orphan"]["open"] and risk["breakers"]["orphan"]["note"] == "opportunity 7 orphaned"
    assert risk["breakers"]["failure"]["open"] is False  # the latch holds the gauge, not a cooldown
    assert risk["halt_reasons"] == ["kill switch", "carry failure breaker, 30 s left",
                                    "orphan breaker, until an operator resumes"]

    tape.on_resumed()  # the API's own resume went through
    tape.on_event(risk_stats())
    risk = tape.view(0)["risk"]
    assert not risk["halted"] and not risk["kill_switch"] and risk["halt_reasons"] == []
    assert [a["kind"] for a in tape.view(0)["alerts"]] == ["orphan", "kill_switch", "failure_breaker"]


def test_risk_is_asked_for_its_breakers_once_per_risk_process() -> None:
    clock = Clock()
    asked: list[int] = []

    def ask() -> dict[str, Any]:
        asked.append(clock.ms)
        return {"breakers": {"loss": {"open": True, "until_ms": T0_MS + 20_000}, "failure": {"until_ms": 0},
                             "carry_failure": {"until_ms": 0}, "orphan": {"open": False, "note": ""}}}

    tape = Tape(registry(), ask_risk=ask, wall_ms=clock)
    tape.on_event(risk_stats(pid=1, breaker_loss=1.0))  # e.g. restored from risk's state file: no alert
    assert tape.view(0)["risk"]["breakers"]["loss"] == {"open": True, "until_ms": T0_MS + 20_000, "left_s": 20.0}
    tape.on_event(risk_stats(pid=1, breaker_loss=1.0))
    assert len(asked) == 1  # not per heartbeat
    tape.on_event(risk_stats(pid=2))  # risk restarted
    assert len(asked) == 2


def test_each_venue_rate_budget_by_name() -> None:
    tape = Tape(registry(), wall_ms=Clock())
    tape.on_event(VenueState(1, T0_MS * 1_000_000, True, (("USDT", "1000"),), 120, 2400, 7, 400, 9, 0, 0, 2))
    assert tape.view(0)["venues"] == {"mexc": {
        "reachable": True, "weight_1m": 120, "weight_limit_1m": 2400, "orders_10s": 7, "orders_limit_10s": 400,
        "orders_1d": 9, "orders_limit_1d": 0, "blocked_until_ms": 0, "open_orders": 2, "at_ms": T0_MS}}
