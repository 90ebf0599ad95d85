"""The web monitor's data: one JSON frame of everything the page shows, pushed as server-sent events.

A frame joins the bridge's shared memory (counts, PnL, latency, the latest opportunities, books, funding,
service health) with the tape (``tape.py``: executions, PnL by strategy, risk's breakers, rate budgets). It is
built at most once per ``interval_s`` whoever asks, so any number of open pages cost one shared-memory read
per interval and nothing at all on the engine's side. The page (``static/``) never polls: it holds one
``EventSource`` on ``/api/v2/stream``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from services.api.sources import ShmSource, Unavailable
from services.api.tape import Tape

INTERVAL_S = 0.5
OPPORTUNITIES = 25  # rows the page shows
EXECUTIONS = 25
RETRY_MS = 2000  # how soon a page reconnects after losing the stream (an API restart)

_encoder = msgspec.json.Encoder()


class Monitor:
    def __init__(self, source: ShmSource, tape: Tape | None, instance: str, mode: str,
                 interval_s: float = INTERVAL_S) -> None:
        self.source = source
        self.tape = tape
        self.instance = instance
        self.mode = mode
        self.interval_s = interval_s
        self.stopping: Callable[[], bool] = lambda: False  # the server is shutting down: end every stream
        self._frame = b""
        self._built = 0.0
        self.n_built = 0

    def frame(self) -> dict[str, Any]:
        """Everything the page shows, as plain data. Opportunity ids are strings: they use all 64 bits, past the
        integers a browser's JSON keeps exactly."""
        now_ms = time.time_ns() // 1_000_000
        out: dict[str, Any] = {"instance": self.instance, "mode": self.mode, "now_ms": now_ms}
        try:
            v = self.source.read()
        except Unavailable as exc:
            out |= {"available": False, "detail": str(exc)}
        else:
            d = v.data
            out |= {
                "available": True,
                "seq": v.seq,
                "writer_pid": v.writer_pid,
                "writer_alive": v.writer_alive,
                "snapshot_age_s": d["snapshot_age_s"],
                "totals": {k: d[k] for k in ("opportunities", "approved", "rejected", "fills", "pnl_usd", "fees_usd")}
                | {"executions": d["executions"], "rejections_by_reason": d["rejections_by_reason"],
                   "opportunities_by_strategy": d["opportunities_by_strategy"], "orders": d["orders"]},
                "opportunities": [{**o, "id": str(o["id"])} for o in reversed(d["recent"][-OPPORTUNITIES:])],
                "latency": d["latency"],
                "feeds": feeds(d),
                "funding": d["funding"],
                "services": {n: {"state": s["state"], "heartbeat_age_s": s["heartbeat_age_s"]}
                             for n, s in d["services"].items()},
            }
        if self.tape is not None:
            tape = out["tape"] = self.tape.view(EXECUTIONS)
            for e in tape["executions"]:
                e["opportunity_id"] = str(e["opportunity_id"])
        return out

    def encoded(self) -> bytes:
        """The latest frame as JSON, rebuilt when older than half an interval (shared by every stream)."""
        now = time.monotonic()
        if not self._frame or now - self._built >= self.interval_s / 2:
            self._frame = _encoder.encode(self.frame())
            self._built = now
            self.n_built += 1
        return self._frame

    async def stream(self) -> AsyncIterator[bytes]:
        """Server-sent events: a frame now, then one per interval until the server stops. A client that leaves
        ends it too: Starlette cancels the response when the connection reports the disconnect."""
        yield f"retry: {RETRY_MS}\n\n".encode()
        n = 0
        while not self.stopping():
            n += 1
            yield b"id: %d\nevent: frame\ndata: %s\n\n" % (n, self.encoded())
            await asyncio.sleep(self.interval_s)


def feeds(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per venue: its feed's state and heartbeat age, quotes parsed, books live and stale."""
    out: dict[str, dict[str, Any]] = {}
    for name, s in d["services"].items():
        kind, _, venue = name.partition(".")
        if kind != "feed" or not venue:
            continue
        books = d["books"].get(venue, {"live": 0, "stale": 0, "stale_symbols": []})
        out[venue] = {"state": s["state"], "heartbeat_age_s": s["heartbeat_age_s"],
                      "quotes": d["quotes"].get(venue), "funding_updates": s["counters"].get("funding"), **books}
    return out
