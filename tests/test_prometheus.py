"""The exporter's issue-6 families over real HTTP, and `promtool check metrics` on the exposition.

promtool is required: `bash scripts/system-deps.sh` installs it (Debian package prometheus). A scrape of the
real pipeline is validated the same way in tests/test_observability_e2e.py."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.bridge.metrics import start_metrics_server
from services.bridge.state import BridgeState
from tests.test_bridge_state import SERVICES, registry, stats
from tests.test_metrics import feed_pipeline, samples, scrape, value


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run `bash scripts/system-deps.sh` (Debian package prometheus)")
    return found


def check_metrics(text: str) -> None:
    """promtool's verdict on an exposition: exit 0 and no lint findings."""
    proc = subprocess.run([promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=30,
                          check=False)
    findings = (proc.stdout + proc.stderr).decode().strip()
    assert proc.returncode == 0 and not findings, findings


@pytest.fixture
def state() -> BridgeState:
    return BridgeState(registry(), SERVICES, stale_after_s=5.0)


@pytest.fixture
def port(state: BridgeState) -> Iterator[int]:
    own = {"events": 1234, "redis_written": 1200, "redis_dropped": 3}
    server, bound = start_metrics_server(state, "127.0.0.1", 0, own_counters=lambda: dict(own))
    yield bound
    server.shutdown()
    server.server_close()


def feeds_and_risk(state: BridgeState) -> None:
    state.on_event(stats(
        "feed.binance",
        counters={"frames": 900, "quotes": 800, "gaps": 2, "resyncs": 2, "connects": 3, "stalls": 1, "rolls": 1,
                  "resubscribes": 4, "malformed": 5, "duplicates": 7},
        gauges={"stale_symbols": 1.0, "books_live": 23.0, "connections": 2.0},
        # BTCUSDT (0): binance bid 100.2 / ask 100.3, mexc bid 99.9 / ask 100.0 -> best: sell binance, buy mexc
        prices=[(0, 0, 100.2, 100.3)],
    ))
    state.on_event(stats("feed.mexc", counters={"frames": 400, "quotes": 390}, prices=[(1, 0, 99.9, 100.0)]))
    state.on_event(stats("risk", gauges={"halted": 1.0, "daily_pnl_usd": -3.0, "breaker.loss": 1.0,
                                         "breaker.failures": 0.0}))


def test_promtool_finds_nothing_wrong_with_a_full_exposition(state: BridgeState, port: int) -> None:
    check_metrics(scrape(port))  # nothing happened yet: every family empty
    feed_pipeline(state)
    feeds_and_risk(state)
    check_metrics(scrape(port))


def test_feed_health_per_venue(state: BridgeState, port: int) -> None:
    feeds_and_risk(state)
    found = samples(scrape(port))
    assert value(found, "draizer_feed_messages_total", venue="binance") == 900
    assert value(found, "draizer_feed_messages_total", venue="mexc") == 400
    assert value(found, "draizer_feed_gaps_total", venue="binance") == 2
    assert value(found, "draizer_feed_connects_total", venue="binance") == 3
    assert value(found, "draizer_feed_stalls_total", venue="binance") == 1
    assert value(found, "draizer_feed_rolls_total", venue="binance") == 1
    assert value(found, "draizer_feed_resubscribes_total", venue="binance") == 4
    assert value(found, "draizer_feed_bad_input_total", venue="binance", kind="malformed") == 5
    assert value(found, "draizer_feed_bad_input_total", venue="binance", kind="duplicates") == 7
    assert value(found, "draizer_feed_stale_symbols", venue="binance") == 1
    assert value(found, "draizer_feed_books_live", venue="binance") == 23
    assert value(found, "draizer_feed_connections", venue="binance") == 2
    assert 0 <= value(found, "draizer_feed_heartbeat_age_seconds", venue="mexc") < 5


def test_spread_kill_switch_breakers_and_the_bridges_own_counters(state: BridgeState, port: int) -> None:
    # risk not heard from: no value rather than a false 0
    assert not [k for k in samples(scrape(port)) if k[0] == "draizer_risk_halted"]
    feeds_and_risk(state)
    found = samples(scrape(port))
    # sell on binance at 100.2, buy on mexc at 100.0: +0.2 over a mid of 100.1
    assert value(found, "draizer_market_spread_bps", symbol="BTCUSDT") == pytest.approx(0.2 / 100.1 * 1e4)
    assert value(found, "draizer_risk_halted") == 1
    assert value(found, "draizer_risk_breaker_open", breaker="loss") == 1
    assert value(found, "draizer_risk_breaker_open", breaker="failures") == 0
    assert value(found, "draizer_service_value", service="risk", name="daily_pnl_usd") == -3
    assert value(found, "draizer_service_count_total", service="bridge", name="redis_written") == 1200
    assert value(found, "draizer_service_up", service="bridge") == 1
    assert 0 <= value(found, "draizer_service_heartbeat_age_seconds", service="risk") < 5

    state.on_event(stats("risk", gauges={"halted": 0.0}))
    assert value(samples(scrape(port)), "draizer_risk_halted") == 0


def test_every_family_is_typed_and_named_by_convention(state: BridgeState, port: int) -> None:
    feed_pipeline(state)
    feeds_and_risk(state)
    families = list(text_string_to_metric_families(scrape(port)))
    for f in families:
        assert f.name.startswith("draizer_"), f.name
        assert f.documentation, f.name
        if f.type == "counter":
            assert all(s.name == f.name + "_total" for s in f.samples), f.name
        for s in f.samples:
            assert all(label.islower() for label in s.labels), s
    names = {f.name for f in families}
    assert {"draizer_feed_messages", "draizer_risk_halted", "draizer_market_spread_bps",
            "draizer_service_count", "draizer_service_value"} <= names
