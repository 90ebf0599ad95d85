"""A paper run starts from a clean slate: the last run's state is moved aside, never deleted.

What moves, whatever of it exists: risk's state (its daily PnL, breakers, kill switch), the executor's order
journal and paper accounts (``state/``), the bridge's journal and checkpoint, every service's event log, and
the programs' logs. They go to ``<run dir>/previous/<UTC time>/`` under the same names (a path configured
outside the run directory under ``elsewhere/`` and its absolute path), so the next run's risk starts at a daily PnL
of zero and its logs hold only its own lines, while nothing of the last run is lost.

`draizer run --keep-state` skips this; live mode never does it (its state is money: positions, orders in
flight, the day's losses), and refuses to be asked to.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from services.bridge.checkpoint import checkpoint_path
from services.risk.service import state_path
from shared.config import Config
from shared.errors import ConfigError
from shared.runtime.event_log import log_dir

PREVIOUS = "previous"


def _configured(raw: str, default: Path, cwd: Path) -> Path:
    """A directory setting as the service resolves it: its default in the run directory when empty, else the
    path (a relative one from the programs' working directory, ``cwd``)."""
    return cwd / raw if raw else default


def state_paths(cfg: Config, run_dir: Path, cwd: Path) -> list[Path]:
    """Everything a run leaves that the next one would carry on from, each once (a path inside another listed
    one is left to it), the ones that exist only."""
    candidates = [
        run_dir / "state",  # risk.json, the order journal (orders/) and the paper accounts (paper/) by default
        state_path(cfg, run_dir),
        _configured(cfg.execution.journal_dir, run_dir / "state" / "orders", cwd),
        _configured(cfg.sinks.journal_dir, run_dir / "journal", cwd),
        checkpoint_path(run_dir).parent,
        log_dir(run_dir, "x").parent,
        *sorted(p for p in run_dir.glob("*.log*") if p.is_file()),
    ]
    resolved = [Path(os.path.abspath(p)) for p in candidates]
    out: list[Path] = []
    for p in resolved:
        if p in out or any(p.is_relative_to(q) for q in out) or not (p.exists() or p.is_symlink()):
            continue
        out = [q for q in out if not q.is_relative_to(p)] + [p]
    return out


def _target(previous: Path, run_dir: Path, p: Path) -> Path:
    if p.is_relative_to(run_dir):
        return previous / p.relative_to(run_dir)
    return previous / "elsewhere" / str(p).lstrip("/")


def prepare_state(cfg: Config, run_dir: Path, cwd: Path, keep_state: bool, fresh: bool) -> Path | None:
    """What `draizer run` does with the last run's state: a paper run moves it aside unless ``keep_state``; a live
    run keeps it, and refuses ``fresh`` (ConfigError). Where it went, or None when it stays (or there was none)."""
    if cfg.mode == "live":
        if fresh:
            raise ConfigError("--fresh: a live run always keeps its state (positions, orders in flight, the day's "
                              "losses, the kill switch); move files out of the run directory by hand if you must")
        return None
    return None if keep_state else move_aside(cfg, run_dir, cwd)


def move_aside(cfg: Config, run_dir: Path, cwd: Path, now: float | None = None) -> Path | None:
    """Move the last run's state into ``<run_dir>/previous/<UTC time>/``; that directory, or None when there was
    nothing to move. ConfigError naming the path when one cannot be moved (what moved already stays there)."""
    run_dir = Path(os.path.abspath(run_dir))
    paths = state_paths(cfg, run_dir, cwd)
    if not paths:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    previous = run_dir / PREVIOUS / stamp
    n = 1
    while previous.exists():  # two runs within a second
        previous = run_dir / PREVIOUS / f"{stamp}-{n}"
        n += 1
    for p in paths:
        target = _target(previous, run_dir, p)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(p, target)  # a rename on the same file system; a copy and delete across them
        except OSError as exc:
            raise ConfigError(f"{p}: cannot move the last run's state aside to {target} ({exc}); move it yourself "
                              "or pass --keep-state") from None
    return previous
