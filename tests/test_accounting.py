"""PnL reconciled to the cent: risk and the executor fused in one process (as in the fused placement), against
the simulator over real HTTP, through executions that fill, get rejected, partially fill and time out.

Afterwards three views of the money must agree:
- the executor's ledger (every execution's balance deltas) equals the change of the simulator's account
  balances, asset by asset, exactly — so valued at the simulator's mark prices the two agree to the cent;
- the executor's booked PnL equals risk's PnL for the session, to the cent.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import msgspec

from services.risk.service import RiskEngine
from tests.conftest import eventually_async
from tests.executor_kit import executor_on, still_sim
from tests.sim_kit import CREDS

VENUES = ("binance", "mexc")


async def test_pnl_reconciles_with_the_venue_balances_and_with_risk(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim:
        start = {v: sim.balances(v, CREDS[v][0]) for v in VENUES}
        async with executor_on(sim, run_dir) as rig:
            risk = RiskEngine(rig.ex.ctx)
            risk.link_in_process({"Executor": rig.ex})
            await risk.start()
            try:
                # risk approves nothing before it knows each venue's balances (the executor's heartbeat)
                await eventually_async(lambda: risk.counters().get("venue_states", 0) >= len(VENUES), 5,
                                       "venue states at risk")
                plan = [
                    ("binance", "mexc", None),
                    ("mexc", "binance", ("mexc", "reject")),
                    ("binance", "mexc", ("mexc", "partial")),
                    ("mexc", "binance", ("binance", "partial")),
                    ("binance", "mexc", ("binance", "error_after_accept")),
                    ("mexc", "binance", None),
                    ("binance", "mexc", ("mexc", "slow")),
                ]
                for buy, sell, fault in plan:
                    if fault is not None:
                        venue, kind = fault
                        sim.inject_order_fault(venue, kind, count=1, seconds=2.0 if kind == "slow" else None)
                    intent = rig.cross(qty="0.03", buy=buy, sell=sell)
                    now = time.monotonic_ns()
                    opp = msgspec.structs.replace(intent.opportunity, detected_ns=now)  # risk refuses stale ones
                    assert risk.on_opportunity(opp), {k: n for k, n in risk.book.decisions.items() if n}
                    await eventually_async(lambda o=opp: rig.execution(o.id), 20, f"execution {opp.id}")
                outcomes = [e.outcome for e in rig.executions()]
                assert "filled" in outcomes and "unwound" in outcomes, outcomes
                assert "orphaned" not in outcomes

                ledger = rig.ex.run_ledger.deltas()
                # One mark per asset (the venues' mean mid): a coin is worth the same on either venue, so a
                # cross pair's offsetting positions cancel instead of being valued at two prices.
                per_venue = [sim.marks(v) for v in VENUES]
                mark = {a: sum(m.get(a, Decimal(0)) for m in per_venue) / len(per_venue) for a in per_venue[0]}
                venue_usd = ledger_usd = Decimal(0)
                for v in VENUES:
                    vid = rig.reg.venue_id[v]
                    now_bal = sim.balances(v, CREDS[v][0])
                    for asset in set(now_bal) | set(start[v]):
                        change = now_bal.get(asset, Decimal(0)) - start[v].get(asset, Decimal(0))
                        assert ledger.get((vid, asset), Decimal(0)) == change, (v, asset)
                        venue_usd += change * mark.get(asset, Decimal(0))
                        ledger_usd += ledger.get((vid, asset), Decimal(0)) * mark.get(asset, Decimal(0))
                assert abs(venue_usd - ledger_usd) < Decimal("0.01")
                booked = sum(e.pnl_usd for e in rig.executions())
                assert abs(booked - rig.ex.pnl_usd) < 0.01
                assert abs(risk.book.session_pnl_usd - rig.ex.pnl_usd) < 0.01
                # booked PnL values inventory at each execution's own prices; the still market barely differs
                assert abs(float(ledger_usd) - rig.ex.pnl_usd) < 0.05
            finally:
                await risk.stop()
                risk.close()

