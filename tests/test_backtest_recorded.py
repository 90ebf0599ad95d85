"""The committed backtest recording (Binance and MEXC spot, Binance USD-M, taken together from the simulator by
``scripts/make_backtest_fixture.sh``), backtested, against what a person computes from the recorded books.

The oracle here shares nothing with the fill model but the feed handlers that read the frames: it keeps, per
venue and symbol, every top of book the recording states (bookTicker tops and depth levels) with its receive
stamp, looks up the one in force when each order reached the venue (sent + the one-way latency), and works out
the fill price, the quantities, the commissions and the PnL by hand in decimals."""

from __future__ import annotations

import bisect
from decimal import Decimal
from pathlib import Path

import pytest

from services.backtest.engine import BacktestResult, run_backtest
from services.backtest.latency import LatencyModel
from services.feed.recorded import handler_for, merged, take_record
from services.feed.recording import Recording
from shared.config import Config, load_config
from shared.messages import OUTCOME_FILLED, SIDE_BUY, Book, Execution, Quote
from shared.registry import Registry
from shared.venues.kinds import kind_of

FIXTURE = Path(__file__).parent / "fixtures" / "backtest"
FILES = sorted(FIXTURE.glob("*.dzrec"))
ONE_WAY_MS = 20.0


class RecordedTops:
    """(venue, symbol) -> the recorded best bid and ask, each with its quantity, in receive order."""

    def __init__(self, cfg: Config, files: list[Path]) -> None:
        reg = Registry(cfg)
        recordings = [Recording(p) for p in files]
        handlers = [handler_for(cfg, r.header, reg, "oracle") for r in recordings]
        self.stamps: dict[tuple[int, int], list[int]] = {}
        self.tops: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
        for i, rec in merged(recordings):
            for item in take_record(handlers[i], rec) or ():
                if type(item) is Quote:
                    top = (item.bid, item.bid_qty, item.ask, item.ask_qty)
                elif type(item) is Book and item.bid_px and item.ask_px:
                    top = (item.bid_px[0], item.bid_qty[0], item.ask_px[0], item.ask_qty[0])
                else:
                    continue
                key = (item.venue, item.symbol)
                self.stamps.setdefault(key, []).append(rec.tick_ns)
                self.tops.setdefault(key, []).append(top)

    def at(self, venue: int, symbol: int, t_ns: int) -> tuple[float, float, float, float]:
        """The top of book the recording states at ``t_ns`` (the latest one received at or before it)."""
        key = (venue, symbol)
        k = bisect.bisect_right(self.stamps[key], t_ns) - 1
        assert k >= 0, f"no book for {key} at {t_ns}"
        return self.tops[key][k]


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(FIXTURE / "backtest.toml")


@pytest.fixture(scope="module")
def result(cfg: Config) -> BacktestResult:
    return run_backtest(cfg, FILES, LatencyModel.from_config(cfg, {v.name: ONE_WAY_MS for v in cfg.venues}))


@pytest.fixture(scope="module")
def tops(cfg: Config) -> RecordedTops:
    return RecordedTops(cfg, FILES)


def d(x: float) -> Decimal:
    return Decimal(repr(x))


def test_the_recording_trades_both_ways(result: BacktestResult) -> None:
    """The fixture holds what the checks below need: fills, and legs the book moved away from."""
    outcomes = {e.outcome for e in result.executions}
    assert OUTCOME_FILLED in outcomes and len(outcomes) > 1, outcomes
    assert result.in_flight_at_end == 0
    assert result.counters["feed.binance_perp"]["funding"] > 0  # the perpetual's feed ran through the same code


def test_every_leg_filled_or_missed_as_the_recorded_book_at_its_arrival_says(
    cfg: Config, result: BacktestResult, tops: RecordedTops
) -> None:
    opps = {o.id: o for o in result.opportunities}
    arrival_ns = int(ONE_WAY_MS * 1e6)
    checked = 0
    for e in result.executions:
        opp = opps[e.opportunity_id]
        for leg in (x for x in e.legs if x.role == 0):
            planned = opp.legs[leg.leg]
            bid, bid_qty, ask, ask_qty = tops.at(leg.venue, leg.symbol, e.sent_ns + arrival_ns)
            buy = leg.side == SIDE_BUY
            best, best_qty = (ask, ask_qty) if buy else (bid, bid_qty)
            crosses = best <= planned.price if buy else best >= planned.price
            if not crosses:  # the book moved away before the order arrived: nothing can fill
                assert Decimal(leg.filled_qty) == 0, (e, best)
                checked += 1
            elif Decimal(leg.qty) <= d(best_qty) and e is _first_on(result.executions, leg.venue, leg.symbol):
                # The whole order fits the best level, untouched by earlier paper orders: one fill at that price.
                assert leg.status == "FILLED" and Decimal(leg.filled_qty) == Decimal(leg.qty)
                assert Decimal(leg.quote_qty) == Decimal(leg.qty) * d(best), (e, best)
                checked += 1
    assert checked >= 3


def _first_on(executions: list[Execution], venue: int, symbol: int) -> Execution:
    return next(e for e in executions if any(x.venue == venue and x.symbol == symbol for x in e.legs))


def test_a_filled_cross_execution_books_the_pnl_a_person_computes(cfg: Config, result: BacktestResult,
                                                                  tops: RecordedTops) -> None:
    """Buy on one venue at its recorded ask, sell on the other at its recorded bid, both when the orders arrive;
    commissions at the venues' taker rates (Binance takes a buy's in the base asset, valued at the execution's
    mean price); PnL = what the USDT balances gained + the base asset left over at that price."""
    fees = {i: Decimal(repr(v.taker_fee)) for i, v in enumerate(cfg.venues)}
    base_commission_on_buy = {i: kind_of(v.kind).commission_in_base_on_buy for i, v in enumerate(cfg.venues)}
    e = next(x for x in result.executions if x.outcome == OUTCOME_FILLED)
    buy, sell = (next(x for x in e.legs if x.role == 0 and x.side == s) for s in (SIDE_BUY, 1))
    qty = Decimal(buy.qty)
    assert Decimal(sell.qty) == qty
    arrive = e.sent_ns + int(ONE_WAY_MS * 1e6)
    ask = d(tops.at(buy.venue, buy.symbol, arrive)[2])
    bid = d(tops.at(sell.venue, sell.symbol, arrive)[0])
    assert bid > ask  # the dislocation was still there when both orders arrived

    cost, proceeds = qty * ask, qty * bid
    mean = (ask + bid) / 2
    sell_fee_usd = proceeds * fees[sell.venue]
    if base_commission_on_buy[buy.venue]:
        buy_fee_base = qty * fees[buy.venue]
        usdt_gain = proceeds - sell_fee_usd - cost
        base_left = qty - buy_fee_base - qty  # bought net of the commission, minus what was sold
        expected_pnl = usdt_gain + base_left * mean
        expected_fees = buy_fee_base * mean + sell_fee_usd
    else:
        buy_fee_usd = cost * fees[buy.venue]
        expected_pnl = proceeds - sell_fee_usd - cost - buy_fee_usd
        expected_fees = buy_fee_usd + sell_fee_usd
    assert Decimal(buy.quote_qty) == cost and Decimal(sell.quote_qty) == proceeds
    assert e.pnl_usd == pytest.approx(float(expected_pnl), abs=1e-8)
    assert e.fees_usd == pytest.approx(float(expected_fees), abs=1e-8)
    deltas = {(x.venue, x.asset): Decimal(x.delta) for x in e.deltas}
    assert deltas[(sell.venue, "USDT")] == proceeds - sell_fee_usd.quantize(Decimal("1e-8"))
