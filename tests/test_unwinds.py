"""The PnL split (filled executions, unwinds, fees) and why unwinds happened, on real Execution structs: the
classifier alone, the bridge's counts through shared memory and its checkpoint, and the settlement's words."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from services.bridge import unwinds
from services.bridge.state import BridgeState, Totals
from services.cli.settle import explain
from services.executor.carry_book import OUTCOME_FUNDING
from shared.codec import event_codec
from shared.config import default_config_path, load_config
from shared.messages import (
    OUTCOME_FILLED,
    OUTCOME_HEDGED,
    OUTCOME_MISSED,
    OUTCOME_ORPHANED,
    OUTCOME_PARTIAL,
    OUTCOME_REJECTED,
    OUTCOME_UNWOUND,
    ROLE_HEDGE,
    ROLE_LEG,
    ROLE_UNWIND,
    SIDE_BUY,
    SIDE_SELL,
    Event,
    Execution,
    LegFill,
)
from shared.shm import ShmReader, ShmWriter, snapshot_json
from tests.test_bridge_state import SERVICES, decision, opportunity, registry

BINANCE, MEXC = 0, 1


def leg(i: int, venue: int, status: str, qty: str = "0.5", filled: str | None = None, role: int = ROLE_LEG) -> LegFill:
    filled = (qty if status == "FILLED" else "0") if filled is None else filled
    side = SIDE_BUY if i == 0 else SIDE_SELL
    return LegFill(role, i, venue, 0, side, f"dz{i}{venue}{role}", qty, filled, "0", status, 0.01)


def execution(opp_id: int, outcome: str, legs: tuple[LegFill, ...], pnl: float, fees: float) -> Execution:
    """An Execution as the executor publishes it, through the event codec the bridge decodes it with."""
    exe = Execution(opp_id, 0, BINANCE, MEXC, 0.5, 0.5, 100.0, 100.5, fees, pnl, 50.0, outcome, 1, 2, 3, 4, 5,
                    0, legs, (), 0.0, "")
    codec = event_codec()
    decoded: Event = codec.decode(codec.encode(exe))
    assert decoded == exe
    return exe  # type: ignore[return-value]


# The shapes a demo run's journal shows (one leg missed at its limit, the other filled and unwound), and the rest.
MEXC_IOC_MISSED = (leg(0, MEXC, "CANCELED"), leg(1, BINANCE, "FILLED"), leg(1, BINANCE, "FILLED", role=ROLE_UNWIND))
BINANCE_EXPIRED = (leg(0, MEXC, "FILLED"), leg(1, BINANCE, "EXPIRED"), leg(0, MEXC, "FILLED", role=ROLE_UNWIND))
PARTLY = (leg(0, BINANCE, "FILLED"), leg(1, MEXC, "PARTIALLY_FILLED", filled="0.2"),
          leg(0, BINANCE, "FILLED", qty="0.3", role=ROLE_UNWIND))
REJECTED_AND_EXPIRED = (leg(0, BINANCE, "EXPIRED"), leg(1, MEXC, "REJECTED"), leg(0, BINANCE, "FILLED"))
NO_ANSWER = (leg(0, BINANCE, "FILLED"), leg(1, MEXC, "UNKNOWN"), leg(0, BINANCE, "FILLED", role=ROLE_HEDGE))
ALL_FILLED = (leg(0, BINANCE, "FILLED"), leg(1, MEXC, "FILLED"), leg(1, MEXC, "FILLED", qty="0.1", role=ROLE_UNWIND))


@pytest.mark.parametrize(
    ("legs", "cause", "age_of_leg"),
    [
        (MEXC_IOC_MISSED, unwinds.BOOK_MOVED, 0),  # MEXC ends an IOC that found nothing CANCELED
        (BINANCE_EXPIRED, unwinds.BOOK_MOVED, 1),  # Binance EXPIRED
        (PARTLY, unwinds.STALE_DEPTH, 1),  # the price was there, with less behind it
        (REJECTED_AND_EXPIRED, unwinds.REJECTED, 1),  # a refusal decides over a miss
        (NO_ANSWER, unwinds.NO_ANSWER, 1),
        (ALL_FILLED, unwinds.OTHER, None),
    ],
)
def test_an_unwind_is_put_down_to_the_leg_that_fell_short(
    legs: tuple[LegFill, ...], cause: str, age_of_leg: int | None
) -> None:
    exe = execution(7, OUTCOME_UNWOUND, legs, -4.8, 4.0)
    ages = (8_000_000, 25_000_000)  # ns: leg 0's quote 8 ms old at detection, leg 1's 25 ms
    assert unwinds.classify(exe, ages) == (cause, None if age_of_leg is None else ages[age_of_leg])
    assert unwinds.classify(exe, None) == (cause, None)  # an opportunity the bridge never saw: no age
    assert unwinds.classify(exe, ages[:1])[0] == cause  # fewer ages than legs: the cause stands


def test_every_outcome_has_its_bucket() -> None:
    assert {o: unwinds.bucket(o) for o in (OUTCOME_FILLED, OUTCOME_PARTIAL)} == dict.fromkeys(
        (OUTCOME_FILLED, OUTCOME_PARTIAL), unwinds.FILLED)
    assert {unwinds.bucket(o) for o in (OUTCOME_UNWOUND, OUTCOME_HEDGED, OUTCOME_ORPHANED)} == {unwinds.UNWIND}
    assert {unwinds.bucket(o) for o in (OUTCOME_MISSED, OUTCOME_REJECTED, OUTCOME_FUNDING, "aborted")} == {
        unwinds.OTHER}


def traded_state() -> BridgeState:
    """Five executions of approved opportunities (one never approved: a caught-up execution has no ages)."""
    state = BridgeState(registry(), SERVICES)
    plan = [
        (1, OUTCOME_FILLED, (leg(0, BINANCE, "FILLED"), leg(1, MEXC, "FILLED")), 1.70, 3.00),
        (2, OUTCOME_FILLED, (leg(0, BINANCE, "FILLED"), leg(1, MEXC, "FILLED")), 0.50, 3.00),
        (3, OUTCOME_UNWOUND, MEXC_IOC_MISSED, -4.80, 4.01),
        (4, OUTCOME_UNWOUND, BINANCE_EXPIRED, -2.79, 2.00),
        (5, OUTCOME_HEDGED, PARTLY, -4.00, 3.50),
        (6, OUTCOME_MISSED, (leg(0, BINANCE, "EXPIRED"), leg(1, MEXC, "CANCELED")), 0.0, 0.0),
    ]
    for opp_id, outcome, legs, pnl, fees in plan:
        opp = opportunity(opp_id)
        state.on_event(opp)
        if opp_id != 4:
            state.on_event(decision(opp, "approved"))
        state.on_event(execution(opp_id, outcome, legs, pnl, fees))
    return state


def test_the_bridge_splits_the_pnl_and_counts_causes_through_shared_memory_and_its_checkpoint(tmp_path: Path) -> None:
    state = traded_state()
    with ShmWriter(tmp_path / "shm", state.layout) as writer, ShmReader(tmp_path / "shm") as reader:
        writer.publish(state.snapshot())
        snap = reader.read()
    assert snap is not None
    d = snapshot_json(snap, 0)
    split = d["pnl_split"]
    assert split["filled_usd"] == pytest.approx(1.70 + 3.00 + 0.50 + 3.00)
    assert split["unwind_usd"] == pytest.approx(-4.80 + 4.01 - 2.79 + 2.00 - 4.00 + 3.50)
    assert split["other_usd"] == 0.0
    assert split["fees_usd"] == pytest.approx(3.00 + 3.00 + 4.01 + 2.00 + 3.50)
    # The parts add up to the run's PnL.
    assert split["filled_usd"] + split["unwind_usd"] + split["other_usd"] - split["fees_usd"] == pytest.approx(
        d["pnl_usd"])
    # opportunity() stamps both legs' quotes at the tick, 20 µs before detection; #4 was never approved (no age).
    assert d["unwind_causes"] == {
        unwinds.BOOK_MOVED: {"count": 2, "quote_age_ms": 0.02},
        unwinds.STALE_DEPTH: {"count": 1, "quote_age_ms": 0.02},
    }
    # A restarted bridge continues from its checkpoint's totals: the same split and causes.
    totals = msgspec.json.decode(msgspec.json.encode(state.totals()), type=Totals)
    again = BridgeState(registry(), SERVICES)
    again.restore(totals)
    assert again.snapshot().pnl_split == state.snapshot().pnl_split
    assert again.snapshot().unwind_causes == state.snapshot().unwind_causes
    # An older checkpoint (no split in it) restores as zeros rather than failing.
    old = msgspec.json.decode(b'{"pnl_usd": 1.5}', type=Totals)
    assert old.pnl_split == (0.0, 0.0, 0.0) and old.unwind_causes == {}


def test_the_settlement_says_where_the_pnl_went_and_why_executions_were_unwound() -> None:
    state = traded_state()
    d = snapshot_json(state.snapshot(), 0)
    cfg = load_config(default_config_path())
    risk = {"breakers": {"failure": {"open": False, "trips": 2}, "loss": {"open": False, "trips": 0}}}
    lines = explain(d, {"executions": 6}, risk, cfg)
    assert lines[0] == (f"  PnL {d['pnl_usd']:+.2f} USD = +8.20 filled executions (2) -2.08 unwinds (3) "
                        "-15.51 fees")
    assert lines[1] == ("  why unwound: 2x book moved before the order arrived (the short leg's quote 0.0 ms old at "
                        "detection, on average); 1x stale depth (less at the price than the book showed) (the short "
                        "leg's quote 0.0 ms old at detection, on average)")
    r = cfg.risk
    assert lines[2] == (f"  trading halted: failure breaker tripped 2 times ({r.failure_breaker_count} failed "
                        f"executions within {r.failure_window_s:g} s halt the spot strategies for "
                        f"{r.breaker_cooldown_s:g} s)")
    # Fewer executions in shared memory than the executor booked: said, not hidden.
    assert "(the bridge has seen 6 of the executor's 9 executions)" in explain(d, {"executions": 9}, {}, cfg)[0]
    assert explain(None, {}, {}, cfg) == ["  PnL split: no snapshot of this run in shared memory (is the bridge "
                                          "running?)"]
