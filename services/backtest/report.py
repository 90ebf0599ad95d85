"""A backtest's report: what was found, decided and executed, what it earned and what it cost, as one JSON-able dict.

Inputs are the engine's own events (``shared.messages``): every ``Opportunity`` the detector published, every
``RiskDecision`` risk took, every ``Execution`` the executor finished. Nothing here re-derives a fill: PnL is the
executions' ``pnl_usd`` (their deltas at their own prices, net of fees), so the report agrees with the journal a live
run would have written.

    net    = sum of pnl_usd
    fees   = sum of fees_usd
    gross  = net + fees  (what the trades made before commissions)

USD figures are summed exactly (each float as printed, in Decimal) so a hand-computed case compares with ``==``.
Times are the recording's monotonic stamps (ns); the equity curve steps at each execution's ``done_ns``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from services.backtest.legs import LegResult, leg_results
from shared.messages import (
    OUTCOME_ABORTED,
    OUTCOME_FILLED,
    OUTCOME_HEDGED,
    OUTCOME_MISSED,
    OUTCOME_ORPHANED,
    OUTCOME_PARTIAL,
    OUTCOME_REJECTED,
    OUTCOME_UNWOUND,
    SIDE_BUY,
    STRATEGY_NAMES,
    Execution,
    Opportunity,
    RiskDecision,
)

REPORT_VERSION = 1
OUTCOMES = (OUTCOME_FILLED, OUTCOME_PARTIAL, OUTCOME_UNWOUND, OUTCOME_HEDGED, OUTCOME_MISSED, OUTCOME_REJECTED,
            OUTCOME_ORPHANED, OUTCOME_ABORTED)
APPROVED = "approved"  # services/risk's reason for an approval


def build_report(
    opportunities: Sequence[Opportunity],
    decisions: Sequence[RiskDecision],
    executions: Sequence[Execution],
    *,
    venue_names: Sequence[str] = (),
    symbol_names: Sequence[str] = (),
    latency: Mapping[str, Any] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> dict[str, Any]:
    """The report of one backtest.

    ``venue_names``/``symbol_names`` are ``Registry.venue_names``/``symbol_names`` (ids are positions in them; an id
    beyond them shows as ``#id``). ``latency`` is the latency model the run assumed, copied as given (JSON-able).
    ``start_ns``/``end_ns`` bound the recording (default: the earliest and latest stamp among the events). A leg's
    detected price comes from its opportunity, found by id among ``opportunities`` and the decisions' own copies."""
    opp_by_id: dict[int, Opportunity] = {d.opportunity.id: d.opportunity for d in decisions}
    opp_by_id.update((o.id, o) for o in opportunities)
    # Stable: executions finishing at the same stamp keep the engine's order.
    ordered = sorted(executions, key=lambda e: e.done_ns)
    legs = leg_results(ordered, opp_by_id)
    start, end = _span(opportunities, ordered, start_ns, end_ns)
    approved = sum(1 for d in decisions if d.approved)
    return {
        "version": REPORT_VERSION,
        "span": {"start_ns": start, "end_ns": end, "seconds": (end - start) / 1e9},
        "counts": {
            "opportunities": len(opportunities),
            "decisions": len(decisions),
            "approved": approved,
            "rejected": len(decisions) - approved,
            "executions": len(executions),
            "orders": sum(len(e.legs) for e in executions),
            "legs": len(legs),
            "legs_filled": sum(1 for leg in legs if leg.filled_qty > 0),
        },
        "opportunities": {"by_strategy": _by_strategy_count(o.strategy for o in opportunities)},
        "decisions": {
            "approved": approved,
            "rejected": len(decisions) - approved,
            "rejected_by_reason": dict(sorted(Counter(d.reason for d in decisions if not d.approved).items())),
        },
        "executions": {
            "by_outcome": _by_outcome(ordered),
            "by_strategy": {
                name: _by_outcome([e for e in ordered if _strategy(e.strategy) == name]) for name in _names(ordered)
            },
        },
        "pnl": {**_pnl(ordered), "by_strategy": {name: _pnl([e for e in ordered if _strategy(e.strategy) == name])
                                                 for name in _names(ordered)}},
        "slippage": _slippage(legs, venue_names),
        "fill_ratio": _fill_ratio(legs, venue_names),
        "drawdown": _drawdown(ordered, start),
        "equity": _equity(ordered),
        "legs": [_leg_row(leg, venue_names, symbol_names) for leg in legs],
        "latency": dict(latency or {}),
    }


def summarize(report: Mapping[str, Any], digest: str = "") -> dict[str, Any]:
    """The figures a sweep's table shows for one run (``services.backtest.sweep`` reads these keys)."""
    return {
        "opportunities": report["counts"]["opportunities"],
        "executions": report["counts"]["executions"],
        "fill_ratio": report["fill_ratio"]["mean"],
        "gross_usd": report["pnl"]["gross_usd"],
        "fees_usd": report["pnl"]["fees_usd"],
        "net_usd": report["pnl"]["net_usd"],
        "max_drawdown_usd": report["drawdown"]["max_usd"],
        "digest": digest,
    }


def _strategy(i: int) -> str:
    return STRATEGY_NAMES[i] if 0 <= i < len(STRATEGY_NAMES) else f"#{i}"


def _name(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"#{i}"


def _names(executions: Iterable[Execution]) -> list[str]:
    """Every known strategy, then any unknown id that occurs: a stable set of keys across runs."""
    extra = sorted({_strategy(e.strategy) for e in executions} - set(STRATEGY_NAMES))
    return [*STRATEGY_NAMES, *extra]


def _by_strategy_count(strategies: Iterable[int]) -> dict[str, int]:
    counts = Counter(_strategy(s) for s in strategies)
    return {name: counts.get(name, 0) for name in [*STRATEGY_NAMES, *sorted(set(counts) - set(STRATEGY_NAMES))]}


def _by_outcome(executions: Sequence[Execution]) -> dict[str, int]:
    counts = Counter(e.outcome for e in executions)
    return {k: counts.get(k, 0) for k in [*OUTCOMES, *sorted(set(counts) - set(OUTCOMES))]}


def _usd(x: float) -> Decimal:
    return Decimal(repr(x))


def _pnl(executions: Sequence[Execution]) -> dict[str, Any]:
    net = sum((_usd(e.pnl_usd) for e in executions), Decimal(0))
    fees = sum((_usd(e.fees_usd) for e in executions), Decimal(0))
    return {"executions": len(executions), "gross_usd": float(net + fees), "fees_usd": float(fees),
            "net_usd": float(net)}


def _mean(values: Sequence[float]) -> float | None:
    return float(sum((Decimal(repr(v)) for v in values), Decimal(0)) / len(values)) if values else None


def _stats(values: Sequence[float], worst: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"count": len(values), "mean": _mean(values)}
    if worst:
        out["worst"] = max(values) if values else None
    return out


def _grouped(legs: Sequence[LegResult], value: str, venue_names: Sequence[str], worst: bool) -> dict[str, Any]:
    def vals(rows: Iterable[LegResult]) -> list[float]:
        return [v for v in (getattr(r, value) for r in rows) if v is not None]

    strategies = sorted({leg.strategy for leg in legs})
    venues = sorted({leg.venue for leg in legs})
    return {
        **_stats(vals(legs), worst),
        "by_strategy": {_strategy(s): _stats(vals(r for r in legs if r.strategy == s), worst) for s in strategies},
        "by_venue": {_name(venue_names, v): _stats(vals(r for r in legs if r.venue == v), worst) for v in venues},
    }


def _slippage(legs: Sequence[LegResult], venue_names: Sequence[str]) -> dict[str, Any]:
    """Over the legs that filled and whose detected price is known: bps, positive = worse than detected."""
    out = _grouped(legs, "slippage_bps", venue_names, worst=True)
    return {"unit": "bps", **out}


def _fill_ratio(legs: Sequence[LegResult], venue_names: Sequence[str]) -> dict[str, Any]:
    """filled / intended per planned leg, then averaged (each leg counts once, whatever its size)."""
    return _grouped(legs, "fill_ratio", venue_names, worst=False)


def _drawdown(executions: Sequence[Execution], start_ns: int) -> dict[str, Any]:
    """The largest fall of cumulative net PnL from a running peak (the start, at 0, is the first peak)."""
    cum = peak = Decimal(0)
    peak_ns = start_ns
    best: tuple[Decimal, int, int, Decimal, Decimal] = (Decimal(0), start_ns, start_ns, Decimal(0), Decimal(0))
    for e in executions:
        cum += _usd(e.pnl_usd)
        if cum > peak:
            peak, peak_ns = cum, e.done_ns
        if peak - cum > best[0]:
            best = (peak - cum, peak_ns, e.done_ns, peak, cum)
    size, p_ns, t_ns, p_usd, t_usd = best
    return {"max_usd": float(size), "peak_ns": p_ns, "trough_ns": t_ns, "peak_usd": float(p_usd),
            "trough_usd": float(t_usd), "peak_s": (p_ns - start_ns) / 1e9, "trough_s": (t_ns - start_ns) / 1e9}


def _equity(executions: Sequence[Execution]) -> dict[str, list[Any]]:
    """One point per execution, columns (compact JSON): when, which strategy, its net, the running total."""
    cum = Decimal(0)
    t_ns: list[int] = []
    strategy: list[str] = []
    net: list[float] = []
    total: list[float] = []
    for e in executions:
        cum += _usd(e.pnl_usd)
        t_ns.append(e.done_ns)
        strategy.append(_strategy(e.strategy))
        net.append(e.pnl_usd)
        total.append(float(cum))
    return {"t_ns": t_ns, "strategy": strategy, "net_usd": net, "cum_net_usd": total}


def _span(opportunities: Sequence[Opportunity], executions: Sequence[Execution], start_ns: int | None,
          end_ns: int | None) -> tuple[int, int]:
    stamps = [o.detected_ns for o in opportunities] + [e.done_ns for e in executions]
    start = start_ns if start_ns is not None else min(stamps, default=0)
    end = end_ns if end_ns is not None else max(stamps, default=start)
    if end < start:
        raise ValueError(f"report span: end_ns {end} is before start_ns {start}")
    return start, end


def _leg_row(leg: LegResult, venue_names: Sequence[str], symbol_names: Sequence[str]) -> dict[str, Any]:
    return {
        "opportunity_id": leg.opportunity_id,
        "strategy": _strategy(leg.strategy),
        "leg": leg.leg,
        "venue": _name(venue_names, leg.venue),
        "symbol": _name(symbol_names, leg.symbol),
        "side": "buy" if leg.side == SIDE_BUY else "sell",
        "detected_price": leg.detected_price,
        "avg_price": float(leg.avg_price) if leg.avg_price is not None else None,
        "intended_qty": str(leg.intended_qty),
        "filled_qty": str(leg.filled_qty),
        "fill_ratio": leg.fill_ratio,
        "slippage_bps": leg.slippage_bps,
        "done_ns": leg.done_ns,
    }
