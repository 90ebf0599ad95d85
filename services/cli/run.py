"""`draizer run`: the whole pipeline under supervisord in the foreground, with a live status line.

In live mode it first runs ``draizer preflight`` and refuses to start on a failure. It prepares the private run
directory, the environment ``supervisord.conf`` reads, and — in paper mode only — throw-away credentials shared
by the simulator and the executor (never written to disk). Then it starts supervisord in its own session (so a
terminal Ctrl-C reaches only this command, which stops the pipeline in order), prints a status line every second,
and stops after ``--duration``.

Every paper run starts clean: the last run's risk state (daily PnL, breakers, kill switch), order journal,
journal, event logs and logs are moved to <run dir>/previous/<UTC time>/ first (nothing is deleted);
--keep-state carries them on instead. Live mode always keeps them and refuses --fresh.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from services.cli.fresh_start import prepare_state
from services.cli.readiness import not_ready
from services.cli.status_line import StatusLine
from services.cli.supervisor_env import new_password_env, supervisord_user_args
from shared.config import Config, default_config_path, load_config, resolve_run_dir
from shared.errors import ConfigError
from shared.runtime.host import prepare_run_dir
from shared.runtime.session import SESSION_ENV, new_session

REPO_ROOT = Path(__file__).resolve().parents[2]
SUPERVISORD_CONF = REPO_ROOT / "supervisord.conf"
STOP_TIMEOUT_S = 60.0
LOCK_NAME = "draizer-run.lock"
START_TIMEOUT_S = 300.0  # a cold first start on 2 busy cores compiles for ~20 s; five minutes means broken
START_POLL_S = 0.1
START_FAILED = 4  # the exit code of a start that never became ready
PREFLIGHT_FAILED = 1  # a live run's preflight failed: nothing was started
LOCK_PID_WAIT_S = 2.0  # how long a refused start waits for the holder to have written its pid


def pipeline_env(cfg: Config, config_path: Path, run_dir: Path, placement: str) -> dict[str, str]:
    """The variables supervisord.conf expands (no secrets here)."""
    return {
        "DRAIZER_CONFIG": str(config_path.resolve()),
        "DRAIZER_RUN_DIR": str(run_dir),
        "DRAIZER_PYTHON": sys.executable,
        "DRAIZER_FEEDS": str(len(cfg.venues)),
        "DRAIZER_PLACEMENT": placement,
    }


def paper_credentials(cfg: Config) -> dict[str, str]:
    """Fresh random keys for the simulated venues, unless the environment already sets them."""
    if cfg.mode != "paper":
        return {}
    creds: dict[str, str] = {}
    for v in cfg.venues:
        for name in (v.api_key_env, v.api_secret_env):
            if name and not os.environ.get(name):
                creds[name] = secrets.token_hex(32)
    return creds


def config_with_placement(cfg_path: Path, placement: str | None, run_dir: Path) -> tuple[Config, Path]:
    """Apply --placement by writing the effective config into the run directory."""
    cfg = load_config(cfg_path)
    if placement is None or placement == cfg.runtime.placement:
        return cfg, cfg_path
    text = cfg_path.read_text()
    import msgspec

    data = msgspec.toml.decode(text.encode())
    data.setdefault("runtime", {})["placement"] = placement
    effective = run_dir / "effective-config.toml"
    effective.write_bytes(msgspec.toml.encode(data))
    return load_config(effective), effective


def lock_run_dir(run_dir: Path) -> int:
    """Take ``<run_dir>/draizer-run.lock`` (flock, exclusive) for the life of this process, or fail at once.

    Two `draizer run` started at the same instant on one run directory both find no supervisord.pid; the lock
    lets exactly one through. The holder writes its pid into the file for the error the other one prints. The
    lock goes with the process (the kernel drops it on exit, however it ends); the file stays, harmlessly."""
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        holder = _lock_holder(fd)
        os.close(fd)
        raise ConfigError(
            f"{run_dir}: a pipeline is already running there (`draizer run` pid {holder or '?'} holds {path}); "
            "stop it first, or pass another --run-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_holder(fd: int) -> int | None:
    """The pid holding the lock on ``fd``'s file: the kernel's word (/proc/locks) when it has one, else the pid
    the holder wrote (right after locking, so a start racing it waits a moment for it)."""
    st = os.fstat(fd)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:
        locks = ""
    for line in locks.splitlines():
        f = line.split()  # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146465 0 EOF"
        if len(f) >= 6 and f[1] == "FLOCK" and f[5] == where and f[4].isdigit():
            return int(f[4])
    deadline = time.monotonic() + LOCK_PID_WAIT_S
    while True:
        try:
            return int(os.pread(fd, 32, 0).decode().strip())
        except ValueError:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)


def already_running(run_dir: Path) -> int | None:
    """A supervisord this run directory's pid file names and that is alive (e.g. one left by a killed run)."""
    pidfile = run_dir / "supervisord.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=default_config_path())
    p.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    p.add_argument("--placement", choices=("processes", "fused", "single"), default=None)
    p.add_argument("--run-dir", type=Path, default=None)
    p.add_argument("--start-timeout", type=float, default=START_TIMEOUT_S,
                   help="seconds the services get to come up before the run gives up (exit 4)")
    p.add_argument("--quiet", action="store_true", help="no status line (for scripts)")
    p.add_argument("--no-settle", action="store_true",
                   help="stop without the wind-down and reconciliation report (paper mode does it by default)")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--keep-state", action="store_true",
                       help="paper mode: carry on from the last run's risk state (daily PnL, breakers, kill switch), "
                            "order journal, journal and logs instead of moving them to <run dir>/previous/<time>/ "
                            "(live mode always keeps them)")
    state.add_argument("--fresh", action="store_true",
                       help="start from a clean slate: paper mode's default; refused in live mode")
    args = p.parse_args(argv)

    cfg0 = load_config(args.config)
    if cfg0.mode == "live" and args.fresh:  # refused before the preflight's checks, not after them
        prepare_state(cfg0, Path("."), REPO_ROOT, args.keep_state, args.fresh)
    if cfg0.mode == "live":  # before anything starts: a live run needs every preflight check to pass
        from services.cli.preflight import run_preflight

        ok, text = run_preflight(cfg0)
        print(text, flush=True)
        if not ok:
            print("draizer: preflight failed: not starting (fix the rows marked FAIL, then run again)", file=sys.stderr)
            return PREFLIGHT_FAILED
    run_dir = prepare_run_dir((args.run_dir or resolve_run_dir(cfg0)).resolve())
    lock_run_dir(run_dir)  # its descriptor is never closed: the lock lasts as long as this process
    pid = already_running(run_dir)
    if pid is not None:
        raise ConfigError(f"{run_dir}: a pipeline is already running there (supervisord pid {pid})")
    # After the lock and the check above: never the state of a running pipeline.
    moved = prepare_state(cfg0, run_dir, REPO_ROOT, args.keep_state, args.fresh)
    if moved is not None:
        print(f"draizer: fresh start: the last run's state and logs are in {moved} (--keep-state carries them on)")
    cfg, cfg_path = config_with_placement(args.config, args.placement, run_dir)
    placement = cfg.runtime.placement
    env = pipeline_env(cfg, cfg_path, run_dir, placement)
    # One name for this run: programs supervisord restarts continue its counts and books (shared/runtime/session.py).
    session = os.environ.get(SESSION_ENV) or new_session()
    # The socket's password (per run, environment only): `draizer ctl` reads it back from supervisord.
    child_env = {**os.environ, **env, **paper_credentials(cfg), **new_password_env(), SESSION_ENV: session}
    print(f"draizer: {cfg.mode} mode, placement {placement}, run directory {run_dir}, run {session}")
    print(f"draizer: supervisorctl from another shell: draizer ctl --run-dir {shlex.quote(str(run_dir))} status")
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "--silent", "-c", str(SUPERVISORD_CONF),
         *supervisord_user_args()],
        env=child_env,
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    stop_requested = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    line = StatusLine(cfg.instance, session)  # this run's numbers only: not the last run's leftover file
    settled = started = True
    try:
        started = wait_until_ready(cfg, line, proc, args.start_timeout, lambda: stop_requested, args.quiet)
        # --duration is trading time: it starts when every service is up, however long the start took (a
        # fresh checkout's first start compiles the detector's kernels unless the install did).
        deadline = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        while started and not stop_requested and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if not args.quiet:
                print(line.render(), flush=True)
        if started and proc.poll() is None and not args.no_settle:
            from services.cli.settle import settle

            settled = settle(cfg, {**env, **child_env})
    finally:
        code = stop_pipeline(proc)
    summary = line.render(final=True)
    print(f"draizer: stopped; final: {summary}")
    if not started and not stop_requested:
        return code or START_FAILED
    return code if code or settled else 3


def wait_until_ready(
    cfg: Config, line: StatusLine, proc: subprocess.Popen[bytes], timeout_s: float, stopping: Callable[[], bool],
    quiet: bool,
) -> bool:
    """Poll the bridge's shared memory until every service runs. False when the start is given up (timeout,
    supervisord gone, or a stop requested), after saying why on stderr."""
    t0 = time.monotonic()
    last_said = t0
    waiting = not_ready(cfg, line.read(), line.waiting)
    while waiting:
        now = time.monotonic()
        if stopping():
            return False
        if proc.poll() is not None:
            print(f"draizer: supervisord exited (code {proc.returncode}) during the start; still waiting for: "
                  f"{', '.join(waiting)}", file=sys.stderr)
            return False
        if now - t0 >= timeout_s:
            print(f"draizer: not ready after {timeout_s:.0f} s; still waiting for: {', '.join(waiting)} "
                  f"(see the logs in the run directory)", file=sys.stderr)
            return False
        if not quiet and now - last_said >= 1.0:
            print(f"starting ({now - t0:.0f} s): waiting for {', '.join(waiting)}", flush=True)
            last_said = now
        time.sleep(START_POLL_S)
        waiting = not_ready(cfg, line.read(), line.waiting)
    print(f"draizer: ready after {time.monotonic() - t0:.1f} s", flush=True)
    return True


def stop_pipeline(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM supervisord: it stops the programs in reverse priority order and exits 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print("draizer: supervisord did not stop in time; killing it", file=sys.stderr)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return 1
    return 0 if code in (0, -signal.SIGTERM) else code

