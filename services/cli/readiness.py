"""When a started pipeline is ready to trade: every feed, the detector, risk and the executor report RUNNING.

Read from the bridge's shared memory only (the same snapshot the status line shows). A service counts only
when its heartbeat is fresh and its process is alive, so the last snapshot of an earlier run that was killed
(its services frozen at RUNNING) never passes for a new start.
"""

from __future__ import annotations

import os
from typing import Any

from shared.config import Config

FRESH_HEARTBEATS = 5  # a heartbeat older than this many intervals is a dead or stuck service's


def expected_services(cfg: Config) -> list[str]:
    """The services that must be up before the pipeline trades, in pipeline order."""
    return [*(f"feed.{v.name}" for v in cfg.venues), "detector", "risk", "executor"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _fresh(svc: dict[str, Any], max_age_s: float) -> bool:
    age = svc["heartbeat_age_s"]
    return age is not None and age <= max_age_s and bool(svc["pid"]) and _alive(svc["pid"])


def not_ready(cfg: Config, snapshot: dict[str, Any] | None, bridge: str = "no shared memory yet") -> list[str]:
    """What still keeps the pipeline from trading (empty when ready), one short phrase per service. ``bridge``:
    why there is no snapshot, when there is none (``StatusLine.waiting``)."""
    if snapshot is None:  # the bridge is not up: nothing of the others can be known yet
        return [f"bridge ({bridge})", *(f"{name} (not seen)" for name in expected_services(cfg))]
    max_age = max(1.0, FRESH_HEARTBEATS * cfg.runtime.heartbeat_interval_s)
    services = snapshot.get("services", {})
    waiting = []
    for name in expected_services(cfg):
        svc = services.get(name)
        if svc is None:
            waiting.append(f"{name} (not seen)")
        elif svc["state"] != "RUNNING":
            waiting.append(f"{name} ({svc['state']})")
        elif not _fresh(svc, max_age):
            waiting.append(f"{name} (no fresh heartbeat)")
    return waiting
