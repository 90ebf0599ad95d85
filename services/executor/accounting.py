"""An execution's books: balance deltas from every trade, their USD value, and the Execution event.

The truth is the asset ledger: each trade moves the base and quote balances on its venue, and the commission
leaves in the asset the venue charged it in (Binance takes a buy's commission in the base asset). Those deltas
are exactly what the venue's balances did, so summing them over a run reconciles with the venue to the unit.

PnL is the deltas valued at this execution's own prices: a base asset at the average price its legs traded at
(times the quote asset's USD value when detected), a quote asset at that USD value, USD assets at 1. What a
cross pair leaves over (the buy's base-asset commission, step dust) is inventory; ``residual_usd`` is its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from services.executor.ledger import Ledger
from services.executor.order_state import TrackedOrder, Trade
from shared.messages import (
    OUTCOME_FILLED,
    OUTCOME_HEDGED,
    OUTCOME_MISSED,
    OUTCOME_PARTIAL,
    OUTCOME_REJECTED,
    OUTCOME_UNWOUND,
    ROLE_HEDGE,
    ROLE_LEG,
    SIDE_BUY,
    AssetDelta,
    Execution,
    LegFill,
    Opportunity,
    OrderIntent,
)
from shared.registry import Registry


class Books:
    """Deltas and marks of one execution."""

    def __init__(self, registry: Registry, usd_assets: Sequence[str]) -> None:
        self.registry = registry
        self.usd_assets = frozenset(usd_assets)
        self.ledger = Ledger()
        self.marks: dict[str, float] = {}

    def add_order(self, o: TrackedOrder) -> None:
        sym = self.registry.symbols[o.symbol]
        for t in o.trades.values():
            self.ledger.add_trade(o.venue, sym.base, sym.quote, o.side, t)

    def mark_legs(self, opp: Opportunity, orders: Sequence[TrackedOrder]) -> None:
        """USD per asset from the legs: quote assets at their detection value, bases at the traded average."""
        for asset in self.usd_assets:
            self.marks[asset] = 1.0
        for leg in opp.legs:
            sym = self.registry.symbols[leg.symbol]
            self.marks.setdefault(sym.quote, leg.quote_usd)
        for leg in opp.legs:
            sym = self.registry.symbols[leg.symbol]
            qty = sum((o.executed for o in orders if o.symbol == leg.symbol), Decimal(0))
            quote = sum((o.cum_quote for o in orders if o.symbol == leg.symbol), Decimal(0))
            price = float(quote / qty) if qty > 0 else leg.price
            self.marks.setdefault(sym.base, price * self.marks.get(sym.quote, leg.quote_usd))

    def mark(self, _venue: int, asset: str) -> float | None:
        return self.marks.get(asset)

    def pnl_usd(self) -> float:
        return self.ledger.value_usd(self.mark)

    def residual_usd(self, opp: Opportunity) -> float:
        """Value of what is left in assets the plan meant to end flat in (every asset but the start/end one)."""
        settle = self._settlement_assets(opp)
        return sum(
            float(delta) * (self.marks.get(asset) or 0.0)
            for (_venue, asset), delta in self.ledger.deltas().items()
            if asset not in settle
        )

    def fee_usd(self, t: Trade) -> float:
        """A commission in USD, at this execution's value of the asset it was charged in."""
        return float(t.commission) * (self.marks.get(t.commission_asset) or 0.0)

    def fees_usd(self, orders: Sequence[TrackedOrder]) -> float:
        return sum(self.fee_usd(t) for o in orders for t in o.trades.values())

    def _settlement_assets(self, opp: Opportunity) -> frozenset[str]:
        """The asset profit is taken in: a cross pair's quote, a triangle's start currency."""
        first = self.registry.symbols[opp.legs[0].symbol]
        return frozenset({first.quote if opp.legs[0].side == SIDE_BUY else first.base})


def outcome_of(orders: Sequence[TrackedOrder], corrected: bool, mode_role: int) -> str:
    legs = [o for o in orders if o.role == ROLE_LEG]
    if all(o.executed == 0 for o in orders):
        return OUTCOME_REJECTED if all(o.status == "REJECTED" for o in legs) else OUTCOME_MISSED
    if corrected:
        return OUTCOME_HEDGED if mode_role == ROLE_HEDGE else OUTCOME_UNWOUND
    if all(Decimal(o.qty) == o.executed for o in legs):
        return OUTCOME_FILLED
    return OUTCOME_PARTIAL


def leg_fill(o: TrackedOrder, fee_usd: float) -> LegFill:
    return LegFill(
        role=o.role,
        leg=o.leg,
        venue=o.venue,
        symbol=o.symbol,
        side=o.side,
        client_order_id=o.client_order_id,
        qty=o.qty,
        filled_qty=str(o.executed),
        quote_qty=str(o.cum_quote),
        status=o.status,
        fee_usd=fee_usd,
    )


def build_execution(
    intent: OrderIntent,
    orders: Sequence[TrackedOrder],
    books: Books,
    outcome: str,
    note: str,
    sent_ns: int,
    done_ns: int,
    journaled_ns: int = 0,
) -> Execution:
    opp = intent.opportunity
    legs = [o for o in orders if o.role == ROLE_LEG]
    buys = [o for o in legs if o.side == SIDE_BUY]
    sells = [o for o in legs if o.side != SIDE_BUY]
    first_buy = buys[0] if buys else None
    first_sell = sells[0] if sells else None
    fills = tuple(
        leg_fill(o, sum(books.fee_usd(t) for t in o.trades.values()))
        for o in orders
    )
    deltas = tuple(AssetDelta(v, a, str(d)) for (v, a), d in sorted(books.ledger.deltas().items()))
    sym_usd = opp.legs[0].quote_usd
    bought = float(first_buy.executed) if first_buy else 0.0
    sold = float(first_sell.executed) if first_sell else 0.0
    return Execution(
        opportunity_id=opp.id,
        symbol=opp.symbol,
        buy_venue=first_buy.venue if first_buy else -1,
        sell_venue=first_sell.venue if first_sell else -1,
        bought_qty=bought,
        sold_qty=sold,
        buy_avg_price=_avg(first_buy),
        sell_avg_price=_avg(first_sell),
        fees_usd=books.fees_usd(orders),
        pnl_usd=books.pnl_usd(),
        notional_usd=float(sum((o.cum_quote for o in buys), Decimal(0))) * sym_usd,
        outcome=outcome,
        tick_ns=opp.tick_ns,
        detected_ns=opp.detected_ns,
        decided_ns=intent.decided_ns,
        sent_ns=sent_ns,
        done_ns=done_ns,
        strategy=opp.strategy,
        legs=fills,
        deltas=deltas,
        residual_usd=books.residual_usd(opp),
        note=note,
        pub_ns=opp.pub_ns,
        journaled_ns=journaled_ns,
    )


def _avg(o: TrackedOrder | None) -> float:
    if o is None or o.executed <= 0:
        return 0.0
    return float(o.cum_quote / o.executed)

