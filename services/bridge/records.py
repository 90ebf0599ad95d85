"""Events as named records: the one shape every external sink (journal, PostgreSQL, Redis) writes.

Hot-path messages carry integer ids and positional encodings; at the edge they become records with names,
a kind and an idempotency key. The key is what makes a replay or a backfill harmless: a sink that sees the
same key twice keeps the first.

    kind          key                               what
    opportunity   "<id>"                            detector found it (strategy, legs, size, profit)
    decision      "<opportunity id>"                risk approved or refused it, and why
    order         "<client order id>:<status>"      one state an order reached
    fill          "<venue>:<symbol>:<trade id>"     one trade (Binance numbers trades per symbol)
    execution     "<opportunity id>"                the outcome of all legs
    alert         "<source>:<kind>:<ts_us>"         a breaker, the kill switch, an orphaned position
    funding_payment "<venue>:<payment id>"          one funding settlement booked on a perpetual venue
    carry         "<carry id>:<ts_ns>"              one state of a spot-perpetual carry (open, each funding, closed)
    metric        "<service>:<ts_ns>"               one service's counters and gauges at one instant

A carry is the one record kind that describes something that changes: each update is its own record (its own
key), and the table keeps one row per carry id, the newest update (see pg_tables.py).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from shared.messages import (
    ACTION_NAMES,
    ROLE_NAMES,
    STRATEGY_NAMES,
    Alert,
    CarryPosition,
    Event,
    Execution,
    Fill,
    FundingPayment,
    Opportunity,
    OrderUpdate,
    RiskDecision,
    Stats,
)
from shared.registry import Registry

KINDS = ("opportunity", "decision", "order", "fill", "execution", "alert", "funding_payment", "carry", "metric")


class Record(NamedTuple):
    kind: str  # one of KINDS
    key: str  # idempotency key, unique within its kind
    data: dict[str, Any]  # JSON-ready: str, int, float, bool, lists and dicts of those
    # Where it came from: the producing service and the sequence number of the event in that service's event
    # log (see shared/runtime/event_log.py). The bridge resumes each source after the last one a sink kept.
    src: str = ""
    seq: int = 0


def _name(names: tuple[str, ...], i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"#{i}"


def _side(side: int) -> str:
    return "buy" if side == 0 else "sell"


def wall_ns(monotonic_ns: int) -> int:
    """A monotonic stamp as wall-clock ns (stamps are monotonic so every process on the host agrees)."""
    if monotonic_ns <= 0:
        return 0
    return monotonic_ns + (time.time_ns() - time.monotonic_ns())


class Recorder:
    """Turns events into records; Stats become metric rows at most once per ``metrics_interval_ns`` per
    service (heartbeats come every half second: storing each would be noise)."""

    def __init__(self, registry: Registry, metrics_interval_s: float = 5.0) -> None:
        self.registry = registry
        self.metrics_interval_ns = int(metrics_interval_s * 1e9)
        self._last_metric: dict[str, int] = {}

    def record(self, event: Event) -> Record | None:
        match event:
            case Opportunity():
                return Record("opportunity", str(event.id), self.opportunity(event))
            case RiskDecision():
                return Record("decision", str(event.opportunity.id), self.decision(event))
            case OrderUpdate():
                return Record("order", f"{event.client_order_id}:{event.status}", self.order(event))
            case Fill():
                venue = _name(self.registry.venue_names, event.venue)
                symbol = _name(self.registry.symbol_names, event.symbol)
                return Record("fill", f"{venue}:{symbol}:{event.trade_id}", self.fill(event))
            case Execution():
                return Record("execution", str(event.opportunity_id), self.execution(event))
            case Alert():
                # µs in the key: the table stores the time as timestamptz (µs), and the key must be its columns
                return Record("alert", f"{event.source}:{event.kind}:{event.ts_ns // 1000}", self.alert(event))
            case FundingPayment():
                venue = _name(self.registry.venue_names, event.venue)
                return Record("funding_payment", f"{venue}:{event.payment_id}", self.funding_payment(event))
            case CarryPosition():
                return Record("carry", f"{event.carry_id}:{event.ts_ns}", self.carry(event))
            case Stats():
                last = self._last_metric.get(event.service, 0)
                if event.ts_ns - last < self.metrics_interval_ns:
                    return None
                self._last_metric[event.service] = event.ts_ns
                return Record("metric", f"{event.service}:{event.ts_ns}", self.metric(event))
        return None

    def opportunity(self, o: Opportunity) -> dict[str, Any]:
        venues, symbols = self.registry.venue_names, self.registry.symbol_names
        return {
            "id": o.id,
            "strategy": _name(STRATEGY_NAMES, o.strategy),
            "action": _name(ACTION_NAMES, o.action),
            "symbol": _name(symbols, o.symbol),
            "legs": [
                {
                    "venue": _name(venues, leg.venue),
                    "symbol": _name(symbols, leg.symbol),
                    "side": _side(leg.side),
                    "price": leg.price,
                    "qty": leg.qty,
                    "quote_usd": leg.quote_usd,
                    "quote_age_ns": o.detected_ns - leg.quote_ns if leg.quote_ns else None,
                }
                for leg in o.legs
            ],
            "notional_usd": o.notional_usd,
            "spread_bps": o.spread_bps,
            "expected_profit_usd": o.expected_profit_usd,
            "tick_to_detect_ns": o.detected_ns - o.tick_ns if o.tick_ns else None,
            "detected_at_ns": wall_ns(o.detected_ns),
        }

    def decision(self, d: RiskDecision) -> dict[str, Any]:
        return {
            "opportunity_id": d.opportunity.id,
            "strategy": _name(STRATEGY_NAMES, d.opportunity.strategy),
            "symbol": _name(self.registry.symbol_names, d.opportunity.symbol),
            "approved": d.approved,
            "reason": d.reason,
            "detect_to_decide_ns": d.decided_ns - d.opportunity.detected_ns,
            "decided_at_ns": wall_ns(d.decided_ns),
        }

    def order(self, u: OrderUpdate) -> dict[str, Any]:
        return {
            "client_order_id": u.client_order_id,
            "opportunity_id": u.opportunity_id,
            "venue": _name(self.registry.venue_names, u.venue),
            "symbol": _name(self.registry.symbol_names, u.symbol),
            "side": _side(u.side),
            "price": u.price,  # decimal text exactly as sent
            "qty": u.qty,
            "status": u.status,
            "filled_qty": u.filled_qty,
            "avg_price": u.avg_price,
            "error_code": u.error_code,
            "error_msg": u.error_msg,
            "sent_at_ns": wall_ns(u.sent_ns),
            "ack_at_ns": wall_ns(u.ack_ns),
        }

    def fill(self, f: Fill) -> dict[str, Any]:
        return {
            "trade_id": f.trade_id,
            "client_order_id": f.client_order_id,
            "opportunity_id": f.opportunity_id,
            "venue": _name(self.registry.venue_names, f.venue),
            "symbol": _name(self.registry.symbol_names, f.symbol),
            "side": _side(f.side),
            "price": f.price,
            "qty": f.qty,
            "fee_usd": f.fee_usd,
            "filled_at_ns": wall_ns(f.ts_ns),
        }

    def execution(self, e: Execution) -> dict[str, Any]:
        return {
            "opportunity_id": e.opportunity_id,
            "symbol": _name(self.registry.symbol_names, e.symbol),
            "buy_venue": _name(self.registry.venue_names, e.buy_venue),
            "sell_venue": _name(self.registry.venue_names, e.sell_venue),
            "bought_qty": e.bought_qty,
            "sold_qty": e.sold_qty,
            "buy_avg_price": e.buy_avg_price,
            "sell_avg_price": e.sell_avg_price,
            "fees_usd": e.fees_usd,
            "pnl_usd": e.pnl_usd,
            "notional_usd": e.notional_usd,
            "outcome": e.outcome,
            "tick_to_send_ns": e.sent_ns - e.tick_ns if e.sent_ns and e.tick_ns else None,
            "done_at_ns": wall_ns(e.done_ns),
            "strategy": _name(STRATEGY_NAMES, e.strategy),
            "legs": [
                {
                    "role": _name(ROLE_NAMES, f.role),
                    "leg": f.leg,
                    "venue": _name(self.registry.venue_names, f.venue),
                    "symbol": _name(self.registry.symbol_names, f.symbol),
                    "side": _side(f.side),
                    "client_order_id": f.client_order_id,
                    "qty": f.qty,
                    "filled_qty": f.filled_qty,
                    "quote_qty": f.quote_qty,
                    "status": f.status,
                    "fee_usd": f.fee_usd,
                }
                for f in e.legs
            ],
            "deltas": [
                {"venue": _name(self.registry.venue_names, d.venue), "asset": d.asset, "delta": d.delta}
                for d in e.deltas
            ],
            "residual_usd": e.residual_usd,
            "note": e.note,
        }

    def alert(self, a: Alert) -> dict[str, Any]:
        return {
            "source": a.source,
            "kind": a.kind,
            "message": a.message,
            "until_ms": a.until_ms,
            "at_ns": a.ts_ns,
        }

    def funding_payment(self, f: FundingPayment) -> dict[str, Any]:
        return {
            "venue": _name(self.registry.venue_names, f.venue),
            "payment_id": f.payment_id,
            "symbol": _name(self.registry.symbol_names, f.symbol),
            "asset": f.asset,
            "amount": f.amount,  # exact decimal text: > 0 received
            "amount_usd": f.amount_usd,
            "carry_id": f.carry_id or None,  # 0: no carry open
            "paid_at_ms": f.time_ms,  # venue clock
            "booked_at_ns": f.ts_ns,
        }

    def carry(self, c: CarryPosition) -> dict[str, Any]:
        venues = self.registry.venue_names
        return {
            "carry_id": c.carry_id,
            "symbol": _name(self.registry.symbol_names, c.symbol),
            "spot_venue": _name(venues, c.spot_venue) if c.spot_venue >= 0 else None,  # None: unhedged
            "perp_venue": _name(venues, c.perp_venue),
            "state": c.state,
            "spot_qty": c.spot_qty,  # exact decimal text
            "perp_qty": c.perp_qty,  # negative: short
            "entry_basis_bps": c.entry_basis_bps,
            "exit_basis_bps": c.exit_basis_bps,
            "funding_usd": c.funding_usd,
            "fees_usd": c.fees_usd,
            "pnl_usd": c.pnl_usd,
            "opened_at_ms": c.opened_ms,
            "closed_at_ms": c.closed_ms or None,  # None while open
            "updated_at_ns": c.ts_ns,
        }

    def metric(self, st: Stats) -> dict[str, Any]:
        return {
            "service": st.service,
            "pid": st.pid,
            "state": st.state,
            "counters": dict(st.counters),
            "gauges": dict(st.gauges),
            "at_ns": wall_ns(st.ts_ns),
        }
