"""Which run this process belongs to: counts and books are per run and survive restarts within it.

``draizer run`` names each run (``DRAIZER_SESSION``, passed by supervisord to every program), so a program
supervisord restarts continues its run's counts, while the next ``draizer run`` on the same run directory starts
from zero. A pipeline started some other way (supervisord by hand) falls back to the parent process's identity:
boot id, pid and start time, so a reused pid or a reboot never continues an old run.
"""

from __future__ import annotations

import calendar
import os
import secrets
import time
from pathlib import Path

SESSION_ENV = "DRAIZER_SESSION"


def new_session() -> str:
    """A fresh run name: its start time (readable in logs) and a random part."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def current_session() -> str:
    explicit = os.environ.get(SESSION_ENV)
    if explicit:
        return explicit
    parent = os.getppid()
    return f"{_boot_id()}:{parent}:{_start_ticks(parent)}"


def session_start_ms(session: str) -> int | None:
    """Wall clock (ms) a ``new_session`` name was made at; None for a name of another shape (the fallback)."""
    try:
        return int(calendar.timegm(time.strptime(session[:16], "%Y%m%dT%H%M%SZ"))) * 1000
    except ValueError:
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "-"
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else "-"
