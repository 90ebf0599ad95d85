"""One simulated spot venue's matching and accounts: orders per API key, balances, taker fills.

Pure logic, no sockets. Orders never rest on the book: IOC and FOK limit orders and MARKET orders are taker
orders that walk the venue's L2 book (``DepthBook``, the book the depth streams publish) best level first
while the level crosses the limit (MARKET: any price), one fill per level at that level's price; the
remainder expires (FOK: all or nothing). The taken quantity leaves the L2 book through its own recording
path, so the next depth diff shows it. Only a ``slow`` order fault keeps an order open for a while
(``accept`` then ``match`` later, status NEW meanwhile, cancellable); its funds are locked until then.

Balances are per API key. Commissions are charged per fill, rounded up to 8 decimals: Binance takes the
base asset on buys and the quote asset on sells, MEXC always the quote asset. A limit buy needs
price x qty (plus the fee where it is paid in the quote asset); a MARKET buy needs the cost of the levels it
would walk. Every order event (NEW, TRADE, EXPIRED, CANCELED) goes to ``listeners`` as it happens, for the
user-data stream. Rejections are neutral reasons here; each venue's dialect renders its own codes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import NamedTuple

from services.sim.depth import DepthBook, Level
from services.sim.market import SimQuote
from services.sim.units import SymbolSpec, parse_decimal, to_units

# Neutral rejection reasons
BAD_SYMBOL = "bad_symbol"
BAD_PARAM = "bad_param"  # detail names the parameter
PRECISION = "precision"  # more decimals than the venue accepts at all
PRICE_FILTER = "price_filter"  # not a multiple of the tick
LOT_SIZE = "lot_size"  # not a multiple of the step, or zero
NOTIONAL = "notional"  # price x qty below the symbol's minimum
INSUFFICIENT = "insufficient"
DUPLICATE = "duplicate"

LIMIT_IOC = "LIMIT_IOC"
LIMIT_FOK = "LIMIT_FOK"
MARKET = "MARKET"

# Order event kinds (Binance's executionReport "x")
EV_NEW = "NEW"
EV_TRADE = "TRADE"
EV_EXPIRED = "EXPIRED"
EV_CANCELED = "CANCELED"

COMMISSION_QUANTUM = Decimal("1e-8")  # commissions are charged to 8 decimals, rounded up
MAX_DECIMALS = 8
ZERO = Decimal(0)


class Reject(NamedTuple):
    reason: str
    detail: str = ""


class StatusNames(NamedTuple):
    """A venue's names for an order's outcomes."""

    filled: str
    partial: str  # some filled, the remainder expired
    none: str  # nothing filled, expired
    new: str = "NEW"  # accepted, not matched yet (a slow order)
    canceled: str = "CANCELED"  # cancelled while open, nothing filled


class Ticket(NamedTuple):
    """A validated order request in integer units."""

    symbol: int
    side: str  # BUY | SELL
    kind: str  # LIMIT_IOC | LIMIT_FOK | MARKET
    price: int  # price units; 0 for MARKET
    qty: int  # qty units
    client_order_id: str
    price_text: str
    qty_text: str


@dataclass
class SimFill:
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int
    time_ms: int = 0


@dataclass
class SimOrder:
    number: int
    ticket: Ticket
    spec: SymbolSpec
    time_ms: int
    status: str
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    fills: list[SimFill] = field(default_factory=list)
    update_ms: int = 0
    is_open: bool = False  # accepted and not matched or cancelled yet
    locked: tuple[str, Decimal] | None = None  # funds held while open

    @property
    def orig_qty(self) -> Decimal:
        return self.spec.qty(self.ticket.qty)


# (api key, order, event kind, the fill of a TRADE event)
OrderListener = Callable[[str, SimOrder, str, SimFill | None], None]


class VenueBook:
    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        depth: Sequence[DepthBook],  # per symbol, as specs
        taker_fee: float,
        starting_usd: float,
        *,
        commission_in_base_on_buy: bool,
        status_names: StatusNames,
    ) -> None:
        self.specs = list(specs)
        self.depth = list(depth)
        self.top_listeners: list[Callable[[SimQuote], None]] = []  # a trade moved the top (the stream publishes it)
        self.index = {s.name: i for i, s in enumerate(specs)}
        self.fee = Decimal(repr(taker_fee))
        self.commission_in_base_on_buy = commission_in_base_on_buy
        self.status_names = status_names
        self.listeners: list[OrderListener] = []
        self._starting = self._starting_balances(Decimal(repr(starting_usd)))
        self._top: list[SimQuote | None] = [None] * len(specs)
        self._accounts: dict[str, dict[str, Decimal]] = {}  # api key -> asset -> total (free + locked)
        self._locked: dict[str, dict[str, Decimal]] = {}
        self._orders: dict[str, dict[str, SimOrder]] = {}  # api key -> client order id -> order
        self._by_number: dict[str, dict[int, SimOrder]] = {}
        self._order_number = 0
        # Run-unique like the detector's ids: fills of two paper runs never share a key in PostgreSQL.
        self._trade_number = secrets.randbits(24) << 32
        self.quotes = [0] * len(specs)
        self.orders = 0
        self.fills = 0
        self.rejects = 0
        self.cancels = 0

    def _starting_balances(self, usd: Decimal) -> dict[str, Decimal]:
        """Every asset holds ``usd`` worth at the start prices (a BTC-quoted pair values its base through BTC's
        dollar price); an asset seen in several symbols keeps its value from the first USD-quoted one."""
        out: dict[str, Decimal] = {}
        for s in sorted(self.specs, key=lambda spec: spec.quote_usd != 1.0):  # USD pairs first
            if s.quote_usd == 1.0:
                out.setdefault(s.quote, usd)
            value = Decimal(repr(s.start_price)) * Decimal(repr(s.quote_usd))
            qty = (usd / value).quantize(Decimal(1).scaleb(-s.qty_decimals), rounding=ROUND_DOWN)
            out.setdefault(s.base, qty)
        return out

    # ----- market data
    def update(self, q: SimQuote) -> None:
        """The venue's latest quote (what ``top`` reports); matching itself walks the depth book."""
        self._top[q.symbol] = q
        self.quotes[q.symbol] += 1

    def top(self, symbol: int) -> SimQuote | None:
        return self._top[symbol]

    def _top_changed(self, s: int) -> None:
        """A trade took liquidity: the top is now the depth book's best, and the venue tells everyone at once (a
        bookTicker goes out on every change of the best levels, trades included), as the venues do."""
        last = self._top[s]
        book = self.depth[s]
        bids, asks = book.bids.levels(1), book.asks.levels(1)
        if last is None or not bids or not asks:
            return
        q = SimQuote(last.venue, s, book.update_id, bids[0][0], bids[0][1], asks[0][0], asks[0][1])
        self._top[s] = q
        for listener in self.top_listeners:
            listener(q)

    # ----- accounts
    def open_account(self, api_key: str) -> None:
        if api_key not in self._accounts:
            self._accounts[api_key] = dict(self._starting)
            self._locked[api_key] = {}
            self._orders[api_key] = {}
            self._by_number[api_key] = {}

    def balances(self, api_key: str) -> dict[str, Decimal]:
        """Total per asset (free + locked)."""
        return dict(self._accounts[api_key])

    def starting_balances(self, api_key: str) -> dict[str, Decimal]:
        """What the account held when it was opened (every account starts alike)."""
        if api_key not in self._accounts:
            raise KeyError(api_key)
        return dict(self._starting)

    def locked(self, api_key: str) -> dict[str, Decimal]:
        return {a: q for a, q in self._locked[api_key].items() if q}

    def _free(self, api_key: str, asset: str) -> Decimal:
        return self._accounts[api_key].get(asset, ZERO) - self._locked[api_key].get(asset, ZERO)

    def find(self, api_key: str, client_order_id: str) -> SimOrder | None:
        return self._orders.get(api_key, {}).get(client_order_id)

    def find_by_number(self, api_key: str, number: int) -> SimOrder | None:
        return self._by_number.get(api_key, {}).get(number)

    def open_orders(self, api_key: str, symbol: int | None = None) -> list[SimOrder]:
        return [
            o for o in self._by_number.get(api_key, {}).values()
            if o.is_open and (symbol is None or o.ticket.symbol == symbol)
        ]

    def account_orders(self, api_key: str, symbol: int) -> list[SimOrder]:
        """Every order the account placed in ``symbol`` (open, cancelled, filled), oldest first."""
        return sorted((o for o in self._by_number.get(api_key, {}).values() if o.ticket.symbol == symbol),
                      key=lambda o: o.number)

    def every_order(self, api_key: str) -> list[SimOrder]:
        """Every order the account placed, in every symbol, oldest first."""
        return sorted(self._by_number.get(api_key, {}).values(), key=lambda o: o.number)

    def trades(self, api_key: str, symbol: int, order_number: int | None = None) -> list[tuple[SimOrder, SimFill]]:
        """Every fill of the account in ``symbol`` (of one order if given), oldest first."""
        out = [
            (o, f) for o in self._by_number.get(api_key, {}).values()
            if o.ticket.symbol == symbol and (order_number is None or o.number == order_number)
            for f in o.fills
        ]
        out.sort(key=lambda of: of[1].trade_id)
        return out

    # ----- orders
    def validate(
        self, symbol: str, side: str, kind: str, price_text: str, qty_text: str, client_order_id: str,
        *, price_decimals_limit: int | None = None,
    ) -> Ticket | Reject:
        """Symbol, side and the filters. ``price_decimals_limit`` (MEXC) makes extra price decimals a
        precision error instead of a tick error."""
        s = self.index.get(symbol)
        if s is None:
            return self.reject(BAD_SYMBOL, symbol)
        spec = self.specs[s]
        if side not in ("BUY", "SELL"):
            return self.reject(BAD_PARAM, "side")
        qty = parse_decimal(qty_text)
        if qty is None:
            return self.reject(BAD_PARAM, "quantity")
        price_units = 0
        if kind != MARKET:
            price = parse_decimal(price_text)
            if price is None:
                return self.reject(BAD_PARAM, "price")
            limit = MAX_DECIMALS if price_decimals_limit is None else price_decimals_limit
            if to_units(price, limit) is None:
                return self.reject(PRECISION, "price")
            units = to_units(price, spec.price_decimals)
            if units is None or units <= 0 or units % spec.tick:
                return self.reject(PRICE_FILTER, spec.tick_text)
            price_units = units
        if to_units(qty, MAX_DECIMALS) is None:
            return self.reject(PRECISION, "quantity")
        qty_units = to_units(qty, spec.qty_decimals)
        if qty_units is None or qty_units <= 0 or qty_units % spec.step:
            return self.reject(LOT_SIZE, spec.step_text)
        ref = price_units if kind != MARKET else self.depth[s].best(side)
        if ref and spec.price(ref) * spec.qty(qty_units) < spec.min_notional:
            return self.reject(NOTIONAL, str(spec.min_notional))
        return Ticket(s, side, kind, price_units, qty_units, client_order_id, price_text, qty_text)

    def execute(self, api_key: str, t: Ticket, time_ms: int, cap: int | None = None) -> SimOrder | Reject:
        """Accept and match at once (the usual immediate order). ``cap``: fill at most this many qty units."""
        order = self.accept(api_key, t, time_ms)
        if isinstance(order, SimOrder):
            self.match(api_key, order, time_ms, cap)
        return order

    def accept(self, api_key: str, t: Ticket, time_ms: int, *, hold: bool = False) -> SimOrder | Reject:
        """Duplicate id and balance checks, then the order exists with status NEW (event NEW). ``hold``: it
        stays open, its funds locked, until ``match`` or ``cancel``."""
        orders = self._orders[api_key]
        if t.client_order_id in orders:
            return self.reject(DUPLICATE, t.client_order_id)
        spec = self.specs[t.symbol]
        need = self._need(t, self._walk(t, None) if t.kind == MARKET and t.side == "BUY" else None)
        if self._free(api_key, need[0]) < need[1]:
            return self.reject(INSUFFICIENT, need[0])
        self._order_number += 1
        self.orders += 1
        order = SimOrder(self._order_number, t, spec, time_ms, self.status_names.new, update_ms=time_ms)
        orders[t.client_order_id] = order
        self._by_number[api_key][order.number] = order
        if hold:
            order.is_open = True
            order.locked = need
            locked = self._locked[api_key]
            locked[need[0]] = locked.get(need[0], ZERO) + need[1]
        self._emit(api_key, order, EV_NEW, None)
        return order

    def _need(self, t: Ticket, walk: list[Level] | None) -> tuple[str, Decimal]:
        """(asset, amount) the order must have free: base to sell, quote to buy (MARKET: the walked cost)."""
        spec = self.specs[t.symbol]
        if t.side == "SELL":
            return spec.base, spec.qty(t.qty)
        if walk is None:
            need = spec.price(t.price) * spec.qty(t.qty)
        else:
            need = sum((spec.price(p) * spec.qty(q) for p, q in walk), ZERO)
        if not self.commission_in_base_on_buy:
            need += need * self.fee
        return spec.quote, need

    def _walk(self, t: Ticket, cap: int | None) -> list[Level]:
        qty = t.qty if cap is None else min(cap, t.qty)
        levels = self.depth[t.symbol].walk(t.side, None if t.kind == MARKET else t.price, qty)
        # FOK is all or nothing (a partial-fill fault's cap becomes the whole order)
        if t.kind == LIMIT_FOK and sum(q for _, q in levels) < qty:
            return []
        return levels

    def match(self, api_key: str, order: SimOrder, time_ms: int, cap: int | None = None) -> None:
        """Walk the book for an accepted order; the remainder expires. Nothing happens to a cancelled one."""
        if order.status != self.status_names.new:
            return
        held = order.locked is not None
        self._release(api_key, order)
        order.locked = None
        t = order.ticket
        levels = self._walk(t, cap)
        if held and levels and t.kind == MARKET and t.side == "BUY":
            # A held MARKET buy meets the book as it is now, which may cost more than what was locked (an
            # immediate one was checked against this very walk at acceptance).
            asset, need = self._need(t, levels)
            if self._free(api_key, asset) < need:
                levels = []
        if levels:
            self.depth[t.symbol].take(t.side, levels)
            self._top_changed(t.symbol)
        acct = self._accounts[api_key]
        for price, qty in levels:
            self._fill(api_key, order, acct, price, qty, time_ms)
        names = self.status_names
        filled = order.executed == order.orig_qty
        order.status = names.filled if filled else names.partial if order.executed else names.none
        order.update_ms = time_ms
        if not filled:
            self._emit(api_key, order, EV_EXPIRED, None)

    def cancel(self, api_key: str, order: SimOrder, time_ms: int) -> bool:
        """Cancel an open order (nothing filled yet): True if it was open."""
        if not order.is_open:
            return False
        self._release(api_key, order)
        order.locked = None
        order.status = self.status_names.canceled
        order.update_ms = time_ms
        self.cancels += 1
        self._emit(api_key, order, EV_CANCELED, None)
        return True

    def _release(self, api_key: str, order: SimOrder) -> None:
        order.is_open = False
        if order.locked is not None:
            asset, amount = order.locked
            self._locked[api_key][asset] -= amount

    def _fill(
        self, api_key: str, order: SimOrder, acct: dict[str, Decimal], px_units: int, qty_units: int, time_ms: int
    ) -> None:
        spec = order.spec
        price, qty = spec.price(px_units), spec.qty(qty_units)
        notional = price * qty
        if order.ticket.side == "BUY":
            if self.commission_in_base_on_buy:
                commission, asset = _commission(qty * self.fee), spec.base
                acct[spec.base] = acct.get(spec.base, ZERO) + qty - commission
                acct[spec.quote] -= notional
            else:
                commission, asset = _commission(notional * self.fee), spec.quote
                acct[spec.base] = acct.get(spec.base, ZERO) + qty
                acct[spec.quote] -= notional + commission
        else:
            commission, asset = _commission(notional * self.fee), spec.quote
            acct[spec.base] -= qty
            acct[spec.quote] = acct.get(spec.quote, ZERO) + notional - commission
        self._trade_number += 1
        self.fills += 1
        fill = SimFill(price, qty, commission, asset, self._trade_number, time_ms)
        order.fills.append(fill)
        order.executed += qty
        order.cum_quote += notional
        self._emit(api_key, order, EV_TRADE, fill)

    def _emit(self, api_key: str, order: SimOrder, kind: str, fill: SimFill | None) -> None:
        for listener in self.listeners:
            listener(api_key, order, kind, fill)

    def reject(self, reason: str, detail: str = "") -> Reject:
        self.rejects += 1
        return Reject(reason, detail)


def _commission(amount: Decimal) -> Decimal:
    return amount.quantize(COMMISSION_QUANTUM, rounding=ROUND_UP) if amount else ZERO


def half_cap(spec: SymbolSpec, qty_units: int) -> int:
    """A partial-fill fault's cap: half the quantity floored to the step, at least one step."""
    return max(spec.step, qty_units // 2 // spec.step * spec.step)
