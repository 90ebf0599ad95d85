"""One test per venue fault, through the real executor against the real simulator: no order is sent twice, no
imbalance outlives the unwind deadline, every execution ends with an outcome and books what really happened."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import msgspec

from services.executor.order_journal import OrderJournal
from shared.messages import (
    OUTCOME_ABORTED,
    OUTCOME_FILLED,
    OUTCOME_HEDGED,
    OUTCOME_UNWOUND,
    ROLE_LEG,
    ROLE_UNWIND,
    SIDE_BUY,
    Alert,
    Command,
    Execution,
)
from tests.conftest import eventually_async
from tests.executor_kit import Rig, executor_on, sim_orders, still_sim, triangle
from tests.sim_kit import CREDS

DEADLINE_MS = 4000


def assert_no_orphan(rig: Rig, exe: Execution) -> None:
    """Bought and sold quantities of every order (legs and corrections) match to less than one step, within
    the deadline, and no orphan alert went out. (Commissions Binance takes in the base asset are inventory,
    not imbalance: the balance deltas show them, the fills do not.)"""
    step = rig.reg.step[0][exe.symbol]
    signed = sum((Decimal(f.filled_qty) * (1 if f.side == SIDE_BUY else -1) for f in exe.legs), Decimal(0))
    assert abs(signed) < step, exe.legs
    base = rig.reg.symbols[exe.symbol].base
    commission_in_base = sum((Decimal(d.delta) for d in exe.deltas if d.asset == base), Decimal(0)) - signed
    assert commission_in_base <= 0  # the venue only ever takes
    assert (exe.done_ns - exe.sent_ns) / 1e6 < DEADLINE_MS + 1000
    assert not [e for e in rig.events if isinstance(e, Alert) and e.kind == "orphan"]


def assert_sent_once(rig: Rig, exe: Execution) -> None:
    """Every client order id the executor used exists once on its venue, and nothing else of ours does."""
    for venue in ("binance", "mexc"):
        vid = rig.reg.venue_id[venue]
        ours = {f.client_order_id for f in exe.legs if f.venue == vid and f.status != "REJECTED"}
        on_venue = {cid for cid in sim_orders(rig.sim, venue) if cid.startswith(f"dz{exe.opportunity_id:x}")}
        assert on_venue == ours, (venue, on_venue, ours)


async def test_both_legs_fill_and_the_books_match_the_venues(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        before = {v: sim.balances(v, CREDS[v][0]) for v in ("binance", "mexc")}
        exe = await rig.run(rig.cross())
        assert exe.outcome == OUTCOME_FILLED
        assert_sent_once(rig, exe)
        for d in exe.deltas:  # the executor's balance moves are exactly the venue's
            venue = rig.reg.venue(d.venue)
            after = sim.balances(venue, CREDS[venue][0])
            assert after[d.asset] - before[venue][d.asset] == Decimal(d.delta), d
        assert_no_orphan(rig, exe)


async def test_one_leg_rejected_the_other_is_unwound(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("mexc", "reject", count=1)
        exe = await rig.run(rig.cross())
        assert exe.outcome == OUTCOME_UNWOUND
        roles = [(f.role, rig.reg.venue(f.venue), f.status) for f in exe.legs]
        assert (ROLE_LEG, "mexc", "REJECTED") in roles
        assert any(r == ROLE_UNWIND and v == "binance" and s == "FILLED" for r, v, s in roles), roles
        assert_sent_once(rig, exe)
        assert_no_orphan(rig, exe)


async def test_accept_then_5xx_is_resolved_by_query_never_resent(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("binance", "error_after_accept", count=1)
        exe = await rig.run(rig.cross())
        assert exe.outcome == OUTCOME_FILLED
        assert all(f.status == "FILLED" for f in exe.legs)
        assert_sent_once(rig, exe)
        assert_no_orphan(rig, exe)


async def test_429_blocks_the_venue_until_retry_after_and_the_other_leg_is_unwound(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("mexc", "rate_limit", seconds=2.0)
        first = await rig.run(rig.cross())
        assert first.outcome == OUTCOME_UNWOUND
        assert_no_orphan(rig, first)
        requests_before = sim.venue("mexc").rest.requests
        blocked = await rig.run(rig.cross())  # still inside Retry-After: the mexc leg never leaves
        assert sim.venue("mexc").rest.requests == requests_before
        mexc_leg = next(f for f in blocked.legs if rig.reg.venue(f.venue) == "mexc")
        assert mexc_leg.status == "REJECTED"
        state = rig.venue_states("mexc")[-1]
        assert state.blocked_until_ms > time.time() * 1000 - 5000
        await eventually_async(lambda: rig.ex.clients[rig.reg.venue_id["mexc"]].budget.usage()[6] < time.time() * 1000,
                               5, "Retry-After over")
        after = await rig.run(rig.cross())
        assert after.outcome == OUTCOME_FILLED


async def test_slow_answer_is_queried_then_cancelled_and_the_filled_leg_unwound(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("mexc", "slow", count=1, seconds=6.0)
        exe = await rig.run(rig.cross())
        mexc_leg = next(f for f in exe.legs if rig.reg.venue(f.venue) == "mexc" and f.role == ROLE_LEG)
        assert mexc_leg.status == "CANCELED" and Decimal(mexc_leg.filled_qty) == 0
        assert exe.outcome == OUTCOME_UNWOUND
        assert_sent_once(rig, exe)
        assert_no_orphan(rig, exe)
        await eventually_async(lambda: not sim.venue("mexc").book.open_orders(CREDS["mexc"][0]), 10, "nothing rests")


async def test_partial_fill_is_unwound_to_the_matched_size(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("mexc", "partial", count=1)
        exe = await rig.run(rig.cross(qty="0.04"))
        assert exe.outcome == OUTCOME_UNWOUND
        assert 0 < exe.sold_qty < exe.bought_qty  # the leg's own fills; the unwind is a separate order
        assert_sent_once(rig, exe)
        assert_no_orphan(rig, exe)


async def test_hedge_mode_completes_the_short_leg_instead(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, unwind_mode="hedge") as rig:
        sim.inject_order_fault("mexc", "partial", count=1)
        exe = await rig.run(rig.cross(qty="0.04"))
        assert exe.outcome == OUTCOME_HEDGED
        assert_no_orphan(rig, exe)


async def test_kill_switch_cancels_every_open_order_and_refuses_new_intents(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, order_timeout_ms=20_000) as rig:
        for venue in ("binance", "mexc"):
            sim.inject_order_fault(venue, "slow", count=1, seconds=6.0)
        intent = rig.cross()
        assert rig.ex.on_intent(intent)
        for venue in ("binance", "mexc"):
            await eventually_async(lambda v=venue: sim.venue(v).book.open_orders(CREDS[v][0]), 5, f"{venue} open")
        reply = rig.ex.on_command(Command("kill"))
        assert reply is not None and reply.ok and reply.data["tracked_open"] == 2, reply
        for venue in ("binance", "mexc"):
            await eventually_async(lambda v=venue: not sim.venue(v).book.open_orders(CREDS[v][0]), 5,
                                   f"{venue} cancelled")
        await eventually_async(lambda: rig.ex.counters()["kill_cancelled"] == 2, 5, "both cancels counted")
        exe = await eventually_async(lambda: rig.execution(intent.opportunity.id), 20, "execution")
        assert all(f.status == "CANCELED" for f in exe.legs if f.role == ROLE_LEG)
        refused = rig.cross()
        assert not rig.ex.on_intent(refused)
        assert rig.execution(refused.opportunity.id).outcome == OUTCOME_ABORTED


async def test_every_order_is_in_the_journal_before_the_venue_sees_it(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("mexc", "slow", count=1, seconds=3.0)
        intent = rig.cross()
        assert rig.ex.on_intent(intent)
        await eventually_async(lambda: sim.venue("mexc").book.open_orders(CREDS["mexc"][0]), 5, "mexc order open")
        state = OrderJournal.load(run_dir / "state" / "orders")
        assert intent.opportunity.id in state.open_executions
        assert set(state.orders) >= set(sim_orders(sim, "mexc"))
        await eventually_async(lambda: rig.execution(intent.opportunity.id), 20, "execution")


async def test_an_intent_grown_stale_in_the_queue_is_not_sent(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        intent = rig.cross()
        old = intent.opportunity.detected_ns - int((rig.cfg.risk.max_opportunity_age_ms + 50) * 1e6)
        stale = msgspec.structs.replace(intent, opportunity=msgspec.structs.replace(intent.opportunity,
                                                                                     detected_ns=old))
        orders_before = {v: len(sim_orders(sim, v)) for v in ("binance", "mexc")}
        assert not rig.ex.on_intent(stale)
        exe = rig.execution(stale.opportunity.id)
        assert exe is not None and exe.outcome == OUTCOME_ABORTED and "old at send" in exe.note
        assert {v: len(sim_orders(sim, v)) for v in ("binance", "mexc")} == orders_before


async def test_a_triangle_with_one_leg_rejected_unwinds_the_other_two(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("binance", "reject", count=1, symbol="ETHBTC")
        before = sim.balances("binance", CREDS["binance"][0])
        exe = await rig.run(triangle(rig))
        assert exe.outcome == OUTCOME_UNWOUND
        assert [f.status for f in exe.legs if f.role == ROLE_LEG] == ["FILLED", "REJECTED", "FILLED"]
        for leg in (0, 2):  # every leg back to the rejected one's fraction (zero), each by its own unwind
            orders = [f for f in exe.legs if f.leg == leg]
            signed = sum((Decimal(f.filled_qty) * (1 if f.side == orders[0].side else -1) for f in orders),
                         Decimal(0))
            assert signed == 0, orders
        after = sim.balances("binance", CREDS["binance"][0])
        for d in exe.deltas:
            assert after[d.asset] - before[d.asset] == Decimal(d.delta)
        assert_sent_once(rig, exe)


async def test_an_unwind_may_use_the_rate_reserve_new_legs_leave_free(run_dir: Path) -> None:
    """New legs get budget_share of the venue's order limit; the rest is kept for orders that reduce risk.
    With one new order allowed on binance per 10 s, the leg takes it and the unwind still goes out."""
    limits = {"binance": {"orders_per_10s": 2, "budget_share": 0.5}}
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, limits) as rig:
        sim.inject_order_fault("mexc", "reject", count=1)
        exe = await rig.run(rig.cross())
        assert exe.outcome == OUTCOME_UNWOUND, exe
        assert_no_orphan(rig, exe)
        refused = await rig.run(rig.cross())  # a new leg now finds the share used: refused before sending
        binance_leg = next(f for f in refused.legs if rig.reg.venue(f.venue) == "binance")
        assert binance_leg.status == "REJECTED"


async def test_an_unwind_resting_on_the_venue_is_tracked_like_a_leg(run_dir: Path) -> None:
    """Corrections are orders of the execution too: the user stream's reports and the kill switch reach them, and
    the operator sees them open."""
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        sim.inject_order_fault("mexc", "reject", count=1)
        sim.inject_order_fault("binance", "slow", count=1, side="SELL", seconds=3.0)  # the unwind rests
        intent = rig.cross()
        assert rig.ex.on_intent(intent)
        await eventually_async(lambda: sim.venue("binance").book.open_orders(CREDS["binance"][0]), 10,
                               "the unwind resting")
        reply = rig.ex.on_command(Command("orders"))
        assert reply is not None
        resting = [o.ticket.client_order_id for o in sim.venue("binance").book.open_orders(CREDS["binance"][0])]
        assert resting and set(resting) <= set(reply.data["open"]), (resting, reply.data)
        exe = await eventually_async(lambda: rig.execution(intent.opportunity.id), 20, "execution")
        assert exe.outcome == OUTCOME_UNWOUND


async def test_a_triangle_cannot_take_more_new_order_slots_than_the_budget_has(run_dir: Path) -> None:
    """The hot path checks and counts each leg as it writes it: with one new-order slot left on binance, a
    three-leg triangle sends one leg, not three (checking all three before counting any overshot the budget)."""
    limits = {"binance": {"orders_per_10s": 2, "budget_share": 0.5}}  # one new order per 10 s
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, limits) as rig:
        intent = triangle(rig)
        assert rig.ex.on_intent(intent)
        exe = await eventually_async(lambda: rig.execution(intent.opportunity.id), 20, "the triangle's execution")
        legs_sent = [cid for cid in sim_orders(sim, "binance") if cid.endswith(("0", "1", "2")) and "u" not in cid]
        assert len(legs_sent) == 1, legs_sent
        assert sorted(f.status for f in exe.legs if f.role == ROLE_LEG).count("REJECTED") == 2, exe.legs
