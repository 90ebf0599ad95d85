"""Simulated Binance USD-M futures market-data WebSocket: ``<s>@markPrice@1s`` and ``<s>@markPrice``.

Paths: the routed ``/market/stream?streams=...`` (which carries markPrice on the venue), ``/stream?streams=``
and raw ``/ws/<stream>``; control frames, the 5 messages/s rule and the lifetime as on spot. The venue
pings every 3 minutes and waits 10 for the pong. ``@1s`` pushes every funding tick, the plain stream
every third (the venue's 3 s).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import picows

from services.sim.perp import FundingPoint
from services.sim.units import SymbolSpec
from services.sim.ws_binance import BinanceStreamServer
from shared.venues.binance.constants import COMBINED_PATH, FUTURES_ROUTED_PATH, MARK_PRICE_SUFFIX

MARK_1S = "mark@1s"
MARK_3S = "mark@3s"
SLOW_EVERY = 3  # funding ticks per plain <s>@markPrice push
PLAIN_MARK_SUFFIX = MARK_PRICE_SUFFIX.removesuffix("@1s")


class BinanceFuturesStreamServer(BinanceStreamServer):
    ping_interval_s = 180.0
    pong_timeout_s = 600.0
    paths = (FUTURES_ROUTED_PATH, COMBINED_PATH)

    def __init__(
        self, venue: str, specs: Sequence[SymbolSpec], listed: Sequence[int], max_connection_age_s: float = 86_400.0
    ) -> None:
        super().__init__(venue, specs, max_connection_age_s)
        index: dict[str, tuple[int, str]] = {}
        for i in listed:
            s = specs[i].name.lower()
            index[s + MARK_PRICE_SUFFIX] = (i, MARK_1S)
            index[s + PLAIN_MARK_SUFFIX] = (i, MARK_3S)
        self.stream_index = index
        self._fast = self.topic(MARK_1S)
        self._slow = self.topic(MARK_3S)

    def malformed_frame(self) -> tuple[picows.WSMsgType, bytes]:
        return picows.WSMsgType.TEXT, b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUp'

    def publish_funding(self, points: Mapping[int, FundingPoint], tick: int) -> None:
        slow = tick % SLOW_EVERY == 0
        now = time.time_ns() // 1_000_000
        for s, pt in points.items():
            fast_subs, slow_subs = self._fast[s], self._slow[s] if slow else {}
            if not fast_subs and not slow_subs:
                continue
            data = (
                f'{{"e":"markPriceUpdate","E":{now},"s":"{self.specs[s].name}","p":"{pt.mark_text}",'
                f'"i":"{pt.index_text}","P":"{pt.index_text}","r":"{pt.rate_text}","T":{pt.next_funding_ms}}}'
            )
            sent = self.send_event(fast_subs, data) + (self.send_event(slow_subs, data) if slow_subs else 0)
            self.frames[s] += sent
