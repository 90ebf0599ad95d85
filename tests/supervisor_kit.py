"""What supervisord says of a running pipeline's programs, as an operator's ``supervisorctl status`` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.cli.supervisor_env import SUPERVISORD_CONF, running_env, running_supervisord


def supervisor_status(run_dir: Path, cfg_path: Path, placement: str, n_feeds: int) -> dict[str, tuple[str, int]]:
    """program -> (state, pid; 0 when not running), from supervisorctl with the environment of the supervisord
    running in ``run_dir`` (as ``draizer ctl status`` runs it: the socket's password is that run's). ``cfg_path`` is
    kept for the callers; the placement and feed count are checked against the running supervisord's."""
    if running_supervisord(run_dir) is None:
        return {}  # not up yet (or gone): nothing runs, as supervisorctl without a server would say
    env = running_env(run_dir)
    assert (env["DRAIZER_PLACEMENT"], env["DRAIZER_FEEDS"]) == (placement, str(n_feeds)), env
    out = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISORD_CONF), "status"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=20, check=False,
    ).stdout
    result: dict[str, tuple[str, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else 0
            result[parts[0]] = (parts[1], pid)
    return result
