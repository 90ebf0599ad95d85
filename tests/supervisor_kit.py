"""What supervisord says of a running pipeline's programs, as an operator's ``supervisorctl status`` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def supervisor_status(run_dir: Path, cfg_path: Path, placement: str, n_feeds: int) -> dict[str, tuple[str, int]]:
    """program -> (state, pid; 0 when not running), from supervisorctl with the environment ``draizer run`` sets."""
    env = {"DRAIZER_RUN_DIR": str(run_dir), "DRAIZER_CONFIG": str(cfg_path), "DRAIZER_PYTHON": sys.executable,
           "DRAIZER_FEEDS": str(n_feeds), "DRAIZER_PLACEMENT": placement}
    out = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(REPO / "supervisord.conf"), "status"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=20, check=False,
    ).stdout
    result: dict[str, tuple[str, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else 0
            result[parts[0]] = (parts[1], pid)
    return result
