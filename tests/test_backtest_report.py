"""The backtest report's figures against a hand-computed set of opportunities, decisions and executions; its PNG."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from services.backtest.plot import write_plots
from services.backtest.report import build_report, summarize
from shared.messages import (
    ACTION_OPEN,
    OUTCOME_ABORTED,
    OUTCOME_FILLED,
    OUTCOME_PARTIAL,
    OUTCOME_UNWOUND,
    ROLE_LEG,
    ROLE_UNWIND,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_FUNDING,
    STRATEGY_TRIANGULAR,
    Execution,
    Leg,
    LegFill,
    Opportunity,
    RiskDecision,
)

pytestmark = pytest.mark.unit

VENUES = ("binance", "mexc", "mexc_perp")
BINANCE, MEXC, MEXC_PERP = 0, 1, 2
SYMBOLS = ("BTCUSDT", "ETHBTC", "ETHUSDT")
BTCUSDT, ETHBTC, ETHUSDT = 0, 1, 2
T0 = 1_000_000_000  # the recording's first stamp


def leg(venue: int, symbol: int, side: int, price: float, qty: float) -> Leg:
    return Leg(venue=venue, symbol=symbol, side=side, price=price, qty=qty, quote_usd=1.0, quote_ns=T0)


def opp(id_: int, strategy: int, legs: tuple[Leg, ...], detected_ns: int) -> Opportunity:
    return Opportunity(id=id_, strategy=strategy, action=ACTION_OPEN, symbol=legs[0].symbol, legs=legs,
                       notional_usd=legs[0].price * legs[0].qty, spread_bps=10.0, expected_profit_usd=0.5,
                       tick_ns=detected_ns - 20, pub_ns=detected_ns - 10, detected_ns=detected_ns)


def order(i: int, venue: int, symbol: int, side: int, qty: str, filled: str, quote: str, status: str,
          role: int = ROLE_LEG) -> LegFill:
    return LegFill(role=role, leg=i, venue=venue, symbol=symbol, side=side,
                   client_order_id=f"c{venue}{symbol}{i}{role}", qty=qty, filled_qty=filled, quote_qty=quote,
                   status=status, fee_usd=0.01)


def execution(o: Opportunity | int, strategy: int, outcome: str, pnl: float, fees: float, done_ns: int,
              legs: tuple[LegFill, ...]) -> Execution:
    oid = o if isinstance(o, int) else o.id
    return Execution(opportunity_id=oid, symbol=BTCUSDT, buy_venue=-1, sell_venue=-1, bought_qty=0.0, sold_qty=0.0,
                     buy_avg_price=0.0, sell_avg_price=0.0, fees_usd=fees, pnl_usd=pnl, notional_usd=0.0,
                     outcome=outcome, tick_ns=0, detected_ns=0, decided_ns=0, sent_ns=0, done_ns=done_ns,
                     strategy=strategy, legs=legs)


# Cross pairs: buy on one venue, sell on the other. O3 is a triangle on binance; O4, O6, O7 are refused by risk.
O1 = opp(1, STRATEGY_CROSS, (leg(BINANCE, BTCUSDT, SIDE_BUY, 100.0, 1.0), leg(MEXC, BTCUSDT, SIDE_SELL, 101.0, 1.0)),
         T0 + 100)
O2 = opp(2, STRATEGY_CROSS, (leg(MEXC, BTCUSDT, SIDE_BUY, 198.0, 0.5), leg(BINANCE, BTCUSDT, SIDE_SELL, 200.0, 0.5)),
         T0 + 1_000)
O3 = opp(3, STRATEGY_TRIANGULAR, (leg(BINANCE, BTCUSDT, SIDE_BUY, 100.0, 0.1),
                                  leg(BINANCE, ETHBTC, SIDE_BUY, 0.05, 2.0),
                                  leg(BINANCE, ETHUSDT, SIDE_SELL, 5.1, 2.0)), T0 + 2_000)
O4, O5, O6, O7 = (opp(i, STRATEGY_CROSS, O1.legs, T0 + 2_500 + i) for i in (4, 5, 6, 7))
OPPORTUNITIES = [O1, O2, O3, O4, O5, O6, O7]
DECISIONS = [
    RiskDecision(opportunity=o, approved=reason == "approved", reason=reason, decided_ns=o.detected_ns + 5)
    for o, reason in ((O1, "approved"), (O2, "approved"), (O3, "approved"), (O4, "stale quote"), (O5, "approved"),
                      (O6, "stale quote"), (O7, "max_concurrent"))
]
E1 = execution(O1, STRATEGY_CROSS, OUTCOME_FILLED, 0.4, 0.2, T0 + 1_500, (
    order(0, BINANCE, BTCUSDT, SIDE_BUY, "1.0", "1.0", "100.5", "FILLED"),  # paid 100.5 for 100.0: +50 bps
    order(1, MEXC, BTCUSDT, SIDE_SELL, "1.0", "1.0", "101.101", "FILLED"),  # got 101.101 for 101.0: -10 bps (better)
))
E2 = execution(O2, STRATEGY_CROSS, OUTCOME_PARTIAL, -0.35, 0.1, T0 + 2_500, (
    order(0, MEXC, BTCUSDT, SIDE_BUY, "0.5", "0.25", "49.50", "EXPIRED"),  # 198.0 as detected: 0 bps, half filled
    order(1, BINANCE, BTCUSDT, SIDE_SELL, "0.5", "0.25", "49.75", "EXPIRED"),  # got 199.0 for 200.0: +50 bps
))
E3 = execution(O3, STRATEGY_TRIANGULAR, OUTCOME_UNWOUND, -1.0, 0.05, T0 + 3_000, (
    order(0, BINANCE, BTCUSDT, SIDE_BUY, "0.1", "0.1", "10.01", "FILLED"),  # 100.1 for 100.0: +10 bps
    order(1, BINANCE, ETHBTC, SIDE_BUY, "2.0", "1.0", "0.05", "EXPIRED"),  # 0.05 as detected, half filled
    # the third leg was never sent (a planned leg that filled nothing); the unwind is a correction, not the plan
    order(1, BINANCE, ETHBTC, SIDE_SELL, "1.0", "1.0", "0.049", "FILLED", role=ROLE_UNWIND),
))
E4 = execution(O5, STRATEGY_CROSS, OUTCOME_ABORTED, 0.0, 0.0, T0 + 3_000, ())  # nothing sent: no legs
# A funding short whose opportunity is not among the inputs: a fill ratio, no slippage.
E5 = execution(8, STRATEGY_FUNDING, OUTCOME_FILLED, 0.3, 0.05, T0 + 4_000, (
    order(0, MEXC_PERP, BTCUSDT, SIDE_SELL, "1", "1", "100", "FILLED"),
))
LATENCY = {"binance": {"model": "constant", "one_way_ms": 20.0}, "mexc": {"model": "measured", "samples": 3}}


def report(**kw: object) -> dict:
    # Executions out of time order on purpose: the report orders them by done_ns (E3 and E4 tie: input order).
    return build_report(OPPORTUNITIES, DECISIONS, [E1, E3, E4, E2, E5], venue_names=VENUES, symbol_names=SYMBOLS,
                        latency=LATENCY, **kw)  # type: ignore[arg-type]


def test_counts_by_strategy_reason_and_outcome() -> None:
    r = report()
    assert r["counts"] == {"opportunities": 7, "decisions": 7, "approved": 4, "rejected": 3, "executions": 5,
                           "orders": 8, "legs": 8, "legs_filled": 7}
    assert r["opportunities"]["by_strategy"] == {"cross_exchange": 6, "triangular": 1, "funding_rate": 0}
    assert r["decisions"] == {"approved": 4, "rejected": 3,
                              "rejected_by_reason": {"max_concurrent": 1, "stale quote": 2}}
    assert r["executions"]["by_outcome"] == {"filled": 2, "partial": 1, "unwound": 1, "hedged": 0, "missed": 0,
                                             "rejected": 0, "orphaned": 0, "aborted": 1}
    assert r["executions"]["by_strategy"]["cross_exchange"]["partial"] == 1
    assert r["executions"]["by_strategy"]["funding_rate"]["filled"] == 1
    assert r["latency"] == LATENCY
    assert r["span"] == {"start_ns": T0 + 100, "end_ns": T0 + 4_000, "seconds": 3_900 / 1e9}


def test_pnl_gross_is_net_plus_fees_exactly_in_total_and_per_strategy() -> None:
    pnl = report()["pnl"]
    assert (pnl["net_usd"], pnl["fees_usd"], pnl["gross_usd"]) == (-0.65, 0.4, -0.25)
    assert pnl["by_strategy"] == {
        "cross_exchange": {"executions": 3, "gross_usd": 0.35, "fees_usd": 0.3, "net_usd": 0.05},
        "triangular": {"executions": 1, "gross_usd": -0.95, "fees_usd": 0.05, "net_usd": -1.0},
        "funding_rate": {"executions": 1, "gross_usd": 0.35, "fees_usd": 0.05, "net_usd": 0.3},
    }


def test_slippage_is_positive_when_worse_than_detected_for_buys_and_sells() -> None:
    r = report()
    by_leg = {(row["opportunity_id"], row["leg"]): row for row in r["legs"]}
    assert by_leg[1, 0]["slippage_bps"] == pytest.approx(50.0)  # buy paid more
    assert by_leg[1, 1]["slippage_bps"] == pytest.approx(-10.0)  # sell got more: better, negative
    assert by_leg[2, 0]["slippage_bps"] == pytest.approx(0.0)
    assert by_leg[2, 1]["slippage_bps"] == pytest.approx(50.0)  # sell got less: worse, positive
    assert by_leg[3, 0]["slippage_bps"] == pytest.approx(10.0)
    assert by_leg[3, 2]["slippage_bps"] is None and by_leg[3, 2]["filled_qty"] == "0"  # never sent
    assert by_leg[8, 0]["slippage_bps"] is None and by_leg[8, 0]["detected_price"] is None  # no opportunity
    assert (by_leg[1, 1]["avg_price"], by_leg[1, 1]["side"], by_leg[1, 1]["venue"]) == (101.101, "sell", "mexc")
    s = r["slippage"]
    assert s["count"] == 6 and s["mean"] == pytest.approx(100 / 6) and s["worst"] == pytest.approx(50.0)
    assert s["by_strategy"]["cross_exchange"]["mean"] == pytest.approx(22.5)
    assert s["by_strategy"]["triangular"] == {"count": 2, "mean": pytest.approx(5.0), "worst": pytest.approx(10.0)}
    assert s["by_strategy"]["funding_rate"] == {"count": 0, "mean": None, "worst": None}
    assert s["by_venue"]["binance"]["mean"] == pytest.approx(27.5)
    assert s["by_venue"]["mexc"]["mean"] == pytest.approx(-5.0)


def test_fill_ratio_per_planned_leg_ignores_corrections_and_unsent_executions() -> None:
    r = report()
    ratios = {(row["opportunity_id"], row["leg"]): row["fill_ratio"] for row in r["legs"]}
    assert ratios == {(1, 0): 1.0, (1, 1): 1.0, (2, 0): 0.5, (2, 1): 0.5, (3, 0): 1.0, (3, 1): 0.5, (3, 2): 0.0,
                      (8, 0): 1.0}  # E4 (aborted) sent nothing: absent; E3's unwind order does not add to leg 1
    f = r["fill_ratio"]
    assert f["count"] == 8 and f["mean"] == 0.6875
    assert {k: v["mean"] for k, v in f["by_strategy"].items()} == {"cross_exchange": 0.75, "triangular": 0.5,
                                                                  "funding_rate": 1.0}
    assert {k: v["mean"] for k, v in f["by_venue"].items()} == {"binance": 0.6, "mexc": 0.75, "mexc_perp": 1.0}


def test_drawdown_and_equity_curve_follow_the_executions_in_time_order() -> None:
    r = report()
    eq = r["equity"]
    assert eq["t_ns"] == [T0 + 1_500, T0 + 2_500, T0 + 3_000, T0 + 3_000, T0 + 4_000]
    assert eq["cum_net_usd"] == [0.4, 0.05, -0.95, -0.95, -0.65]
    assert eq["strategy"] == ["cross_exchange", "cross_exchange", "triangular", "cross_exchange", "funding_rate"]
    # Peak 0.4 after E1, trough -0.95 after E3: 1.35 down.
    assert r["drawdown"] == {"max_usd": 1.35, "peak_ns": T0 + 1_500, "trough_ns": T0 + 3_000, "peak_usd": 0.4,
                             "trough_usd": -0.95, "peak_s": 1_400 / 1e9, "trough_s": 2_900 / 1e9}
    assert summarize(r, "ab" * 32) == {"opportunities": 7, "executions": 5, "fill_ratio": 0.6875, "gross_usd": -0.25,
                                       "fees_usd": 0.4, "net_usd": -0.65, "max_drawdown_usd": 1.35,
                                       "digest": "ab" * 32}


def test_a_loss_from_the_start_is_a_drawdown_from_zero_and_the_span_can_be_given() -> None:
    e = execution(O1, STRATEGY_CROSS, OUTCOME_FILLED, -2.5, 0.1, T0 + 500, ())
    r = build_report([O1], [], [e], start_ns=T0, end_ns=T0 + 10_000)
    assert r["drawdown"]["max_usd"] == 2.5 and r["drawdown"]["peak_ns"] == T0 and r["drawdown"]["trough_ns"] == T0 + 500
    assert r["span"]["seconds"] == 10_000 / 1e9
    empty = build_report([], [], [])
    assert empty["drawdown"]["max_usd"] == 0.0 and empty["pnl"]["net_usd"] == 0.0
    assert empty["fill_ratio"]["mean"] is None and empty["legs"] == []


def test_the_detected_price_comes_from_the_decision_when_the_opportunity_list_lacks_it() -> None:
    r = build_report([], DECISIONS[:1], [E1], venue_names=VENUES)
    assert [row["slippage_bps"] for row in r["legs"]] == [pytest.approx(50.0), pytest.approx(-10.0)]


def test_a_fill_quantity_that_is_no_decimal_is_an_error_naming_the_order() -> None:
    bad = execution(O1, STRATEGY_CROSS, OUTCOME_FILLED, 0.0, 0.0, T0, (
        order(0, BINANCE, BTCUSDT, SIDE_BUY, "1.0", "one", "100", "FILLED"),))
    with pytest.raises(ValueError, match=r"execution 1: order c0000: filled_qty 'one' is not a decimal"):
        build_report([O1], [], [bad])


def test_the_report_is_json_and_its_plot_is_a_png(tmp_path: Path) -> None:
    data = json.loads(json.dumps(report()))  # JSON-able, and the plot takes it read back
    out = write_plots(data, tmp_path / "backtest.png")
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 1_000
    assert raw[12:16] == b"IHDR" and struct.unpack(">II", raw[16:24]) == (1000, 800)
    assert not (tmp_path / "backtest.png.tmp").exists()
    empty = write_plots(build_report([], [], []), tmp_path / "empty.png")
    assert empty.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_matplotlib_is_imported_only_when_a_plot_is_drawn(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from services.backtest import plot, report, sweep\n"
        "assert 'matplotlib' not in sys.modules, 'imported at module load'\n"
        "plot.write_plots(report.build_report([], [], []), __import__('pathlib').Path(sys.argv[1]))\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.png")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p.png").stat().st_size > 0
