"""Which table each record kind goes to, its columns, its key, and how a record becomes a row.

Row builders are strict: a value of the wrong type or out of its column's range raises ``ValueError`` (the
writer sets that record aside, on disk, instead of failing the whole batch). Missing optional fields become
NULL, so a record from an older journal still loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from services.bridge.records import Record

Row = tuple[Any, ...]

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_json = msgspec.json.Encoder()


# The checks below run for every value of every record (thousands per second): exact type tests first
# (``type(v) is int`` also keeps bools out), the slow path only for what is unusual.
def _int(v: Any, bounds: tuple[int, int] = INT64) -> int | None:
    if type(v) is int:
        if bounds[0] <= v <= bounds[1]:
            return v
        raise ValueError(f"integer out of range: {v}")
    if v is None:
        return None
    raise ValueError(f"expected an integer, got {v!r}")


def _req(v: Any, what: str) -> Any:
    if v is None:
        raise ValueError(f"{what} is missing")
    return v


def _float(v: Any) -> float | None:
    t = type(v)
    if t is float:
        return v
    if t is int:
        return float(v)
    if v is None:
        return None
    raise ValueError(f"expected a number, got {v!r}")


def _text(v: Any) -> str | None:
    if type(v) is str:
        if "\0" in v:
            raise ValueError("text with a NUL character")  # PostgreSQL text cannot hold it
        return v
    if v is None:
        return None
    raise ValueError(f"expected text, got {v!r}")


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true/false, got {v!r}")
    return v


def _numeric(v: Any) -> Decimal | None:
    """Decimal text exactly as sent; "" (no price: market order) is NULL."""
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ValueError(f"expected a decimal, got {v!r}")
    try:
        d = Decimal(str(v))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal: {v!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {v!r}")
    return d


def _ts(ns: Any) -> datetime | None:
    """Wall-clock ns -> timestamptz (0 means "not stamped")."""
    n = _int(ns)
    if not n:
        return None
    try:
        return EPOCH + timedelta(microseconds=n // 1000)  # integer maths: the same ns always give the same µs
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {n}") from exc


def _jsonb(v: Any) -> str:
    if not isinstance(v, dict | list):
        raise ValueError(f"expected an object or a list, got {v!r}")
    return _json.encode(v).decode()


def _max_quote_age(legs: list[Any]) -> int | None:
    ages = [_int(leg.get("quote_age_ns")) for leg in legs if isinstance(leg, dict)]
    known = [a for a in ages if a is not None]
    return max(known) if known else None


def opportunity_row(d: dict[str, Any]) -> Row:
    legs = d.get("legs") or []
    if not isinstance(legs, list):
        raise ValueError(f"legs: expected a list, got {legs!r}")
    return (
        _req(_int(d.get("id")), "id"),
        _req(_text(d.get("strategy")), "strategy"),
        _req(_text(d.get("action")), "action"),
        _req(_text(d.get("symbol")), "symbol"),
        _jsonb(legs),
        _float(d.get("notional_usd")),
        _float(d.get("spread_bps")),
        _float(d.get("expected_profit_usd")),
        _max_quote_age(legs),
        _int(d.get("tick_to_detect_ns")),
        _ts(d.get("detected_at_ns")),
    )


def decision_row(d: dict[str, Any]) -> Row:
    return (
        _req(_int(d.get("opportunity_id")), "opportunity_id"),
        _text(d.get("strategy")),
        _text(d.get("symbol")),
        _bool(d.get("approved")),
        _req(_text(d.get("reason")), "reason"),
        _int(d.get("detect_to_decide_ns")),
        _ts(d.get("decided_at_ns")),
    )


def order_row(d: dict[str, Any]) -> Row:
    return (
        _req(_text(d.get("client_order_id")), "client_order_id"),
        _req(_text(d.get("status")), "status"),
        _int(d.get("opportunity_id")),
        _text(d.get("venue")),
        _text(d.get("symbol")),
        _text(d.get("side")),
        _numeric(d.get("price")),
        _numeric(d.get("qty")),
        _float(d.get("filled_qty")),
        _float(d.get("avg_price")),
        _int(d.get("error_code"), INT32),
        _text(d.get("error_msg")),
        _ts(d.get("sent_at_ns")),
        _ts(d.get("ack_at_ns")),
    )


def fill_row(d: dict[str, Any]) -> Row:
    return (
        _req(_text(d.get("venue")), "venue"),
        _req(_text(d.get("symbol")), "symbol"),
        _req(_text(d.get("trade_id")), "trade_id"),
        _text(d.get("client_order_id")),
        _int(d.get("opportunity_id")),
        _text(d.get("side")),
        _float(d.get("price")),
        _float(d.get("qty")),
        _float(d.get("fee_usd")),
        _ts(d.get("filled_at_ns")),
    )


def execution_row(d: dict[str, Any]) -> Row:
    return (
        _req(_int(d.get("opportunity_id")), "opportunity_id"),
        _text(d.get("symbol")),
        _text(d.get("buy_venue")),
        _text(d.get("sell_venue")),
        _float(d.get("bought_qty")),
        _float(d.get("sold_qty")),
        _float(d.get("buy_avg_price")),
        _float(d.get("sell_avg_price")),
        _float(d.get("fees_usd")),
        _float(d.get("pnl_usd")),
        _float(d.get("notional_usd")),
        _req(_text(d.get("outcome")), "outcome"),
        _int(d.get("tick_to_send_ns")),
        _ts(d.get("done_at_ns")),
        _text(d.get("strategy")),
        _jsonb(d.get("legs") or []),
        _jsonb(d.get("deltas") or []),
        _float(d.get("residual_usd")),
        _text(d.get("note")),
    )


def alert_row(d: dict[str, Any]) -> Row:
    until = d.get("until_ms")
    return (
        _req(_text(d.get("source")), "source"),
        _req(_text(d.get("kind")), "kind"),
        _req(_text(d.get("message")), "message"),
        _ts(until * 1_000_000) if isinstance(until, int) and until > 0 else None,
        _req(_ts(d.get("at_ns")), "at_ns"),
    )


def _ts_ms(ms: Any) -> datetime | None:
    """Wall-clock ms -> timestamptz (0 or absent: not stamped)."""
    n = _int(ms)
    return _ts(n * 1_000_000) if n else None


def funding_payment_row(d: dict[str, Any]) -> Row:
    return (
        _req(_text(d.get("venue")), "venue"),
        _req(_text(d.get("payment_id")), "payment_id"),
        _req(_text(d.get("symbol")), "symbol"),
        _req(_text(d.get("asset")), "asset"),
        _req(_numeric(d.get("amount")), "amount"),
        _float(d.get("amount_usd")),
        _int(d.get("carry_id")),
        _ts_ms(d.get("paid_at_ms")),
        _ts(d.get("booked_at_ns")),
    )


def carry_row(d: dict[str, Any]) -> Row:
    updated_ns = _req(_int(d.get("updated_at_ns")), "updated_at_ns")
    return (
        _req(_int(d.get("carry_id")), "carry_id"),
        _req(_text(d.get("symbol")), "symbol"),
        _text(d.get("spot_venue")),
        _req(_text(d.get("perp_venue")), "perp_venue"),
        _req(_text(d.get("state")), "state"),
        _req(_numeric(d.get("spot_qty")), "spot_qty"),
        _req(_numeric(d.get("perp_qty")), "perp_qty"),
        _float(d.get("entry_basis_bps")),
        _float(d.get("exit_basis_bps")),
        _float(d.get("funding_usd")),
        _float(d.get("fees_usd")),
        _float(d.get("pnl_usd")),
        _ts_ms(d.get("opened_at_ms")),
        _ts_ms(d.get("closed_at_ms")),
        _req(_ts(updated_ns), "updated_at_ns"),
        updated_ns,
    )


def metric_row(d: dict[str, Any]) -> Row:
    return (
        _req(_text(d.get("service")), "service"),
        _req(_ts(d.get("at_ns")), "at_ns"),
        _int(d.get("pid"), INT32),
        _text(d.get("state")),
        _jsonb(d.get("counters") or {}),
        _jsonb(d.get("gauges") or {}),
    )


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]  # what a row holds, in order (recorded_at is left to its default)
    key: tuple[str, ...]  # the conflict target: the record's idempotency key as columns
    row: Callable[[dict[str, Any]], Row]
    # Empty: rows never change, the first one of a key is kept. Otherwise the row is upserted and these SQL
    # expressions (``{t}`` standing for the table) rank versions of a key: the greatest, compared as a row,
    # is kept, whatever order the versions arrive in.
    newest: tuple[str, ...] = ()

    @property
    def stage(self) -> str:
        return f"stage_{self.name}"


TABLES: dict[str, Table] = {
    "opportunity": Table(
        "arbitrage_opportunities",
        (
            "id",
            "strategy",
            "action",
            "symbol",
            "legs",
            "notional_usd",
            "spread_bps",
            "expected_profit_usd",
            "max_quote_age_ns",
            "tick_to_detect_ns",
            "detected_at",
        ),
        ("id",),
        opportunity_row,
    ),
    "decision": Table(
        "risk_decisions",
        ("opportunity_id", "strategy", "symbol", "approved", "reason", "detect_to_decide_ns", "decided_at"),
        ("opportunity_id",),
        decision_row,
    ),
    "order": Table(
        "orders",
        (
            "client_order_id",
            "status",
            "opportunity_id",
            "venue",
            "symbol",
            "side",
            "price",
            "qty",
            "filled_qty",
            "avg_price",
            "error_code",
            "error_msg",
            "sent_at",
            "ack_at",
        ),
        ("client_order_id", "status"),
        order_row,
    ),
    "fill": Table(
        "fills",
        (
            "venue",
            "symbol",
            "trade_id",
            "client_order_id",
            "opportunity_id",
            "side",
            "price",
            "qty",
            "fee_usd",
            "filled_at",
        ),
        ("venue", "symbol", "trade_id"),
        fill_row,
    ),
    "execution": Table(
        "arbitrage_executions",
        (
            "opportunity_id",
            "symbol",
            "buy_venue",
            "sell_venue",
            "bought_qty",
            "sold_qty",
            "buy_avg_price",
            "sell_avg_price",
            "fees_usd",
            "pnl_usd",
            "notional_usd",
            "outcome",
            "tick_to_send_ns",
            "done_at",
            "strategy",
            "legs",
            "deltas",
            "residual_usd",
            "note",
        ),
        ("opportunity_id",),
        execution_row,
    ),
    "alert": Table(
        "risk_alerts",
        ("source", "kind", "message", "until_at", "at"),
        ("source", "kind", "at"),
        alert_row,
    ),
    "funding_payment": Table(
        "funding_payments",
        ("venue", "payment_id", "symbol", "asset", "amount", "amount_usd", "carry_id", "paid_at", "booked_at"),
        ("venue", "payment_id"),
        funding_payment_row,
    ),
    "carry": Table(
        "carry_positions",
        (
            "carry_id",
            "symbol",
            "spot_venue",
            "perp_venue",
            "state",
            "spot_qty",
            "perp_qty",
            "entry_basis_bps",
            "exit_basis_bps",
            "funding_usd",
            "fees_usd",
            "pnl_usd",
            "opened_at",
            "closed_at",
            "updated_at",
            "updated_ns",
        ),
        ("carry_id",),
        carry_row,
        newest=("{t}.state = 'closed'", "{t}.updated_ns"),  # closed beats open, then the later update
    ),
    "metric": Table(
        "engine_metrics",
        ("service", "at", "pid", "state", "counters", "gauges"),
        ("service", "at"),
        metric_row,
    ),
}


def to_row(record: Record) -> tuple[Table, Row]:
    """The record's table and row; ValueError when it cannot be stored as it is."""
    table = TABLES.get(record.kind)
    if table is None:
        raise ValueError(f"unknown record kind {record.kind!r}")
    if not isinstance(record.data, dict):
        raise ValueError("record data is not an object")
    return table, table.row(record.data)
