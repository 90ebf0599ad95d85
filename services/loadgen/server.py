"""The replayer: every venue's WebSocket port in one asyncio process, the tape sent at a fixed quote rate.

A timer wakes about every millisecond; ``rate`` × elapsed time says how many quotes of the tape are due (the
aggregate rate over all spot venues: the tape interleaves the venues slot by slot). For each spot venue,
the due quotes are a contiguous run of its pre-framed buffer, so a connection subscribed to every symbol
gets them as ONE ``transport.write`` of one slice; a connection subscribed to some symbols gets one write of
just those frames. Nothing is encoded on this path. When the tape runs out it starts over, after its ids are
re-stamped for the next loop (``VenueTape.restamp``), so ids only grow. A loop that falls more than
``MAX_BURST_S`` behind (a stalled process) skips ahead instead of bursting, and counts what it skipped.

Funding (perp venues) is pushed every ``sim.funding_push_interval_ms`` (1 s by default): the simulator's own
seeded funding model (``services/sim/perp.py``), marks at the tape's current common mid, frames encoded then.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from services.loadgen.frames import Tape, update_id
from services.loadgen.venues import Conn, VenueServer
from services.sim.perp import FundingModel
from shared.config import Config, venue_symbols
from shared.venues.declaration import load, need
from shared.venues.kinds import kind_of

TICK_S = 0.001
MAX_BURST_S = 0.05  # at most this much of the rate goes out in one wake-up


def listed_symbols(cfg: Config, venue_name: str) -> list[int]:
    venue = next(v for v in cfg.venues if v.name == venue_name)
    names = {s.name for s in venue_symbols(venue, cfg.symbols)}
    return [i for i, s in enumerate(cfg.symbols) if s.name in names]


class Replayer:
    """The WebSocket servers of every venue in ``cfg.sim.venues`` and the timer that feeds them."""

    def __init__(self, cfg: Config, tape: Tape, rate: float, *, seed: int | None = None) -> None:
        if rate < 0:
            raise ValueError("the quote rate cannot be negative")
        self.cfg = cfg
        self.tape = tape
        self.rate = rate
        specs = tape.prices.specs
        kinds = {v.name: v.kind for v in cfg.venues}
        self.servers: list[VenueServer] = []
        self.ports: dict[str, int] = {}
        self._wanted_ports: dict[str, int] = {}
        for sv in cfg.sim.venues:
            name = kinds.get(sv.venue)
            if name is None:
                raise ValueError(f"sim.venues: unknown venue {sv.venue!r}")
            server_class: type[VenueServer] = load(kind_of(name).sim.load_stream)
            self.servers.append(server_class(sv.venue, name, specs, listed_symbols(cfg, sv.venue)))
            self._wanted_ports[sv.venue] = sv.ws_port
        by_name = {s.name: s for s in self.servers}
        # Spot servers in the tape's venue order (a spot venue without a port still has its frames: unsent).
        self.spot: list[VenueServer | None] = [by_name.get(v.info.name) for v in tape.venues]
        self.perp = [s for s in self.servers if kind_of(s.kind).perp]
        # How each writes a funding rate (looked up once here, not on every push).
        perp_kinds = [kind_of(s.kind) for s in self.perp]
        self._rate_decimals = [need(k, k.funding_decimals, "funding-rate decimals") for k in perp_kinds]
        for s in self.servers:
            if kind_of(s.kind).spot and s not in self.spot:  # pragma: no cover - the tape covers every spot venue
                raise ValueError(f"{s.name}: a spot venue the tape does not cover")
        sim = cfg.sim if seed is None else msgspec.structs.replace(cfg.sim, seed=seed)
        self.funding = FundingModel(sim, len(specs))
        self.funding_interval_s = cfg.sim.funding_push_interval_ms / 1000
        self.cursor = 0  # next global quote of the tape
        self.loop = 0  # how many times the tape started over
        self.quotes = 0  # quotes advanced since the start
        self.skipped = 0
        self.funding_ticks = 0
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._start = 0.0
        self._due_total = 0
        self._max_burst = max(1, int(rate * MAX_BURST_S))
        self._next_funding = float("inf")

    # ----- life
    async def start(self, host: str) -> dict[str, int]:
        """Listen on every venue's port (0: any free one) and start the timer; the ports bound, by venue."""
        try:
            for s in self.servers:
                self.ports[s.name] = await s.start(host, self._wanted_ports[s.name])
        except BaseException:
            await self.stop()
            raise
        self.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._start = loop.time()
        self._next_funding = self._start if self.perp else float("inf")
        self._timer = loop.call_soon(self._tick)
        return dict(self.ports)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self.stopped_at = time.monotonic()
        for s in self.servers:
            await s.stop()

    def _tick(self) -> None:
        """One wake-up of the pacing timer: what is due goes out, then the next wake-up is booked. A timer
        callback, not a task sleeping in a loop: no future and no coroutine resumed per millisecond."""
        loop = self._loop
        assert loop is not None
        try:
            now = loop.time()
            target = int((now - self._start) * self.rate)
            due = target - self._due_total
            self._due_total = target
            if due > self._max_burst:
                self.skipped += due - self._max_burst
                due = self._max_burst
            if due > 0:
                self.advance(due)
            if now >= self._next_funding:
                self.push_funding()
                self._next_funding = max(self._next_funding + self.funding_interval_s, now)  # a stall skips
        finally:  # an error is the loop's to log; the replay goes on
            if self._timer is not None:
                self._timer = loop.call_at(loop.time() + TICK_S, self._tick)

    # ----- quotes
    def advance(self, n: int) -> None:
        """Send the next ``n`` quotes of the tape to their subscribers."""
        tape, total = self.tape, self.tape.n_quotes
        remaining = n
        gathered: dict[Conn, list[bytes]] | None = None  # only across a wrap: still one write per connection
        while remaining:
            if self.cursor == total:
                self.loop += 1
                tape.restamp(self.loop)  # what was sent before is a copy: only what follows has the new ids
                self.cursor = 0
            take = min(remaining, total - self.cursor)
            if take < remaining and gathered is None:
                gathered = {}
            self._emit(self.cursor, self.cursor + take, gathered)
            self.cursor += take
            remaining -= take
        if gathered:
            for conn, parts in gathered.items():
                conn.write(b"".join(parts))
        self.quotes += n

    def _emit(self, g0: int, g1: int, gathered: dict[Conn, list[bytes]] | None) -> None:
        """Quotes ``g0`` to ``g1`` to every subscriber: written at once, or added to ``gathered``."""
        tape = self.tape
        for v, server in enumerate(self.spot):
            if server is None or not server.conns:
                continue
            a, b = tape.local_index(v, g0), tape.local_index(v, g1)
            if a == b:
                continue
            vt = tape.venues[v]
            whole: bytes | None = None
            for conn in server.conns:
                if conn.paused or conn.closing():
                    if conn.paused:  # a full socket buffer: what it cannot take now is lost, and counted
                        server.dropped += b - a if conn.full else vt.count(a, b, conn.wanted)
                    continue
                if conn.full:
                    if whole is None:
                        whole = vt.span(a, b)
                    data, count = whole, b - a
                elif conn.subs:
                    data, count = vt.select(a, b, conn.wanted)
                    if not count:
                        continue
                else:
                    continue
                if gathered is None:
                    conn.write(data)
                else:
                    gathered.setdefault(conn, []).append(data)
                server.frames_sent += count

    def top(self, venue: str, symbol: int) -> tuple[int, int, int, int, int] | None:
        """(bid, bid qty, ask, ask qty, update id), in units, of the last quote sent for ``symbol`` on spot
        ``venue`` (before any was sent: the first one to come); None if the venue does not quote it."""
        p = self.tape.prices
        v = next((i for i, t in enumerate(self.tape.venues) if t.info.name == venue), None)
        if v is None or (v, symbol) not in p.slots:
            return None
        slot = p.slots.index((v, symbol))
        if self.cursor > slot:
            r, loop = (self.cursor - 1 - slot) // p.n_slots, self.loop
        elif self.loop > 0:
            r, loop = p.rounds - 1, self.loop - 1
        else:
            r, loop = 0, 0
        g = r * p.n_slots + slot
        return int(p.bid[g]), int(p.bid_qty[g]), int(p.ask[g]), int(p.ask_qty[g]), update_id(loop, r)

    # ----- funding
    def push_funding(self) -> None:
        """One funding interval: every rate steps once and every perp venue pushes to its subscribers."""
        self.funding.step()
        self.funding_ticks += 1
        p = self.tape.prices
        r = min(self.cursor // p.n_slots, p.rounds - 1)
        mids = p.mids[:, r].tolist()
        ms = time.time_ns() // 1_000_000
        for perp_index, server in enumerate(self.perp):
            if not server.conns:
                continue
            decimals = self._rate_decimals[perp_index]
            points = {s: self.funding.point(s, perp_index, decimals, mids[s], ms) for s in server.listed}
            server.push(points, ms, self.funding_ticks)

    # ----- stats
    def elapsed(self) -> float:
        if not self.started_at:
            return 0.0
        return (self.stopped_at or time.monotonic()) - self.started_at

    def stats(self) -> dict[str, Any]:
        elapsed = self.elapsed()
        return {
            "rate_asked": self.rate,
            "rate_achieved": round(self.quotes / elapsed, 1) if elapsed > 0 else 0.0,
            "elapsed_s": round(elapsed, 3),
            "quotes": self.quotes,
            "skipped": self.skipped,
            "loops": self.loop,
            "tape_quotes": self.tape.n_quotes,
            "funding_pushes": self.funding_ticks,
            "frames": {s.name: s.frames_sent for s in self.servers},
            "dropped": {s.name: s.dropped for s in self.servers},
            "connections": {s.name: len(s.conns) for s in self.servers},
        }
