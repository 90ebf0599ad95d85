"""`draizer ctl` (supervisorctl for a run, nothing to set first) and `draizer env` (the exports it would set).

``draizer ctl status`` is ``supervisorctl -c supervisord.conf status`` with the environment the run's supervisord
was started with (its run directory, config, placement and socket password: ``services/cli/supervisor_env.py``),
so it works from any shell without activating anything or evaluating exports first.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from services.cli.supervisor_env import (
    SUPERVISORD_CONF,
    new_password_env,
    running_env,
    running_supervisord,
    supervisord_user_args,
)
from shared.config import default_config_path, load_config, resolve_run_dir

CTL_EPILOG = """examples:
  draizer ctl status                 every program and its state
  draizer ctl tail risk              the last lines of a program's log (tail -f risk: follow it; Ctrl-C stops)
  draizer ctl restart detector       restart one program (the run goes on)
  draizer ctl --run-dir .run-testnet status
  draizer ctl help                   supervisorctl's own commands
  draizer ctl                        supervisorctl's interactive shell

The exit code is supervisorctl's (`status` exits 3 when a program is not running)."""


def _run_dir(config: Path | None, run_dir: Path | None) -> Path:
    if run_dir is not None:
        return run_dir.resolve()
    return resolve_run_dir(load_config(config or default_config_path()))


def ctl_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="draizer ctl",
        description="supervisorctl for the pipeline running in a run directory: the environment supervisord.conf "
        "needs is taken from that run's supervisord, so nothing has to be exported first",
        epilog=CTL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-dir", type=Path, default=None, help="the run directory (default: the config's)")
    p.add_argument("--config", type=Path, default=None,
                   help="the config whose runtime.run_dir to use (default: the embedded one, whose is ./.run)")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="supervisorctl's command and arguments")
    ns = p.parse_args(argv)
    env = running_env(_run_dir(ns.config, ns.run_dir))
    argv_out = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISORD_CONF), *ns.args]
    sys.stdout.flush()
    os.execve(sys.executable, argv_out, {**os.environ, **env})


def env_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="draizer env",
        description="print the exports supervisord.conf needs: those of the pipeline running in the run directory "
        "(with its socket password), or, when none runs there, fresh ones for starting supervisord by hand. "
        "`draizer ctl` needs none of this.",
    )
    p.add_argument("--config", type=Path, default=None, help="the config (default: the embedded one)")
    p.add_argument("--run-dir", type=Path, default=None, help="the run directory (default: the config's)")
    p.add_argument("--placement", choices=("processes", "fused", "single"), default=None,
                   help="for a supervisord started by hand (default: the config's)")
    ns = p.parse_args(argv)
    run_dir = _run_dir(ns.config, ns.run_dir)
    if running_supervisord(run_dir) is not None:
        env = running_env(run_dir)
        note = f"# the environment of the pipeline running in {run_dir}"
    else:
        from services.cli.run import pipeline_env

        config = ns.config or default_config_path()
        cfg = load_config(config)
        env = {**pipeline_env(cfg, config, run_dir, ns.placement or cfg.runtime.placement), **new_password_env()}
        user = " ".join(supervisord_user_args())
        note = (f"# no pipeline runs in {run_dir}: for starting one by hand: "
                f"supervisord -c {shlex.quote(str(SUPERVISORD_CONF))}{' ' + user if user else ''}")
    print(note)
    for k, v in env.items():
        print(f"export {k}={shlex.quote(v)}")
    return 0
