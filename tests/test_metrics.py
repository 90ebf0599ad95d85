"""Prometheus exposition over real HTTP: names, types, units and values as a scraper sees them."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from services.bridge.metrics import start_metrics_server
from services.bridge.state import BridgeState
from tests.test_bridge_state import SERVICES, decision, execution, fill, opportunity, order, registry, stats


@pytest.fixture
def state() -> BridgeState:
    return BridgeState(registry(), SERVICES, stale_after_s=5.0)


@pytest.fixture
def port(state: BridgeState) -> Iterator[int]:
    server, bound = start_metrics_server(state, "127.0.0.1", 0)
    yield bound
    server.shutdown()
    server.server_close()


def scrape(port: int, accept: str = "") -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], metric: str, /, **labels: str) -> float:
    return found[(metric, tuple(sorted(labels.items())))]


def feed_pipeline(state: BridgeState) -> None:
    now = time.monotonic_ns()
    state.on_event(stats("feed.binance", counters={"quotes": 500, "frames": 510}))
    state.on_event(stats("feed.mexc", counters={"quotes": 300}))
    state.on_event(stats("risk", counters={"in_flight": 1}, gauges={"daily_pnl_usd": -2.5}))
    state.on_event(stats("detector", ts_ns=now - 60 * 10**9))  # a minute silent: not up
    state.on_event(stats("executor", state="STOPPING"))
    for i in range(1, 7):
        opp = opportunity(i, tick_to_detect_ns=3_000 if i <= 4 else 2_000_000)  # 3 µs four times, 2 ms twice
        state.on_event(opp)
        state.on_event(decision(opp, "approved" if i % 3 else "max_concurrent"))
    for i in (1, 2):
        opp = opportunity(i)
        state.on_event(order(opp, 0, "FILLED"))
        state.on_event(order(opp, 1, "FILLED" if i == 1 else "EXPIRED"))
        state.on_event(fill(opp, 0, 0.02))
        state.on_event(execution(opp, "filled" if i == 1 else "partial", pnl=1.5, fees=0.04, sent_after_ns=25_000))


def test_scrape_shows_every_family_with_its_type_and_values(state: BridgeState, port: int) -> None:
    feed_pipeline(state)
    text = scrape(port)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(name.startswith("draizer_") for name in families)
    types = {name: f.type for name, f in families.items()}
    assert types == {
        "draizer_quotes": "counter",
        "draizer_opportunities": "counter",
        "draizer_risk_decisions": "counter",
        "draizer_orders": "counter",
        "draizer_fills": "counter",
        "draizer_executions": "counter",
        "draizer_pnl_usd": "gauge",
        "draizer_fees_usd": "counter",
        "draizer_stage_latency_seconds": "histogram",
        "draizer_service_up": "gauge",
        "draizer_service_heartbeat_age_seconds": "gauge",
        "draizer_service_count": "counter",
        "draizer_service_value": "gauge",
        "draizer_market_spread_bps": "gauge",
        "draizer_feed_messages": "counter",
        "draizer_feed_gaps": "counter",
        "draizer_feed_resyncs": "counter",
        "draizer_feed_connects": "counter",
        "draizer_feed_stalls": "counter",
        "draizer_feed_rolls": "counter",
        "draizer_feed_resubscribes": "counter",
        "draizer_feed_bad_input": "counter",
        "draizer_feed_stale_symbols": "gauge",
        "draizer_feed_books_live": "gauge",
        "draizer_feed_connections": "gauge",
        "draizer_feed_heartbeat_age_seconds": "gauge",
        "draizer_risk_halted": "gauge",
        "draizer_risk_breaker_open": "gauge",
        "draizer_funding_usd": "counter",
        "draizer_funding_payments": "counter",
        "draizer_carry_open": "gauge",
        "draizer_carry_closed": "counter",
        "draizer_carry_notional_usd": "gauge",
    }
    for family in families.values():
        if family.type == "counter":
            assert all(s.name == family.name + "_total" for s in family.samples), family.name

    found = samples(text)
    assert value(found, "draizer_quotes_total", venue="binance") == 500
    assert value(found, "draizer_quotes_total", venue="mexc") == 300
    assert value(found, "draizer_opportunities_total", strategy="cross_exchange") == 6
    assert value(found, "draizer_risk_decisions_total", decision="approved", reason="approved") == 4
    assert value(found, "draizer_risk_decisions_total", decision="rejected", reason="max_concurrent") == 2
    assert value(found, "draizer_orders_total", venue="binance", status="FILLED") == 2
    assert value(found, "draizer_orders_total", venue="mexc", status="EXPIRED") == 1
    assert value(found, "draizer_fills_total", venue="binance") == 2
    assert value(found, "draizer_executions_total", outcome="partial") == 1
    assert value(found, "draizer_pnl_usd") == 3.0
    assert value(found, "draizer_fees_usd_total") == pytest.approx(0.08)
    assert value(found, "draizer_service_up", service="feed.binance") == 1
    assert value(found, "draizer_service_up", service="detector") == 0  # silent for a minute
    assert value(found, "draizer_service_up", service="executor") == 0  # stopping
    assert value(found, "draizer_service_count_total", service="feed.binance", name="frames") == 510
    assert value(found, "draizer_service_value", service="risk", name="daily_pnl_usd") == -2.5


def test_stage_latency_is_a_seconds_histogram_with_microsecond_buckets(state: BridgeState, port: int) -> None:
    feed_pipeline(state)
    found = samples(scrape(port))

    def bucket(le: str) -> float:
        return value(found, "draizer_stage_latency_seconds_bucket", stage="tick_to_detect", le=le)

    assert bucket("1e-06") == 0
    assert bucket("5e-06") == 4  # the 3 µs spans
    assert bucket("0.001") == 4
    assert bucket("0.0025") == 6  # the 2 ms spans
    assert bucket("+Inf") == 6
    assert value(found, "draizer_stage_latency_seconds_count", stage="tick_to_detect") == 6
    assert value(found, "draizer_stage_latency_seconds_sum", stage="tick_to_detect") == pytest.approx(
        (4 * 3_000 + 2 * 2_000_000) / 1e9
    )
    assert value(found, "draizer_stage_latency_seconds_count", stage="decide_to_order") == 2

    # OpenMetrics carries the unit explicitly
    families = {f.name: f for f in parse_openmetrics(scrape(port, "application/openmetrics-text; version=1.0.0"))}
    latency = families["draizer_stage_latency_seconds"]
    assert (latency.type, latency.unit) == ("histogram", "seconds")
    les = [
        s.labels["le"] for s in latency.samples if s.name.endswith("_bucket") and s.labels["stage"] == "tick_to_detect"
    ]
    assert les[0] == "1e-06" and les[-2] == "1.0" and les[-1] == "+Inf"


def test_each_scrape_reads_the_current_state(state: BridgeState, port: int) -> None:
    text = scrape(port)  # nothing happened yet: families exist, empty
    assert "# TYPE draizer_opportunities_total counter" in text
    assert samples(text)[("draizer_service_up", (("service", "risk"),))] == 0
    state.on_event(opportunity(1))
    assert value(samples(scrape(port)), "draizer_opportunities_total", strategy="cross_exchange") == 1
    state.on_event(opportunity(2))
    assert value(samples(scrape(port)), "draizer_opportunities_total", strategy="cross_exchange") == 2


def test_port_zero_binds_a_free_port(state: BridgeState) -> None:
    server, port = start_metrics_server(state, "127.0.0.1", 0)
    try:
        assert port > 0
        assert "draizer_pnl_usd" in scrape(port)
    finally:
        server.shutdown()
        server.server_close()
