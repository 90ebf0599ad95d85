"""Status never shows another run's numbers: the shared-memory file names its writer's run, `draizer run`'s status
line waits for its own run's bridge, and `draizer status` marks a stopped writer's numbers as the last run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from services.cli.readiness import not_ready
from services.cli.status_line import WAITING_FOR_BRIDGE, StatusLine
from shared.config import default_config_path, load_config
from shared.shm import ShmWriter, shm_path
from tests.test_shm import layout, snapshot_of

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def instance(request: pytest.FixtureRequest) -> str:
    name = f"t{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: shm_path(name).unlink(missing_ok=True))
    return name


def draizer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO, check=False)


def test_the_run_status_line_shows_nothing_of_a_file_another_run_left(instance: str) -> None:
    path = shm_path(instance)
    line = StatusLine(instance, "run-b")
    assert line.render() == "starting (no shared memory yet)"
    with ShmWriter(path, layout(), "run-a") as last_run:  # the last run's bridge, still there or not
        last_run.publish(snapshot_of(40))
        for _ in range(3):
            assert line.read() is None
            assert line.render() == f"starting ({WAITING_FOR_BRIDGE})"
        cfg = load_config(default_config_path())
        assert not_ready(cfg, line.read(), line.waiting)[0] == f"bridge ({WAITING_FOR_BRIDGE})"
        # Without a session (a reader that is no run's) the file is shown as it is.
        assert "opps 40 " in StatusLine(instance).render()
    with ShmWriter(path, layout(), "run-b") as this_run:  # this run's bridge replaces the file
        assert line.render() == "starting (the bridge has not published yet)"
        this_run.publish(snapshot_of(3))
        shown = line.render()
        assert "opps 3 " in shown and "opps 40" not in shown, shown


def test_status_marks_a_stopped_writers_numbers_as_the_last_run(instance: str) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from msgspec.structs import replace; "
         "from tests.test_shm import layout, snapshot_of; from shared.shm import ShmWriter, shm_path; "
         "w = ShmWriter(shm_path(sys.argv[1]), layout(), 'run-a'); "
         "w.publish(replace(snapshot_of(7), taken_ns=time.monotonic_ns())); print('published', flush=True); "
         "time.sleep(600)", instance],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "published\n"
        live = draizer("status", "--instance", instance)
        assert live.returncode == 0, live.stderr
        assert live.stdout.splitlines()[0].startswith(
            f"draizer '{instance}': run run-a, bridge pid {writer.pid} running, snapshot "), live.stdout
        writer.kill()
        writer.wait(30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(30)
        if writer.stdout is not None:
            writer.stdout.close()
    ended = time.time()
    out = draizer("status", "--instance", instance)
    assert out.returncode == 0, out.stderr
    head = out.stdout.splitlines()[0]
    assert head.startswith(f"draizer '{instance}' (last run, ended "), head
    assert head.endswith(f"): run run-a, bridge pid {writer.pid} not running; these are that run's final numbers")
    assert "opportunities  7  approved 7" in out.stdout  # the numbers are there, marked as the last run's
    data = json.loads(draizer("status", "--json", "--instance", instance).stdout)
    assert (data["writer_alive"], data["writer_session"], data["writer_pid"]) == (False, "run-a", writer.pid)
    assert ended - 30 < data["ended_ms"] / 1000 <= ended + 1  # its last publish: just before it was killed
    assert os.path.exists(shm_path(instance))
