"""Driving feed handlers from recordings: one handler per recorded venue, and every file's records in one stream.

Shared by ``draizer replay`` (detection only) and ``draizer backtest`` (the whole engine), so both read a
recording exactly alike.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

import msgspec

from services.feed.handler import FeedHandler
from services.feed.recording import BINARY, LAST_IN_BUFFER, SNAPSHOT, TEXT, Record, Recording, split_snapshot
from shared.config import Config, venue_symbols
from shared.errors import ConfigError
from shared.messages import MarketItem
from shared.registry import Registry
from shared.venues import market_format


def handler_for(cfg: Config, header: dict[str, Any], registry: Registry, name_prefix: str) -> FeedHandler:
    """The feed handler a recording's venue runs, with the recording's own feed settings (they say what its frames
    mean; snapshots come from the file, so none is ever requested)."""
    name = header["venue"]
    if name not in registry.venue_id:
        raise ConfigError(f"recording of venue {name!r}: it is not in the config")
    venue_id = registry.venue_id[name]
    venue = cfg.venues[venue_id]
    if venue.kind != header["kind"]:
        raise ConfigError(f"recording of {name} is kind {header['kind']}, the config says {venue.kind}")
    fmt = market_format(venue.kind)
    wire = {fmt.wire_symbol(s.base, s.quote): registry.symbol_id[s.name] for s in venue_symbols(venue, cfg.symbols)}
    settings = msgspec.convert(header["feed"], type(venue.feed))
    return FeedHandler(venue_id, f"{name_prefix}.{name}", fmt, wire, settings, lambda _symbol: None)


def merged(recordings: list[Recording]) -> Iterator[tuple[int, Record]]:
    """(file index, record) for every record of every file in receive order; ties keep file order, then record
    order."""
    def keyed(index: int, rec: Recording) -> Iterator[tuple[int, int, int, Record]]:
        for n, r in enumerate(rec):
            yield r.tick_ns, index, n, r

    for _tick, i, _n, rec in heapq.merge(*(keyed(i, r) for i, r in enumerate(recordings))):
        yield i, rec


def take_record(h: FeedHandler, rec: Record) -> list[MarketItem] | None:
    """Hand one record to its handler, as the live feed would have: what the handler has to publish once the record
    ends a socket read (or is a snapshot); None while the read goes on (or for a record that carries no data)."""
    if rec.kind in (TEXT, BINARY):
        h.on_frame(rec.payload, rec.kind == BINARY, rec.tick_ns)
        if not rec.flags & LAST_IN_BUFFER:
            return None
    elif rec.kind == SNAPSHOT:
        symbol, body = split_snapshot(rec.payload)
        h.on_snapshot(symbol, body, rec.tick_ns)
    return h.take() or None
