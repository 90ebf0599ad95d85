"""The one-line live status `draizer run` prints every second, from shared memory only.

It shows this run's numbers and no other's: given the run's session, a snapshot is shown only once the file's
writer (the bridge) is of that session; until then the line says it waits for this run's bridge (the file an
earlier run left behind holds that run's final numbers). When approvals stop it begins with ``HALTED``, the
reason and the seconds left (``shared/halt.py``).
"""

from __future__ import annotations

import time
from typing import Any

from shared.halt import halt_text
from shared.shm import ShmError, ShmFollower, session_tag, shm_path, snapshot_json

SHORT = {"cross_exchange": "cross", "triangular": "tri", "funding_rate": "carry"}
WAITING_FOR_BRIDGE = "waiting for this run's bridge"


class StatusLine:
    def __init__(self, instance: str, session: str | None = None) -> None:
        self.path = shm_path(instance)
        self.session = session_tag(session) if session is not None else None
        self._follower = ShmFollower(self.path)
        self._last_quotes: dict[str, int] = {}
        self._last_t = 0.0
        self.waiting = "no shared memory yet"  # why read() has nothing, in words

    def read(self) -> dict[str, Any] | None:
        """This run's latest snapshot as JSON data; None (and ``waiting`` says why) while there is none."""
        try:
            snap = self._follower.read()
        except ShmError:
            self.waiting = "no shared memory yet"
            return None
        writer = self._follower.writer
        if self.session is not None and (writer is None or writer.session != self.session):
            self.waiting = WAITING_FOR_BRIDGE  # an earlier run's file: its numbers are not this run's
            return None
        if snap is None:
            self.waiting = "the bridge has not published yet"
            return None
        return snapshot_json(snap, time.monotonic_ns())

    def render(self, final: bool = False) -> str:
        """The line; ``final``: the run's last, read after the pipeline stopped."""
        d = self.read()
        if d is None:
            return f"starting ({self.waiting})"
        now = time.monotonic()
        dt = now - self._last_t if self._last_t else 0.0
        rates = []
        for venue, total in d["quotes"].items():
            prev = self._last_quotes.get(venue, total)
            rates.append(f"{venue} {(total - prev) / dt:,.0f}/s" if dt > 0 else f"{venue} -")
        self._last_quotes, self._last_t = dict(d["quotes"]), now
        books = " ".join(
            f"{venue} {b['live']}" + (f"/{b['stale']} stale" if b["stale"] else "") for venue, b in d["books"].items()
        )
        lat = d["latency"].get("tick_to_order", {})
        orders = sum(d["orders"].values())
        kinds = " ".join(f"{SHORT.get(k, k)} {n}" for k, n in d["opportunities_by_strategy"].items())
        # The final line is read after the pipeline stopped: nothing is halted then, it is stopped (the settlement
        # above it says how often breakers halted trading).
        halted = None if final else halt_text(d["halt"], time.time_ns() // 1_000_000)
        return (
            (f"{halted} | " if halted else "")
            + f"quotes {' '.join(rates)} | books {books or '-'} | funding {len(d['funding'])} | "
            f"opps {d['opportunities']}{f' ({kinds})' if kinds else ''} approved {d['approved']} "
            f"rejected {d['rejected']} | orders {orders} fills {d['fills']} | pnl {d['pnl_usd']:+.2f} USD | "
            f"tick->order p50 {lat.get('p50_us', 0):.0f}us p99 {lat.get('p99_us', 0):.0f}us"
        )
