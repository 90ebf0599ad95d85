"""The bridge's carry book: latest state per carry, exact funding totals, the checkpoint, shared memory,
`draizer status` and the Prometheus families."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.bridge import checkpoint
from services.bridge.metrics import start_metrics_server
from services.bridge.state import BridgeState
from shared.messages import PerpMargin, PerpPositionState, VenueState
from shared.shm import ShmReader, ShmWriter, snapshot_json
from shared.shm.layout import MAX_CARRIES
from tests.carry_kit import BTC, ETH, OPENED_MS, PERP, PERP2, SPOT, T_NS, carry, lifecycle, payment
from tests.test_bridge_state import SERVICES, registry, stats
from tests.test_metrics import samples, scrape, value
from tests.test_prometheus import check_metrics

REPO = Path(__file__).resolve().parents[1]


def fed(*events: object) -> BridgeState:
    state = BridgeState(registry(), SERVICES)
    for e in events:
        state.on_event(e)  # type: ignore[arg-type]
    return state


def carry_json(state: BridgeState) -> dict:
    return snapshot_json(state.snapshot(), 0)["carry"]


def test_a_carry_is_its_newest_state_and_stays_once_closed() -> None:
    events = lifecycle(501)
    state = fed(*events[:3])  # opened, paid, updated
    c = carry_json(state)
    assert (c["open"], c["closed"]) == (1, 0)
    [p] = c["positions"]
    assert p == {
        "carry_id": 501, "symbol": "BTCUSDT", "spot_venue": "binance", "perp_venue": "binance_perp", "state": "open",
        "spot_qty": "0.010", "perp_qty": "-0.010", "entry_basis_bps": 5.5, "exit_basis_bps": 0.0,
        "funding_usd": 0.0125, "fees_usd": 0.1, "pnl_usd": -0.0875, "notional_usd": 0.0, "opened_ms": OPENED_MS,
        "closed_ms": 0, "updated_ms": (T_NS + 8 * 3_600 * 10**9 + 1) // 1_000_000,
    }
    for e in events[3:]:
        state.on_event(e)
    state.on_event(events[2])  # a late or replayed open update never reopens it
    c = carry_json(state)
    assert (c["open"], c["closed"]) == (0, 1)
    [p] = c["positions"]
    assert (p["state"], p["spot_qty"], p["perp_qty"], p["exit_basis_bps"], p["pnl_usd"]) == (
        "closed", "0.000", "0.000", 1.25, 0.1375)
    assert state.carry.n_stale == 1 and state.n_refused == 0


def test_funding_totals_are_exact_per_venue_and_asset_and_each_payment_counts_once() -> None:
    state = fed(
        payment("a", "0.1", 0.1), payment("b", "0.2", 0.2), payment("c", "-0.05", -0.05),
        payment("a", "0.1", 0.1),  # the same payment again: not counted
        payment("a", "7", 7.0, venue=PERP2),  # the same id on another venue is another payment
        payment("d", "0.00001", 0.9, venue=PERP2, asset="BTC"),
    )
    c = carry_json(state)
    assert c["funding_by_venue"] == {
        "binance_perp": {"usd": pytest.approx(0.25), "payments": 3, "amounts": {"USDT": "0.25"}},
        "mexc_perp": {"usd": pytest.approx(7.9), "payments": 2, "amounts": {"USDT": "7", "BTC": "0.00001"}},
    }
    assert c["funding_usd"] == pytest.approx(8.15)
    assert state.carry.n_duplicate_payments == 1
    m = state.metrics()
    assert m.funding_usd[("binance_perp", "received")] == pytest.approx(0.3)
    assert m.funding_usd[("binance_perp", "paid")] == pytest.approx(0.05)
    assert m.funding_payments == {"binance_perp": 3, "mexc_perp": 2}


def test_what_cannot_be_held_exactly_is_refused_and_counted() -> None:
    state = fed(
        carry(1, spot_qty="0.01x"), carry(2, perp_qty="NaN"), carry(3, state="opening"), carry(4, perp_venue=9),
        carry(5, spot_qty="1" * 41), payment("x", "1e"), payment("y", asset=""), payment("z", venue=-1),
        carry(6, spot_venue=-1),  # unhedged: fine
    )
    assert state.n_refused == 8
    assert [p["carry_id"] for p in carry_json(state)["positions"]] == [6]
    assert carry_json(state)["positions"][0]["spot_venue"] is None
    assert carry_json(state)["funding_by_venue"] == {}


def test_the_checkpoint_keeps_carries_and_funding_across_a_bridge_restart(tmp_path: Path) -> None:
    events = lifecycle(501)
    before = fed(*events[:4], carry(502, symbol=ETH, ts_ns=T_NS + 5))
    path = checkpoint.checkpoint_path(tmp_path)
    checkpoint.save(path, checkpoint.Checkpoint(totals=before.totals()))

    after = BridgeState(registry(), SERVICES)
    after.restore(checkpoint.load(path).totals)
    assert carry_json(after) == carry_json(before)
    after.on_event(events[3])  # a payment the restored book has counted already
    for e in events[4:]:
        after.on_event(e)
    c = carry_json(after)
    assert (c["open"], c["closed"]) == (1, 1)
    assert c["funding_by_venue"]["binance_perp"] == {"usd": pytest.approx(0.0095), "payments": 2,
                                                     "amounts": {"USDT": "0.0095"}}


def test_open_carries_are_valued_at_the_mark_else_the_mid() -> None:
    state = fed(carry(501, perp_qty="-0.010"), carry(502, symbol=ETH, spot_qty="2", perp_qty="-2"))
    assert state.metrics().carry_notional_usd == 0.0  # no price yet
    state.on_event(stats("feed.binance", prices=[(SPOT, BTC, 99_990.0, 100_010.0), (SPOT, ETH, 3_000.0, 3_002.0)]))
    assert state.metrics().carry_notional_usd == pytest.approx(0.010 * 100_000 + 2 * 3_001)
    margin = PerpMargin(1000.0, 1000.0, 900.0, 10.0, ((BTC, 3),),
                        (PerpPositionState(BTC, "-0.010", 100_000.0, 101_000.0, 0.0, 3, 33.0),))
    state.on_event(VenueState(PERP, T_NS, True, (), 0, 0, 0, 0, 0, 0, 0, 0, (), margin))
    assert state.metrics().carry_notional_usd == pytest.approx(0.010 * 101_000 + 2 * 3_001)
    assert [p["notional_usd"] for p in carry_json(state)["positions"]] == [pytest.approx(1010.0),
                                                                           pytest.approx(6002.0)]
    m = state.metrics()
    assert (m.carries_open, m.carries_closed) == (2, 0)


def test_shared_memory_holds_every_open_carry_then_the_latest_closed_ones(tmp_path: Path) -> None:
    state = fed(carry(1), carry(2, symbol=ETH))
    for cid in range(100, 100 + MAX_CARRIES):
        state.on_event(carry(cid, "closed", closed_ms=OPENED_MS + cid, ts_ns=T_NS + cid))
    state.on_event(payment("p1"))
    snap = state.snapshot()
    assert (snap.carries_open, snap.carries_closed) == (2, MAX_CARRIES)
    ids = [c.carry_id for c in snap.carries]
    assert len(ids) == MAX_CARRIES and ids[:2] == [1, 2]
    assert ids[2:] == list(range(102, 100 + MAX_CARRIES))  # the two oldest closed ones make room
    with ShmWriter(tmp_path / "shm", state.layout) as writer, ShmReader(tmp_path / "shm") as reader:
        writer.publish(snap)
        assert reader.read() == snap


def draizer_status(path: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "status", "--path", str(path), *args],
                         cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_status_prints_the_carry_section(tmp_path: Path) -> None:
    events = lifecycle(7)
    state = fed(*events[:5], *events[5:], carry(8, symbol=ETH, spot_qty="1.5", perp_qty="-1.5", entry_bps=7.25,
                                                 funding=0.42, pnl=0.31),
                carry(9, spot_venue=-1, perp_venue=PERP2, spot_qty="0", perp_qty="-0.002"))
    path = tmp_path / "shm"
    with ShmWriter(path, state.layout) as writer:
        writer.publish(state.snapshot())
        text = draizer_status(path)
        data = json.loads(draizer_status(path, "--json"))
    assert "carry          2 open  1 closed  funding +0.0095 USD (binance_perp +0.0095 USD/2)" in text
    assert "  #8 ETHUSDT binance/binance_perp spot 1.5 perp -1.5 entry +7.2bps funding +0.4200 pnl +0.3100 USD" in text
    assert "  #9 BTCUSDT mexc_perp unhedged spot 0 perp -0.002 entry +5.5bps funding +0.0000 pnl -0.1000 USD" in text
    assert "#7 " not in text  # closed: counted, not listed
    assert data["carry"] == carry_json(state)


def test_status_without_carries_prints_no_carry_section(tmp_path: Path) -> None:
    state = fed()
    with ShmWriter(tmp_path / "shm", state.layout) as writer:
        writer.publish(state.snapshot())
        assert "carry" not in draizer_status(tmp_path / "shm")


@pytest.fixture
def served() -> Iterator[tuple[BridgeState, int]]:
    state = BridgeState(registry(), SERVICES)
    server, port = start_metrics_server(state, "127.0.0.1", 0)
    yield state, port
    server.shutdown()
    server.server_close()


def test_prometheus_shows_funding_by_direction_and_the_open_carries(served: tuple[BridgeState, int]) -> None:
    state, port = served
    found = samples(scrape(port))
    assert value(found, "draizer_carry_open") == 0 and value(found, "draizer_carry_notional_usd") == 0
    events = lifecycle(501)
    for e in [*events[:5], carry(502, symbol=ETH, spot_qty="2", perp_qty="-2")]:
        state.on_event(e)
    state.on_event(stats("feed.binance", prices=[(SPOT, BTC, 99_990.0, 100_010.0), (SPOT, ETH, 3_000.0, 3_002.0)]))
    text = scrape(port)
    check_metrics(text)
    found = samples(text)
    assert value(found, "draizer_funding_usd_total", venue="binance_perp", direction="received") == 0.0125
    assert value(found, "draizer_funding_usd_total", venue="binance_perp", direction="paid") == 0.003
    assert value(found, "draizer_funding_payments_total", venue="binance_perp") == 2
    assert value(found, "draizer_carry_open") == 2
    assert value(found, "draizer_carry_notional_usd") == pytest.approx(0.010 * 100_000 + 2 * 3_001)
    state.on_event(events[5])
    found = samples(scrape(port))
    assert (value(found, "draizer_carry_open"), value(found, "draizer_carry_closed_total")) == (1, 1)
    assert value(found, "draizer_carry_notional_usd") == pytest.approx(2 * 3_001)
