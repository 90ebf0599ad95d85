"""Detector actor: quotes in, opportunities out.

Each readiness callback drains every pending market-data batch, writes the quotes into the price cache,
then runs the kernel once over the symbols those quotes touched (coalescing: under load a symbol is
evaluated once per drain, however many of its quotes arrived).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable

import numpy as np
import zmq

from services.detector import kernel
from shared.codec import Codec, market_data_codec, opportunity_codec
from shared.messages import (
    ACTION_OPEN,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    Book,
    Funding,
    Leg,
    MarketBatch,
    MarketData,
    Opportunity,
    Quote,
)
from shared.runtime.host import ProcessContext
from shared.runtime.outlet import Outlet, SocketOutlet
from shared.runtime.service import MAX_DRAIN, Service

log = logging.getLogger(__name__)


class Detector(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("detector", ctx)
        reg = ctx.registry
        shape = (reg.n_venues, reg.n_symbols)
        self.bid = np.zeros(shape, dtype=np.float64)
        self.bid_qty = np.zeros(shape, dtype=np.float64)
        self.ask = np.zeros(shape, dtype=np.float64)
        self.ask_qty = np.zeros(shape, dtype=np.float64)
        self.ts = np.zeros(shape, dtype=np.int64)
        levels = max(v.feed.depth_levels for v in ctx.cfg.venues)
        self.depth_px = np.zeros((*shape, 2, levels), dtype=np.float64)  # [venue, symbol, bid|ask, level]
        self.depth_qty = np.zeros((*shape, 2, levels), dtype=np.float64)
        self.depth_ts = np.zeros(shape, dtype=np.int64)
        self.funding_rate = np.zeros(shape, dtype=np.float64)
        self.funding_next_ms = np.zeros(shape, dtype=np.int64)
        self.mark = np.zeros(shape, dtype=np.float64)
        self.funding_ts = np.zeros(shape, dtype=np.int64)
        self.tick = np.zeros(reg.n_symbols, dtype=np.int64)  # triggering quote's stamps, per symbol
        self.pub = np.zeros(reg.n_symbols, dtype=np.int64)
        self.touched = np.zeros(reg.n_symbols, dtype=np.int64)
        self.is_touched = np.zeros(reg.n_symbols, dtype=np.bool_)
        self.out = np.zeros((reg.n_symbols, kernel.OUT_COLUMNS), dtype=np.float64)
        self.params = np.zeros(kernel.P_COUNT, dtype=np.float64)
        self.set_params_from_config()
        self._md: Codec[MarketData] = market_data_codec()
        self.opportunities: Outlet[Opportunity] = Outlet.unconnected("opportunities")
        # Ids unique across restarts and processes: a random 24-bit prefix, then a counter.
        self._next_id = (random.SystemRandom().getrandbits(24) << 32) | 1
        self._n_touched = 0
        # Monotonic ns; a replay swaps in its own clock so quote ages (and results) repeat exactly.
        self.clock: Callable[[], int] = time.monotonic_ns
        self.n_quotes = 0
        self.n_books = 0
        self.n_funding = 0
        self.n_batches = 0
        self.n_evaluations = 0
        self.n_opportunities = 0
        self.n_stale_or_old = 0
        self.n_malformed = 0
        self.n_dropped = 0
        self.n_unknown = 0
        self._detect_samples: list[int] = []
        self._sub: zmq.Socket[bytes] | None = None

    def set_params_from_config(self) -> None:
        strat = self.cfg.strategies.cross_exchange
        p = self.params
        p[kernel.P_MIN_SPREAD_BPS] = strat.min_spread_bps
        p[kernel.P_MIN_PROFIT_USD] = strat.min_profit_usd
        p[kernel.P_MAX_POSITION_USD] = strat.max_position_usd
        p[kernel.P_CAPITAL_USD] = self.cfg.capital.total_usd * strat.capital_allocation
        p[kernel.P_MAX_AGE_NS] = strat.max_price_age_ms * 1e6
        self.enabled = strat.enabled

    async def on_start(self) -> None:
        kernel.warm_up()
        if not self.opportunities.connected:
            push = self.socket(zmq.PUSH)
            push.connect(self.ctx.endpoints.opportunities)
            self.opportunities = SocketOutlet("opportunities", push, opportunity_codec())
        sub = self.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        for venue in self.registry.venue_names:
            sub.connect(self.ctx.endpoints.market_data(venue))
        self._sub = sub
        self.watch(sub, self._on_market_data)

    async def on_stop(self) -> None:
        self.enabled = False  # no new work while stopping ...
        self._on_market_data()  # ... but what the feeds sent before they stopped is still counted

    def link_in_process(self, peers: dict[str, object]) -> None:
        risk = peers.get("RiskEngine")
        if risk is not None:
            handler: Callable[[Opportunity], bool] = risk.on_opportunity  # type: ignore[attr-defined]
            self.opportunities = Outlet.direct("opportunities", handler)

    def _on_market_data(self) -> None:
        sub = self._sub
        assert sub is not None
        decode = self._md.decode
        for _ in range(MAX_DRAIN):
            try:
                _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except ValueError:  # not two frames
                self.n_malformed += 1
                continue
            try:
                batch = decode(payload)
            except Exception:
                self.n_malformed += 1
                if self.n_malformed == 1:
                    log.warning("malformed market-data frame (%d bytes); counting further ones", len(payload))
                continue
            self._ingest(batch)
        self._evaluate()

    def on_batch(self, batch: MarketBatch) -> None:
        """One batch straight from a feed handler (replay, benchmarks): ingest it and evaluate."""
        self._ingest(batch)
        self._evaluate()

    def _ingest(self, batch: MarketBatch) -> None:
        touched, is_touched = self.touched, self.is_touched
        n_touched = self._n_touched
        self.n_batches += 1
        pub_ns = batch.pub_ns
        for q in batch.items:
            kind = type(q)
            if kind is not Quote:
                if kind is Book:
                    self._on_book(q)  # type: ignore[arg-type]
                else:
                    self._on_funding(q)  # type: ignore[arg-type]
                continue
            v, s = q.venue, q.symbol
            self.bid[v, s] = q.bid
            self.bid_qty[v, s] = q.bid_qty
            self.ask[v, s] = q.ask
            self.ask_qty[v, s] = q.ask_qty
            self.ts[v, s] = q.tick_ns
            self.tick[s] = q.tick_ns
            self.pub[s] = pub_ns
            self.n_quotes += 1
            if not is_touched[s]:
                is_touched[s] = True
                touched[n_touched] = s
                n_touched += 1
        self._n_touched = n_touched

    def _evaluate(self) -> None:
        n_touched = self._n_touched
        if n_touched == 0:
            return
        self._n_touched = 0
        touched = self.touched
        self.is_touched[touched[:n_touched]] = False
        if not self.enabled:
            return
        self.n_evaluations += n_touched
        rows = kernel.detect_cross(
            touched,
            n_touched,
            self.bid,
            self.bid_qty,
            self.ask,
            self.ask_qty,
            self.ts,
            self.registry.taker_fee,
            self.registry.step_array,
            self.registry.min_notional_array,
            self.params,
            self.clock(),
            self.out,
        )
        if rows:
            self._emit(rows)

    def _on_book(self, b: Book) -> None:
        """Depth for sizing: the best ``depth_levels`` per side; absent levels are zero."""
        v, s = b.venue, b.symbol
        n = min(len(b.bid_px), self.depth_px.shape[3])
        self.depth_px[v, s, 0, :] = 0.0
        self.depth_qty[v, s, 0, :] = 0.0
        self.depth_px[v, s, 0, :n] = b.bid_px[:n]
        self.depth_qty[v, s, 0, :n] = b.bid_qty[:n]
        n = min(len(b.ask_px), self.depth_px.shape[3])
        self.depth_px[v, s, 1, :] = 0.0
        self.depth_qty[v, s, 1, :] = 0.0
        self.depth_px[v, s, 1, :n] = b.ask_px[:n]
        self.depth_qty[v, s, 1, :n] = b.ask_qty[:n]
        self.depth_ts[v, s] = b.tick_ns
        self.n_books += 1

    def _on_funding(self, f: Funding) -> None:
        v, s = f.venue, f.symbol
        self.funding_rate[v, s] = f.rate
        self.funding_next_ms[v, s] = f.next_funding_ms
        self.mark[v, s] = f.mark_price
        self.funding_ts[v, s] = f.tick_ns
        self.n_funding += 1

    def _emit(self, rows: int) -> None:
        detected = self.clock()
        out = self.out
        for r in range(rows):
            s = int(out[r, kernel.OUT_SYMBOL])
            buy, sell = int(out[r, kernel.OUT_BUY_VENUE]), int(out[r, kernel.OUT_SELL_VENUE])
            qty = float(out[r, kernel.OUT_QTY])
            buy_price = float(out[r, kernel.OUT_BUY_PRICE])
            opp = Opportunity(
                id=self._next_id,
                strategy=STRATEGY_CROSS,
                action=ACTION_OPEN,
                symbol=s,
                legs=(
                    Leg(buy, s, SIDE_BUY, buy_price, qty, 1.0, int(out[r, kernel.OUT_BUY_TS])),
                    Leg(sell, s, SIDE_SELL, float(out[r, kernel.OUT_SELL_PRICE]), qty, 1.0,
                        int(out[r, kernel.OUT_SELL_TS])),
                ),
                notional_usd=qty * buy_price,
                spread_bps=float(out[r, kernel.OUT_SPREAD_BPS]),
                expected_profit_usd=float(out[r, kernel.OUT_PROFIT]),
                tick_ns=int(self.tick[s]),
                pub_ns=int(self.pub[s]),
                detected_ns=detected,
            )
            self._next_id += 1
            self.n_opportunities += 1
            self._detect_samples.append(detected - opp.tick_ns)
            if not self.opportunities.send(opp):
                self.n_dropped += 1
            self.publish(opp)

    def counters(self) -> dict[str, int]:
        return {
            "quotes": self.n_quotes,
            "books": self.n_books,
            "funding": self.n_funding,
            "batches": self.n_batches,
            "evaluations": self.n_evaluations,
            "opportunities": self.n_opportunities,
            "malformed": self.n_malformed,
            "opportunities_dropped": self.n_dropped,
        }

    def gauges(self) -> dict[str, float]:
        return {"enabled": float(self.enabled), "pid": float(os.getpid())}

    def take_latencies(self) -> dict[str, list[int]]:
        samples, self._detect_samples = self._detect_samples, []
        return {"tick_to_detect": samples[-512:]}
