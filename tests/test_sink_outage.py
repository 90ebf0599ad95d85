"""The issue's outage test: a real `draizer run` with PostgreSQL configured; PostgreSQL is stopped for 30 s
mid-run and started again. Afterwards every opportunity, decision, order, fill and execution the engine
emitted — counted by an independent subscriber on the services' event sockets, not by the bridge — is in
PostgreSQL exactly once. Without the spool the records of those 30 s would be missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from services.bridge.journal import journal_files
from services.bridge.records import Recorder
from services.cli.tap import EventTap
from shared.messages import Event, Stats
from shared.registry import Registry
from shared.runtime.endpoints import Endpoints
from shared.shm import shm_path
from tests.conftest import eventually, make_config_dict, write_config
from tests.pg_kit import PgServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
OUTAGE_S = 30.0
KEY_SQL = {
    "opportunity": "SELECT id::text FROM arbitrage_opportunities",
    "decision": "SELECT opportunity_id::text FROM risk_decisions",
    "order": "SELECT client_order_id || ':' || status FROM orders",
    "fill": "SELECT venue || ':' || symbol || ':' || trade_id FROM fills",
    "execution": "SELECT opportunity_id::text FROM arbitrage_executions",
    "alert": "SELECT source || ':' || kind || ':' || (extract(epoch from at) * 1000000)::bigint::text FROM risk_alerts",
    "funding_payment": "SELECT venue || ':' || payment_id FROM funding_payments",
    "carry": "SELECT carry_id::text FROM carry_positions",  # one row per carry: its updates upsert it
}
TABLES = ("arbitrage_opportunities", "risk_decisions", "orders", "fills", "arbitrage_executions", "risk_alerts",
          "engine_metrics")


def stored(server: PgServer, db: str) -> dict[str, list[str]]:
    return {kind: server.psql(sql, db).split("\n")[:-1] for kind, sql in KEY_SQL.items()}


def rows_in_every_table(server: PgServer, db: str) -> bool:
    sql = " UNION ALL ".join(f"SELECT count(*) FROM {t}" for t in TABLES)
    try:
        return all(int(n) > 0 for n in server.psql(sql, db).split())
    except RuntimeError:  # the bridge has not created the tables yet
        return False


class KeyTap:
    """The record keys of everything the services published, computed from the events themselves."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.keys: dict[str, set[str]] = defaultdict(set)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Stats):
            return  # metrics are sampled by the bridge's clock: not comparable from outside
        record = self.recorder.record(event)
        if record is not None:
            self.keys[record.kind].add(record.key)


def test_postgres_outage_mid_run_loses_and_duplicates_nothing(
    own_pg_server: PgServer, tmp_path: Path, run_dir: Path
) -> None:
    server = own_pg_server
    db = server.create_database()
    data = make_config_dict(
        run_dir,
        runtime={"heartbeat_interval_s": 0.2},
        # A few hundred records a second: the 30 s outage leaves thousands to backfill, while the test box
        # (two cores shared by every process of the pipeline and the server) keeps up with the live flow.
        sim={"quotes_per_second": 2000.0, "dislocation_probability": 0.004},
        sinks={"metrics_interval_s": 1.0, "batch_interval_ms": 100},
    )
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    endpoints = Endpoints(cfg, run_dir)
    keys = KeyTap(Recorder(Registry(cfg)))
    # The bridge publishes heartbeats too (its sink counters); it is not an event source of the pipeline.
    sources = [*endpoints.all_services(), "bridge"]
    tap = EventTap([endpoints.events(s) for s in sources], on_event=keys)
    spool = run_dir / "journal" / "spool"
    env = {**os.environ, "DRAIZER_POSTGRES_DSN": server.dsn(db)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "run",
            "--config",
            str(cfg_path),
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def bridge_counter(name: str) -> int:
        tap.drain()
        st = tap.stats.get("bridge")
        return st.counters.get(f"postgres_{name}", 0) if st is not None else 0

    try:
        # The acceptance check: rows in every table while the run goes on.
        eventually(
            lambda: (tap.drain(), rows_in_every_table(server, db))[1],
            timeout=90,
            interval=0.5,
            what="rows in every table",
        )
        server.stop()
        down_at = time.monotonic()
        opps_at_stop = tap.drain()["opportunities"]
        # The outage lasts OUTAGE_S while the engine keeps trading and the bridge spools.
        eventually(
            lambda: (
                tap.drain()["opportunities"] > opps_at_stop
                and bool(journal_files(spool))
                and time.monotonic() - down_at >= OUTAGE_S
            ),
            timeout=OUTAGE_S + 30,
            interval=0.5,
            what="the outage: trading on, spool growing",
        )
        spooled = bridge_counter("spooled")
        assert spooled > 0
        server.start()
        eventually(
            lambda: bridge_counter("backfilled") >= spooled and not journal_files(spool),
            timeout=120,
            interval=0.2,
            what="the spool backfilled",
        )
        # Trading goes on after the backfill, and keeps reaching the database.
        opps_after = tap.drain()["opportunities"]
        eventually(lambda: tap.drain()["opportunities"] > opps_after + 50, timeout=30, what="more opportunities")
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
        shm_path(cfg.instance).unlink(missing_ok=True)  # only this run's: other runs may share the host
    assert proc.returncode == 0, output
    for log in run_dir.glob("*.log"):
        assert "Traceback" not in log.read_text(), log.name
    eventually(
        lambda: (tap.drain(), bridge_counter("written") > 0 and tap.stats["bridge"].state == "STOPPED")[1],
        timeout=10,
        what="the bridge's final heartbeat",
    )
    tap.close()

    counters = tap.stats["bridge"].counters
    assert counters["postgres_dropped"] == 0 and counters["postgres_rejected"] == 0, counters
    assert counters["postgres_spooled"] > 0 and counters["postgres_backfilled"] == counters["postgres_spooled"]
    assert not journal_files(spool), "spool files left after a clean stop with PostgreSQL up"
    rows = stored(server, db)
    for kind, expected in keys.keys.items():
        got = rows[kind]
        if kind == "carry":  # a record per update ("<carry id>:<ts>"), a row per carry
            expected = {k.split(":")[0] for k in expected}
        assert len(got) == len(set(got)), f"{kind}: a row twice"
        missing, extra = expected - set(got), set(got) - expected
        assert not missing and not extra, f"{kind}: {len(missing)} missing, {len(extra)} unexpected"
    assert len(keys.keys["opportunity"]) == tap.counts["opportunities"] > 0
    assert len(keys.keys["fill"]) == tap.counts["fills"] > 0
    assert keys.keys["order"] and keys.keys["execution"]
