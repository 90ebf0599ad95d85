"""The one-line live status `draizer run` prints every second, from shared memory only."""

from __future__ import annotations

import time
from typing import Any

from shared.shm import ShmError, ShmFollower, shm_path, snapshot_json

SHORT = {"cross_exchange": "cross", "triangular": "tri", "funding_rate": "carry"}


class StatusLine:
    def __init__(self, instance: str) -> None:
        self.path = shm_path(instance)
        self._follower = ShmFollower(self.path)
        self._last_quotes: dict[str, int] = {}
        self._last_t = 0.0

    def read(self) -> dict[str, Any] | None:
        try:
            snap = self._follower.read()
        except ShmError:
            return None
        return None if snap is None else snapshot_json(snap, time.monotonic_ns())

    def render(self) -> str:
        d = self.read()
        if d is None:
            return "starting (no shared memory yet)"
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
        return (
            f"quotes {' '.join(rates)} | books {books or '-'} | funding {len(d['funding'])} | "
            f"opps {d['opportunities']}{f' ({kinds})' if kinds else ''} approved {d['approved']} "
            f"rejected {d['rejected']} | orders {orders} fills {d['fills']} | pnl {d['pnl_usd']:+.2f} USD | "
            f"tick->order p50 {lat.get('p50_us', 0):.0f}us p99 {lat.get('p99_us', 0):.0f}us"
        )
