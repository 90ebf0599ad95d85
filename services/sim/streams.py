"""What the simulated venues ask of a market-data server, whichever venue's wire format it speaks.

A venue kind's declaration names its server class (``Simulated.stream``); ``SpotVenue`` and ``PerpVenue``
build it from that path, always as ``cls(venue name, specs, listed symbols, max connection age)``, and talk
to it only through these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.sim.depth import DepthBook, DepthDiff
    from services.sim.faults import Fault
    from services.sim.market import SimQuote
    from services.sim.perp import FundingPoint
    from services.sim.units import SymbolSpec
    from services.sim.ws_api import UserStreams


class Stream(Protocol):
    port: int
    specs: list[SymbolSpec]
    frames: list[int]

    async def start(self, host: str, port: int) -> int: ...

    async def stop(self) -> None: ...

    def inject(self, fault: Fault) -> None: ...

    def stats(self) -> dict[str, object]: ...


class SpotStream(Stream, Protocol):
    diff_intervals: tuple[int, ...]  # ms: the depth diff streams' aggregation intervals
    partial_intervals: tuple[int, ...]  # ms: partial book streams' push intervals (() if the venue has none)
    user_streams: UserStreams | None  # the WS API's account events, on the same port (None: not served)

    def publish(self, q: SimQuote) -> None: ...

    def has_diff_subscribers(self, symbol: int, interval_ms: int) -> bool: ...

    def publish_diff(self, symbol: int, interval_ms: int, diff: DepthDiff) -> None: ...

    def publish_partials(self, interval_ms: int, books: Sequence[DepthBook]) -> None: ...


class PerpStream(Stream, Protocol):
    def publish_funding(self, points: Mapping[int, FundingPoint], tick: int) -> None: ...
