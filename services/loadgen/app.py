"""The load source as one object: the tape built, the replayer's WebSocket ports and the acceptors' REST ports.

``LoadGen(cfg, rate=R)``, ``await lg.start()`` (binds every port of ``cfg.sim.venues``; 0 means any free
one, and ``lg.ports`` says which), ``lg.stats()``, ``await lg.stop()``. ``python -m services.loadgen`` runs
exactly this in its own process; tests may run it in theirs.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from services.loadgen.acceptor import AcceptorServer, Arrivals, VenueOrders
from services.loadgen.frames import Tape, build_tape
from services.loadgen.prices import generate
from services.loadgen.server import Replayer, listed_symbols
from shared.config import Config
from shared.venues.kinds import kind_of

log = logging.getLogger(__name__)

DEFAULT_TAPE_QUOTES = 200_000  # ~13 MB of frames per spot venue; loops every 2 s at 100k quotes/s


def make_tape(cfg: Config, n_quotes: int = DEFAULT_TAPE_QUOTES, *, seed: int | None = None,
              dislocation: float | None = None) -> Tape:
    """The tape ``LoadGen`` replays for these arguments (the same arguments always give the same quotes)."""
    return build_tape(generate(cfg, n_quotes, seed=seed, dislocation_probability=dislocation))


class LoadGen:
    def __init__(self, cfg: Config, rate: float, *, seed: int | None = None, dislocation: float | None = None,
                 tape_quotes: int = DEFAULT_TAPE_QUOTES) -> None:
        self.cfg = cfg
        self.tape = make_tape(cfg, tape_quotes, seed=seed, dislocation=dislocation)
        self.replayer = Replayer(cfg, self.tape, rate, seed=seed)
        self.arrivals = Arrivals()
        by_name = {v.name: v for v in cfg.venues}
        self.acceptors: list[AcceptorServer] = []
        self._rest_ports: dict[str, int] = {}
        for sv in cfg.sim.venues:
            venue = by_name[sv.venue]
            if kind_of(venue.kind).spot:
                orders = VenueOrders(venue, self.tape.prices.specs, listed_symbols(cfg, venue.name),
                                     self.replayer.top, self.arrivals, self.stats)
                self.acceptors.append(AcceptorServer(orders))
                self._rest_ports[venue.name] = sv.rest_port
        self.ports: dict[str, dict[str, int]] = {}

    async def start(self) -> dict[str, dict[str, int]]:
        """Listen everywhere and start replaying; {venue: {"ws": port, "rest": port}} (perp venues: ws only)."""
        host = self.cfg.sim.host
        gc.collect()
        gc.freeze()  # the tape's lists are long-lived: keep them out of every later collection
        try:
            for acc in self.acceptors:
                name = acc.orders.venue.name
                self.ports.setdefault(name, {})["rest"] = await acc.start(host, self._rest_ports[name])
            for name, port in (await self.replayer.start(host)).items():
                self.ports.setdefault(name, {})["ws"] = port
        except BaseException:
            await self.stop()
            raise
        log.info("loadgen listening: %s", self.ports)
        return self.ports

    async def stop(self) -> None:
        await self.replayer.stop()
        for acc in self.acceptors:
            await acc.stop()

    def stats(self) -> dict[str, Any]:
        return {**self.replayer.stats(), "orders": {a.orders.venue.name: self.arrivals.counts.get(
            a.orders.venue.name, 0) for a in self.acceptors}}
