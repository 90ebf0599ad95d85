"""PostgreSQL for tests: private servers on loopback, torn down after.

``initdb`` into a temporary directory, a free port, ``listen_addresses = 127.0.0.1``, no Unix socket, a random
password (scram), fsync off (the data is thrown away). PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` OS user, which owns its data directory.

Fixtures: ``pg_server`` (one per session), ``pg_dsn`` (a fresh database per test). Tests that stop the
server (the outage test) make their own ``PgServer`` so the shared one is never disturbed.
Missing binaries FAIL the test with what to run: skipping would hide that nothing was tested.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

# The history tables the migrations create, by the record kind written to each (what the tests expect).
TABLES = {
    "opportunity": "arbitrage_opportunities",
    "decision": "risk_decisions",
    "order": "orders",
    "fill": "fills",
    "execution": "arbitrage_executions",
    "alert": "risk_alerts",
    "funding_payment": "funding_payments",
    "carry": "carry_positions",
    "metric": "engine_metrics",
}

INSTALL_HINT = "install PostgreSQL with `bash scripts/system-deps.sh` (part of `bash scripts/test.sh`)"
SUPERUSER = "postgres"


def pg_bindir() -> Path:
    """Where initdb and pg_ctl live: $DRAIZER_PG_BIN, else Debian's newest /usr/lib/postgresql/N/bin, else PATH."""
    override = os.environ.get("DRAIZER_PG_BIN")
    candidates = [Path(override)] if override else []
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += [Path(p) for p in debian]
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).parent)
    for d in candidates:
        if (d / "initdb").exists() and (d / "pg_ctl").exists() and (d / "postgres").exists():
            return d
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: {INSTALL_HINT}", pytrace=False)


def psql_path() -> str:
    found = shutil.which("psql") or str(pg_bindir() / "psql")
    if not Path(found).exists():
        pytest.fail(f"psql not found: {INSTALL_HINT}", pytrace=False)
    return found


class PgServer:
    """One private PostgreSQL cluster. ``start``/``stop`` may be called repeatedly (same port, same data)."""

    def __init__(self, base: Path | None = None) -> None:
        self.bindir = pg_bindir()
        self.base = base or Path(tempfile.mkdtemp(prefix="dz-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self._as: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SUPERUSER)
            except KeyError:
                pytest.fail(f"running as root needs the '{SUPERUSER}' OS user to run PostgreSQL: {INSTALL_HINT}")
            self._as = ["runuser", "-u", SUPERUSER, "--"]
            self._owner = (entry.pw_uid, entry.pw_gid)
        self._initdb()

    def _run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def _initdb(self) -> None:
        self.base.chmod(0o755)  # the server user must reach its data directory
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._owner is not None:
            os.chown(self.base, *self._owner)
            os.chown(pwfile, *self._owner)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        pwfile.unlink()

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with the real psql client; unaligned, tuples only (what a test compares)."""
        proc = subprocess.run(
            [psql_path(), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-d", self.dsn(database), "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        self.psql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError):
                self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server (its name)."""
    if not pg_server.running:
        pg_server.start()
    name = pg_server.create_database()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_dsn(pg_server: PgServer, pg_db: str) -> str:
    return pg_server.dsn(pg_db)


@pytest.fixture
def own_pg_server() -> Iterator[PgServer]:
    """A server of the test's own, started; the test may stop and start it at will."""
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
