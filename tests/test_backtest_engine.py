"""``draizer backtest``'s engine on the committed replay fixture (a version 1 recording of both spot venues):
the live detector, risk and executor on the recording's clock repeat exactly, and latency costs what it should."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from services.backtest.engine import BacktestResult, run_backtest, start_times
from services.backtest.latency import LatencyModel
from services.executor.reconcile import parse_client_order_id
from services.feed.recording import Recording
from shared.config import load_config
from shared.messages import OUTCOME_FILLED, ROLE_LEG

FIXTURES = Path(__file__).parent / "fixtures"
FILES = [FIXTURES / "session.binance.dzrec", FIXTURES / "session.mexc.dzrec"]


def backtest(one_way_ms: float) -> BacktestResult:
    cfg = load_config(FIXTURES / "session.toml")
    return run_backtest(cfg, FILES, LatencyModel.from_config(cfg, {v.name: one_way_ms for v in cfg.venues}))


@pytest.fixture(scope="module")
def at_20ms() -> BacktestResult:
    return backtest(20.0)


def test_the_same_inputs_give_the_same_digest(at_20ms: BacktestResult) -> None:
    again = backtest(20.0)
    assert at_20ms.executions and at_20ms.orders  # it traded: the digest covers something
    assert again.digest == at_20ms.digest
    assert [e.opportunity_id for e in again.executions] == [e.opportunity_id for e in at_20ms.executions]
    assert at_20ms.in_flight_at_end == 0  # every execution the recording started was booked


def test_a_slower_venue_fills_less_and_earns_less(at_20ms: BacktestResult) -> None:
    instant = backtest(0.0)
    slow = backtest(200.0)
    for faster, slower in ((instant, at_20ms), (at_20ms, slow)):
        assert faster.digest != slower.digest

    def filled_share(r: BacktestResult) -> float:
        return Counter(e.outcome for e in r.executions)[OUTCOME_FILLED] / len(r.executions)

    def net(r: BacktestResult) -> float:
        return sum(e.pnl_usd for e in r.executions)

    # With no latency the recorded book is still there when the order arrives: every execution fills both legs.
    assert filled_share(instant) == 1.0
    assert filled_share(instant) > filled_share(at_20ms)
    assert net(instant) > net(at_20ms)
    assert net(instant) > 0


def test_every_order_was_decided_on_the_virtual_clock(at_20ms: BacktestResult) -> None:
    """An order's answer comes two one-way trips after it was sent: 40 ms here, to the nanosecond."""
    answered = [o for o in at_20ms.orders if o.ack_ns]
    assert answered
    for o in answered:
        assert o.ack_ns - o.sent_ns == pytest.approx(40_000_000, abs=2), o


def test_the_cli_writes_the_report_and_plot_and_sweeps_a_grid(tmp_path: Path, at_20ms: BacktestResult) -> None:
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    base = [sys.executable, "-m", "services.cli.main", "backtest", *map(str, FILES), "--config",
            str(FIXTURES / "session.toml")]
    one = subprocess.run([*base, "--out", str(tmp_path / "out"), "--json"], cwd=repo, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    summary = json.loads(one.stdout)
    assert summary["digest"] == at_20ms.digest  # the CLI runs the same engine on the same clock
    assert summary["executions"] == len(at_20ms.executions)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["pnl"]["net_usd"] == pytest.approx(sum(e.pnl_usd for e in at_20ms.executions), abs=1e-9)
    assert (tmp_path / "out" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    sweep = subprocess.run([*base, "--set", "venues.binance.paper_latency_ms=0,20", "--set",
                            "venues.mexc.paper_latency_ms=0,20"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    rows = [line.split() for line in sweep.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 4
    nets = [float(r[-3]) for r in rows]
    assert nets == sorted(nets, reverse=True)  # best net PnL first
    assert rows[0][1:3] == ["0", "0"]  # no latency on either venue earns the most
    digests = {r[-1] for r in rows}
    assert at_20ms.digest[:12] in digests and len(digests) == 4


def test_warm_up_and_trading_window_bound_what_is_traded() -> None:
    cfg = load_config(FIXTURES / "session.toml")
    latency = LatencyModel.from_config(cfg, {v.name: 20.0 for v in cfg.venues})
    never = run_backtest(cfg, FILES, latency, warmup_s=3600.0)
    assert never.opportunities and not never.decisions and not never.executions  # books built, nothing traded

    window = run_backtest(cfg, FILES, latency, warmup_s=0.5, trade_s=0.5)
    first, _wall = start_times([Recording(p) for p in FILES])
    decided = [d.opportunity.detected_ns for d in window.decisions]
    assert decided
    assert all(first + 500_000_000 <= t < first + 1_000_000_000 for t in decided)
    assert any(o.detected_ns < first + 500_000_000 for o in window.opportunities)  # found, and not traded
    assert any(o.detected_ns >= first + 1_000_000_000 for o in window.opportunities)


def test_the_engines_own_tick_to_order_time_delays_the_planned_orders_only() -> None:
    cfg = load_config(FIXTURES / "session.toml")
    latency = LatencyModel(dict.fromkeys((v.name for v in cfg.venues), 20.0), {}, 0, engine_ms=[5.0])
    r = run_backtest(cfg, FILES, latency)
    roles = {o.client_order_id: parse_client_order_id(o.client_order_id) for o in r.orders}
    planned = [o for o in r.orders if o.ack_ns and roles[o.client_order_id].role == ROLE_LEG]  # type: ignore[union-attr]
    corrections = [o for o in r.orders if o.ack_ns and roles[o.client_order_id].role != ROLE_LEG]  # type: ignore[union-attr]
    assert planned and corrections
    for o in planned:  # 5 ms in the engine, 20 ms there, 20 ms back
        assert o.ack_ns - o.sent_ns == pytest.approx(45_000_000, abs=2), o
    for o in corrections:  # an unwind leaves from the executor itself: no tick->order time before it
        assert o.ack_ns - o.sent_ns == pytest.approx(40_000_000, abs=2), o
    assert r.latency["engine"]["n"] == 1


def test_bad_inputs_are_named_not_tracebacks(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    not_a_recording = tmp_path / "x.dzrec"
    not_a_recording.write_bytes(b"hello\n")
    cases = [
        ([str(not_a_recording)], "not a draizer recording"),
        ([str(tmp_path / "missing.dzrec")], "no such recording"),
        ([*map(str, FILES), "--latency", "binance=fast"], "expected VENUE=MS"),
        ([*map(str, FILES), "--latency", "kraken=5"], "'kraken' is not a configured venue"),
    ]
    for args, said in cases:
        r = subprocess.run([sys.executable, "-m", "services.cli.main", "backtest", *args, "--config",
                            str(FIXTURES / "session.toml"), "--out", str(tmp_path / "out")], cwd=repo,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-2000:])


def test_a_venues_rate_limit_holds_in_the_backtest() -> None:
    """Orders spend the venue's budget on the recording's clock: with room for 4 orders per 10 s on Binance, the
    2 s recording sends at most 4 there; the rest is refused for the budget, as live."""
    import msgspec

    data = msgspec.toml.decode((FIXTURES / "session.toml").read_bytes())
    for v in data["venues"]:
        if v["name"] == "binance":
            v.setdefault("limits", {}).update(orders_per_10s=5, budget_share=0.8)  # 4 of the venue's 5
    from shared.config import parse_config

    cfg = parse_config(msgspec.toml.encode(data))
    r = run_backtest(cfg, FILES, LatencyModel.from_config(cfg, {v.name: 0.0 for v in cfg.venues}))
    on_binance = [o for o in r.orders if o.venue == 0 and o.sent_ns]
    assert 0 < len(on_binance) <= 4, len(on_binance)
    assert any(d.reason == "rate_budget" for d in r.decisions)
    assert len(backtest(0.0).executions) > len(r.executions)  # the same market with the venue's full budget
