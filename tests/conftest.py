"""Shared test kit: free ports, configs written for a private run directory, polling with a deadline."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.sim.local_ports import free_port as free_port  # re-exported: the tests take it from here
from services.sim.local_ports import on_free_ports
from shared.config import Config, default_config_path, parse_config

pytest_plugins = ["tests.sim_kit", "tests.pg_kit", "tests.redis_kit"]




def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on the port (for polling a server that starts in another process)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


async def eventually_async(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")




def make_config_dict(run_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The default config on free ports, a private run directory and a unique instance name."""
    data: dict[str, Any] = on_free_ports(msgspec.toml.decode(default_config_path().read_bytes()))
    data["instance"] = "t" + uuid.uuid4().hex[:12]
    data["runtime"]["run_dir"] = str(run_dir)
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return data


def write_config(path: Path, data: dict[str, Any]) -> Config:
    raw = msgspec.toml.encode(data)
    path.write_bytes(raw)
    return parse_config(raw, str(path))


@pytest.fixture
def run_dir(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # ipc:// paths must fit in sun_path (107 bytes): keep the run directory short.
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="dz-", dir="/tmp"))
    d.chmod(0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)
