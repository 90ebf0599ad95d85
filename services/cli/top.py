"""`draizer top`: a live view of the engine, redrawn every --interval seconds from shared memory only.

The block is `draizer status`'s, under a header with rates (per second, between two redraws). It waits for
an instance that is not up yet, and keeps showing the last snapshot (marked) when the bridge has stopped.
Ctrl-C quits. --once prints one block without clearing the screen and exits (1 when there is nothing to show).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from services.cli.status import render, writer_fields
from shared.shm import ShmError, ShmFollower, ShmMissingError, shm_path, snapshot_json

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen


class Source:
    """The latest snapshot as ``draizer status --json`` data, through a ``ShmFollower``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._follower = ShmFollower(path)
        self.problem = ""

    def read(self) -> dict[str, Any] | None:
        try:
            snap = self._follower.read()
        except ShmMissingError:
            self.problem = f"waiting for the bridge (no {self.path})"
            return None
        except ShmError as exc:
            self.problem = str(exc)
            return None
        reader = self._follower.reader
        assert reader is not None
        if snap is None:
            self.problem = f"the bridge (pid {reader.writer_pid}) has not published a snapshot yet"
            return None
        data = snapshot_json(snap, time.monotonic_ns())
        data.update(writer_fields(reader))
        return data


class Rates:
    """Per-second rates of the main counters between two consecutive frames."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._last_t = 0.0

    def line(self, d: dict[str, Any], now: float) -> str:
        totals = {f"quotes {venue}": float(n) for venue, n in d["quotes"].items()}
        totals |= {
            "opportunities": d["opportunities"], "approved": d["approved"], "rejected": d["rejected"],
            "fills": d["fills"], "orders": sum(d["orders"].values()),
        }
        dt = now - self._last_t if self._last_t else 0.0
        parts = []
        for name, total in totals.items():
            prev = self._last.get(name)
            rate = f"{(total - prev) / dt:,.1f}/s" if dt > 0 and prev is not None else "-"
            parts.append(f"{name} {rate}")
        self._last, self._last_t = totals, now
        return "rates  " + "  ".join(parts)


def frame(d: dict[str, Any], rates: Rates, title: str, now: float) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime())
    return f"{title}  {stamp}  (Ctrl-C quits)\n{rates.line(d, now)}\n{render(d)}"


def fit(text: str) -> str:
    """Cut to the terminal's height and width, so a redraw never scrolls."""
    cols, rows = shutil.get_terminal_size((160, 50))
    return "\n".join(line[:cols] for line in text.splitlines()[: max(rows - 1, 5)])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer top", description=__doc__.splitlines()[0])
    p.add_argument("--interval", type=float, default=1.0, help="seconds between redraws (default 1)")
    p.add_argument("--once", action="store_true", help="print one block and exit")
    p.add_argument("--instance", default=os.environ.get("DRAIZER_INSTANCE", "demo"),
                   help="instance name from the config (default: $DRAIZER_INSTANCE, else demo)")
    p.add_argument("--path", help="shared-memory file to read instead of /dev/shm/draizer-<instance>")
    args = p.parse_args(argv)
    if args.interval <= 0:
        p.error("--interval must be > 0")
    path = Path(args.path) if args.path else shm_path(args.instance)
    title = f"draizer top: instance '{args.instance}'" if not args.path else f"draizer top: {path}"
    source, rates = Source(path), Rates()
    if args.once:
        d = source.read()
        if d is None:
            print(f"draizer top: {source.problem}", file=sys.stderr)
            return 1
        d["instance"] = args.instance if not args.path else None
        print(frame(d, rates, title, time.monotonic()))
        return 0
    try:
        while True:
            d = source.read()
            if d is None:
                text = f"{title}\n{source.problem}"
            else:
                d["instance"] = args.instance if not args.path else None
                text = frame(d, rates, title, time.monotonic())
            sys.stdout.write(CLEAR + fit(text) + "\n")
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
