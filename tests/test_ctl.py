"""`draizer ctl` drives supervisorctl for a running pipeline with nothing exported first; supervisord's socket
needs the run's password; a normal run logs no CRIT and no Traceback, as root and as a normal user."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.supervisor_env import PASSWORD_ENV, SUPERVISORD_CONF, running_supervisord
from shared.config import default_config_path
from shared.shm import shm_path
from tests.conftest import eventually, make_config_dict, write_config

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def draizer(*argv: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *argv], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout, check=False)


def bad_lines(run_dir: Path) -> list[str]:
    """Every line of every log in the run directory that says CRIT or Traceback."""
    return [f"{log.name}: {line}" for log in sorted(run_dir.glob("*.log"))
            for line in log.read_text(errors="replace").splitlines() if "CRIT" in line or "Traceback" in line]


def test_ctl_without_a_run_says_so_and_names_the_directory(tmp_path: Path) -> None:
    done = draizer("ctl", "--run-dir", str(tmp_path), "status")
    assert done.returncode == 2
    assert f"{tmp_path}: no pipeline is running there" in done.stderr and "draizer run" in done.stderr
    stale = tmp_path / "supervisord.pid"
    stale.write_text(f"{os.getpid()}\n")  # a live pid that is not a supervisord: a pid file left by a dead run
    assert "no pipeline is running there" in draizer("ctl", "--run-dir", str(tmp_path), "status").stderr


def test_env_without_a_run_prints_fresh_exports_for_a_supervisord_started_by_hand(tmp_path: Path) -> None:
    first = draizer("env", "--run-dir", str(tmp_path))
    second = draizer("env", "--run-dir", str(tmp_path))
    assert first.returncode == second.returncode == 0, first.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in first.stdout.splitlines()
                   if line.startswith("export "))
    assert exports["DRAIZER_RUN_DIR"] == str(tmp_path) and exports["DRAIZER_PLACEMENT"] == "single"
    assert exports[PASSWORD_ENV] and exports[PASSWORD_ENV] not in second.stdout  # a fresh one each time
    assert first.stdout.startswith(f"# no pipeline runs in {tmp_path}")


@pytest.mark.e2e
def test_a_run_logs_no_crit_and_ctl_drives_it(tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest) -> None:
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, make_config_dict(run_dir, runtime={"placement": "single"}))
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    run = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--duration", "3", "--quiet",
         "--start-timeout", "120"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert run.stdout is not None
        for line in run.stdout:  # the run says when every service is up; then it trades 3 s and settles
            if line.startswith("draizer: ready"):
                break
        else:
            pytest.fail(f"the run ended before it was ready: {run.wait()} {run.stderr.read() if run.stderr else ''}")
        status = draizer("ctl", "--config", str(cfg_path), "status")
        assert status.returncode == 0, status.stdout + status.stderr
        states = dict(line.split()[:2] for line in status.stdout.splitlines())
        assert states == {"api": "RUNNING", "bridge": "RUNNING", "engine": "RUNNING", "sim": "RUNNING"}
        tail = draizer("ctl", "--run-dir", str(run_dir), "tail", "engine")
        assert tail.returncode == 0 and " INFO " in tail.stdout, tail.stdout + tail.stderr
        # The socket refuses a client without this run's password.
        exports = dict(line.removeprefix("export ").split("=", 1)
                       for line in draizer("env", "--run-dir", str(run_dir)).stdout.splitlines()
                       if line.startswith("export "))
        assert exports["DRAIZER_RUN_DIR"] == str(run_dir) and exports[PASSWORD_ENV]
        wrong = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISORD_CONF), "status"],
            capture_output=True, text=True, timeout=20, check=False,
            env={**os.environ, **exports, PASSWORD_ENV: "not-the-password"},
        )
        assert wrong.returncode != 0 and "RUNNING" not in wrong.stdout
        assert "authentication" in (wrong.stdout + wrong.stderr).lower()
        rest, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            run.wait(60)
    assert run.returncode == 0, rest + err
    assert running_supervisord(run_dir) is None
    assert bad_lines(run_dir) == []
    supervisord_log = (run_dir / "supervisord.log").read_text()
    assert "supervisord started" in supervisord_log
    if os.getuid() == 0:
        assert "Set uid to user 0 succeeded" in supervisord_log  # root, said to be meant: INFO, not CRIT


START_AS_USER = """
import os, sys
from services.cli.supervisor_env import SUPERVISORD_CONF, supervisord_user_args
os.execv(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "-c", str(SUPERVISORD_CONF),
                          *supervisord_user_args()])
"""


def _nobody_can_run_python() -> bool:
    """Whether a normal user can run this interpreter (not when it lives under a private /root, as pyenv's may)."""
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run([*AS_NOBODY, "sh", "-c", '"$0" -c pass', sys.executable], capture_output=True, timeout=30,
                           check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _nobody_can_run_python(), reason="needs root, setpriv and an interpreter a normal user can run")
def test_supervisord_as_a_normal_user_logs_no_crit_and_ctl_works_for_that_user(run_dir: Path) -> None:
    """The same start as a normal user (nobody): no `user` to name, no CRIT, and `draizer ctl` as that user reads
    the password from its own supervisord. The programs are /bin/true: only supervisord is under test."""
    os.chown(run_dir, NOBODY, NOBODY)
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": python_path, "HOME": str(run_dir),
           "DRAIZER_RUN_DIR": str(run_dir), "DRAIZER_CONFIG": str(default_config_path()), "DRAIZER_FEEDS": "4",
           "DRAIZER_PYTHON": "/bin/true", "DRAIZER_PLACEMENT": "single", PASSWORD_ENV: "a-password"}
    sup = subprocess.Popen([*AS_NOBODY, sys.executable, "-c", START_AS_USER], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: running_supervisord(run_dir), timeout=30, what="supervisord's pid file")
        assert os.stat(f"/proc/{running_supervisord(run_dir)}").st_uid == NOBODY
        ctl_env = {k: v for k, v in env.items() if not k.startswith("DRAIZER_")}  # nothing exported
        status = subprocess.run([*AS_NOBODY, sys.executable, "-m", "services.cli.main", "ctl", "--run-dir",
                                 str(run_dir), "status"], capture_output=True, text=True, cwd=REPO, env=ctl_env,
                                timeout=30, check=False)
        assert {line.split()[0] for line in status.stdout.splitlines()} == {"api", "bridge", "engine", "sim"}, (
            status.stdout + status.stderr)
    finally:
        sup.send_signal(signal.SIGTERM)
        _, err = sup.communicate(timeout=30)
    log = (run_dir / "supervisord.log").read_text()  # complete: supervisord has exited
    assert "supervisord started" in log and "Set uid" not in log
    assert bad_lines(run_dir) == [], err
