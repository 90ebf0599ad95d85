"""`draizer db migrate|status` and `draizer journal import`, as an operator runs them, on a real PostgreSQL.

The import test loads the embedded-default journal written by a real `draizer run --duration N` (no DSN set),
checks every record arrived against the engine's own final counts, then imports again: nothing is added.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from services.bridge.journal import expand_paths, read_journal
from shared.shm import shm_path
from tests.conftest import free_port, make_config_dict, write_config
from tests.pg_kit import TABLES, PgServer

REPO = Path(__file__).resolve().parents[1]
DSN_VAR = "DRAIZER_POSTGRES_DSN"
# Trading time (`draizer run` counts it from the moment every service is up): long enough that every kind of
# record appears even on a busy two-core box.
DURATION_S = "12"


def draizer(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != DSN_VAR}  # only what the test says
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**base, **env},
        check=False,
    )


def config_file(tmp_path: Path, run_dir: Path, **overrides: object) -> Path:
    path = tmp_path / "draizer.toml"
    write_config(path, make_config_dict(run_dir, **overrides))
    return path


def test_db_migrate_then_status(pg_server: PgServer, pg_db: str, tmp_path: Path, run_dir: Path) -> None:
    cfg = config_file(tmp_path, run_dir)
    env = {DSN_VAR: pg_server.dsn(pg_db)}
    first = draizer("db", "migrate", "--config", str(cfg), env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 001_history_tables" in first.stdout
    assert pg_server.password not in first.stdout + first.stderr
    second = draizer("db", "migrate", "--config", str(cfg), env=env)
    assert second.returncode == 0 and "(0 applied now)" in second.stdout, second.stdout + second.stderr
    status = draizer("db", "status", "--config", str(cfg), env=env)
    assert status.returncode == 0 and "0 pending" in status.stdout, status.stdout + status.stderr
    tables = set(pg_server.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", pg_db).split())
    assert tables == {*TABLES.values(), "schema_migrations"}


def test_db_status_on_an_empty_database_lists_pending(
    pg_server: PgServer, pg_db: str, tmp_path: Path, run_dir: Path
) -> None:
    cfg = config_file(tmp_path, run_dir)
    status = draizer("db", "status", "--config", str(cfg), env={DSN_VAR: pg_server.dsn(pg_db)})
    assert status.returncode == 1
    assert "001_history_tables: pending" in status.stdout


def test_the_config_names_the_variable(pg_server: PgServer, pg_db: str, tmp_path: Path, run_dir: Path) -> None:
    cfg = config_file(tmp_path, run_dir, sinks={"postgres_dsn_env": "OPS_PG_DSN"})
    ok = draizer("db", "migrate", "--config", str(cfg), env={"OPS_PG_DSN": pg_server.dsn(pg_db)})
    assert ok.returncode == 0, ok.stderr
    unset = draizer("db", "migrate", "--config", str(cfg), env={DSN_VAR: pg_server.dsn(pg_db)})
    assert unset.returncode == 2
    assert "$OPS_PG_DSN is not set" in unset.stderr


def test_clear_errors_when_unset_or_unreachable(tmp_path: Path, run_dir: Path) -> None:
    cfg = config_file(tmp_path, run_dir)
    unset = draizer("db", "migrate", "--config", str(cfg), env={})
    assert unset.returncode == 2 and f"${DSN_VAR} is not set" in unset.stderr, unset.stderr
    journal = draizer("journal", "import", str(tmp_path), "--config", str(cfg), env={})
    assert journal.returncode == 2 and f"${DSN_VAR} is not set" in journal.stderr, journal.stderr

    dsn = f"postgresql://draizer:hunter2secret@127.0.0.1:{free_port()}/draizer"
    down = draizer("db", "migrate", "--config", str(cfg), env={DSN_VAR: dsn})
    assert down.returncode == 2 and "cannot connect" in down.stderr, down.stderr
    assert "hunter2secret" not in down.stderr and "draizer:***@127.0.0.1" in down.stderr
    assert "Traceback" not in down.stderr


def journal_keys(paths: list[Path]) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = defaultdict(set)
    for p in paths:
        for r in read_journal(p):
            keys[r.kind].add(r.key)
    return keys


def decision_reasons(paths: list[Path]) -> Counter[str]:
    """Why risk decided as it did, for a failure message: which rule refused the run's opportunities."""
    return Counter(str(r.data.get("reason")) for p in paths for r in read_journal(p) if r.kind == "decision")


@pytest.mark.e2e
def test_journal_import_of_a_real_run(
    pg_server: PgServer, pg_db: str, tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    cfg = config_file(
        tmp_path,
        run_dir,
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01},
        runtime={"heartbeat_interval_s": 0.2},
        sinks={"metrics_interval_s": 0.5, "journal_fsync": "always"},
    )
    found = re.search(r'instance = "([^"]+)"', cfg.read_text())
    assert found is not None
    instance = found.group(1)
    # Remove only this run's shared memory: other runs may share the host.
    request.addfinalizer(lambda: shm_path(instance).unlink(missing_ok=True))
    run = draizer(
        "run", "--config", str(cfg), "--run-dir", str(run_dir), "--duration", DURATION_S, "--quiet", env={}, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    journal_dir = run_dir / "journal"
    files = expand_paths([journal_dir])
    assert files, f"no journal written: {sorted(p.name for p in run_dir.iterdir())}"
    assert not (journal_dir / "spool").exists()  # no PostgreSQL configured: the journal, not a spool
    keys = journal_keys(files)
    assert all(keys[k] for k in ("opportunity", "decision", "order", "fill", "execution", "metric")), (
        {k: len(v) for k, v in keys.items()}, decision_reasons(files),
        [log.read_text()[-2000:] for log in run_dir.glob("engine*.log")],
    )

    # The journal holds what the engine itself counted (the bridge's shared memory, read after the stop).
    status = draizer("status", "--json", "--instance", instance, env={})
    assert status.returncode == 0, status.stderr
    final = json.loads(status.stdout)
    assert len(keys["opportunity"]) == final["opportunities"]
    assert len(keys["decision"]) == final["approved"] + final["rejected"]
    assert len(keys["fill"]) == final["fills"]
    assert len(keys["execution"]) == sum(final["executions"].values())

    env = {DSN_VAR: pg_server.dsn(pg_db)}
    first = draizer("journal", "import", str(journal_dir), "--config", str(cfg), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    n_keys = sum(len(v) for v in keys.values())
    newest = newest_carry_versions(keys["carry"])
    read, inserted, duplicates, rejected, _torn = totals(first.stdout)
    assert rejected == 0, first.stdout
    # A carry's versions (opened, then closed) share one row: an older version superseded within its batch is
    # counted as a duplicate, one in an earlier batch is inserted and then replaced.
    assert n_keys - len(keys["carry"]) + len(newest) <= inserted <= n_keys, first.stdout
    assert read == inserted + duplicates  # a key the journal holds twice (if any) is loaded once
    for kind, table in TABLES.items():
        assert int(pg_server.psql(f"SELECT count(*) FROM {table}", pg_db)) == expected_rows(keys, kind), table
    stored = pg_server.psql("SELECT carry_id || ':' || updated_ns FROM carry_positions", pg_db).split()
    assert sorted(stored) == sorted(f"{carry}:{ns}" for carry, ns in newest.items())

    second = draizer("journal", "import", *(str(f) for f in files), "--config", str(cfg), env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert totals(second.stdout) == (read, 0, read, 0, 0)
    for kind, table in TABLES.items():
        assert int(pg_server.psql(f"SELECT count(*) FROM {table}", pg_db)) == expected_rows(keys, kind), table


def newest_carry_versions(carry_keys: set[str]) -> dict[str, int]:
    """Each carry's latest version (its keys are ``carry_id:ts_ns``): the one its single row must hold."""
    newest: dict[str, int] = {}
    for key in carry_keys:
        carry, ns = key.split(":")
        newest[carry] = max(newest.get(carry, 0), int(ns))
    return newest


def expected_rows(keys: dict[str, set[str]], kind: str) -> int:
    """Rows a kind's table holds after the import: one per key, except carries, one per carry."""
    return len(newest_carry_versions(keys[kind])) if kind == "carry" else len(keys[kind])


def totals(stdout: str) -> tuple[int, ...]:
    """(read, inserted, duplicates, rejected, torn) from the import's last line."""
    m = re.search(
        r"^total .*: read (\d+), inserted (\d+), duplicates (\d+), rejected (\d+), torn (\d+)", stdout, re.MULTILINE
    )
    assert m is not None, stdout
    return tuple(int(x) for x in m.groups())
