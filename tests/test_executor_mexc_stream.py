"""The executor with MEXC's listen-key user stream, against the simulator: while the stream is up, MEXC's fills
come by it and the trade list (myTrades) is never asked; while it is down the trade list takes over, and the
reconnect re-queries what was open."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from services.executor.listen_key_stream import ListenKeyStream
from services.sim.app import Simulator
from shared.messages import OUTCOME_FILLED, Execution
from tests.conftest import eventually_async
from tests.executor_kit import Rig, executor_on, still_sim
from tests.sim_kit import CREDS

MY_TRADES = ("GET", "/api/v3/myTrades")


def mexc_stream(rig: Rig) -> ListenKeyStream:
    return rig.ex.fill_streams[rig.reg.venue_id["mexc"]]


def trade_lists(sim: Simulator) -> int:
    return int(sim.venue("mexc").rest.path_counts[MY_TRADES])


def assert_fills_match_the_venue(rig: Rig, exe: Execution) -> None:
    """Every MEXC fill the execution booked is the venue's own trade (id, price, qty), and no more."""
    mexc = rig.reg.venue_id["mexc"]
    book = rig.sim.venue("mexc").book
    venue_fills = {str(f.trade_id): (f.price, f.qty) for o in book.every_order(CREDS["mexc"][0])
                   if o.ticket.client_order_id.startswith(f"dz{exe.opportunity_id:x}") for f in o.fills}
    booked = {f.trade_id: (Decimal(repr(f.price)), Decimal(repr(f.qty))) for f in rig.events
              if getattr(f, "trade_id", None) and getattr(f, "venue", None) == mexc
              and getattr(f, "opportunity_id", None) == exe.opportunity_id}
    assert venue_fills and booked.keys() == venue_fills.keys()
    for tid, (price, qty) in venue_fills.items():
        assert booked[tid] == (price, qty)


async def test_fills_come_by_the_stream_and_the_trade_list_is_not_polled(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        stream = mexc_stream(rig)
        await eventually_async(lambda: stream.connected, 20.0, "the MEXC user stream")
        for _ in range(3):
            exe = await rig.run(rig.cross(qty="0.01"))
            assert exe.outcome == OUTCOME_FILLED
            assert_fills_match_the_venue(rig, exe)
        assert trade_lists(sim) == 0 and rig.ex.n_trade_lists == 0 and rig.ex.n_stream_trades_late == 0
        assert stream.reports >= 6 and stream.malformed == 0 and stream.reconnects == 0
        assert rig.ex.counters()["user_stream_malformed"] == 0


async def test_while_the_stream_is_down_the_trade_list_takes_over_and_the_reconnect_requeries(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, order_timeout_ms=3000) as rig:
        stream = mexc_stream(rig)
        await eventually_async(lambda: stream.connected, 20.0, "the MEXC user stream")
        # The MEXC leg is held by the venue for a while; the private link stalls meanwhile (the fill's pushes are
        # lost on the way), then drops.
        sim.inject_order_fault("mexc", "slow", count=1, seconds=1.0)
        intent = rig.cross(qty="0.01")
        assert rig.ex.on_intent(intent)
        held = lambda: sim.venue("mexc").book.open_orders(CREDS["mexc"][0])  # noqa: E731
        await eventually_async(held, 20.0, "the held MEXC order")
        sim.inject("mexc", "stall", seconds=30.0)
        await eventually_async(lambda: not held(), 20.0, "the held order's fill")
        assert stream.connected  # nothing told the stream yet
        sim.inject("mexc", "drop")
        await eventually_async(lambda: stream.reconnects >= 1 and stream.connected and stream.gaps == 1, 20.0,
                               "the reconnect and its gap")
        exe = await eventually_async(lambda: rig.execution(intent.opportunity.id), 20.0, "the execution")
        assert exe.outcome == OUTCOME_FILLED
        assert_fills_match_the_venue(rig, exe)
        # created before the gap, the order's fills came from the trade list
        assert trade_lists(sim) >= 1 and rig.ex.n_trade_lists >= 1
        # a new execution after the reconnect: by the stream again, no more trade lists
        polled = trade_lists(sim)
        exe = await rig.run(rig.cross(qty="0.01"))
        assert exe.outcome == OUTCOME_FILLED and trade_lists(sim) == polled
