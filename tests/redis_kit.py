"""Redis for tests: a private redis-server on a free loopback port with a temporary directory.

One server per test session (``redis_server``); tests that take it down (``stop()``) bring it back on the
same port (``start()``) before they finish. A missing redis-server binary FAILS the test with a clear
message: ``bash scripts/system-deps.sh`` installs it (README, "run every test").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port

START_TIMEOUT_S = 10.0


class RedisServer:
    def __init__(self, binary: str, directory: Path, port: int) -> None:
        self.binary = binary
        self.dir = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with self.client() as c:
                    if c.ping():
                        return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT_S}s: {self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def log_tail(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail("redis-server is not installed: run `bash scripts/system-deps.sh` (Debian package redis-server)")
    return found


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="dz-redis-"))
    server = RedisServer(redis_binary(), directory, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's server, running and empty."""
    if not redis_server.running:
        redis_server.proc = None
        redis_server.start()
    with redis_server.client() as c:
        c.flushall()
    yield redis_server
