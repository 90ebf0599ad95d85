"""The paper fill model on the engine's local book: walks, consumed liquidity, filters, funds and fees, exactly."""

from __future__ import annotations

from decimal import Decimal

from services.executor.paper.book import PaperBook
from services.executor.paper.matching import FILTER, INSUFFICIENT, Fee, PaperOrder, match
from shared.messages import SIDE_BUY, SIDE_SELL
from shared.venues.common import EXPIRED, FILLED, ORDER_LIMIT_IOC, ORDER_MARKET, SymbolRules

D = Decimal
RULES = SymbolRules("BTCUSDT", D("0.01"), D("0.001"), D("0.001"), D("5"), 2, 3)
QUOTE_FEE = Fee(D("0.001"), in_base_on_buy=False)
BASE_FEE = Fee(D("0.001"), in_base_on_buy=True)


def book() -> PaperBook:
    b = PaperBook()
    b.on_depth([100.0, 99.5], [1.0, 2.0], [101.0, 101.5, 102.0], [0.5, 1.0, 3.0], 1)
    return b


def rich(_asset: str) -> Decimal:
    return D(1_000_000)


def ids() -> object:
    n = iter(range(1, 1000))
    return lambda: f"t{next(n)}"


def run(b: PaperBook, side: int, qty: str, price: str | None, fee: Fee = QUOTE_FEE, free: object = rich,
        order_type: str = ORDER_LIMIT_IOC):
    order = PaperOrder(side, order_type if price is not None else ORDER_MARKET, D(price) if price else None, D(qty))
    m = match(b, order, RULES, fee, "BTC", "USDT", free, ids())  # type: ignore[arg-type]
    if not m.refused:
        b.side_for(side).take(list(m.takes))
    return m


def test_a_limit_buy_walks_the_asks_up_to_its_price_one_fill_per_level_and_the_rest_expires() -> None:
    m = run(book(), SIDE_BUY, "2.000", "101.50")
    assert m.refused == "" and m.status == EXPIRED  # 0.5 + 1.0 of 2.0: the IOC remainder expires
    assert [(f.price, f.qty) for f in m.fills] == [(D("101.00"), D("0.500")), (D("101.50"), D("1.000"))]
    assert m.executed == D("1.500") and m.cum_quote == D("50.500") + D("101.500")
    # quote commission per fill, 0.1 %, rounded up to 8 decimals
    assert [f.commission for f in m.fills] == [D("0.050500"), D("0.101500")] and m.fills[0].commission_asset == "USDT"


def test_taken_liquidity_stays_taken_until_the_venue_restates_that_level() -> None:
    b = book()
    assert run(b, SIDE_SELL, "0.600", "100.00").executed == D("0.600")
    second = run(b, SIDE_SELL, "1.000", "100.00")  # only 0.4 left at 100 until the venue says otherwise
    assert second.executed == D("0.400") and second.status == EXPIRED
    b.on_quote(100.0, 1.0, 101.0, 0.5, 2)  # the same quantity restated: our take is still missing from it
    assert run(b, SIDE_SELL, "1.000", "100.00").executed == D("0")
    b.on_quote(100.0, 0.7, 101.0, 0.5, 3)  # the venue updated the level: its word replaces our debt
    assert run(b, SIDE_SELL, "1.000", "100.00").executed == D("0.700")


def test_a_better_top_of_book_removes_the_levels_it_crossed() -> None:
    b = book()
    b.on_quote(100.0, 1.0, 101.5, 0.2, 2)  # the 101.0 ask is gone
    m = run(b, SIDE_BUY, "0.300", None)  # MARKET
    assert [(f.price, f.qty) for f in m.fills] == [(D("101.50"), D("0.200")), (D("102.00"), D("0.100"))]
    assert m.status == FILLED


def test_binance_buys_pay_the_commission_in_the_base_asset() -> None:
    m = run(book(), SIDE_BUY, "0.500", "101.00", fee=BASE_FEE)
    assert m.fills[0].commission == D("0.0005") and m.fills[0].commission_asset == "BTC"


def test_the_venue_filters_refuse_the_whole_order() -> None:
    assert run(book(), SIDE_BUY, "0.0005", "101.00").refused == FILTER  # below the minimum quantity
    assert run(book(), SIDE_BUY, "0.0015", "101.00").refused == FILTER  # not a multiple of the step
    assert run(book(), SIDE_BUY, "0.010", "101.005").refused == FILTER  # not a multiple of the tick
    refused = run(book(), SIDE_BUY, "0.010", "101.00")  # 1.01 USDT < 5 minimum notional
    assert refused.refused == FILTER and "notional" in refused.detail and not refused.fills


def test_funds_short_of_the_order_refuse_it_whole() -> None:
    def poor(asset: str) -> Decimal:
        return D("100") if asset == "USDT" else D("0.1")

    buy = run(book(), SIDE_BUY, "1.000", "101.00", free=poor)  # needs 101 + commission
    assert buy.refused == INSUFFICIENT and "USDT" in buy.detail and not buy.fills
    sell = run(book(), SIDE_SELL, "0.200", "99.00", free=poor)
    assert sell.refused == INSUFFICIENT and "BTC" in sell.detail
    assert run(book(), SIDE_SELL, "0.100", "99.00", free=poor).executed == D("0.100")


def test_a_limit_that_does_not_cross_fills_nothing() -> None:
    m = run(book(), SIDE_BUY, "0.100", "100.50")
    assert m.refused == "" and m.executed == 0 and m.status == EXPIRED and not m.fills


def test_float_levels_become_exact_quantities_on_the_step() -> None:
    b = PaperBook()
    b.on_depth([], [], [0.1 + 0.2], [0.3000000000000004], 1)  # float noise from a parser
    m = match(b, PaperOrder(SIDE_BUY, ORDER_MARKET, None, D("0.3")),
              SymbolRules("X", D("0.1"), D("0.1"), D(0), D(0), 1, 1), QUOTE_FEE, "X", "USDT", rich, ids())  # type: ignore[arg-type]
    assert [(f.price, f.qty) for f in m.fills] == [(D("0.3"), D("0.3"))] and m.status == FILLED
