"""Risk rules and breakers as pure logic: one hand-built case per reason, the order of the checks,
reservations, balance sufficiency, the rate budget, and the breakers on an injected clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.risk import rules
from services.risk.rules import RiskBook
from services.risk.state import Reservation, RiskState, utc_day
from shared.config import Risk, default_config_path, load_config
from shared.messages import (
    ACTION_CLOSE,
    ACTION_OPEN,
    OUTCOME_FILLED,
    OUTCOME_HEDGED,
    OUTCOME_MISSED,
    OUTCOME_ORPHANED,
    OUTCOME_REJECTED,
    OUTCOME_UNWOUND,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_NAMES,
    STRATEGY_TRIANGULAR,
    Alert,
    AssetDelta,
    Execution,
    Leg,
    Opportunity,
    VenueState,
)
from shared.registry import Registry

REG = Registry(load_config(default_config_path()))
BIN, MEXC = REG.venue_id["binance"], REG.venue_id["mexc"]
BTC, ETH, SOL = REG.symbol_id["BTCUSDT"], REG.symbol_id["ETHUSDT"], REG.symbol_id["SOLUSDT"]
NOW = 10**15  # monotonic ns
WALL = 1_750_000_000 * 10**9 + 3_600 * 10**9  # wall ns, one hour into a UTC day
WALL_MS = WALL // 10**6
S = 10**9
UNKNOWN_STRATEGY = len(STRATEGY_NAMES)  # every real strategy opens; this one is no strategy at all


def limits(**kw: object) -> Risk:
    base: dict[str, object] = {"max_opportunity_age_ms": 100.0, "max_concurrent": 2, "balance_headroom": 0.95}
    base.update(kw)
    return Risk(**base)  # type: ignore[arg-type]


def leg(venue: int, symbol: int, side: int, price: float, qty: float) -> Leg:
    return Leg(venue, symbol, side, price, qty, 1.0, NOW)


def cross(oid: int = 1, symbol: int = BTC, price: float = 97_000.0, qty: float = 0.01, buy: int = BIN,
          sell: int = MEXC, **kw: object) -> Opportunity:
    fields: dict[str, object] = {
        "id": oid, "strategy": STRATEGY_CROSS, "action": ACTION_OPEN, "symbol": symbol,
        "legs": (leg(buy, symbol, SIDE_BUY, price, qty), leg(sell, symbol, SIDE_SELL, price * 1.002, qty)),
        "notional_usd": price * qty, "spread_bps": 10.0, "expected_profit_usd": 1.0,
        "tick_ns": NOW, "pub_ns": NOW, "detected_ns": NOW,
    }
    fields.update(kw)
    return Opportunity(**fields)  # type: ignore[arg-type]


def venue_state(venue: int, usdt: str = "1000000", btc: str = "10", eth: str = "100", **kw: object) -> VenueState:
    fields: dict[str, object] = {
        "venue": venue, "ts_ns": NOW, "reachable": True,
        "balances": (("USDT", usdt), ("BTC", btc), ("ETH", eth), ("SOL", "1000")),
        "weight_1m": 0, "weight_limit_1m": 6000, "orders_10s": 0, "orders_limit_10s": 50,
        "orders_1d": 0, "orders_limit_1d": 160_000, "blocked_until_ms": 0, "open_orders": 0,
    }
    fields.update(kw)
    return VenueState(**fields)  # type: ignore[arg-type]


def book(lim: Risk | None = None, state: RiskState | None = None, venues: bool = True) -> RiskBook:
    b = RiskBook(lim or limits(), REG, state if state is not None else RiskState(day=utc_day(WALL)))
    if venues:
        b.on_venue_state(venue_state(BIN), NOW)
        b.on_venue_state(venue_state(MEXC), NOW)
    return b


def execution(oid: int, pnl: float = 0.0, outcome: str = OUTCOME_FILLED, deltas: tuple[AssetDelta, ...] = (),
              note: str = "") -> Execution:
    return Execution(
        opportunity_id=oid, symbol=BTC, buy_venue=BIN, sell_venue=MEXC, bought_qty=0.01, sold_qty=0.01,
        buy_avg_price=97_000.0, sell_avg_price=97_100.0, fees_usd=0.1, pnl_usd=pnl, notional_usd=970.0,
        outcome=outcome, tick_ns=NOW, detected_ns=NOW, decided_ns=NOW, sent_ns=NOW, done_ns=NOW,
        deltas=deltas, note=note,
    )


# ----- one case per reason


def test_a_sound_cross_opportunity_is_approved_and_counted() -> None:
    b = book()
    assert b.decide(cross(), NOW, WALL) == rules.APPROVED
    assert b.decisions[rules.APPROVED] == 1 and len(b.state.in_flight) == 1


def test_kill_switch_refuses_until_resume() -> None:
    b = book()
    alert = b.kill("test")
    assert alert.kind == "kill_switch" and alert.until_ms == 0
    assert b.check(cross(), NOW, WALL) == rules.KILL_SWITCH
    assert b.resume() == ["kill_switch"]
    assert b.check(cross(), NOW, WALL) == rules.APPROVED


def test_a_session_kill_halts_without_touching_the_persisted_state() -> None:
    b = book()
    b.kill("wind-down", persist=False)
    assert b.check(cross(), NOW, WALL) == rules.KILL_SWITCH and not b.state.kill and b.halted(WALL)
    assert b.resume() == ["kill_switch"] and b.check(cross(), NOW, WALL) == rules.APPROVED


def test_open_breakers_refuse_with_their_own_reason() -> None:
    b = book()
    b.state.breakers.loss_until_ms = WALL_MS + 1
    assert b.check(cross(), NOW, WALL) == rules.BREAKER_LOSS
    b.state.breakers.loss_until_ms = WALL_MS  # the cooldown ends exactly now: open no longer
    b.state.breakers.failure_until_ms = WALL_MS + 1
    assert b.check(cross(), NOW, WALL) == rules.BREAKER_FAILURE
    b.state.breakers.failure_until_ms = 0
    b.state.breakers.orphan = True
    assert b.check(cross(), NOW, WALL) == rules.BREAKER_FAILURE


@pytest.mark.parametrize(
    ("strategy", "action", "reason"),
    [
        (STRATEGY_CROSS, ACTION_OPEN, rules.APPROVED),
        (STRATEGY_TRIANGULAR, ACTION_OPEN, rules.APPROVED),
        (STRATEGY_CROSS, ACTION_CLOSE, rules.NOT_EXECUTABLE),
        (STRATEGY_TRIANGULAR, ACTION_CLOSE, rules.NOT_EXECUTABLE),
        (UNKNOWN_STRATEGY, ACTION_OPEN, rules.NOT_EXECUTABLE),
    ],
)
def test_only_opens_and_the_carrys_close_are_executable(strategy: int, action: int, reason: str) -> None:
    """The funding carry's OPEN and CLOSE (on a perpetual venue): tests/test_risk_perp.py."""
    opp = cross(strategy=strategy, action=action)
    if strategy == STRATEGY_TRIANGULAR:  # three legs on one venue, each a different symbol
        opp = cross(strategy=strategy, action=action, legs=(leg(BIN, BTC, SIDE_BUY, 97_000.0, 0.01),
                                                             leg(BIN, ETH, SIDE_SELL, 3_400.0, 0.3),
                                                             leg(BIN, SOL, SIDE_BUY, 180.0, 1.0)))
    assert book().check(opp, NOW, WALL) == reason


def test_an_opportunity_older_than_the_limit_is_refused() -> None:
    b = book()
    assert b.check(cross(detected_ns=NOW - 100_000_000), NOW, WALL) == rules.APPROVED  # exactly at the limit
    assert b.check(cross(detected_ns=NOW - 100_000_001), NOW, WALL) == rules.TOO_OLD


def test_max_notional() -> None:
    b = book(limits(max_notional_usd=1_000.0))
    assert b.check(cross(notional_usd=1_000.0), NOW, WALL) == rules.APPROVED
    assert b.check(cross(notional_usd=1_000.01), NOW, WALL) == rules.MAX_NOTIONAL


def test_max_daily_loss_and_the_day_roll_that_clears_it() -> None:
    b = book(limits(max_daily_loss_usd=500.0))
    b.state.daily_pnl_usd = -499.99
    assert b.check(cross(), NOW, WALL) == rules.APPROVED
    b.state.daily_pnl_usd = -500.0
    assert b.check(cross(), NOW, WALL) == rules.MAX_DAILY_LOSS
    tomorrow = (utc_day(WALL) + 1) * 86_400 * S
    assert b.check(cross(), NOW, tomorrow) == rules.APPROVED  # a new UTC day starts from zero
    assert b.state.daily_pnl_usd == 0.0 and b.state.day == utc_day(tomorrow)


def test_max_concurrent_and_symbol_in_flight() -> None:
    b = book(limits(max_concurrent=2))
    assert b.decide(cross(1, BTC), NOW, WALL) == rules.APPROVED
    # Same symbol on the sell venue only: the (venue, symbol) pair is busy.
    other = cross(2, ETH, legs=(leg(BIN, ETH, SIDE_BUY, 3_400.0, 0.1), leg(MEXC, BTC, SIDE_SELL, 97_000.0, 0.01)))
    assert b.decide(other, NOW, WALL) == rules.SYMBOL_IN_FLIGHT
    assert b.decide(cross(3, ETH, price=3_400.0, qty=0.1), NOW, WALL) == rules.APPROVED
    assert b.decide(cross(4, SOL, price=180.0, qty=1.0), NOW, WALL) == rules.MAX_CONCURRENT
    b.on_execution(execution(1), WALL)
    assert b.decide(cross(4, SOL, price=180.0, qty=1.0), NOW, WALL) == rules.APPROVED
    assert b.decide(cross(5, BTC), NOW, WALL) == rules.MAX_CONCURRENT


def test_balance_unknown_until_the_executor_reports_every_leg_venue() -> None:
    b = book(venues=False)
    assert b.check(cross(), NOW, WALL) == rules.BALANCE_UNKNOWN
    b.on_venue_state(venue_state(BIN), NOW)
    assert b.check(cross(), NOW, WALL) == rules.BALANCE_UNKNOWN
    b.on_venue_state(venue_state(MEXC), NOW)
    assert b.check(cross(), NOW, WALL) == rules.APPROVED


def test_venue_blocked_by_retry_after_or_unreachable() -> None:
    b = book()
    b.on_venue_state(venue_state(MEXC, blocked_until_ms=WALL_MS + 5_000), NOW)
    assert b.check(cross(), NOW, WALL) == rules.VENUE_BLOCKED
    assert b.check(cross(), NOW, WALL + 5 * S) == rules.APPROVED  # the Retry-After has passed
    b.on_venue_state(venue_state(BIN, reachable=False), NOW)
    assert b.check(cross(), NOW, WALL + 5 * S) == rules.VENUE_BLOCKED


def test_rate_budget_from_the_venues_own_count() -> None:
    b = book()
    b.on_venue_state(venue_state(BIN, orders_10s=49), NOW)
    assert b.check(cross(), NOW, WALL) == rules.APPROVED  # 49 + 1 leg = 50: at the limit, not over
    b.on_venue_state(venue_state(BIN, orders_10s=50), NOW)
    assert b.check(cross(), NOW, WALL) == rules.RATE_BUDGET
    later = NOW + 10 * S
    assert b.check(cross(detected_ns=later), later, WALL) == rules.APPROVED  # that count's window has passed
    b.on_venue_state(venue_state(MEXC, orders_1d=160_000), NOW)
    assert b.check(cross(), NOW, WALL) == rules.RATE_BUDGET
    b.on_venue_state(venue_state(MEXC, orders_1d=0, orders_limit_1d=0, weight_1m=6000), NOW)  # 0: no daily limit
    assert b.check(cross(), NOW, WALL) == rules.RATE_BUDGET  # but the weight budget is spent
    b.on_venue_state(venue_state(MEXC, orders_limit_1d=0, weight_1m=5999), NOW)
    b.on_venue_state(venue_state(BIN), NOW)
    assert b.check(cross(), NOW, WALL) == rules.APPROVED


def test_rate_budget_counts_risks_own_approvals_in_a_sliding_10s_window() -> None:
    b = book(limits(max_concurrent=10))
    b.on_venue_state(venue_state(BIN, orders_limit_10s=3), NOW)
    triangle = (leg(BIN, BTC, SIDE_BUY, 97_000.0, 0.01), leg(BIN, ETH, SIDE_SELL, 3_400.0, 0.1))
    assert b.decide(cross(1, legs=triangle), NOW, WALL) == rules.APPROVED  # 2 orders on binance
    b.on_execution(execution(1), WALL)
    # The VenueState still says 0 orders: risk's own count (2) is what holds the budget.
    t5, t10 = NOW + 5 * S, NOW + 10 * S
    assert b.check(cross(2, detected_ns=t5), t5, WALL) == rules.APPROVED  # 2 + 1 = 3
    assert b.check(cross(2, legs=triangle, detected_ns=t5), t5, WALL) == rules.RATE_BUDGET  # 2 + 2 > 3
    assert b.check(cross(2, legs=triangle, detected_ns=t10), t10, WALL) == rules.APPROVED  # it slid out


def test_insufficient_balance_uses_the_venues_taker_fee_and_the_headroom() -> None:
    full = limits(balance_headroom=1.0)
    # Buying 0.01 BTC at 97000 costs 970 USDT plus the taker fee: 0.1% on binance, 0.05% on mexc.
    on_mexc = cross(buy=MEXC, sell=BIN)
    b = book(full)
    b.on_venue_state(venue_state(MEXC, usdt="970.49"), NOW)
    assert b.check(on_mexc, NOW, WALL) == rules.APPROVED  # 970.485 needed
    b.on_venue_state(venue_state(BIN, usdt="970.49"), NOW)
    assert b.check(cross(), NOW, WALL) == rules.INSUFFICIENT_BALANCE  # 970.97 needed
    b.on_venue_state(venue_state(BIN, usdt="970.98"), NOW)
    assert b.check(cross(), NOW, WALL) == rules.APPROVED
    tight = book(limits(balance_headroom=0.5))
    tight.on_venue_state(venue_state(BIN, usdt="1941.95"), NOW)
    assert tight.check(cross(), NOW, WALL) == rules.APPROVED
    tight.on_venue_state(venue_state(BIN, usdt="1941.90"), NOW)
    assert tight.check(cross(), NOW, WALL) == rules.INSUFFICIENT_BALANCE
    # The sell leg needs the base asset; an asset absent from the balances is zero.
    b.on_venue_state(venue_state(MEXC, btc="0.00999"), NOW)
    assert b.check(cross(), NOW, WALL) == rules.INSUFFICIENT_BALANCE
    b.on_venue_state(venue_state(MEXC, balances=(("USDT", "1000000000"),)), NOW)
    assert b.check(cross(), NOW, WALL) == rules.INSUFFICIENT_BALANCE


def test_balances_reserved_by_approvals_in_flight_count_until_their_execution() -> None:
    b = book(limits(balance_headroom=1.0))
    b.on_venue_state(venue_state(BIN, usdt="2000"), NOW)
    assert b.decide(cross(1), NOW, WALL) == rules.APPROVED  # reserves 970.97 USDT
    eth = cross(2, ETH, price=3_400.0, qty=0.3)  # 1021.02 more: 1991.99 in all
    assert b.check(eth, NOW, WALL) == rules.APPROVED
    b.on_venue_state(venue_state(BIN, usdt="1991.98"), NOW)
    assert b.check(eth, NOW, WALL) == rules.INSUFFICIENT_BALANCE
    b.on_execution(execution(1), WALL)
    assert b.venues.reserved == {}  # released exactly, no float residue
    assert b.check(eth, NOW, WALL) == rules.APPROVED


def test_the_checks_run_in_the_documented_order() -> None:
    """An opportunity that breaks every rule; fixing one at a time yields the reasons in REASONS order."""
    lim = limits(max_concurrent=2, max_notional_usd=5_000.0, max_daily_loss_usd=500.0)
    held = {
        90: Reservation(WALL_MS, ((BIN, SOL),), ((BIN, "USDT", 1.0),), ((BIN, 1),)),
        91: Reservation(WALL_MS, ((MEXC, BTC),), ((MEXC, "BTC", 0.01),), ((MEXC, 1),)),
    }
    state = RiskState(day=utc_day(WALL), daily_pnl_usd=-600.0, kill=True, in_flight=dict(held))
    state.breakers.loss_until_ms = state.breakers.failure_until_ms = WALL_MS + 60_000
    b = RiskBook(lim, REG, state)
    opp = cross(strategy=UNKNOWN_STRATEGY, detected_ns=NOW - S, notional_usd=9_000.0)
    seen = []

    def step() -> None:
        seen.append(b.check(opp, NOW, WALL))

    step()
    state.kill = False
    step()
    state.breakers.loss_until_ms = 0
    step()
    state.breakers.failure_until_ms = 0
    step()
    opp = cross(detected_ns=NOW - S, notional_usd=9_000.0)
    step()
    opp = cross(notional_usd=9_000.0)
    step()
    opp = cross()
    step()
    state.daily_pnl_usd = 0.0
    step()
    b.on_execution(execution(90), WALL)
    step()
    b.on_execution(execution(91), WALL)
    step()  # no VenueState yet
    b.on_venue_state(venue_state(BIN), NOW)
    b.on_venue_state(venue_state(MEXC, blocked_until_ms=WALL_MS + 1_000, orders_10s=50, btc="0"), NOW)
    step()
    b.on_venue_state(venue_state(MEXC, orders_10s=50, btc="0"), NOW)
    step()
    b.on_venue_state(venue_state(MEXC, btc="0"), NOW)
    step()
    b.on_venue_state(venue_state(MEXC), NOW)
    step()
    assert seen == [
        rules.KILL_SWITCH, rules.BREAKER_LOSS, rules.BREAKER_FAILURE, rules.NOT_EXECUTABLE, rules.TOO_OLD,
        rules.MAX_NOTIONAL, rules.MAX_DAILY_LOSS, rules.MAX_CONCURRENT, rules.SYMBOL_IN_FLIGHT,
        rules.BALANCE_UNKNOWN, rules.VENUE_BLOCKED, rules.RATE_BUDGET, rules.INSUFFICIENT_BALANCE, rules.APPROVED,
    ]
    # The perpetual and net delta rules come next (their order: tests/test_risk_perp.py).
    spot = rules.REASONS[1 : rules.REASONS.index(rules.INSUFFICIENT_BALANCE) + 1]
    assert seen == [*spot, rules.APPROVED]


# ----- reservations


def test_an_execution_releases_its_reservation_and_books_pnl_and_positions() -> None:
    b = book()
    assert b.decide(cross(7), NOW, WALL) == rules.APPROVED
    assert b.check(cross(8), NOW, WALL) == rules.SYMBOL_IN_FLIGHT
    deltas = (AssetDelta(BIN, "BTC", "0.01"), AssetDelta(BIN, "USDT", "-970.97"),
              AssetDelta(MEXC, "BTC", "-0.01"), AssetDelta(MEXC, "USDT", "971.5142"))
    b.on_execution(execution(7, pnl=0.5442, deltas=deltas), WALL)
    assert b.state.in_flight == {} and b.check(cross(8), NOW, WALL) == rules.APPROVED
    assert b.state.daily_pnl_usd == pytest.approx(0.5442)
    assert {v: {a: str(q) for a, q in assets.items()} for v, assets in b.state.positions.items()} == {
        "binance": {"BTC": "0.01", "USDT": "-970.97"}, "mexc": {"BTC": "-0.01", "USDT": "971.5142"}}
    b.on_execution(execution(99, pnl=-1.0, deltas=(AssetDelta(BIN, "BTC", "-0.01"),)), WALL)
    assert b.n_foreign_executions == 1 and str(b.state.positions["binance"]["BTC"]) == "0.00"


def test_handoff_failure_frees_the_slot_and_books_executor_unavailable() -> None:
    b = book(limits(max_concurrent=1))
    assert b.decide(cross(1), NOW, WALL) == rules.APPROVED
    b.handoff_failed(cross(1))
    assert b.decisions[rules.APPROVED] == 0 and b.decisions[rules.EXECUTOR_UNAVAILABLE] == 1
    assert b.decide(cross(2), NOW, WALL) == rules.APPROVED


def test_an_approval_with_no_execution_is_released_after_120s_and_counted() -> None:
    b = book(limits(max_concurrent=1))
    assert b.decide(cross(1), NOW, WALL) == rules.APPROVED
    assert b.expire(WALL + 120 * S) == []
    assert b.check(cross(2), NOW, WALL) == rules.MAX_CONCURRENT
    assert b.expire(WALL + 120 * S + 10**6) == [1]
    assert b.n_in_flight_expired == 1 and b.check(cross(2), NOW, WALL) == rules.APPROVED


# ----- breakers


def breaker_book(**kw: object) -> RiskBook:
    lim = limits(loss_breaker_usd=100.0, loss_window_s=300.0, failure_breaker_count=3, failure_window_s=60.0,
                 breaker_cooldown_s=60.0, max_daily_loss_usd=10_000.0, **kw)
    return book(lim)


def test_loss_breaker_trips_within_the_window_and_cools_down() -> None:
    b = breaker_book()
    assert b.on_execution(execution(1, pnl=-60.0), WALL) == []
    alerts = b.on_execution(execution(2, pnl=-40.0), WALL + 100 * S)
    assert [a.kind for a in alerts] == ["loss_breaker"] and alerts[0].until_ms == WALL_MS + 160_000
    assert b.check(cross(), NOW, WALL + 159 * S) == rules.BREAKER_LOSS
    assert b.breakers.poll(WALL_MS + 159_000) == []
    assert b.check(cross(), NOW, WALL + 160 * S) == rules.APPROVED
    assert b.breakers.poll(WALL_MS + 160_000) == ["loss"]  # the end of the cooldown, reported once
    assert b.breakers.poll(WALL_MS + 161_000) == []
    # The trip consumed the window: a later small loss does not trip again.
    assert b.on_execution(execution(3, pnl=-1.0), WALL + 170 * S) == []


def test_losses_spread_beyond_the_window_or_offset_by_profit_do_not_trip() -> None:
    b = breaker_book()
    assert b.on_execution(execution(1, pnl=-60.0), WALL) == []
    assert b.on_execution(execution(2, pnl=-50.0), WALL + 301 * S) == []  # the first left the window
    assert b.on_execution(execution(3, pnl=+20.0), WALL + 302 * S) == []
    assert b.on_execution(execution(4, pnl=-60.0), WALL + 303 * S) == []  # -90 net in the window
    assert b.check(cross(), NOW, WALL + 303 * S) == rules.APPROVED


def test_failure_breaker_trips_on_the_nth_failure_in_the_window_only() -> None:
    b = breaker_book()
    assert b.on_execution(execution(1, outcome=OUTCOME_UNWOUND), WALL) == []
    assert b.on_execution(execution(2, outcome=OUTCOME_MISSED), WALL + 1 * S) == []  # not a failure
    assert b.on_execution(execution(3, outcome=OUTCOME_REJECTED), WALL + 50 * S) == []
    # The third failure comes 70 s after the first: only two are within 60 s.
    assert b.on_execution(execution(4, outcome=OUTCOME_HEDGED), WALL + 70 * S) == []
    assert b.check(cross(), NOW, WALL + 70 * S) == rules.APPROVED
    alerts = b.on_execution(execution(5, outcome=OUTCOME_UNWOUND), WALL + 71 * S)
    assert [a.kind for a in alerts] == ["failure_breaker"] and alerts[0].until_ms == WALL_MS + 131_000
    assert b.check(cross(), NOW, WALL + 130 * S) == rules.BREAKER_FAILURE
    assert b.check(cross(), NOW, WALL + 131 * S) == rules.APPROVED


def test_an_orphan_halts_until_an_operator_resumes() -> None:
    b = breaker_book()
    alerts = b.on_execution(execution(1, outcome=OUTCOME_ORPHANED, note="sell leg timed out"), WALL)
    assert [a.kind for a in alerts] == ["orphan"] and alerts[0].until_ms == 0
    assert "sell leg timed out" in alerts[0].message
    assert b.check(cross(), NOW, WALL + 86_000 * S) == rules.BREAKER_FAILURE  # no cooldown ends it
    # The executor's own orphan alert while latched: no second risk alert.
    assert b.on_alert(Alert("executor", "orphan", "2 BTC unhedged", 0, NOW)) is None
    assert b.resume() == ["breaker_orphan"]
    assert b.check(cross(), NOW, WALL) == rules.APPROVED
    latched = b.on_alert(Alert("executor", "orphan", "found at reconcile", 0, NOW))
    assert latched is not None and latched.source == "risk" and "found at reconcile" in latched.message
    assert b.on_alert(Alert("executor", "reconcile", "ok", 0, NOW)) is None  # other kinds only inform
    assert b.check(cross(), NOW, WALL) == rules.BREAKER_FAILURE


def test_resume_clears_every_breaker_and_the_kill_switch() -> None:
    b = breaker_book()
    b.kill("test")
    b.on_execution(execution(1, pnl=-150.0), WALL)
    for i in range(3):
        b.on_execution(execution(2 + i, outcome=OUTCOME_REJECTED), WALL)
    assert sorted(b.resume()) == ["breaker_failure", "breaker_loss", "kill_switch"]
    assert b.check(cross(), NOW, WALL) == rules.APPROVED and not b.halted(WALL)


def test_reaching_the_daily_loss_alerts_once_until_the_next_utc_day() -> None:
    b = book(limits(max_daily_loss_usd=50.0, loss_breaker_usd=1_000.0))
    assert b.on_execution(execution(1, pnl=-30.0), WALL) == []
    alerts = b.on_execution(execution(2, pnl=-20.0), WALL)
    assert [a.kind for a in alerts] == ["daily_loss"]
    assert alerts[0].until_ms == (utc_day(WALL) + 1) * 86_400_000
    assert b.on_execution(execution(3, pnl=-5.0), WALL) == []
    assert b.check(cross(), NOW, WALL) == rules.MAX_DAILY_LOSS


def test_a_reloaded_reservation_is_held_again() -> None:
    held = {5: Reservation(WALL_MS, ((BIN, BTC), (MEXC, BTC)), ((BIN, "USDT", 970.97), (MEXC, "BTC", 0.01)),
                           ((BIN, 1), (MEXC, 1)))}
    b = book(state=replace(RiskState(day=utc_day(WALL)), in_flight=held))
    assert b.check(cross(6), NOW, WALL) == rules.SYMBOL_IN_FLIGHT
    assert b.venues.reserved[(BIN, "USDT")] == 970.97
    b.on_execution(execution(5), WALL)
    assert b.check(cross(6), NOW, WALL) == rules.APPROVED
