"""The paper fill model: what a taker order gets on the engine's local book, exactly, with the venue's rules.

Pure logic, no clock and no I/O (paper trading calls it when the order would reach the venue; a backtest can
call it at the recording's time). The venue's filters come first, as the venue applies them: the price a
multiple of the tick, the quantity a multiple of the step and at least the minimum, the notional at least the
minimum. Then the funds: a limit buy needs price x quantity of the quote asset (plus its commission where the
quote asset pays it), a MARKET buy the cost of the levels it would walk, a sell its quantity of the base asset;
short of that the venue refuses the whole order. Then the walk: best level first while it crosses the limit
(MARKET: any price), one fill per level at that level's price, quantities floored to the step; what the book
cannot give expires (IOC and MARKET never rest). Commissions per fill at the taker rate, rounded up to 8
decimals, in the asset the venue charges.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_UP, Decimal
from typing import NamedTuple

from services.executor.paper.book import PaperBook, Take
from shared.messages import SIDE_BUY
from shared.money import snap
from shared.venues.common import (
    EXPIRED,
    FILLED,
    ORDER_MARKET,
    SymbolRules,
    TradeFill,
)

COMMISSION_QUANTUM = Decimal("1e-8")
ZERO = Decimal(0)

# Why the model refused an order (the paper client renders each as the venue's own error code)
FILTER = "filter"
INSUFFICIENT = "insufficient"


class PaperOrder(NamedTuple):
    side: int  # SIDE_BUY / SIDE_SELL
    order_type: str  # ORDER_LIMIT_IOC / ORDER_MARKET
    price: Decimal | None  # the limit (None: MARKET)
    qty: Decimal


class Fee(NamedTuple):
    rate: Decimal  # the taker rate
    in_base_on_buy: bool  # Binance: a buy pays its commission in the base asset


class Match(NamedTuple):
    """The order's end: ``refused`` names the rule or the funds (nothing traded), else the fills and a final status
    (FILLED, or EXPIRED with whatever filled)."""

    refused: str  # "" when accepted
    detail: str
    status: str
    fills: tuple[TradeFill, ...]
    takes: tuple[Take, ...]  # the book levels taken (float prices as the book holds them), to mark as consumed
    executed: Decimal
    cum_quote: Decimal


def _refuse(why: str, detail: str) -> Match:
    return Match(why, detail, EXPIRED, (), (), ZERO, ZERO)


def check_filters(order: PaperOrder, rules: SymbolRules, reference_price: Decimal) -> str:
    """The venue's filter failures (tick, step, minimum quantity, minimum notional); "" when the order passes."""
    if order.qty <= 0:
        return f"quantity {order.qty} must be > 0"
    if rules.step and order.qty % rules.step:
        return f"quantity {order.qty} is not a multiple of the step {rules.step}"
    if rules.min_qty and order.qty < rules.min_qty:
        return f"quantity {order.qty} is below the minimum {rules.min_qty}"
    if order.price is not None:
        if order.price <= 0:
            return f"price {order.price} must be > 0"
        if rules.tick and order.price % rules.tick:
            return f"price {order.price} is not a multiple of the tick {rules.tick}"
    if rules.min_notional and reference_price and order.qty * reference_price < rules.min_notional:
        return f"notional {order.qty * reference_price} is below the minimum {rules.min_notional}"
    return ""


def _exact(takes: list[Take], rules: SymbolRules, qty: Decimal) -> list[tuple[Decimal, Decimal, Take]]:
    """The walk in decimals: prices on the tick, quantities floored to the step, never past the order's quantity."""
    out = []
    left = qty
    for t in takes:
        price = snap(t.price, rules.tick) if rules.tick else Decimal(repr(t.price))
        q = snap(t.qty, rules.step, "down") if rules.step else Decimal(repr(t.qty))
        q = min(q, left)
        if q <= 0:
            continue
        out.append((price, q, Take(t.price, float(q))))
        left -= q
        if left <= 0:
            break
    return out


def commission(amount: Decimal) -> Decimal:
    return amount.quantize(COMMISSION_QUANTUM, rounding=ROUND_UP) if amount else ZERO


def match(
    book: PaperBook, order: PaperOrder, rules: SymbolRules, fee: Fee, base: str, quote: str,
    free: Callable[[str], Decimal], next_trade_id: Callable[[], str],
) -> Match:
    """Decide the order on ``book`` now; the book is not touched (the caller marks ``takes`` as consumed)."""
    side = book.side_for(order.side)
    best = Decimal(repr(abs(side.keys[0]))) if side.keys else ZERO
    problem = check_filters(order, rules, order.price if order.price is not None else best)
    if problem:
        return _refuse(FILTER, problem)
    limit = None if order.order_type == ORDER_MARKET or order.price is None else float(order.price)
    walk = _exact(side.walk(limit, float(order.qty)), rules, order.qty)
    buy = order.side == SIDE_BUY
    if buy:
        cost = sum((p * q for p, q, _ in walk), ZERO) if limit is None else order.price * order.qty  # type: ignore[operator]
        need = cost if fee.in_base_on_buy else cost + commission(cost * fee.rate)
        if need > free(quote):
            return _refuse(INSUFFICIENT, f"needs {need} {quote}, has {free(quote)}")
    elif order.qty > free(base):
        return _refuse(INSUFFICIENT, f"needs {order.qty} {base}, has {free(base)}")
    fills = []
    executed = cum_quote = ZERO
    for price, q, _take in walk:
        notional = price * q
        if buy and fee.in_base_on_buy:
            fills.append(TradeFill(next_trade_id(), price, q, commission(q * fee.rate), base))
        else:
            fills.append(TradeFill(next_trade_id(), price, q, commission(notional * fee.rate), quote))
        executed += q
        cum_quote += notional
    # An IOC or MARKET remainder expires: EXPIRED is the venue's final word for a partial fill too (with its
    # executed quantity), as for nothing filled at all.
    status = FILLED if executed == order.qty else EXPIRED
    return Match("", "", status, tuple(fills), tuple(t for _p, _q, t in walk), executed, cum_quote)
