"""One order's life, from the journal record written before it is sent to its final venue state.

Reports about an order arrive from several places in any order: the REST answer to the POST, the user-data
stream (Binance executionReport), a query after a timeout, a cancel's answer. Each one is applied with
``advance``; the rules below make the result independent of the arrival order, so the order ends in the
venue's real final state whichever report came first.

States (venue names, plus two of ours):

- ``PENDING``: journaled, not yet answered by the venue.
- ``UNKNOWN``: an answer was expected and did not come (HTTP 5xx, timeout); resolved by a query, never by
  sending again.
- ``NEW``, ``PARTIALLY_FILLED``: open on the venue.
- ``FILLED``, ``CANCELED``, ``REJECTED``, ``EXPIRED``: final (``FINAL``).

Transition rules:

1. ``PENDING`` and ``UNKNOWN`` may move to any state (the first answer, or a query's answer, is the truth).
2. ``NEW`` → ``PARTIALLY_FILLED`` | ``FILLED`` | ``CANCELED`` | ``EXPIRED`` | ``REJECTED``.
3. ``PARTIALLY_FILLED`` → ``PARTIALLY_FILLED`` | ``FILLED`` | ``CANCELED`` | ``EXPIRED``.
4. A final state is terminal: any later report is staler than the one that ended the order; it is ignored
   and ``advance`` returns False. (The only thing it may still add is a missing venue order id, which is an
   identity, not a state.)
5. ``executed`` and ``cum_quote`` never decrease: every accepted report keeps the larger of the known and the
   reported numbers, so a report may raise the status and the numbers together, and a final report carrying
   less than an earlier partial one still ends with the larger numbers.
6. An open order given an earlier open status (``NEW`` after ``PARTIALLY_FILLED``: the REST answer arriving
   after the stream's first trade) keeps its status but still takes larger numbers if the report has them.
7. ``NEW`` with something executed is recorded as ``PARTIALLY_FILLED`` (possible only when an ``UNKNOWN``
   order that had fills is resolved by a report saying ``NEW``).
8. ``UNKNOWN`` is entered only from ``PENDING`` or an open state (``mark_unknown``), never from a final one;
   ``fail`` (the venue refused the order) applies only to ``PENDING`` and ``UNKNOWN`` orders.

Trades are kept by venue trade id, so the same fill reported by the REST answer and by the user stream counts
once; ``trades_complete`` says whether they account for everything executed (MEXC's answers carry no fills:
its trades come from ``myTrades``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

from shared.venues.common import CANCELED, EXPIRED, FILLED, NEW, PARTIALLY_FILLED, REJECTED, UNKNOWN, TradeFill

PENDING = "PENDING"  # ours alone: journaled, not yet answered by the venue

FINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})
OPEN = frozenset({NEW, PARTIALLY_FILLED})
STATUSES = frozenset({PENDING, UNKNOWN}) | OPEN | FINAL

# Venue statuses that mean one of ours: MEXC ends a partly filled cancel as PARTIALLY_CANCELED; Binance's
# self-trade prevention expires an order as EXPIRED_IN_MATCH.
ALIASES = {"PARTIALLY_CANCELED": CANCELED, "EXPIRED_IN_MATCH": EXPIRED}

_ALLOWED: dict[str, frozenset[str]] = {
    PENDING: STATUSES - {PENDING},
    UNKNOWN: STATUSES - {PENDING},
    NEW: frozenset({NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED, UNKNOWN}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, UNKNOWN}),
}

ZERO = Decimal(0)
# Sums of venue decimals are exact: the default context would round past 28 digits.
_EXACT = Context(prec=80, traps=[Inexact, InvalidOperation])


# One fill as the venue reported it (exact decimals, commission in the asset charged): the venue layer's type.
Trade = TradeFill


def trade_record(t: Trade) -> list[str]:
    return [t.trade_id, str(t.price), str(t.qty), str(t.commission), t.commission_asset]


def trade_from_record(r: list[str]) -> Trade:
    trade_id, price, qty, commission, asset = r
    return Trade(str(trade_id), Decimal(price), Decimal(qty), Decimal(commission), str(asset))


def venue_status(status: str) -> str:
    """Our name for a venue's status; ValueError for one we do not know (a client must map it first)."""
    status = ALIASES.get(status, status)
    if status not in STATUSES:
        raise ValueError(f"unknown order status {status!r}")
    return status


@dataclass(slots=True)
class TrackedOrder:
    client_order_id: str
    opportunity_id: int
    role: int  # ROLE_LEG / ROLE_UNWIND / ROLE_HEDGE
    leg: int  # index of the planned leg it belongs to
    venue: int
    symbol: int
    side: int  # SIDE_BUY / SIDE_SELL
    qty: str  # as sent: decimal text on the venue's step
    price: str | None  # as sent: decimal text on the tick; None for MARKET
    order_type: str
    created_ns: int
    status: str = PENDING
    order_id: str = ""
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    trades: dict[str, Trade] = field(default_factory=dict)
    error_code: int = 0
    error_msg: str = ""
    reduce_only: bool = False  # a perpetual order that may only shrink the position (the venue cuts what would flip it)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def open(self) -> bool:
        """Not final: PENDING, UNKNOWN, NEW or PARTIALLY_FILLED (the venue may still fill it)."""
        return self.status not in FINAL

    def advance(self, status: str, executed: Decimal, cum_quote: Decimal, order_id: str = "") -> bool:
        """Apply one venue report; True if anything the journal should record changed."""
        status = venue_status(status)
        if status == PENDING:
            raise ValueError("PENDING is ours, never a venue report")
        changed = False
        if order_id and not self.order_id:
            self.order_id = order_id
            changed = True
        if self.final:
            return changed
        if executed > self.executed:
            self.executed = executed
            changed = True
        if cum_quote > self.cum_quote:
            self.cum_quote = cum_quote
            changed = True
        if status in _ALLOWED[self.status]:
            if status == NEW and self.executed > 0:
                status = PARTIALLY_FILLED
            if status != self.status:
                self.status = status
                changed = True
        return changed

    def add_trade(self, t: Trade) -> bool:
        """Record a fill; False if its trade id is already known (the other channel reported it first)."""
        if t.trade_id in self.trades:
            return False
        self.trades[t.trade_id] = t
        return True

    def fail(self, code: int, msg: str) -> None:
        """The venue refused the order (its error code and message); only a PENDING or UNKNOWN order can be."""
        if self.status in (PENDING, UNKNOWN):
            self.status = REJECTED
            self.error_code = code
            self.error_msg = msg

    def mark_unknown(self, why: str) -> None:
        """No answer came (5xx, timeout): the venue may or may not hold the order. Never undoes a final state."""
        if not self.final:
            self.status = UNKNOWN
            self.error_msg = why

    def trades_complete(self) -> bool:
        """The known trades account for exactly what the venue says executed."""
        total = ZERO
        for t in self.trades.values():
            total = _EXACT.add(total, t.qty)
        return total == self.executed

    def to_record(self) -> dict[str, Any]:
        """Builtins only (decimals as text), for the journal."""
        return {
            "client_order_id": self.client_order_id,
            "opportunity_id": self.opportunity_id,
            "role": self.role,
            "leg": self.leg,
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "price": self.price,
            "order_type": self.order_type,
            "created_ns": self.created_ns,
            "status": self.status,
            "order_id": self.order_id,
            "executed": str(self.executed),
            "cum_quote": str(self.cum_quote),
            "trades": [trade_record(t) for t in self.trades.values()],
            "error_code": self.error_code,
            "error_msg": self.error_msg,
            **({"reduce_only": True} if self.reduce_only else {}),  # absent: False (spot, and older journals)
        }

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> TrackedOrder:
        """Inverse of ``to_record``; KeyError, ValueError, TypeError or ArithmeticError (a bad decimal) on a
        malformed record."""
        status = str(d["status"])
        if status not in STATUSES:
            raise ValueError(f"unknown order status {status!r}")
        price = d["price"]
        trades = [trade_from_record(r) for r in d["trades"]]
        return cls(
            client_order_id=str(d["client_order_id"]),
            opportunity_id=int(d["opportunity_id"]),
            role=int(d["role"]),
            leg=int(d["leg"]),
            venue=int(d["venue"]),
            symbol=int(d["symbol"]),
            side=int(d["side"]),
            qty=str(d["qty"]),
            price=None if price is None else str(price),
            order_type=str(d["order_type"]),
            created_ns=int(d["created_ns"]),
            status=status,
            order_id=str(d["order_id"]),
            executed=Decimal(d["executed"]),
            cum_quote=Decimal(d["cum_quote"]),
            trades={t.trade_id: t for t in trades},
            error_code=int(d["error_code"]),
            error_msg=str(d["error_msg"]),
            reduce_only=d.get("reduce_only", False) is True,
        )
