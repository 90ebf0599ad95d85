"""The simulated venues: a spot venue (matching book, L2 depth books, streams, REST with orders) and a
perpetual venue (funding and mark price pushed; orders, positions and funding payments against the mark with a
spread: ``perp_account``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from services.sim.book import VenueBook
from services.sim.depth import DepthBook
from services.sim.dialect import Dialect
from services.sim.faults import FaultError
from services.sim.order_faults import OrderFault
from services.sim.perp import FundingModel, FundingPoint
from services.sim.perp_account import PerpBook
from services.sim.rate_limits import SimRateLimits
from services.sim.rest import VenueRest
from services.sim.rest_common import SimHooks, now_ms
from services.sim.rest_perp import PerpApi, PerpRest
from services.sim.streams import PerpStream, SpotStream
from services.sim.units import SymbolSpec
from services.sim.ws_api import UserStreams
from services.sim.ws_mexc_contract import contract_symbol
from shared.config import Config, SimVenue, Venue, venue_symbols
from shared.venues.declaration import load, need
from shared.venues.kinds import kind_of


def listed_symbols(venue: Venue, cfg: Config) -> list[int]:
    """Indices (into the configured symbols) of the symbols this venue lists."""
    names = {s.name for s in venue_symbols(venue, cfg.symbols)}
    return [i for i, s in enumerate(cfg.symbols) if s.name in names]


class SpotVenue:
    """One spot venue's matching book, depth books, market-data server and REST API."""

    def __init__(
        self, venue: Venue, sv: SimVenue, cfg: Config, specs: list[SymbolSpec], creds: dict[str, str], hooks: SimHooks,
        limits: SimRateLimits | None = None,
    ) -> None:
        """``limits``: the REST rate limits (the venue's documented ones if None)."""
        self.venue = venue
        self.kind = kind = kind_of(venue.kind)
        self.sim_venue = sv
        self.listed = listed_symbols(venue, cfg)
        # The kind's own classes, imported now (once per venue, at start).
        dialect: Dialect = load(need(kind, kind.sim.dialect, "simulator order API dialect"))()
        self.stream: SpotStream = load(kind.sim.stream)(venue.name, specs, self.listed, sv.max_connection_age_s)
        self.diff_intervals, self.partial_intervals = self.stream.diff_intervals, self.stream.partial_intervals
        rng = random.Random(f"depth:{cfg.sim.seed}:{venue.name}")  # its own stream: quotes stay as seeded
        sim = cfg.sim
        self.depth = [
            DepthBook(
                spec, levels=sim.depth_levels, gap_ticks=sim.level_gap_ticks, top_qty_usd=sim.top_qty_usd,
                intervals=self.diff_intervals, rng=rng,
            )
            for spec in specs
        ]
        self.book = VenueBook(
            specs,
            self.depth,
            venue.taker_fee,
            cfg.sim.starting_balance_usd,
            commission_in_base_on_buy=dialect.commission_in_base_on_buy,
            status_names=dialect.status_names,
        )
        listed = set(self.listed)
        self.book.index = {name: i for name, i in self.book.index.items() if i in listed}
        self._gaps: dict[int, set[int]] = {ms: set() for ms in self.diff_intervals}  # interval -> symbols
        self.rest = VenueRest(
            venue, dialect, self.book, self.depth, creds, sv.latency_ms, hooks, jitter_ms=sv.latency_jitter_ms,
            rng=random.Random(f"latency:{cfg.sim.seed}:{venue.name}"), limits=limits,
        )
        self.book.top_listeners.append(self.stream.publish)
        self.user_streams: UserStreams | None = None
        if kind.user_stream is not None:  # the venue's WS API carries the account's events
            self.user_streams = UserStreams(creds)
            self.stream.user_streams = self.user_streams
            self.book.listeners.append(self.user_streams.on_order_event)
        self.user_data: Any = None  # a listen-key venue's keys and private pushes (MEXC: user_mexc.MexcUserStreams)
        if kind.sim.user_data is not None:
            self.user_data = load(kind.sim.user_data)(creds)
            self.stream.private = self.user_data  # type: ignore[attr-defined]  # the kind's server serves it
            self.rest.user_data = self.user_data
            self.book.listeners.append(self.user_data.on_order_event)

    def flush(self, interval_ms: int) -> None:
        """One aggregation interval is over: push every symbol's pending diff (and Binance's partials)."""
        stream, gaps = self.stream, self._gaps[interval_ms]
        for s in self.listed:
            book = self.depth[s]
            if s in gaps:
                if book.skip_diff(interval_ms):  # lost: the ids move on without it
                    gaps.discard(s)
            elif not stream.has_diff_subscribers(s, interval_ms):
                book.skip_diff(interval_ms)  # nobody listens: keep the pending diff small
            else:
                diff = book.take_diff(interval_ms)
                if diff is not None:
                    stream.publish_diff(s, interval_ms, diff)
        if interval_ms in self.partial_intervals:
            stream.publish_partials(interval_ms, self.depth)

    def gap(self, symbol: int | None) -> None:
        for gaps in self._gaps.values():
            gaps.update(self.listed if symbol is None else (symbol,))

    def stats(self) -> dict[str, Any]:
        specs, faults = self.book.specs, self.rest.faults
        return {
            "venue": self.venue.name,
            "kind": self.venue.kind,
            "quotes": {specs[i].name: self.book.quotes[i] for i in self.listed},
            "frames": {specs[i].name: self.stream.frames[i] for i in self.listed},
            **self.stream.stats(),
            "orders": self.book.orders,
            "fills": self.book.fills,
            "rejects": self.book.rejects,
            "cancels": self.book.cancels,
            "order_faults": {"injected": dict(faults.injected), "triggered": dict(faults.triggered)},
            **self.rest.gate.counts,  # limited (429) and banned (418) answers
            "user_streams": self.user_streams.subscribers() if self.user_streams else 0,
            "user_events": self.user_streams.events if self.user_streams else 0,
            **(self.user_data.stats() if self.user_data is not None else {}),
        }


class PerpVenue:
    """One perpetual venue: funding and mark price pushed on a timer, a REST read of them, and (when its kind
    declares an order API) accounts that trade against the published mark and pay funding at its rate."""

    def __init__(
        self,
        venue: Venue,
        sv: SimVenue,
        cfg: Config,
        specs: list[SymbolSpec],
        perp_index: int,
        funding: FundingModel,
        mid: Callable[[int], float],
        hooks: SimHooks,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        """``perp_index``: this venue's place among the perp venues (its rate offset); ``mid(symbol)``:
        the spot model's common mid; ``credentials``: api key -> secret of the accounts it serves."""
        self.venue = venue
        self.kind = kind = kind_of(venue.kind)
        self.sim_venue = sv
        self.listed = listed_symbols(venue, cfg)
        self.perp_index = perp_index
        self.decimals = need(kind, kind.funding_decimals, "funding-rate decimals")
        self._funding = funding
        self._mid = mid
        self.stream: PerpStream = load(kind.sim.stream)(venue.name, specs, self.listed, sv.max_connection_age_s)
        self.names = {specs[i].name: i for i in self.listed} | {contract_symbol(specs[i]): i for i in self.listed}
        self.last: dict[int, FundingPoint] = {}
        self._gaps: set[int] = set()
        rest_class: type[PerpRest] = load(need(kind, kind.sim.funding_rest, "simulator funding REST server"))
        self.rest = rest_class(specs, self.listed, self.point, cfg.sim.funding_period_s, hooks, funding.pin)
        sim = cfg.sim
        self.book = PerpBook(specs, self.listed, self.mark, sv.spread_bps, venue.taker_fee, sim.starting_balance_usd)
        self.api: PerpApi | None = None
        if kind.sim.perp_orders is not None:
            self.api = load(kind.sim.perp_orders)(venue, self.book, dict(credentials or {}), self.stream)
            self.rest.apis.append(self.api)

    def inject_order_fault(self, fault: OrderFault) -> None:
        """Arm an order fault on the venue's order API, if it carries any (FaultError otherwise)."""
        inject = getattr(self.api, "inject_order_fault", None)
        if inject is None:
            raise FaultError(f"{self.venue.name!r}: its simulated order API carries no order faults")
        inject(fault)

    def mark(self, symbol: int) -> Decimal:
        """The mark price as published (its wire text, exact): what orders trade around and funding pays on."""
        return Decimal(self.point(symbol).mark_text)

    def settle_funding(self, at_ms: int) -> int:
        """Funding at the boundary ``at_ms``: every open position pays or receives at the rate and mark the
        venue last published. Returns how many positions paid."""
        paid = 0
        for s in self.listed:
            pt = self.point(s)
            paid += self.book.settle(s, Decimal(pt.mark_text), Decimal(pt.rate_text), at_ms)
        return paid

    def point(self, symbol: int) -> FundingPoint:
        """What was last pushed for ``symbol``, or the model's value now before the first push."""
        last = self.last.get(symbol)
        return last if last is not None else self._current(symbol, now_ms())

    def _current(self, symbol: int, ms: int) -> FundingPoint:
        return self._funding.point(symbol, self.perp_index, self.decimals, self._mid(symbol), ms)

    def push(self, tick: int) -> None:
        ms = now_ms()
        points = {s: self._current(s, ms) for s in self.listed}
        self.last.update(points)
        for s in self._gaps:
            points.pop(s, None)  # lost on the way: the model moved on regardless
        self._gaps.clear()
        self.stream.publish_funding(points, tick)

    def gap(self, symbol: int | None) -> None:
        self._gaps.update(self.listed if symbol is None else (symbol,))

    def stats(self) -> dict[str, Any]:
        return {
            "venue": self.venue.name,
            "kind": self.venue.kind,
            "frames": {self.stream.specs[i].name: self.stream.frames[i] for i in self.listed},
            **self.stream.stats(),
            "orders": self.book.orders,
            "fills": self.book.fills,
            "rejects": self.book.rejects,
            "funding_payments": self.book.funding_payments,
            "order_api_requests": self.api.requests if self.api is not None else 0,
        }


SimulatedVenue = SpotVenue | PerpVenue


def spot_only(venues: Sequence[SimulatedVenue]) -> list[SpotVenue]:
    return [v for v in venues if isinstance(v, SpotVenue)]
