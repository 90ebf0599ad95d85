"""User-stream test kit: a started VenueClient on the still sim, a collector of a stream's reports, a taker buy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from services.executor.venue_client import VenueClient
from services.sim.app import Simulator
from shared.messages import SIDE_BUY
from shared.registry import Registry
from tests.sim_kit import DEADLINE_S, top


class _Report(Protocol):
    @property
    def client_order_id(self) -> str: ...


R = TypeVar("R", bound=_Report)


class Reports(Generic[R]):
    """What a user stream delivered (``on_report``), and its gaps (``on_gap``)."""

    def __init__(self) -> None:
        self.reports: list[R] = []
        self.gaps = 0

    def __call__(self, r: R) -> None:
        self.reports.append(r)

    def gap(self) -> None:
        self.gaps += 1

    def of(self, cid: str) -> list[R]:
        return [r for r in self.reports if r.client_order_id == cid]


@contextlib.asynccontextmanager
async def client_on(sim: Simulator, name: str, **fields: Any) -> AsyncIterator[VenueClient]:
    """``name``'s client against the sim (its REST URL and ``fields`` replaced in the venue's config), started."""
    venue = next(v for v in sim.cfg.venues if v.name == name)
    venue = msgspec.structs.replace(venue, rest_url=sim.rest_url(name), **fields)
    c = VenueClient(venue, Registry(sim.cfg), 5.0)
    await asyncio.wait_for(c.start(), DEADLINE_S)
    try:
        yield c
    finally:
        await c.close()


async def buy(sim: Simulator, c: VenueClient, cid: str, qty: str = "0.00200") -> None:
    """A BTCUSDT buy at the venue's best ask: it fills."""
    _, _, ask, _ = top(sim, c.name)
    a = await asyncio.wait_for(c.send_order(c.registry.symbol_id["BTCUSDT"], SIDE_BUY, qty, ask, cid), DEADLINE_S)
    assert a.kind == "ok", a
