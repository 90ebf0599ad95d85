"""Issue 6's acceptance on one real `draizer run` under supervisord, with a real Redis and the API token set:

- a plain Redis subscriber and a stream reader get JSON events; Redis stopped mid-run does not stop the
  engine, and the sink reconnects by itself when it is back;
- `curl /metrics` passes `promtool check metrics`; every metric the Grafana dashboard names is in that scrape;
- the API (supervisord's [program:api]) serves what shared memory holds; strategy start/stop and the kill
  switch work with the token, and the kill switch really halts risk.

One pipeline for the module (starting one costs ~15 s); the tests run in file order, the disruptive ones last.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Config
from shared.runtime.control_client import request
from shared.runtime.endpoints import Endpoints
from shared.shm import ShmError, ShmReader, shm_path, snapshot_json
from shared.venues.kinds import kind_of
from tests.conftest import eventually, make_config_dict, write_config
from tests.http_kit import Answer, call, without_ages
from tests.redis_kit import RedisServer
from tests.test_grafana import dashboard, exposed_names, metric_names, queries
from tests.test_prometheus import check_metrics

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ("opportunities", "decisions", "orders", "fills", "executions", "stats")


@dataclass
class Live:
    cfg: Config
    cfg_path: Path
    run_dir: Path
    proc: subprocess.Popen[str]
    token: str
    redis: RedisServer
    endpoints: Endpoints

    def shm(self) -> tuple[int, dict[str, Any]]:
        with ShmReader(shm_path(self.cfg.instance)) as reader:
            snap = reader.read()
            assert snap is not None
            return reader.seq, snapshot_json(snap, time.monotonic_ns())

    def status(self) -> dict[str, Any]:
        return self.shm()[1]

    def scrape(self) -> str:
        return call("GET", f"http://127.0.0.1:{self.cfg.sinks.prometheus_port}/metrics").body

    def metric(self, name: str, **labels: str) -> float | None:
        for family in text_string_to_metric_families(self.scrape()):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None

    def api(self, method: str, path: str, token: str | None = None) -> Answer:
        return call(method, f"http://127.0.0.1:{self.cfg.sinks.api_port}{path}", token)

    def bridge_counters(self) -> dict[str, int]:
        return request(self.endpoints.control("bridge"), "status", timeout_s=5).data["counters"]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        output, _ = self.proc.communicate(timeout=90)
        return output


def trading(live: Live) -> bool:
    try:
        d = live.status()
    except (ShmError, AssertionError):
        return False
    quoting = all(d["quotes"].get(v.name, 0) > 0 for v in live.cfg.venues if kind_of(v.kind).spot)
    return quoting and d["opportunities"] > 0 and d["approved"] > 0 and d["fills"] > 0


@pytest.fixture(scope="module")
def live(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    run_dir = Path(tempfile.mkdtemp(prefix="dz-", dir="/tmp"))  # short: ipc:// paths must fit in sun_path
    run_dir.chmod(0o700)
    data = make_config_dict(
        run_dir,
        runtime={"heartbeat_interval_s": 0.2},
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01},
        risk={"max_concurrent": 1},
        sinks={"metrics_interval_s": 0.5, "redis_stream_maxlen": 200_000},
    )
    cfg_path = tmp_path_factory.mktemp("obs") / "draizer.toml"
    cfg = write_config(cfg_path, data)
    token = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if k != cfg.sinks.postgres_dsn_env}
    env |= {cfg.sinks.redis_url_env: redis_server.url, cfg.sinks.api_token_env: token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
         "--quiet"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    live = Live(cfg, cfg_path, run_dir, proc, token, redis_server, Endpoints(cfg, run_dir))
    try:
        try:
            eventually(lambda: trading(live), timeout=120, what="quotes, opportunities, approvals and fills in shm")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast status: {_status_or_error(live)}") from None
        eventually(lambda: _api_up(live), timeout=60, what="the API under supervisord")
        yield live
    finally:
        if proc.poll() is None:
            live.stop()
        if not redis_server.running:
            redis_server.proc = None
            redis_server.start()
        shm_path(cfg.instance).unlink(missing_ok=True)


def _status_or_error(live: Live) -> dict[str, Any] | str:
    try:
        return live.status()
    except (ShmError, AssertionError) as exc:
        return repr(exc)


def _api_up(live: Live) -> bool:
    try:
        return live.api("GET", "/openapi.json").status == 200
    except OSError:
        return False


def subscribe(server: RedisServer, prefix: str) -> tuple[redis.Redis, Any]:
    client = server.client()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(f"{prefix}:{c}" for c in CHANNELS))
    return client, pubsub


def collect(pubsub: Any, until: Any, timeout: float = 60.0) -> dict[str, list[tuple[bytes, dict[str, Any]]]]:
    """Messages by channel (raw payload and decoded JSON) until ``until(by_channel)`` holds."""
    by_channel: dict[str, list[tuple[bytes, dict[str, Any]]]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.2)
        if msg is not None and msg["type"] == "message":
            by_channel.setdefault(msg["channel"].decode(), []).append((msg["data"], json.loads(msg["data"])))
            if until(by_channel):
                return by_channel
    raise AssertionError(f"timed out: got {({k: len(v) for k, v in by_channel.items()})}")


# ----------------------------------------------------------------------------------------------- Redis
def test_plain_redis_subscriber_and_stream_reader_get_json_events(live: Live) -> None:
    prefix = live.cfg.sinks.redis_channel_prefix
    subscribed_ms = int(time.time() * 1000)
    client, pubsub = subscribe(live.redis, prefix)
    try:
        got = collect(pubsub, lambda b: all(f"{prefix}:{c}" in b for c in CHANNELS))
    finally:
        pubsub.close()
    venues = {v.name for v in live.cfg.venues}
    symbols = {s.name for s in live.cfg.symbols}
    kinds = {"opportunities": "opportunity", "decisions": "decision", "orders": "order", "fills": "fill",
             "executions": "execution", "stats": "metric"}
    for plural, kind in kinds.items():
        for _raw, event in got[f"{prefix}:{plural}"]:
            assert set(event) == {"kind", "key", "data"} and event["kind"] == kind, event
    for _raw, event in got[f"{prefix}:opportunities"]:
        opp = event["data"]
        assert event["key"] == str(opp["id"])
        assert opp["symbol"] in symbols and opp["legs"]
        assert {leg["venue"] for leg in opp["legs"]} <= venues
    for _raw, event in got[f"{prefix}:decisions"]:
        assert isinstance(event["data"]["approved"], bool) and event["data"]["reason"]
    for _raw, event in got[f"{prefix}:fills"]:
        assert event["data"]["venue"] in venues and event["data"]["qty"] > 0
    services = set(live.endpoints.all_services())
    assert {e["data"]["service"] for _raw, e in got[f"{prefix}:stats"]} <= services

    # The stream has the same events, byte for byte, for a consumer that reads (or catches up) later.
    # Entry ids are the ms the entry was added: the first message heard was added after we subscribed.
    raw, _event = got[f"{prefix}:opportunities"][0]
    stream = f"{prefix}:stream:opportunities"
    entries = client.xrange(stream, min=str(subscribed_ms - 1000), count=50_000)
    assert raw in [fields[b"event"] for _id, fields in entries]
    first_id, first = client.xrange(stream, count=1)[0]
    assert json.loads(first[b"event"])["kind"] == "opportunity"
    # a consumer catching up from the start reads every entry in order
    caught = client.xread({stream: "0"}, count=100)[0][1]
    assert caught[0][0] == first_id
    client.close()


# ----------------------------------------------------------------------------------------------- Prometheus
def test_a_real_scrape_passes_promtool_and_shows_feed_health(live: Live) -> None:
    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(live.scrape()) for s in f.samples}

    def every_feed_has_messages() -> bool:  # funding-only feeds get their first push within a few seconds
        found = samples()
        return all(found.get(("draizer_feed_messages_total", (("venue", v.name),)), 0) > 0 for v in live.cfg.venues)

    eventually(every_feed_has_messages, timeout=30, what="messages from every venue's feed")
    check_metrics(live.scrape())
    found = samples()
    for v in live.cfg.venues:
        assert found[("draizer_feed_connects_total", (("venue", v.name),))] >= 1, v.name
        assert ("draizer_feed_stale_symbols", (("venue", v.name),)) in found
        assert ("draizer_feed_gaps_total", (("venue", v.name),)) in found
    assert found[("draizer_risk_halted", ())] == 0
    assert found[("draizer_stage_latency_seconds_count", (("stage", "tick_to_order"),))] > 0
    assert any(name == "draizer_market_spread_bps" for name, _ in found)


def test_every_metric_the_dashboard_names_is_in_a_real_scrape(live: Live) -> None:
    used = metric_names([e for _title, e in queries(dashboard())])
    assert used - exposed_names(live.scrape()) == set()


# ----------------------------------------------------------------------------------------------- API
def test_api_reads_are_what_shared_memory_holds(live: Live) -> None:
    def same_snapshot(path: str) -> tuple[Answer, dict[str, Any]] | None:
        before, _ = live.shm()
        answer = live.api("GET", path)
        after, data = live.shm()
        # the bridge rewrites shm every 100 ms: compare only when nothing changed around the request
        return (answer, data) if answer.status == 200 and answer.body["seq"] == before == after else None

    answer, data = eventually(lambda: same_snapshot("/api/v2/status"), timeout=30, what="a quiet 100 ms")
    body = dict(answer.body)
    assert body.pop("instance") == live.cfg.instance and body.pop("writer_alive") is True
    body.pop("seq"), body.pop("writer_pid")
    assert without_ages(body) == without_ages(data)

    answer, data = eventually(lambda: same_snapshot("/api/v2/opportunities?limit=1000"), timeout=30, what="quiet")
    assert answer.body["total"] == data["opportunities"] > 0
    assert without_ages(answer.body["opportunities"]) == without_ages(list(reversed(data["recent"])))

    answer, data = eventually(lambda: same_snapshot("/api/v2/prices"), timeout=30, what="quiet")
    assert answer.body["prices"] == data["prices"] and answer.body["funding"] == data["funding"]


def test_api_strategy_stop_and_start_reach_the_detector(live: Live) -> None:
    listed = live.api("GET", "/api/v2/strategies")
    assert listed.status == 200, listed
    assert listed.body["strategies"]["cross_exchange"]["enabled"] is True
    assert live.api("POST", "/api/v2/strategies/cross_exchange/stop").status == 401
    stopped = live.api("POST", "/api/v2/strategies/cross_exchange/stop", live.token)
    assert stopped.status == 200 and stopped.body["enabled"] is False, stopped
    assert live.api("GET", "/api/v2/strategies").body["strategies"]["cross_exchange"]["enabled"] is False

    def cross() -> float:
        return live.metric("draizer_opportunities_total", strategy="cross_exchange") or 0.0

    def detector_quotes() -> int:
        return live.status()["services"]["detector"]["counters"]["quotes"]

    # let what was already on its way arrive, then the count must hold while the detector keeps reading quotes
    q0 = detector_quotes()
    eventually(lambda: detector_quotes() > q0 + 500, what="the detector reading quotes")
    held = cross()
    q1 = detector_quotes()
    eventually(lambda: detector_quotes() > q1 + 2000, timeout=60, what="many more quotes")
    assert cross() == held

    started = live.api("POST", "/api/v2/strategies/cross_exchange/start", live.token)
    assert started.status == 200 and started.body["enabled"] is True, started
    eventually(lambda: cross() > held, timeout=60, what="cross-exchange opportunities again")
    unknown = live.api("POST", "/api/v2/strategies/no_such_strategy/stop", live.token)
    assert unknown.status == 400 and "no_such_strategy" in unknown.body["detail"], unknown


def test_api_kill_switch_needs_the_token_and_really_halts_risk(live: Live) -> None:
    assert live.api("POST", "/api/v2/kill").status == 401
    assert live.api("POST", "/api/v2/kill", "not-the-token").status == 403
    assert live.metric("draizer_risk_halted") == 0

    killed = live.api("POST", "/api/v2/kill", live.token)
    assert killed.status == 200 and killed.body["halted"] is True, killed
    eventually(lambda: live.metric("draizer_risk_halted") == 1, what="risk's heartbeat saying halted")
    approved = live.status()["approved"]
    refused = live.status()["rejections_by_reason"].get("kill_switch", 0)
    eventually(lambda: live.status()["rejections_by_reason"].get("kill_switch", 0) >= refused + 5, timeout=60,
               what="opportunities refused by the kill switch")
    assert live.status()["approved"] == approved  # nothing approved while halted

    resumed = live.api("POST", "/api/v2/resume", live.token)
    assert resumed.status == 200 and resumed.body["halted"] is False, resumed
    eventually(lambda: live.metric("draizer_risk_halted") == 0, what="risk trading again")
    eventually(lambda: live.status()["approved"] > approved, timeout=60, what="approvals after resume")


# ----------------------------------------------------------------------------------------------- Redis outage
def test_redis_down_mid_run_does_not_stop_the_engine_and_the_sink_reconnects(live: Live) -> None:
    prefix = live.cfg.sinks.redis_channel_prefix
    errors = live.bridge_counters().get("redis_errors", 0)
    live.redis.stop()
    try:
        eventually(lambda: live.bridge_counters()["redis_errors"] > errors, what="the sink noticing Redis is gone")
        before = live.status()

        def progressed() -> dict[str, Any] | None:
            now = live.status()
            quoting = all(now["quotes"][v] > n for v, n in before["quotes"].items())
            return now if quoting and now["opportunities"] >= before["opportunities"] + 20 else None

        during = eventually(progressed, timeout=60, what="quotes and opportunities flowing without Redis")
        eventually(lambda: live.bridge_counters()["redis_errors"] >= errors + 2, what="the sink retrying")
        assert during["snapshot_age_s"] < 1.0  # the bridge keeps publishing shared memory
        assert all(s["state"] == "RUNNING" for s in during["services"].values()), during["services"]
    finally:
        live.redis.start()  # same port
    back_ns = time.time_ns()
    # Live events again, not only the backlog: the stream's newest entry was detected after Redis came back.
    # (The stream, not a subscriber, answers this: at ~1k opportunities/s a Python subscriber lags behind.)
    client = live.redis.client()
    stream = f"{prefix}:stream:opportunities"

    def newest_detected_ns() -> int:
        entries = client.xrevrange(stream, count=1)
        return json.loads(entries[0][1][b"event"])["data"]["detected_at_ns"] if entries else 0

    try:
        eventually(lambda: newest_detected_ns() > back_ns, timeout=30, what="opportunities detected after the restart")
        sub_client, pubsub = subscribe(live.redis, prefix)
        try:
            collect(pubsub, lambda b: f"{prefix}:opportunities" in b)  # and subscribers hear them
        finally:
            pubsub.close()
            sub_client.close()
    finally:
        client.close()
    counters = live.bridge_counters()
    assert counters["redis_reconnects"] >= 1
    assert counters["redis_written"] > 0


# ----------------------------------------------------------------------------------------------- shutdown
def test_the_pipeline_with_redis_and_the_api_stops_cleanly(live: Live) -> None:
    output = live.stop()
    assert live.proc.returncode == 0, output
    assert "Traceback" not in output, output
    for log in live.run_dir.glob("*.log"):
        text = log.read_text()
        assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"
    api_log = (live.run_dir / "api.log").read_text()
    assert "HTTP API on http://" in api_log and "wrong token" in api_log  # refused writes leave a trace
    assert "redis sink stopped" in (live.run_dir / "bridge.log").read_text()
