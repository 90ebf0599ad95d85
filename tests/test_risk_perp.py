"""Risk's perpetual and net delta rules on the funding carry, as pure logic with real VenueState messages: one
case per refusal with the boundary just inside, the CLOSE's path, margin reservations across carries in flight,
the order of the new rules, and what the status shows."""

from __future__ import annotations

import msgspec
import pytest

from services.risk import rules
from services.risk.perp import MARGIN_KEY, NOTIONAL_KEY, liquidation_price
from services.risk.rules import RiskBook
from services.risk.state import RiskState, utc_day
from shared.config import Risk, default_config_path, load_config
from shared.messages import (
    ACTION_CLOSE,
    ACTION_OPEN,
    OUTCOME_FILLED,
    OUTCOME_UNWOUND,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_FUNDING,
    STRATEGY_TRIANGULAR,
    Execution,
    Leg,
    Opportunity,
    PerpMargin,
    PerpPositionState,
    VenueState,
)
from shared.registry import Registry

REG = Registry(load_config(default_config_path()))
BIN, MEXC = REG.venue_id["binance"], REG.venue_id["mexc"]
PB, PM = REG.venue_id["binance_perp"], REG.venue_id["mexc_perp"]  # taker fees 0.05 % and 0.02 %
BTC, ETH, SOL = REG.symbol_id["BTCUSDT"], REG.symbol_id["ETHUSDT"], REG.symbol_id["SOLUSDT"]
ETHBTC = REG.symbol_id["ETHBTC"]
NOW = 10**15
WALL = 1_750_000_000 * 10**9 + 3_600 * 10**9
WALL_MS = WALL // 10**6
PRICE = 100_000.0
QTY = 0.01  # 1,000 USDT a leg: at 3x, 333.33 initial margin + 0.50 fee on binance_perp


def limits(**kw: object) -> Risk:
    base: dict[str, object] = {"max_opportunity_age_ms": 100.0, "max_concurrent": 2, "balance_headroom": 1.0}
    base.update(kw)
    return Risk(**base)  # type: ignore[arg-type]


def leg(venue: int, side: int, qty: float = QTY, price: float = PRICE, symbol: int = BTC) -> Leg:
    return Leg(venue, symbol, side, price, qty, 1.0, NOW)


def carry(oid: int = 1, action: int = ACTION_OPEN, qty: float = QTY, price: float = PRICE, symbol: int = BTC,
          hedged: bool = True, perp: int = PB) -> Opportunity:
    """OPEN: [spot BUY, perp SELL]; CLOSE: [spot SELL, perp BUY]; unhedged: the perpetual leg alone."""
    opening = action == ACTION_OPEN
    perp_leg = leg(perp, SIDE_SELL if opening else SIDE_BUY, qty, price, symbol)
    spot_leg = leg(BIN, SIDE_BUY if opening else SIDE_SELL, qty, price, symbol)
    legs = (spot_leg, perp_leg) if hedged else (perp_leg,)
    return Opportunity(oid, STRATEGY_FUNDING, action, symbol, legs, price * qty, 1_500.0, 5.0, NOW, NOW, NOW)


def position(symbol: int, size: str, mark: float, entry: float | None = None, liquidation: float = 0.0,
             leverage: int = 3, margin: float | None = None) -> PerpPositionState:
    e = mark if entry is None else entry
    return PerpPositionState(symbol, size, e, mark, liquidation, leverage,
                             abs(float(size)) * e / leverage if margin is None else margin)


def margin(available: float = 10_000.0, margin_balance: float = 10_000.0, maint: float = 0.0,
           leverage: tuple[tuple[int, int], ...] = ((BTC, 3), (ETH, 3)),
           positions: tuple[PerpPositionState, ...] = ()) -> PerpMargin:
    return PerpMargin(margin_balance, margin_balance, available, maint, leverage, positions)


SPOT_BALANCES = (("USDT", "1000000"), ("BTC", "10"), ("ETH", "100"))


def venue_state(venue: int, balances: tuple[tuple[str, str], ...] = SPOT_BALANCES,
                deltas: tuple[tuple[str, str], ...] = (), perp: PerpMargin | None = None) -> VenueState:
    return VenueState(venue, NOW, True, balances, 0, 6000, 0, 50, 0, 160_000, 0, 0, deltas, perp)


def book(lim: Risk | None = None, pb: PerpMargin | None = None) -> RiskBook:
    b = RiskBook(lim or limits(), REG, RiskState(day=utc_day(WALL)))
    b.on_venue_state(venue_state(BIN), NOW)
    b.on_venue_state(venue_state(MEXC), NOW)
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),), perp=pb or margin()), NOW)
    b.on_venue_state(venue_state(PM, (("USDT", "10000"),), perp=margin()), NOW)
    return b


def set_perp(b: RiskBook, venue: int = PB, deltas: tuple[tuple[str, str], ...] = (), **kw: object) -> None:
    b.on_venue_state(venue_state(venue, (("USDT", "10000"),), deltas, margin(**kw)), NOW)  # type: ignore[arg-type]


def execution(oid: int) -> Execution:
    return Execution(
        opportunity_id=oid, symbol=BTC, buy_venue=BIN, sell_venue=PB, bought_qty=QTY, sold_qty=QTY,
        buy_avg_price=PRICE, sell_avg_price=PRICE, fees_usd=1.0, pnl_usd=-1.0, notional_usd=1_000.0,
        outcome=OUTCOME_FILLED, tick_ns=NOW, detected_ns=NOW, decided_ns=NOW, sent_ns=NOW, done_ns=NOW,
    )


# ----- approvals


def test_a_hedged_carry_open_with_healthy_margin_is_approved_and_reserves_its_margin() -> None:
    b = book()
    assert b.decide(carry(), NOW, WALL) == rules.APPROVED
    assert b.venues.reserved[(BIN, "USDT")] == pytest.approx(1_001.0)  # the spot buy, with binance's 0.1 % fee
    assert b.venues.reserved[(PB, MARGIN_KEY)] == pytest.approx(1_000.0 / 3 + 0.5)
    assert b.venues.reserved[(PB, NOTIONAL_KEY)] == pytest.approx(1_000.0)
    assert (PB, "BTC") not in b.venues.reserved  # a perpetual sell holds no base balance
    b.on_execution(execution(1), WALL)
    assert b.venues.reserved == {}


def test_a_perp_sell_needs_no_base_balance_but_the_spot_buy_keeps_its_rule() -> None:
    b = book()
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),), perp=margin()), NOW)  # not one BTC on the perp venue
    assert b.check(carry(hedged=False), NOW, WALL) == rules.APPROVED
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    b.on_venue_state(venue_state(BIN, (("USDT", "1000.99"),)), NOW)  # 1,001 needed for the spot buy
    assert b.check(carry(), NOW, WALL) == rules.INSUFFICIENT_BALANCE
    b.on_venue_state(venue_state(BIN, (("USDT", "1001"),)), NOW)
    assert b.check(carry(), NOW, WALL) == rules.APPROVED


# ----- one refusal per rule, the boundary just inside passing


def test_perp_margin_unknown_until_the_venue_states_its_margin_and_the_symbols_leverage() -> None:
    b = book()
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),)), NOW)  # a VenueState, no PerpMargin yet
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN_UNKNOWN
    set_perp(b, leverage=((ETH, 3),))  # no leverage stated for BTCUSDT
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN_UNKNOWN
    set_perp(b)
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    # A malformed margin state is unknown, never guessed, and counted.
    bad = margin(positions=(PerpPositionState(ETH, "-1.x", 3_000.0, 3_000.0, 0.0, 3, 1_000.0),))
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),), perp=bad), NOW)
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN_UNKNOWN and b.venues.malformed_balances == 1
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),), perp=margin(available=float("nan"))), NOW)
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN_UNKNOWN and b.venues.malformed_balances == 2


def test_perp_leverage_above_the_limit() -> None:
    b = book(limits(max_leverage=3))
    set_perp(b, leverage=((BTC, 4),))
    assert b.check(carry(), NOW, WALL) == rules.PERP_LEVERAGE
    set_perp(b, leverage=((BTC, 3),))
    assert b.check(carry(), NOW, WALL) == rules.APPROVED


def test_perp_margin_available_covers_initial_margin_and_fee_within_the_headroom() -> None:
    b = book()
    set_perp(b, available=333.84)  # 1,000 / 3 + 0.50 fee = 333.8333…
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    set_perp(b, available=333.83)
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN
    half = book(limits(balance_headroom=0.5))
    set_perp(half, available=667.67)
    assert half.check(carry(), NOW, WALL) == rules.APPROVED
    set_perp(half, available=667.66)
    assert half.check(carry(), NOW, WALL) == rules.PERP_MARGIN


def test_perp_margin_ratio_after_the_order() -> None:
    b = book(limits(max_margin_ratio=0.5))
    set_perp(b, maint=4_996.0)  # (4,996 + 1,000 x 0.004) / 10,000 = 0.5: at the limit
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    set_perp(b, maint=4_996.01)
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN
    set_perp(b, margin_balance=0.0)  # nothing to hold a position with
    assert b.check(carry(), NOW, WALL) == rules.PERP_MARGIN


def test_perp_liquidation_of_the_new_position_estimated_from_its_leverage() -> None:
    # Short at 3x: liquidation at (E + E/3) / 1.004, 32.8 % above the mark.
    d3 = liquidation_price(PRICE, PRICE * QTY / 3, QTY, short=True) / PRICE - 1
    assert d3 == pytest.approx(0.32802, abs=1e-5)
    assert book(limits(min_liquidation_distance=d3 - 1e-9)).check(carry(), NOW, WALL) == rules.APPROVED
    assert book(limits(min_liquidation_distance=d3 + 1e-9)).check(carry(), NOW, WALL) == rules.PERP_LIQUIDATION
    # At 5x (allowed by the leverage limit here) the short liquidates 19.5 % away: inside the default 20 %.
    b = book(limits(max_leverage=10))
    set_perp(b, leverage=((BTC, 5),))
    assert b.check(carry(), NOW, WALL) == rules.PERP_LIQUIDATION


def test_perp_liquidation_of_a_grown_position_blends_entry_and_margin() -> None:
    # Short 0.01 held with 100 USDT of margin, grown by 0.01 at 3x: B = 433.33 over 0.02, 21.2 % away.
    held = position(BTC, "-0.01", PRICE, margin=100.0)
    b = book()
    set_perp(b, positions=(held,))
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    thin = position(BTC, "-0.01", PRICE, margin=50.0)  # B = 383.33: 18.7 % away
    set_perp(b, positions=(thin,))
    assert b.check(carry(), NOW, WALL) == rules.PERP_LIQUIDATION


def test_perp_liquidation_of_the_other_positions_as_the_venue_states_it() -> None:
    b = book()
    set_perp(b, positions=(position(ETH, "-1", 3_000.0, liquidation=3_600.0),))  # exactly 20 % away
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    set_perp(b, positions=(position(ETH, "-1", 3_000.0, liquidation=3_599.0),))
    assert b.check(carry(), NOW, WALL) == rules.PERP_LIQUIDATION
    assert b.check(carry(perp=PM), NOW, WALL) == rules.APPROVED  # another venue's margin account


def test_carry_notional_over_every_perp_venue() -> None:
    b = book(limits(max_carry_notional_usd=20_000.0))
    set_perp(b, positions=(position(ETH, "-5", 3_000.0),))  # 15,000
    set_perp(b, PM, positions=(position(BTC, "-0.03", PRICE),))  # 3,000
    assert b.check(carry(qty=0.02), NOW, WALL) == rules.APPROVED  # + 2,000 = 20,000: at the limit
    assert b.check(carry(qty=0.0201), NOW, WALL) == rules.CARRY_NOTIONAL


def test_net_delta_over_every_venue_refuses_what_grows_it_past_the_limit() -> None:
    b = book(limits(max_net_delta_usd=2_000.0))
    # An unhedged short of 0.01 with 0.01 already short elsewhere: 0.02 x 100,000 = 2,000, at the limit.
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "-0.01"), ("USDT", "1000"))), NOW)
    assert b.check(carry(hedged=False), NOW, WALL) == rules.APPROVED
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "-0.0100001"),)), NOW)
    assert b.check(carry(hedged=False), NOW, WALL) == rules.NET_DELTA
    assert b.check(carry(), NOW, WALL) == rules.APPROVED  # hedged: the legs net to zero
    # A perpetual position is a signed base balance of its venue: it counts like any other.
    b.on_venue_state(venue_state(MEXC), NOW)
    set_perp(b, PM, deltas=(("BTC", "-0.0100001"),))
    assert b.check(carry(hedged=False), NOW, WALL) == rules.NET_DELTA


def test_legs_that_reduce_the_net_delta_or_net_to_zero_always_pass() -> None:
    b = book(limits(max_net_delta_usd=2_000.0))
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "0.05"),)), NOW)  # long 5,000 USD: over the limit
    assert b.check(carry(hedged=False), NOW, WALL) == rules.APPROVED  # the short brings it to 4,000
    cross = Opportunity(2, STRATEGY_CROSS, ACTION_OPEN, BTC, (leg(BIN, SIDE_BUY), leg(MEXC, SIDE_SELL)),
                        1_000.0, 10.0, 1.0, NOW, NOW, NOW)
    assert b.check(cross, NOW, WALL) == rules.APPROVED
    # Triangular through ETHBTC nets BTC to its residue (1e-5 BTC of 0.02 traded): no new exposure.
    tri = Opportunity(3, STRATEGY_TRIANGULAR, ACTION_OPEN, BTC, (
        leg(BIN, SIDE_BUY), leg(BIN, SIDE_BUY, 0.3, 0.0333, ETHBTC), leg(BIN, SIDE_SELL, 0.3, 3_340.0, ETH)),
        1_000.0, 10.0, 1.0, NOW, NOW, NOW)
    assert b.check(tri, NOW, WALL) == rules.APPROVED
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "-0.05"),)), NOW)  # short: the same short grows it
    assert b.check(carry(hedged=False), NOW, WALL) == rules.NET_DELTA
    assert b.check(cross, NOW, WALL) == rules.APPROVED and b.check(tri, NOW, WALL) == rules.APPROVED


# ----- the CLOSE


def test_a_close_passes_where_an_open_is_refused_by_the_new_risk_rules() -> None:
    lim = limits(max_leverage=3, max_net_delta_usd=100.0, max_carry_notional_usd=100.0, max_notional_usd=500.0)
    stressed = margin(available=0.0, margin_balance=1.0, maint=1.0, leverage=((BTC, 20),),
                      positions=(position(BTC, "-0.01", PRICE, liquidation=PRICE * 1.01, leverage=20),))
    assert book(pb=stressed).check(carry(), NOW, WALL) == rules.PERP_LEVERAGE  # the spot rules pass here
    b = book(lim, stressed)
    b.on_venue_state(venue_state(BIN, (("USDT", "0"),)), NOW)  # not one BTC left on the spot venue
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "-1"),)), NOW)
    b.state.daily_pnl_usd = -1e6
    b.state.breakers.loss_until_ms = WALL_MS + 60_000
    assert b.check(carry(), NOW, WALL) == rules.BREAKER_LOSS
    b.state.breakers.loss_until_ms = 0
    assert b.check(carry(), NOW, WALL) == rules.MAX_NOTIONAL
    b.state.breakers.loss_until_ms = WALL_MS + 60_000  # a quant wants the carry unwound after a loss
    assert b.decide(carry(action=ACTION_CLOSE), NOW, WALL) == rules.APPROVED
    assert b.venues.reserved == {}  # the executor sizes it to what the carry holds: no balance, no margin
    assert b.check(carry(2, action=ACTION_CLOSE), NOW, WALL) == rules.SYMBOL_IN_FLIGHT  # its slots are held
    b.on_execution(execution(1), WALL)
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),)), NOW)  # no margin state at all
    assert b.check(carry(hedged=False, action=ACTION_CLOSE), NOW, WALL) == rules.APPROVED


def test_a_close_still_stops_at_the_kill_switch_the_failure_breaker_and_staleness() -> None:
    b = book()
    close = carry(action=ACTION_CLOSE)
    b.kill("test")
    assert b.check(close, NOW, WALL) == rules.KILL_SWITCH
    b.resume()
    b.state.breakers.carry_failure_until_ms = WALL_MS + 1
    assert b.check(close, NOW, WALL) == rules.BREAKER_FAILURE
    b.state.breakers.carry_failure_until_ms = 0
    b.state.breakers.orphan = True
    assert b.check(close, NOW, WALL) == rules.BREAKER_FAILURE  # an orphan halts everything
    b.state.breakers.orphan = False
    assert b.check(close, NOW + 100_000_001, WALL) == rules.TOO_OLD
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),), perp=margin()), NOW)
    b.on_venue_state(VenueState(PB, NOW, True, (), 0, 6000, 0, 50, 0, 160_000, WALL_MS + 5_000, 0), NOW)
    assert b.check(close, NOW, WALL) == rules.VENUE_BLOCKED
    assert b.check(close, NOW, WALL + 5 * 10**9) == rules.APPROVED


def test_the_spot_strategies_and_the_carry_trip_their_own_failure_breakers() -> None:
    """Unwound cross pairs halt the spot strategies, not the carry (its orders go to the perpetuals); the carry's
    own failures halt the carry only. Each trip needs ``failure_breaker_count`` of its own."""
    b = book()
    cross = Opportunity(50, STRATEGY_CROSS, ACTION_OPEN, BTC, (leg(BIN, SIDE_BUY), leg(MEXC, SIDE_SELL)), 1_000.0,
                        10.0, 1.0, NOW, NOW, NOW)
    unwound = msgspec.structs.replace(execution(900), outcome=OUTCOME_UNWOUND, strategy=STRATEGY_CROSS)
    for i in range(b.limits.failure_breaker_count):
        b.on_execution(msgspec.structs.replace(unwound, opportunity_id=900 + i), WALL)
    assert b.check(cross, NOW, WALL) == rules.BREAKER_FAILURE
    assert b.check(carry(), NOW, WALL) == rules.APPROVED
    b.resume()
    carry_unwound = msgspec.structs.replace(unwound, strategy=STRATEGY_FUNDING)
    for i in range(b.limits.failure_breaker_count):
        b.on_execution(msgspec.structs.replace(carry_unwound, opportunity_id=950 + i), WALL)
    assert b.check(carry(), NOW, WALL) == rules.BREAKER_FAILURE
    assert b.check(cross, NOW, WALL) == rules.APPROVED
    assert b.breakers.status(WALL_MS)["carry_failure"]["open"] is True  # type: ignore[index]


# ----- reservations in flight


def test_two_carries_in_flight_cannot_both_take_the_last_margin() -> None:
    b = book()
    set_perp(b, available=667.0)  # 333.83 a carry: one fits, two do not
    eth = carry(2, qty=0.5, price=2_000.0, symbol=ETH)
    assert b.decide(carry(1), NOW, WALL) == rules.APPROVED
    assert b.check(eth, NOW, WALL) == rules.PERP_MARGIN
    set_perp(b, available=667.67)
    assert b.check(eth, NOW, WALL) == rules.APPROVED
    set_perp(b, available=667.0)
    b.on_execution(execution(1), WALL)  # released: its margin is the venue's again
    assert b.venues.reserved == {} and b.check(eth, NOW, WALL) == rules.APPROVED


def test_carries_in_flight_count_toward_the_carry_notional_and_the_margin_ratio() -> None:
    b = book(limits(max_carry_notional_usd=1_500.0))
    eth = carry(2, qty=0.5, price=2_000.0, symbol=ETH)
    assert b.decide(carry(1), NOW, WALL) == rules.APPROVED
    assert b.check(eth, NOW, WALL) == rules.CARRY_NOTIONAL  # 1,000 in flight + 1,000
    b.on_execution(execution(1), WALL)
    assert b.check(eth, NOW, WALL) == rules.APPROVED
    ratio = book(limits(max_margin_ratio=0.5))
    set_perp(ratio, maint=4_992.01)  # 4 USDT of maintenance a carry: one fits, two make 0.500001
    assert ratio.decide(carry(1), NOW, WALL) == rules.APPROVED
    assert ratio.check(eth, NOW, WALL) == rules.PERP_MARGIN
    set_perp(ratio, maint=4_992.0)  # two make 0.5: at the limit
    assert ratio.check(eth, NOW, WALL) == rules.APPROVED


# ----- order, counters, status


def test_the_perp_rules_run_in_reasons_order_after_the_spot_rules() -> None:
    lim = limits(max_leverage=3, max_carry_notional_usd=5_000.0, max_net_delta_usd=500.0)
    b = book(lim)
    b.on_venue_state(venue_state(PB, (("USDT", "10000"),)), NOW)
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "-1"),)), NOW)
    opp = carry(hedged=False)
    seen = [b.check(opp, NOW, WALL)]
    too_close = position(SOL, "-10", 180.0, liquidation=190.0)  # 5.6 % away
    for kw in (
        {"leverage": ((BTC, 4),), "available": 0.0, "positions": (position(ETH, "-2", 3_000.0),)},
        {"available": 0.0, "positions": (position(ETH, "-2", 3_000.0), too_close)},
        {"available": 0.0, "positions": (too_close,)},
        {"positions": (too_close,)},
        {},
    ):
        set_perp(b, **kw)  # type: ignore[arg-type]
        seen.append(b.check(opp, NOW, WALL))
    b.on_venue_state(venue_state(MEXC, deltas=(("BTC", "0.01"),)), NOW)  # the short now flattens the net
    seen.append(b.check(opp, NOW, WALL))
    first = rules.REASONS.index(rules.PERP_MARGIN_UNKNOWN)
    assert seen == [*rules.REASONS[first : rules.REASONS.index(rules.EXECUTOR_UNAVAILABLE)], rules.APPROVED]


def test_decisions_and_status_show_the_perp_rules() -> None:
    b = book()
    set_perp(b, leverage=((BTC, 5),))
    assert b.decide(carry(), NOW, WALL) == rules.PERP_LEVERAGE
    status = b.status(WALL)
    assert status["decisions"][rules.PERP_LEVERAGE] == 1  # type: ignore[index]
    assert status["perp_limits"] == {
        "max_leverage": 3, "max_margin_ratio": 0.5, "min_liquidation_distance": 0.2, "max_net_delta_usd": 2_000.0,
        "max_carry_notional_usd": 20_000.0, "maint_margin_rate": 0.004,
    }
    perp = status["venues"]["binance_perp"]["perp"]  # type: ignore[index]
    assert perp["leverage"] == {"BTCUSDT": 5} and perp["available"] == 10_000.0
    assert "perp" not in status["venues"]["binance"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_leverage", 0), ("max_margin_ratio", 1.0), ("max_margin_ratio", 0.0), ("min_liquidation_distance", -0.1),
     ("min_liquidation_distance", 1.0), ("max_net_delta_usd", 0.0), ("max_carry_notional_usd", 1e13)],
)
def test_the_perp_limits_are_validated_by_key(key: str, value: float) -> None:
    assert msgspec.convert({key: msgspec.to_builtins(Risk())[key]}, Risk) == Risk()  # the default is in range
    with pytest.raises(msgspec.ValidationError, match=key):
        msgspec.convert({key: value}, Risk)
