"""One simulated perpetual venue's accounts: USDT margin, positions, taker orders, funding (pure, no sockets).

Money is exact Decimal throughout; the venue's wire layer (``rest_futures_binance``, ``rest_contract_mexc``)
only renders it. Quantities here are base units (the MEXC layer converts its contracts).

Prices. The perp book is the sim's mark price for the symbol (``PerpVenue.point``: the spot model's common
mid times the perp basis, the very value the mark/funding stream publishes) with the venue's spread around
it: bid = mark x (1 - spread/2) floored to the tick, ask = mark x (1 + spread/2) raised to the tick, with
unlimited quantity at that touch. A MARKET order takes the touch; a LIMIT IOC order fills whole at the touch
when its limit reaches it (buy limit >= ask, sell limit <= bid) and expires unfilled otherwise. One order,
one fill, one price.

Margin model (one model for both venues, stated so that settlement checks can recompute it):
- wallet W: the starting USDT plus realized PnL, minus commissions, plus funding received (minus paid);
- a position holds a signed ``size`` and its exact ``cost`` (sum of qty x price of what is open), so the
  entry price is cost / |size| and the unrealized PnL at mark M is size x M - sign(size) x cost;
- initial margin IM = cost / leverage (the entry notional over the leverage, fixed at opening like MEXC's
  ``im`` and Binance's isolated wallet), rounded up to 8 decimals;
- maintenance margin MM = |size| x M x ``MAINT_MARGIN_RATE`` (0.4 %, both venues' rate for their first
  BTC bracket), no brackets;
- available = max(0, W + sum(uPnL) - sum(IM)); an order that adds exposure needs the added IM (at its fill
  price) plus its commission available, else it is refused (insufficient margin); closing needs nothing,
  and what the closing part of a flip would free is not counted toward its opening part;
- liquidation price (Binance's single-bracket formula with no maintenance amount): with margin B and
  q = |size|, entry E, a long liquidates at (E - B/q) / (1 - MMR), a short at (E + B/q) / (1 + MMR);
  B is the position's IM when isolated, and W + the other positions' uPnL - their MM when cross. 0 when
  the result is not positive. The sim computes it but never liquidates.

Reduce-only never flips a position: with no position, or one on the order's own side, the order is refused;
larger than the position, it is cut to the position (what is cut expires, status EXPIRED with the executed
part filled), which is what Binance does with a reduce-only order over the position size. Closing a
position in several parts releases cost pro rata, rounded to 12 decimals (exact when a close takes all).

Commission: the venue's taker fee on the fill's notional, rounded up to 8 decimals, out of the wallet.
Funding: ``settle`` pays every open position of a symbol -size x mark x rate (a short receives a positive
rate), exact (no rounding), into the wallet and the income history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_UP, Decimal, localcontext
from typing import Any, NamedTuple

from services.sim.units import SymbolSpec

ZERO = Decimal(0)
ONE = Decimal(1)
MAINT_MARGIN_RATE = Decimal("0.004")
DEFAULT_LEVERAGE = 20  # both venues' default for a symbol never configured
MAX_LEVERAGE = 125
COMMISSION_QUANTUM = Decimal("1e-8")
MARGIN_QUANTUM = Decimal("1e-8")
PRO_RATA_QUANTUM = Decimal("1e-12")
DISPLAY_QUANTUM = Decimal("1e-8")  # entry and liquidation prices as the wire shows them
WIDE = 60  # digits for exact products: a 28-digit context could round size x mark x rate

# Position sides: BOTH is one-way mode (Binance), LONG/SHORT hedge mode (MEXC's default).
BOTH = "BOTH"
LONG = "LONG"
SHORT = "SHORT"
MARKET = "MARKET"
LIMIT_IOC = "LIMIT_IOC"

# Order statuses (neutral; each venue renders its own)
FILLED = "FILLED"
EXPIRED = "EXPIRED"  # IOC remainder (nothing or part filled), reduce-only cut

# Order events, as the user-data stream names them
EV_NEW = "NEW"
EV_TRADE = "TRADE"
EV_EXPIRED = "EXPIRED"

# Income kinds (Binance's incomeType words)
FUNDING_FEE = "FUNDING_FEE"
COMMISSION = "COMMISSION"
REALIZED_PNL = "REALIZED_PNL"

# Account update reasons
REASON_ORDER = "ORDER"
REASON_FUNDING = "FUNDING_FEE"

# Neutral rejection reasons
BAD_SYMBOL = "bad_symbol"
DUPLICATE = "duplicate"
INSUFFICIENT_MARGIN = "insufficient_margin"
REDUCE_ONLY = "reduce_only"  # nothing to reduce on that side
NOTIONAL = "notional"
LEVERAGE_MISMATCH = "leverage_mismatch"  # MEXC: an order's leverage differs from its open position's
MARGIN_MISMATCH = "margin_mismatch"  # MEXC: an order's margin type differs from its open position's
MARGIN_TYPE_SAME = "margin_type_same"
MARGIN_TYPE_POSITION = "margin_type_position"  # a margin type change with a position open


class Reject(NamedTuple):
    reason: str
    detail: str = ""


class OrderRequest(NamedTuple):
    """A validated order in the book's terms (the wire layer has parsed and checked its text)."""

    symbol: int
    side: str  # BUY | SELL
    position_side: str  # BOTH | LONG | SHORT
    kind: str  # MARKET | LIMIT_IOC
    qty: Decimal  # base units, a whole number of steps
    price: Decimal | None  # the limit (LIMIT_IOC)
    client_order_id: str
    reduce_only: bool
    leverage: int | None = None  # MEXC: the order's leverage (None: the symbol's setting)
    isolated: bool | None = None  # MEXC: the order's margin type (None: the symbol's setting)
    min_notional: Decimal = ZERO  # Binance: MIN_NOTIONAL for orders that are not reduce-only


@dataclass
class SymbolSetting:
    leverage: int = DEFAULT_LEVERAGE
    isolated: bool = False  # cross unless set


@dataclass
class PerpPosition:
    symbol: int
    side: str  # BOTH | LONG | SHORT
    leverage: int
    isolated: bool
    size: Decimal = ZERO  # signed base units: negative is short
    cost: Decimal = ZERO  # sum of qty x price still open (>= 0)
    realized: Decimal = ZERO  # trading PnL realized by closes, fees not included
    fees: Decimal = ZERO  # commissions paid on this position's fills
    funding: Decimal = ZERO  # funding received (negative: paid)
    position_id: int = 0  # a new id each time the position opens from flat
    open_ms: int = 0  # when it last opened from flat
    update_ms: int = 0

    @property
    def sign(self) -> int:
        return (self.size > 0) - (self.size < 0)

    def entry(self) -> Decimal:
        if not self.size:
            return ZERO
        with localcontext() as ctx:
            ctx.prec = WIDE
            return (self.cost / abs(self.size)).quantize(DISPLAY_QUANTUM, ROUND_HALF_EVEN)

    def unrealized(self, mark: Decimal) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = WIDE
            return self.size * mark - self.sign * self.cost

    def initial_margin(self) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = WIDE
            return (self.cost / self.leverage).quantize(MARGIN_QUANTUM, ROUND_UP)

    def maint_margin(self, mark: Decimal) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = WIDE
            return abs(self.size) * mark * MAINT_MARGIN_RATE


@dataclass
class PerpFill:
    price: Decimal
    qty: Decimal
    commission: Decimal
    realized: Decimal  # trading PnL this fill realized (0 for an opening fill)
    trade_id: int
    time_ms: int


@dataclass
class PerpOrder:
    number: int
    request: OrderRequest
    spec: SymbolSpec
    leverage: int
    isolated: bool
    time_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    fills: list[PerpFill] = field(default_factory=list)
    position_id: int = 0
    update_ms: int = 0

    @property
    def avg_price(self) -> Decimal:
        return self.fills[0].price if self.fills else ZERO  # one fill per order

    @property
    def commission(self) -> Decimal:
        return sum((f.commission for f in self.fills), ZERO)

    @property
    def realized(self) -> Decimal:
        return sum((f.realized for f in self.fills), ZERO)


@dataclass
class Income:
    """One flow into or out of the wallet: Binance's income record, MEXC's funding record for funding."""

    tran_id: int
    symbol: int
    kind: str  # FUNDING_FEE | COMMISSION | REALIZED_PNL
    amount: Decimal  # signed: paid is negative
    time_ms: int
    trade_id: int = 0  # 0: not a trade's
    position_side: str = BOTH
    position_id: int = 0
    rate: Decimal = ZERO  # funding only
    position_value: Decimal = ZERO  # funding only: |size| x mark


@dataclass
class PerpAccount:
    wallet: Decimal
    settings: dict[int, SymbolSetting] = field(default_factory=dict)
    positions: dict[tuple[int, str], PerpPosition] = field(default_factory=dict)
    orders: dict[str, PerpOrder] = field(default_factory=dict)  # client order id -> order
    by_number: dict[int, PerpOrder] = field(default_factory=dict)
    income: list[Income] = field(default_factory=list)

    def setting(self, symbol: int) -> SymbolSetting:
        return self.settings.setdefault(symbol, SymbolSetting())


class Touch(NamedTuple):
    bid: Decimal
    ask: Decimal
    mark: Decimal


# (api key, order, event kind, the fill of a TRADE event)
OrderListener = Callable[[str, PerpOrder, str, PerpFill | None], None]
# (api key, reason, wallet change, the positions it touched, event time)
AccountListener = Callable[[str, str, Decimal, Sequence[PerpPosition], int], None]


class PerpBook:
    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        listed: Sequence[int],
        mark_of: Callable[[int], Decimal],
        spread_bps: float,
        taker_fee: float,
        starting_usdt: float,
    ) -> None:
        """``mark_of(symbol)``: the mark price the venue publishes now (exact, from its wire text)."""
        self.specs = list(specs)
        self.index = {specs[i].name: i for i in listed}
        self.mark_of = mark_of
        self.half_spread = Decimal(repr(spread_bps)) / 20_000
        self.fee = Decimal(repr(taker_fee))
        self.starting = Decimal(repr(starting_usdt))
        self.accounts: dict[str, PerpAccount] = {}
        self.order_listeners: list[OrderListener] = []
        self.account_listeners: list[AccountListener] = []
        self._order_number = 0
        self._trade_number = 0
        self._tran_number = 0
        self._position_number = 0
        self.orders = 0
        self.fills = 0
        self.rejects = 0
        self.funding_payments = 0

    # ----- accounts
    def open_account(self, api_key: str) -> None:
        self.accounts.setdefault(api_key, PerpAccount(self.starting))

    def account(self, api_key: str) -> PerpAccount:
        return self.accounts[api_key]

    def positions(self, api_key: str, symbol: int | None = None) -> list[PerpPosition]:
        """Open positions (size not 0), by symbol then side."""
        acct = self.accounts[api_key]
        return sorted((p for p in acct.positions.values() if p.size and (symbol is None or p.symbol == symbol)),
                      key=lambda p: (p.symbol, p.side))

    def unrealized(self, api_key: str) -> Decimal:
        return sum((p.unrealized(self.mark_of(p.symbol)) for p in self.positions(api_key)), ZERO)

    def initial_margin(self, api_key: str) -> Decimal:
        return sum((p.initial_margin() for p in self.positions(api_key)), ZERO)

    def maint_margin(self, api_key: str) -> Decimal:
        return sum((p.maint_margin(self.mark_of(p.symbol)) for p in self.positions(api_key)), ZERO)

    def available(self, api_key: str) -> Decimal:
        acct = self.accounts[api_key]
        return max(ZERO, acct.wallet + self.unrealized(api_key) - self.initial_margin(api_key))

    def liquidation_price(self, api_key: str, pos: PerpPosition) -> Decimal:
        """See the module docstring; 0 for a flat position or a result that is not positive."""
        if not pos.size:
            return ZERO
        with localcontext() as ctx:
            ctx.prec = WIDE
            if pos.isolated:
                margin = pos.initial_margin()
            else:
                others = [p for p in self.positions(api_key) if p is not pos]
                margin = self.accounts[api_key].wallet + sum(
                    (p.unrealized(self.mark_of(p.symbol)) - p.maint_margin(self.mark_of(p.symbol)) for p in others),
                    ZERO,
                )
            q = abs(pos.size)
            entry = pos.cost / q
            if pos.size > 0:
                price = (entry - margin / q) / (ONE - MAINT_MARGIN_RATE)
            else:
                price = (entry + margin / q) / (ONE + MAINT_MARGIN_RATE)
            return price.quantize(DISPLAY_QUANTUM, ROUND_HALF_EVEN) if price > 0 else ZERO

    # ----- prices
    def touch(self, symbol: int) -> Touch:
        spec = self.specs[symbol]
        tick = Decimal(spec.tick_text)
        mark = self.mark_of(symbol)
        with localcontext() as ctx:
            ctx.prec = WIDE
            bid = (mark * (ONE - self.half_spread) / tick).to_integral_value(ROUND_FLOOR) * tick
            ask = (mark * (ONE + self.half_spread) / tick).to_integral_value(ROUND_CEILING) * tick
        bid = max(bid, tick)
        return Touch(bid, max(ask, bid + tick), mark)

    # ----- settings
    def set_leverage(self, api_key: str, symbol: int, leverage: int) -> None:
        """The symbol's leverage, applied to its open positions too (their IM is re-computed from it)."""
        acct = self.accounts[api_key]
        acct.setting(symbol).leverage = leverage
        for (s, _), pos in acct.positions.items():
            if s == symbol:
                pos.leverage = leverage

    def set_margin_type(self, api_key: str, symbol: int, isolated: bool) -> Reject | None:
        acct = self.accounts[api_key]
        setting = acct.setting(symbol)
        if setting.isolated == isolated:
            return self.reject(MARGIN_TYPE_SAME)
        if self.positions(api_key, symbol):
            return self.reject(MARGIN_TYPE_POSITION)
        setting.isolated = isolated
        return None

    # ----- orders
    def find(self, api_key: str, client_order_id: str) -> PerpOrder | None:
        return self.accounts[api_key].orders.get(client_order_id)

    def find_by_number(self, api_key: str, number: int) -> PerpOrder | None:
        return self.accounts[api_key].by_number.get(number)

    def every_order(self, api_key: str) -> list[PerpOrder]:
        return sorted(self.accounts[api_key].by_number.values(), key=lambda o: o.number)

    def open_orders(self, api_key: str, symbol: int | None = None) -> list[PerpOrder]:
        """Always empty: every order is IOC or MARKET and final when its answer leaves."""
        return []

    def place(self, api_key: str, req: OrderRequest, now_ms: int) -> PerpOrder | Reject:
        acct = self.accounts[api_key]
        if req.client_order_id in acct.orders:
            return self.reject(DUPLICATE, req.client_order_id)
        spec = self.specs[req.symbol]
        setting = acct.setting(req.symbol)
        key = (req.symbol, req.position_side)
        pos = acct.positions.get(key)
        leverage = req.leverage or (pos.leverage if pos is not None and pos.size else setting.leverage)
        isolated = setting.isolated if req.isolated is None else req.isolated
        if pos is not None and pos.size and not req.reduce_only:
            if req.leverage is not None and req.leverage != pos.leverage:
                return self.reject(LEVERAGE_MISMATCH, str(pos.leverage))
            if req.isolated is not None and req.isolated != pos.isolated:
                return self.reject(MARGIN_MISMATCH)
        direction = 1 if req.side == "BUY" else -1
        size = pos.size if pos is not None else ZERO
        qty = req.qty
        if req.reduce_only:
            if not size or (size > 0) == (direction > 0):
                return self.reject(REDUCE_ONLY)
            qty = min(qty, abs(size))  # never more than the position: no flip
        touch = self.touch(req.symbol)
        price = touch.ask if direction > 0 else touch.bid  # where it fills, if it fills
        limit = price if req.price is None else req.price  # what it is worth as sent (MARKET: the touch)
        crosses = req.kind == MARKET or (limit >= price if direction > 0 else limit <= price)
        if not req.reduce_only and qty * limit < req.min_notional:
            return self.reject(NOTIONAL, str(req.min_notional))
        fill_qty = qty if crosses else ZERO
        closing = min(fill_qty, abs(size)) if size and (size > 0) != (direction > 0) else ZERO
        opening = fill_qty - closing
        commission = _commission(fill_qty * price * self.fee)
        if opening:
            with localcontext() as ctx:
                ctx.prec = WIDE
                need = (opening * price / leverage).quantize(MARGIN_QUANTUM, ROUND_UP) + commission
            if need > self.available(api_key):
                return self.reject(INSUFFICIENT_MARGIN)
        self._order_number += 1
        self.orders += 1
        order = PerpOrder(self._order_number, req, spec, leverage, isolated, now_ms, update_ms=now_ms)
        acct.orders[req.client_order_id] = order
        acct.by_number[order.number] = order
        self._emit_order(api_key, order, EV_NEW, None)
        if fill_qty:
            if pos is None:
                pos = acct.positions[key] = PerpPosition(req.symbol, req.position_side, leverage, isolated)
            self._fill(api_key, acct, order, pos, direction, price, closing, opening, commission, now_ms)
        order.status = FILLED if order.executed == req.qty else EXPIRED
        order.update_ms = now_ms
        if order.status != FILLED:
            self._emit_order(api_key, order, EV_EXPIRED, None)
        return order

    def _fill(
        self, api_key: str, acct: PerpAccount, order: PerpOrder, pos: PerpPosition, direction: int, price: Decimal,
        closing: Decimal, opening: Decimal, commission: Decimal, now_ms: int,
    ) -> None:
        realized = ZERO
        with localcontext() as ctx:
            ctx.prec = WIDE
            if closing:
                q = abs(pos.size)
                released = pos.cost if closing == q else (pos.cost * closing / q).quantize(PRO_RATA_QUANTUM)
                realized = (closing * price - released) * pos.sign
                pos.cost -= released
                pos.size += direction * closing
                pos.realized += realized
            if opening:
                if not pos.size:  # flat before this part: a new position (a flip opens one too)
                    self._position_number += 1
                    pos.position_id = self._position_number
                    pos.open_ms = now_ms
                    pos.leverage, pos.isolated = order.leverage, order.isolated
                    pos.cost = pos.realized = pos.fees = pos.funding = ZERO
                pos.cost += opening * price
                pos.size += direction * opening
        qty = closing + opening
        pos.fees += commission
        pos.update_ms = now_ms
        acct.wallet += realized - commission
        self._trade_number += 1
        self.fills += 1
        fill = PerpFill(price, qty, commission, realized, self._trade_number, now_ms)
        order.fills.append(fill)
        order.executed += qty
        order.cum_quote += qty * price
        order.position_id = pos.position_id
        if realized:
            self._book(acct, Income(0, pos.symbol, REALIZED_PNL, realized, now_ms, fill.trade_id, pos.side,
                                    pos.position_id))
        if commission:
            self._book(acct, Income(0, pos.symbol, COMMISSION, -commission, now_ms, fill.trade_id, pos.side,
                                    pos.position_id))
        self._emit_order(api_key, order, EV_TRADE, fill)
        for listener in self.account_listeners:
            listener(api_key, REASON_ORDER, realized - commission, [pos], now_ms)

    # ----- funding
    def settle(self, symbol: int, mark: Decimal, rate: Decimal, at_ms: int) -> int:
        """Every open position of ``symbol`` pays -size x mark x rate (exact). Returns how many paid."""
        paid = 0
        for api_key, acct in self.accounts.items():
            for pos in self.positions(api_key, symbol):  # a new list: the wallet changes, not the positions
                with localcontext() as ctx:
                    ctx.prec = WIDE
                    amount = -(pos.size * mark * rate)
                    value = abs(pos.size) * mark
                acct.wallet += amount
                pos.funding += amount
                pos.update_ms = at_ms
                self._book(acct, Income(0, symbol, FUNDING_FEE, amount, at_ms, 0, pos.side, pos.position_id,
                                        rate, value))
                paid += 1
                for listener in self.account_listeners:
                    listener(api_key, REASON_FUNDING, amount, [pos] if pos.isolated else [], at_ms)
        self.funding_payments += paid
        return paid

    def funding(self, api_key: str) -> list[Income]:
        return [i for i in self.accounts[api_key].income if i.kind == FUNDING_FEE]

    # ----- helpers
    def _book(self, acct: PerpAccount, income: Income) -> None:
        self._tran_number += 1
        income.tran_id = self._tran_number
        acct.income.append(income)

    def _emit_order(self, api_key: str, order: PerpOrder, kind: str, fill: PerpFill | None) -> None:
        for listener in self.order_listeners:
            listener(api_key, order, kind, fill)

    def reject(self, reason: str, detail: str = "") -> Reject:
        self.rejects += 1
        return Reject(reason, detail)


def account_listing(book: PerpBook, api_key: str) -> dict[str, Any]:
    """Every order, open position and funding payment of the account, and its wallet (a test hook: the
    venue's side of a settlement check). Amounts exact, as plain decimal text."""
    acct = book.account(api_key)
    return {
        "wallet": format(acct.wallet, "f"),
        "starting_wallet": format(book.starting, "f"),
        "orders": [
            {"symbol": o.spec.name, "client_order_id": o.request.client_order_id, "order_id": str(o.number),
             "side": o.request.side, "position_side": o.request.position_side, "status": o.status,
             "reduce_only": o.request.reduce_only, "qty": format(o.request.qty, "f"),
             "executed": format(o.executed, "f"), "avg_price": format(o.avg_price, "f"),
             "commission": format(o.commission, "f"), "realized": format(o.realized, "f"),
             "trade_ids": [fill.trade_id for fill in o.fills]}
            for o in book.every_order(api_key)
        ],
        "positions": [
            {"symbol": book.specs[p.symbol].name, "position_side": p.side, "size": format(p.size, "f"),
             "cost": format(p.cost, "f"), "entry": format(p.entry(), "f"), "leverage": p.leverage,
             "isolated": p.isolated, "realized": format(p.realized, "f"), "fees": format(p.fees, "f"),
             "funding": format(p.funding, "f"), "position_id": p.position_id}
            for p in book.positions(api_key)
        ],
        "funding": [
            {"symbol": book.specs[i.symbol].name, "position_side": i.position_side, "amount": format(i.amount, "f"),
             "rate": format(i.rate, "f"), "position_value": format(i.position_value, "f"), "time": i.time_ms,
             "tran_id": i.tran_id}
            for i in book.funding(api_key)
        ],
    }


def _commission(amount: Decimal) -> Decimal:
    return amount.quantize(COMMISSION_QUANTUM, rounding=ROUND_UP) if amount else ZERO
