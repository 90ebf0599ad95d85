"""One simulated venue's state: its current top of book, the accounts per API key, and taker matching.

Pure logic, no sockets. Orders never rest: IOC and FOK limit orders and MARKET orders trade at once
against the current top of book (one level: the quoted quantity is all there is) and the remainder
expires. Liquidity taken from the top stays taken until the venue's next quote replaces it.
Rejections are neutral reasons here; each venue's dialect turns them into its own codes and messages.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import NamedTuple

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

COMMISSION_QUANTUM = Decimal("1e-8")  # commissions are charged to 8 decimals, rounded up
MAX_DECIMALS = 8


class Reject(NamedTuple):
    reason: str
    detail: str = ""


class StatusNames(NamedTuple):
    """A venue's names for an immediate order's three outcomes."""

    filled: str
    partial: str  # some filled, the remainder expired or was cancelled
    none: str


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


@dataclass
class SimOrder:
    number: int
    ticket: Ticket
    spec: SymbolSpec
    time_ms: int
    status: str
    executed: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    fills: list[SimFill] = field(default_factory=list)


class VenueBook:
    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        taker_fee: float,
        starting_usd: float,
        *,
        commission_in_base_on_buy: bool,
        status_names: StatusNames,
    ) -> None:
        self.specs = list(specs)
        self.index = {s.name: i for i, s in enumerate(specs)}
        self.fee = Decimal(repr(taker_fee))
        self.commission_in_base_on_buy = commission_in_base_on_buy
        self.status_names = status_names
        self._starting = self._starting_balances(Decimal(repr(starting_usd)))
        self._top: list[SimQuote | None] = [None] * len(specs)
        self._avail_bid = [0] * len(specs)
        self._avail_ask = [0] * len(specs)
        self._accounts: dict[str, dict[str, Decimal]] = {}
        self._orders: dict[str, dict[str, SimOrder]] = {}  # api key -> client order id -> order
        self._by_number: dict[str, dict[int, SimOrder]] = {}
        self._order_number = 0
        # Run-unique like the detector's ids: fills of two paper runs never share a key in PostgreSQL.
        self._trade_number = secrets.randbits(24) << 32
        self.quotes = [0] * len(specs)
        self.orders = 0
        self.fills = 0
        self.rejects = 0

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
        s = q.symbol
        self._top[s] = q
        self._avail_bid[s] = q.bid_qty
        self._avail_ask[s] = q.ask_qty
        self.quotes[s] += 1

    def top(self, symbol: int) -> SimQuote | None:
        return self._top[symbol]

    # ----- accounts
    def open_account(self, api_key: str) -> None:
        if api_key not in self._accounts:
            self._accounts[api_key] = dict(self._starting)
            self._orders[api_key] = {}
            self._by_number[api_key] = {}

    def balances(self, api_key: str) -> dict[str, Decimal]:
        return dict(self._accounts[api_key])

    def find(self, api_key: str, client_order_id: str) -> SimOrder | None:
        return self._orders.get(api_key, {}).get(client_order_id)

    def find_by_number(self, api_key: str, number: int) -> SimOrder | None:
        return self._by_number.get(api_key, {}).get(number)

    # ----- orders
    def validate(
        self, symbol: str, side: str, kind: str, price_text: str, qty_text: str, client_order_id: str,
        *, price_decimals_limit: int | None = None,
    ) -> Ticket | Reject:
        """Symbol, side and the filters. ``price_decimals_limit`` (MEXC) makes extra price decimals a
        precision error instead of a tick error."""
        s = self.index.get(symbol)
        if s is None:
            return self._reject(BAD_SYMBOL, symbol)
        spec = self.specs[s]
        if side not in ("BUY", "SELL"):
            return self._reject(BAD_PARAM, "side")
        qty = parse_decimal(qty_text)
        if qty is None:
            return self._reject(BAD_PARAM, "quantity")
        price_units = 0
        if kind != MARKET:
            price = parse_decimal(price_text)
            if price is None:
                return self._reject(BAD_PARAM, "price")
            limit = MAX_DECIMALS if price_decimals_limit is None else price_decimals_limit
            if to_units(price, limit) is None:
                return self._reject(PRECISION, "price")
            units = to_units(price, spec.price_decimals)
            if units is None or units <= 0 or units % spec.tick:
                return self._reject(PRICE_FILTER, spec.tick_text)
            price_units = units
        if to_units(qty, MAX_DECIMALS) is None:
            return self._reject(PRECISION, "quantity")
        qty_units = to_units(qty, spec.qty_decimals)
        if qty_units is None or qty_units <= 0 or qty_units % spec.step:
            return self._reject(LOT_SIZE, spec.step_text)
        ref = price_units if kind != MARKET else self._reference_price(s, side)
        if ref and spec.price(ref) * spec.qty(qty_units) < spec.min_notional:
            return self._reject(NOTIONAL, str(spec.min_notional))
        return Ticket(s, side, kind, price_units, qty_units, client_order_id, price_text, qty_text)

    def _reference_price(self, s: int, side: str) -> int:
        top = self._top[s]
        if top is None:
            return 0
        return top.ask if side == "BUY" else top.bid

    def execute(self, api_key: str, t: Ticket, time_ms: int) -> SimOrder | Reject:
        """Balance check, then an immediate match against the top of book; balances move by the fills."""
        orders = self._orders[api_key]
        if t.client_order_id in orders:
            return self._reject(DUPLICATE, t.client_order_id)
        spec = self.specs[t.symbol]
        acct = self._accounts[api_key]
        qty = spec.qty(t.qty)
        if t.side == "BUY":
            ref = t.price or self._reference_price(t.symbol, "BUY")
            need = spec.price(ref) * qty
            if not self.commission_in_base_on_buy:
                need += need * self.fee
            if acct.get(spec.quote, Decimal(0)) < need:
                return self._reject(INSUFFICIENT, spec.quote)
        elif acct.get(spec.base, Decimal(0)) < qty:
            return self._reject(INSUFFICIENT, spec.base)

        self._order_number += 1
        self.orders += 1
        order = SimOrder(self._order_number, t, spec, time_ms, self.status_names.none)
        filled_units, px_units = self._match(t)
        if filled_units:
            self._fill(order, acct, px_units, filled_units)
        if filled_units == t.qty:
            order.status = self.status_names.filled
        elif filled_units:
            order.status = self.status_names.partial
        orders[t.client_order_id] = order
        self._by_number[api_key][order.number] = order
        return order

    def _match(self, t: Ticket) -> tuple[int, int]:
        """(quantity, price) available to this order at the top of book, taken from the book."""
        top = self._top[t.symbol]
        if top is None:
            return 0, 0
        s = t.symbol
        if t.side == "BUY":
            crosses = t.kind == MARKET or t.price >= top.ask
            avail, px = self._avail_ask[s], top.ask
        else:
            crosses = t.kind == MARKET or t.price <= top.bid
            avail, px = self._avail_bid[s], top.bid
        if not crosses:
            return 0, 0
        qty = min(t.qty, avail)
        if t.kind == LIMIT_FOK and qty < t.qty:
            return 0, 0
        if t.side == "BUY":
            self._avail_ask[s] -= qty
        else:
            self._avail_bid[s] -= qty
        return qty, px

    def _fill(self, order: SimOrder, acct: dict[str, Decimal], px_units: int, qty_units: int) -> None:
        spec = order.spec
        price, qty = spec.price(px_units), spec.qty(qty_units)
        notional = price * qty
        if order.ticket.side == "BUY":
            if self.commission_in_base_on_buy:
                commission, asset = _commission(qty * self.fee), spec.base
                acct[spec.base] = acct.get(spec.base, Decimal(0)) + qty - commission
                acct[spec.quote] -= notional
            else:
                commission, asset = _commission(notional * self.fee), spec.quote
                acct[spec.base] = acct.get(spec.base, Decimal(0)) + qty
                acct[spec.quote] -= notional + commission
        else:
            commission, asset = _commission(notional * self.fee), spec.quote
            acct[spec.base] -= qty
            acct[spec.quote] = acct.get(spec.quote, Decimal(0)) + notional - commission
        self._trade_number += 1
        self.fills += 1
        order.fills.append(SimFill(price, qty, commission, asset, self._trade_number))
        order.executed += qty
        order.cum_quote += notional

    def _reject(self, reason: str, detail: str = "") -> Reject:
        self.rejects += 1
        return Reject(reason, detail)


def _commission(amount: Decimal) -> Decimal:
    return amount.quantize(COMMISSION_QUANTUM, rounding=ROUND_UP) if amount else Decimal(0)
