"""BridgeState: counts, latency windows and histograms, the opportunity ring, service health, snapshots."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from services.bridge.latency import BUCKETS_NS
from services.bridge.state import WINDOW, BridgeState
from shared.config import Config, default_config_path, load_config
from shared.messages import (
    ACTION_OPEN,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    Execution,
    Fill,
    Leg,
    Opportunity,
    OrderUpdate,
    RiskDecision,
    Stats,
)
from shared.registry import Registry
from shared.shm import ShmReader, ShmWriter, snapshot_json
from shared.shm.layout import MAX_REASONS
from shared.shm.snapshot import DECISION_APPROVED, DECISION_PENDING, DECISION_REJECTED, OTHER, decision_text

SERVICES = ["feed.binance", "feed.mexc", "detector", "risk", "executor"]
T0 = 1_000_000_000_000


def registry() -> Registry:
    return Registry(load_config(default_config_path()))  # venues binance, mexc


def opportunity(i: int, tick_to_detect_ns: int = 20_000, symbol: int = 0) -> Opportunity:
    tick = T0 + i * 1_000_000
    return Opportunity(
        id=i,
        strategy=STRATEGY_CROSS,
        action=ACTION_OPEN,
        symbol=symbol,
        legs=(
            Leg(i % 2, symbol, SIDE_BUY, 100.0 + i, 0.5, 1.0, tick),
            Leg((i + 1) % 2, symbol, SIDE_SELL, 100.5 + i, 0.5, 1.0, tick),
        ),
        notional_usd=0.5 * (100.0 + i),
        spread_bps=4.0,
        expected_profit_usd=0.25,
        tick_ns=tick,
        pub_ns=tick + 1_000,
        detected_ns=tick + tick_to_detect_ns,
    )


def decision(opp: Opportunity, reason: str, after_ns: int = 7_000) -> RiskDecision:
    return RiskDecision(opp, reason == "approved", reason, opp.detected_ns + after_ns)


def order(opp: Opportunity, venue: int, status: str) -> OrderUpdate:
    return OrderUpdate(
        f"dz{opp.id:x}{venue}",
        opp.id,
        venue,
        opp.symbol,
        venue,
        "100.00",
        "0.5",
        status,
        0.5,
        100.0,
        0,
        "",
        opp.detected_ns + 50_000,
        opp.detected_ns + 900_000,
        opp.tick_ns,
    )


def fill(opp: Opportunity, venue: int, fee: float) -> Fill:
    return Fill(f"dz{opp.id:x}{venue}", opp.id, venue, opp.symbol, venue, 100.0, 0.5, fee, f"t{opp.id}", 0)


def execution(opp: Opportunity, outcome: str, pnl: float, fees: float, sent_after_ns: int | None) -> Execution:
    decided = opp.detected_ns + 7_000
    sent = decided + sent_after_ns if sent_after_ns is not None else 0
    return Execution(
        opp.id,
        opp.symbol,
        opp.legs[0].venue,
        opp.legs[1].venue,
        0.5,
        0.5,
        100.0,
        100.5,
        fees,
        pnl,
        50.0,
        outcome,
        opp.tick_ns,
        opp.detected_ns,
        decided,
        sent,
        decided + 1_000_000,
    )


def stats(
    service: str,
    *,
    state: str = "RUNNING",
    ts_ns: int | None = None,
    counters: dict[str, int] | None = None,
    gauges: dict[str, float] | None = None,
    prices: list[tuple[int, int, float, float]] | None = None,
    latencies_ns: dict[str, list[int]] | None = None,
) -> Stats:
    return Stats(
        service=service,
        pid=1000 + len(service),
        state=state,
        ts_ns=time.monotonic_ns() if ts_ns is None else ts_ns,
        counters=counters or {},
        gauges=gauges or {},
        prices=prices or [],
        latencies_ns=latencies_ns or {},
    )


def test_counts_every_event_type() -> None:
    state = BridgeState(registry(), SERVICES)
    reasons = ["approved", "max_concurrent", "approved", "opportunity_too_old", "max_concurrent"]
    opps = [opportunity(i) for i in range(1, 11)]
    for i, opp in enumerate(opps):
        state.on_event(opp)
        state.on_event(decision(opp, reasons[i % len(reasons)]))
    approved = [o for i, o in enumerate(opps) if reasons[i % len(reasons)] == "approved"]
    for opp in approved:
        state.on_event(order(opp, 0, "FILLED"))
        state.on_event(order(opp, 1, "FILLED" if opp.id != approved[-1].id else "REJECTED"))
        state.on_event(fill(opp, 0, 0.05))
    outcomes = ["filled", "filled", "partial", "failed"]
    for opp, outcome in zip(approved, outcomes, strict=True):
        state.on_event(execution(opp, outcome, pnl=1.25, fees=0.1, sent_after_ns=30_000))

    snap = state.snapshot()
    assert (snap.opportunities, snap.approved, snap.rejected) == (10, 4, 6)
    assert snap.rejections == {"max_concurrent": 4, "opportunity_too_old": 2}
    assert snap.orders == {"FILLED": 7, "REJECTED": 1}
    assert snap.fills == 4
    assert snap.executions == {"filled": 2, "partial": 1, "failed": 1}
    assert snap.pnl_usd == pytest.approx(5.0)
    assert snap.fees_usd == pytest.approx(0.4)

    m = state.metrics()
    assert m.opportunities == {"cross_exchange": 10}
    assert m.decisions == {
        ("approved", "approved"): 4,
        ("rejected", "max_concurrent"): 4,
        ("rejected", "opportunity_too_old"): 2,
    }
    assert m.orders == {("binance", "FILLED"): 4, ("mexc", "FILLED"): 3, ("mexc", "REJECTED"): 1}
    assert m.fills == {"binance": 4}

    data = state.as_json()
    assert data["rejections_by_reason"] == snap.rejections
    assert (data["opportunities"], data["approved"], data["rejected"], data["fills"]) == (10, 4, 6, 4)
    assert data["executions"] == snap.executions


def test_stage_latencies_come_from_message_stamps() -> None:
    state = BridgeState(registry(), SERVICES)
    for i in range(1, 6):
        opp = opportunity(i, tick_to_detect_ns=10_000 * i)
        state.on_event(opp)
        state.on_event(decision(opp, "approved", after_ns=3_000 * i))
        state.on_event(execution(opp, "filled", 0.0, 0.0, sent_after_ns=40_000 + i))
    state.on_event(execution(opportunity(9), "missed", 0.0, 0.0, sent_after_ns=None))  # never sent: no span
    lat = state.snapshot().latency
    assert list(lat) == ["tick_to_detect", "detect_to_decide", "decide_to_order", "tick_to_order"]
    assert lat["tick_to_detect"].p50_ns == 30_000
    assert lat["detect_to_decide"].avg_ns == 9_000
    assert lat["decide_to_order"].count == 5
    assert list(state.latency_samples("decide_to_order")) == [40_001, 40_002, 40_003, 40_004, 40_005]
    # tick -> order = tick->detect + detect->decide (7 µs in execution()) + decide->sent
    assert list(state.latency_samples("tick_to_order")) == [10_000 * i + 7_000 + 40_000 + i for i in range(1, 6)]


def test_percentiles_match_numpy_over_the_rolling_window() -> None:
    state = BridgeState(registry(), SERVICES)
    rng = np.random.default_rng(7)
    samples = rng.lognormal(mean=10, sigma=1, size=WINDOW + 1500).astype(np.int64)
    for i, ns in enumerate(samples):
        state.on_event(opportunity(i, tick_to_detect_ns=int(ns)))
        if i == 1000:  # a snapshot mid-way must not disturb the window
            state.snapshot()
    window = samples[-WINDOW:]
    assert np.array_equal(state.latency_samples("tick_to_detect"), window)
    lat = state.snapshot().latency["tick_to_detect"]
    p50, p99 = np.percentile(window, [50, 99])
    assert (lat.p50_ns, lat.p99_ns) == (p50, p99)
    assert lat.avg_ns == pytest.approx(window.mean())
    assert lat.count == samples.size

    hist = state.metrics().stages["tick_to_detect"]
    expected = [int((samples <= bound).sum()) for bound in BUCKETS_NS] + [samples.size]
    assert list(hist.buckets) == expected
    assert hist.count == samples.size
    assert hist.sum_s == pytest.approx(samples.sum() / 1e9)


def test_heartbeat_samples_add_stages_without_double_counting() -> None:
    state = BridgeState(registry(), SERVICES)
    state.on_event(opportunity(1, tick_to_detect_ns=5_000))
    state.on_event(stats("feed.binance", latencies_ns={"frame_to_publish": [800, 1_200, 1_000]}))
    # the detector reports the span the bridge already measured from the Opportunity: not counted again
    state.on_event(stats("detector", latencies_ns={"tick_to_detect": [5_000]}))
    lat = state.snapshot().latency
    assert list(lat) == ["frame_to_publish", "tick_to_detect"]
    assert lat["frame_to_publish"].p50_ns == 1_000
    assert lat["frame_to_publish"].count == 3
    assert lat["tick_to_detect"].count == 1


def test_the_ring_keeps_the_latest_opportunities_oldest_first_with_their_decisions() -> None:
    state = BridgeState(registry(), SERVICES, ring_size=8)
    opps = [opportunity(i, symbol=i % 3) for i in range(1, 21)]
    for opp in opps:
        state.on_event(opp)
    state.on_event(decision(opps[-1], "approved"))
    state.on_event(decision(opps[-2], "max_concurrent"))
    state.on_event(decision(opps[0], "opportunity_too_old"))  # evicted long ago: counted, not in the ring
    snap = state.snapshot()
    assert [r.id for r in snap.recent] == list(range(13, 21))
    last = snap.recent[-1]
    assert (last.symbol, [leg.venue for leg in last.legs]) == (20 % 3, [0, 1])
    assert ([leg.price for leg in last.legs], last.detected_ns) == ([120.0, 120.5], opps[-1].detected_ns)
    assert [leg.age_ns for leg in last.legs] == [20_000, 20_000]
    assert [r.decision for r in snap.recent[-3:]] == [DECISION_PENDING, DECISION_REJECTED, DECISION_APPROVED]
    assert [decision_text(snap, r) for r in snap.recent[-3:]] == ["pending", "max_concurrent", "approved"]
    json_recent = snapshot_json(snap, snap.taken_ns)["recent"]
    assert [r["decision"] for r in json_recent[-2:]] == ["max_concurrent", "approved"]
    assert json_recent[-1]["legs"][0]["venue"] == "binance" and json_recent[-1]["symbol"] == "SOLUSDT"
    assert json_recent[-1]["strategy"] == "cross_exchange" and json_recent[-1]["legs"][1]["side"] == "sell"


def test_a_decision_heard_before_its_opportunity_still_shows_in_the_ring() -> None:
    # Risk's events and the detector's come over different sockets: the decision often arrives first.
    state = BridgeState(registry(), SERVICES, ring_size=4)
    opps = [opportunity(i) for i in range(1, 4)]
    state.on_event(decision(opps[0], "approved"))
    state.on_event(decision(opps[1], "max_concurrent"))
    for opp in opps:
        state.on_event(opp)
    snap = state.snapshot()
    assert [decision_text(snap, r) for r in snap.recent] == ["approved", "max_concurrent", "pending"]
    assert (snap.approved, snap.rejections) == (1, {"max_concurrent": 1})  # counted once, when heard
    for i in range(100, 200):  # decisions of opportunities that never come are not kept forever
        state.on_event(decision(opportunity(i), "approved"))
    assert len(state._early) <= 4 * state.ring_size


def test_many_rejection_reasons_fold_into_other_and_the_ring_still_names_them() -> None:
    state = BridgeState(registry(), SERVICES, ring_size=4)
    reasons = [f"rule_{i}" for i in range(MAX_REASONS + 4)]
    for i, reason in enumerate(reasons):
        opp = opportunity(i)
        state.on_event(opp)
        state.on_event(decision(opp, reason))
    snap = state.snapshot()
    assert len(snap.rejections) == MAX_REASONS
    assert snap.rejections[OTHER] == 5
    assert sum(snap.rejections.values()) == snap.rejected == len(reasons)
    assert [decision_text(snap, r) for r in snap.recent] == [OTHER] * 4
    assert state.metrics().decisions[("rejected", reasons[-1])] == 1  # Prometheus keeps the real reason


def test_service_health_prices_and_quotes_from_heartbeats() -> None:
    reg = registry()
    state = BridgeState(reg, SERVICES)
    btc, eth = reg.symbol_id["BTCUSDT"], reg.symbol_id["ETHUSDT"]
    state.on_event(
        stats(
            "feed.binance",
            counters={"quotes": 1234, "frames": 1300},
            prices=[(0, btc, 97000.0, 97000.5), (0, eth, 3400.0, 3400.25), (7, 0, 1.0, 2.0)],  # 7: no such venue
        )
    )
    state.on_event(stats("feed.mexc", counters={"quotes": 99}, prices=[(1, btc, 96999.0, 97001.0)]))
    state.on_event(stats("risk", state="FAULTED", counters={"decision.approved": 3}))
    state.on_event(stats("executor", state="SOMETHING_NEW"))
    snap = state.snapshot()
    assert snap.bids[0][btc] == 97000.0 and snap.asks[0][btc] == 97000.5
    assert snap.bids[1][btc] == 96999.0 and snap.asks[1][eth] == 0.0  # never quoted
    assert snap.services["feed.binance"].counters == {"quotes": 1234, "frames": 1300}
    assert snap.services["feed.binance"].pid == 1000 + len("feed.binance")
    assert snap.services["risk"].state == "FAULTED"
    assert snap.services["executor"].state == "UNKNOWN"
    assert snap.services["detector"].heartbeat_ns == 0  # never heard from

    data = state.as_json()
    assert data["quotes"] == {"binance": 1234, "mexc": 99}
    assert data["prices"]["BTCUSDT"] == {
        "binance": {"bid": 97000.0, "ask": 97000.5},
        "mexc": {"bid": 96999.0, "ask": 97001.0},
    }
    assert data["services"]["detector"]["heartbeat_age_s"] is None
    assert 0 <= data["services"]["risk"]["heartbeat_age_s"] < 60
    assert data["services"]["risk"]["counters"] == {"decision.approved": 3}


def test_snapshot_survives_shared_memory_exactly(tmp_path: Path) -> None:
    state = BridgeState(registry(), SERVICES)
    for i in range(1, 100):
        opp = opportunity(i)
        state.on_event(opp)
        state.on_event(decision(opp, "approved" if i % 2 else "max_notional"))
    state.on_event(stats("feed.mexc", counters={"quotes": 5}, prices=[(1, 2, 180.0, 180.1)]))
    snap = state.snapshot()
    with ShmWriter(tmp_path / "shm", state.layout) as writer, ShmReader(tmp_path / "shm") as reader:
        writer.publish(snap)
        back = reader.read()
        assert back == snap
        assert back is not None and snapshot_json(back, 0) == snapshot_json(snap, 0)


def big_registry(n_venues: int, n_symbols: int) -> Registry:
    venue = {"kind": "binance", "ws_url": "ws://x", "rest_url": "http://x", "api_key_env": "K", "api_secret_env": "S"}
    return Registry(
        msgspec.convert(
            {
                "venues": [{"name": f"venue{i}", **venue} for i in range(n_venues)],
                "symbols": [
                    {"name": f"S{i}USDT", "base": f"S{i}", "quote": "USDT", "tick_size": "0.01", "step_size": "1"}
                    for i in range(n_symbols)
                ],
            },
            Config,
        )
    )
