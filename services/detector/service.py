"""Detector actor: market data in, opportunities out, for three strategies.

Each readiness callback drains every pending market-data batch into the price cache (tops, depth, funding),
then evaluates only what those updates touched, once each (coalescing: under load a symbol or a cycle is
evaluated once per drain, however many of its updates arrived):

- cross_exchange: the touched symbols across the spot venues (``cross.py``);
- triangular: the cycles through the touched symbols (``triangular.py``, cycles from ``cycles.py``);
- funding_rate: the touched symbols' spot–perpetual carry (``funding.py``).

Strategies are switched and tuned at runtime through the control socket (``strategies``, ``strategy``,
``reload``), without a restart; the kernels read their parameters from arrays updated in place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import zmq

from services.detector.carry_state import CarrySignals, follow
from services.detector.cycles import CycleTable, cycle_table
from services.detector.entry import ENABLE_CROSS, ENABLE_FUNDING, ENABLE_TRIANGULAR, DetectorArrays, evaluate
from services.detector.found import Found, LegMaker
from services.detector.params import StrategyParams
from shared.codec import Codec, market_data_codec, opportunity_codec
from shared.config import _check_semantics, load_config
from shared.errors import ConfigError
from shared.messages import (
    STRATEGY_CROSS,
    STRATEGY_FUNDING,
    STRATEGY_TRIANGULAR,
    Book,
    Command,
    Funding,
    MarketBatch,
    MarketData,
    Opportunity,
    Quote,
    Reply,
)
from shared.runtime.control_client import ControlError, request
from shared.runtime.host import ProcessContext
from shared.runtime.outlet import Outlet, SocketOutlet
from shared.runtime.service import MAX_DRAIN, Service

log = logging.getLogger(__name__)


class Detector(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("detector", ctx)
        reg = ctx.registry
        levels = max(v.feed.depth_levels for v in ctx.cfg.venues)
        # Every kernel array lives in a few arenas (entry.py): one Numba call per drain unboxes 5 arrays, where
        # four kernel calls unboxed ~100. The attributes below are numpy views of the same memory.
        self.arrays = a = DetectorArrays(reg, levels)
        self.bid, self.bid_qty, self.ask, self.ask_qty, self.ts = a.bid, a.bid_qty, a.ask, a.ask_qty, a.ts
        self.depth_px, self.depth_qty, self.depth_ts = a.depth_px, a.depth_qty, a.depth_ts
        self.funding_rate, self.funding_next_ms, self.mark, self.funding_ts = (
            a.funding_rate, a.funding_next_ms, a.mark, a.funding_ts)
        self.venue_now_ms = 0  # the venues' clock: the latest funding event time seen
        self.asset_usd = a.asset_usd
        self.tick = np.zeros(reg.n_symbols, dtype=np.int64)  # last update's stamps, per symbol
        self.pub = np.zeros(reg.n_symbols, dtype=np.int64)
        self.touched = a.touched
        self.is_touched = np.zeros(reg.n_symbols, dtype=np.bool_)
        # Flat memoryviews over the same memory for the per-quote writes in _ingest: a memoryview item write
        # costs ~20 ns where a 2-D numpy item write costs ~100 ns, and ingest is the detector's per-quote cost.
        self._n_symbols = reg.n_symbols
        self._bid_mv = memoryview(self.bid.reshape(-1))
        self._bid_qty_mv = memoryview(self.bid_qty.reshape(-1))
        self._ask_mv = memoryview(self.ask.reshape(-1))
        self._ask_qty_mv = memoryview(self.ask_qty.reshape(-1))
        self._ts_mv = memoryview(self.ts.reshape(-1))
        self._tick_mv = memoryview(self.tick)
        self._pub_mv = memoryview(self.pub)
        self._touched_mv = memoryview(self.touched)
        self._is_touched_mv = memoryview(self.is_touched)
        self.cross_out = a.cross_out
        self.funding_out = a.funding_out
        # Funding signal state per symbol (see funding.py).
        self.open_spot, self.open_perp, self.open_qty = a.open_spot, a.open_perp, a.open_qty
        self.open_settle_ms, self.last_funding_eval = a.open_settle_ms, a.last_funding_eval
        self.params = StrategyParams(ctx.cfg.strategies, ctx.cfg.capital)
        self._enabled = 0
        self._apply_params()
        self.legs = LegMaker(reg, self.asset_usd, self.cfg.strategies.funding_rate.perp_slippage_bps)
        self.cycles: CycleTable = cycle_table(ctx.cfg, reg)
        self._set_cycles(self.cycles)
        self._md: Codec[MarketData] = market_data_codec()
        self.opportunities: Outlet[Opportunity] = Outlet.unconnected("opportunities")
        # Ids unique across restarts and processes: a random 24-bit prefix, then a counter.
        self._next_id = (random.SystemRandom().getrandbits(24) << 32) | 1
        self._n_touched = 0
        self._stopping = False
        # Monotonic ns from the context's clock: a replay or backtest runs on the recording's, so quote ages (and
        # results) repeat exactly.
        self.now_ns: Callable[[], int] = ctx.clock.monotonic_ns
        self.n_quotes = 0
        self.n_books = 0
        self.n_funding = 0
        self.n_batches = 0
        self.n_evaluations = 0
        self.n_by_strategy = [0, 0, 0]  # opportunities per strategy (index = STRATEGY_*)
        self.n_malformed = 0
        self.n_dropped = 0
        self._detect_samples: list[int] = []
        self._sub: zmq.Socket[bytes] | None = None
        self._executor: object | None = None  # single placement: asked in process for its carries
        self._carry_task: asyncio.Task[None] | None = None
        self.carry_signals: CarrySignals | None = None
        # No carry signal before the executor has said which carries it holds (a restart must not signal a second
        # one on top of the first): the funding strategy is masked out until the first answer.
        self._carry_gate = ~0
        self._feeds_in_process = False  # single placement: batches arrive through on_batch, not a socket

    def _set_cycles(self, table: CycleTable) -> None:
        self.cycles = table
        a = self.arrays
        a.set_cycles(table)
        self._entry_buffers = (a.f.buffer, a.i.buffer, a.ci.buffer, a.cf.buffer, a.layout)
        self._epoch = 0
        self.tri_out = self.arrays.tri_out

    def _apply_params(self) -> None:
        """Copy the strategies' parameter arrays into the arena the entry reads (after every change)."""
        a, p = self.arrays, self.params
        a.p_cross[:] = p.cross
        a.p_tri[:] = p.triangular
        a.p_fund[:] = p.funding
        self._enabled = (
            (ENABLE_CROSS if p.enabled("cross_exchange") else 0)
            | (ENABLE_TRIANGULAR if p.enabled("triangular") else 0)
            | (ENABLE_FUNDING if p.enabled("funding_rate") else 0)
        )

    @property
    def enabled(self) -> bool:
        """Any strategy on (kept for the heartbeat gauge and tests)."""
        return not self._stopping and any(self.params.enabled(n) for n in self.params.settings)

    async def on_start(self) -> None:
        self.warm_up()
        log.info("%d triangular cycles on %d spot venues", len(self.cycles.cycles), len(self.registry.spot_venues))
        if not self.opportunities.connected:
            push = self.socket(zmq.PUSH)
            push.connect(self.ctx.endpoints.opportunities)
            self.opportunities = SocketOutlet("opportunities", push, opportunity_codec())
        if self._enabled & ENABLE_FUNDING and len(self.registry.perp_venues):
            signals = CarrySignals(self.registry, self.open_spot, self.open_perp, self.open_qty, self.open_settle_ms)
            signals.on_first_answer = self._carries_known
            self.carry_signals = signals
            self._carry_gate = ~ENABLE_FUNDING
            self._carry_task = asyncio.get_running_loop().create_task(follow(signals, self._ask_executor),
                                                                      name="carry-state")
        if self._feeds_in_process:
            return
        sub = self.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        for venue in self.registry.venue_names:
            sub.connect(self.ctx.endpoints.market_data(venue))
        self._sub = sub
        self.watch(sub, self._on_market_data)

    def restart_ids(self, first: int) -> None:
        """Number opportunities from ``first`` (a backtest: ids, and the client order ids made of them, repeat)."""
        self._next_id = first

    def warm_up(self) -> None:
        """Compile (or load from Numba's cache) every kernel before the first quote, through the real call
        path on empty books: nothing is found, nothing is emitted, no quote pays for compilation."""
        reg = self.registry
        if reg.n_symbols:
            self.touched[0] = 0
            self._n_touched = 1
            self.is_touched[0] = True
            self._evaluate(force=True)

    async def on_stop(self) -> None:
        self._stopping = True  # no new work while stopping ...
        if self._carry_task is not None:
            self._carry_task.cancel()
        if self._sub is not None:
            self._on_market_data()  # ... but what the feeds sent before they stopped is still counted

    def _carries_known(self) -> None:
        self._carry_gate = ~0
        log.info("the executor's carries are known: carry signals on")

    async def _ask_executor(self, cmd: Command) -> Reply:
        if self._executor is not None:
            reply = self._executor.on_command(cmd)  # type: ignore[attr-defined]
            if not isinstance(reply, Reply):
                raise ControlError(f"the executor in this process did not answer {cmd.cmd!r}")
            return reply
        return await asyncio.to_thread(request, self.ctx.endpoints.control("executor"), cmd.cmd, cmd.args, 5.0)

    def link_in_process(self, peers: dict[str, object]) -> None:
        self._executor = peers.get("Executor")
        self._feeds_in_process = "Feed" in peers
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
        """One batch straight from a feed handler (single placement, replay, benchmarks): ingest it and evaluate."""
        self._ingest(batch)
        self._evaluate()

    def on_final_batch(self, batch: MarketBatch) -> None:
        """What an in-process feed flushes as it stops: counted like the rest, never traded on (in the other
        placements a stopping feed's last batch reaches a detector that only counts too)."""
        self._ingest(batch)
        n, self._n_touched = self._n_touched, 0
        touched, is_touched = self._touched_mv, self._is_touched_mv
        for k in range(n):
            is_touched[touched[k]] = False

    def _ingest(self, batch: MarketBatch) -> None:
        touched, is_touched = self._touched_mv, self._is_touched_mv
        bid, bid_qty, ask, ask_qty, ts = self._bid_mv, self._bid_qty_mv, self._ask_mv, self._ask_qty_mv, self._ts_mv
        tick, pub = self._tick_mv, self._pub_mv
        n_symbols = self._n_symbols
        n_touched = self._n_touched
        n_quotes = 0
        self.n_batches += 1
        pub_ns = batch.pub_ns
        for q in batch.items:
            s = q.symbol
            if type(q) is Quote:
                k = q.venue * n_symbols + s
                bid[k] = q.bid
                bid_qty[k] = q.bid_qty
                ask[k] = q.ask
                ask_qty[k] = q.ask_qty
                ts[k] = q.tick_ns
                n_quotes += 1
            elif type(q) is Book:
                self._on_book(q)
            else:
                self._on_funding(q)  # type: ignore[arg-type]
            tick[s] = q.tick_ns
            pub[s] = pub_ns
            if not is_touched[s]:
                is_touched[s] = True
                touched[n_touched] = s
                n_touched += 1
        self.n_quotes += n_quotes
        self._n_touched = n_touched

    def _evaluate(self, force: bool = False) -> None:
        n_touched = self._n_touched
        if n_touched == 0:
            return
        self._n_touched = 0
        touched, is_touched = self._touched_mv, self._is_touched_mv
        for k in range(n_touched):  # a loop over memoryviews: numpy fancy indexing costs ~1 µs more here
            is_touched[touched[k]] = False
        if self._stopping and not force:
            return
        self.n_evaluations += n_touched
        self._epoch += 1
        f, i, ci, cf, lay = self._entry_buffers
        n_cross, n_tri, n_fund = evaluate(
            f, i, ci, cf, lay, n_touched, self.now_ns(), self.venue_now_ms, self._epoch,
            ENABLE_CROSS | ENABLE_TRIANGULAR | ENABLE_FUNDING if force else self._enabled & self._carry_gate,
        )
        if force:  # the warm-up compiles every path and must leave nothing behind
            self.last_funding_eval[:] = 0
            return
        if n_cross:
            self._emit(n_cross, self.cross_out, self.legs.cross)
        if n_tri:
            self._emit(n_tri, self.tri_out, lambda row: self.legs.triangular(row, self.cycles))
        if n_fund:
            self._emit(n_fund, self.funding_out, self.legs.funding)

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
        if f.event_ms > self.venue_now_ms:
            self.venue_now_ms = f.event_ms
        self.n_funding += 1

    # ----- opportunities out
    def _emit(self, rows: int, out: np.ndarray, make: Callable[[np.ndarray], Found]) -> None:
        for r in range(rows):
            self._send(make(out[r]))

    def _send(self, f: Found) -> None:
        detected = self.now_ns()
        tick_ns = max(int(self.tick[x]) for x in f.trigger_symbols)
        opp = Opportunity(
            id=self._next_id,
            strategy=f.strategy,
            action=f.action,
            symbol=f.symbol,
            legs=f.legs,
            notional_usd=f.notional_usd,
            spread_bps=f.spread_bps,
            expected_profit_usd=f.profit_usd,
            tick_ns=tick_ns,
            pub_ns=int(self.pub[f.symbol]),
            detected_ns=detected,
        )
        self._next_id += 1
        self.n_by_strategy[f.strategy] += 1
        self._detect_samples.append(detected - tick_ns)
        if not self.opportunities.send(opp):
            self.n_dropped += 1
        self.publish(opp)

    # ----- runtime control
    def on_command(self, cmd: Command) -> Reply | None:
        try:
            if cmd.cmd == "strategies":
                return Reply(ok=True, data=self._describe())
            if cmd.cmd == "strategy":
                return self._set_strategy(cmd.args)
            if cmd.cmd == "reload":
                return self._reload(cmd.args)
        except ConfigError as exc:
            return Reply(ok=False, error=str(exc))
        return None

    def _describe(self) -> dict[str, Any]:
        data = self.params.describe()
        data["triangular"]["cycles_active"] = len(self.cycles.cycles)
        data["funding_rate"]["open"] = {
            self.registry.symbol(s): self.registry.venue(int(self.open_perp[s]))
            for s in np.flatnonzero(self.open_perp >= 0)
        }
        return {"strategies": data}

    def _set_strategy(self, args: dict[str, Any]) -> Reply:
        unknown = sorted(set(args) - {"name", "enabled", "params"})
        if unknown:
            raise ConfigError(f"strategy: unknown argument(s) {unknown}; expected name, enabled, params")
        name = args.get("name")
        if name is None:
            raise ConfigError("strategy: 'name' is required")
        if not isinstance(name, str):
            raise ConfigError(f"strategy: 'name' must be a strategy name (text), got {_shown(name)}")
        enabled = args.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ConfigError(f"strategy: 'enabled' must be true or false, got {_shown(enabled)}")
        params = args.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError(f"strategy: 'params' must be a table of parameter values, got {_shown(params)}")

        def check(strategy: str, settings: Any) -> None:  # the config's cross-key rules (cycles' symbols)
            strategies = msgspec.structs.replace(self.cfg.strategies, **{strategy: settings})
            _check_semantics(msgspec.structs.replace(self.cfg, strategies=strategies))

        structural = self.params.update(name, enabled, params, check=check)
        self._apply_params()
        if structural:
            self._rebuild_cycles()
        log.info("strategy %s changed: enabled=%s params=%s", name, enabled, params)
        return Reply(ok=True, data=self._describe())

    def _reload(self, args: dict[str, Any]) -> Reply:
        """Re-read the config file; the strategy sections and capital apply now, anything else needs a restart."""
        unknown = sorted(set(args) - {"path"})
        if unknown:
            raise ConfigError(f"reload: unknown argument(s) {unknown}; expected path")
        path = args.get("path")
        if path is not None and not isinstance(path, str):
            raise ConfigError(f"reload: 'path' must be a file path (text), got {_shown(path)}")
        if path and "\0" in path:
            raise ConfigError(f"reload: 'path' contains a NUL byte: {_shown(path)}")
        path = path or os.environ.get("DRAIZER_CONFIG")
        if not path:
            raise ConfigError("reload: no config path (pass 'path' or set DRAIZER_CONFIG)")
        new = load_config(path)
        restart = [
            name for name in new.__struct_fields__
            if name not in ("strategies", "capital") and getattr(new, name) != getattr(self.cfg, name)
        ]
        if new.strategies.usd_assets != self.cfg.strategies.usd_assets:
            restart.append("strategies.usd_assets")
        cycles_changed = (new.strategies.triangular.cycles, new.strategies.triangular.discover) != (
            self.cfg.strategies.triangular.cycles, self.cfg.strategies.triangular.discover)
        self.params.apply(new.strategies, new.capital)
        self._apply_params()
        self.cfg = msgspec.structs.replace(self.cfg, strategies=new.strategies, capital=new.capital)
        if cycles_changed:
            self._rebuild_cycles()
        log.info("config reloaded from %s%s", path, f"; needs a restart for: {restart}" if restart else "")
        data = self._describe()
        data["needs_restart"] = restart
        return Reply(ok=True, data=data)

    def _rebuild_cycles(self) -> None:
        tri = self.params.settings["triangular"]
        strategies = msgspec.structs.replace(self.cfg.strategies, triangular=tri)
        self._set_cycles(cycle_table(msgspec.structs.replace(self.cfg, strategies=strategies), self.registry))
        log.info("%d triangular cycles after the change", len(self.cycles.cycles))

    # ----- health
    def counters(self) -> dict[str, int]:
        return {
            "quotes": self.n_quotes,
            "books": self.n_books,
            "funding": self.n_funding,
            "batches": self.n_batches,
            "evaluations": self.n_evaluations,
            "opportunities": sum(self.n_by_strategy),
            "opportunities.cross_exchange": self.n_by_strategy[STRATEGY_CROSS],
            "opportunities.triangular": self.n_by_strategy[STRATEGY_TRIANGULAR],
            "opportunities.funding_rate": self.n_by_strategy[STRATEGY_FUNDING],
            "malformed": self.n_malformed,
            "opportunities_dropped": self.n_dropped,
            "carry_signals_seeded": self.carry_signals.n_seeded if self.carry_signals else 0,
            "carry_signals_dropped": self.carry_signals.n_dropped if self.carry_signals else 0,
        }

    def gauges(self) -> dict[str, float]:
        g = {f"enabled.{name}": float(self.params.enabled(name)) for name in self.params.settings}
        g["enabled"] = float(self.enabled)
        g["cycles"] = float(len(self.cycles.cycles))
        g["pid"] = float(os.getpid())
        return g

    def take_latencies(self) -> dict[str, list[int]]:
        samples, self._detect_samples = self._detect_samples, []
        return {"tick_to_detect": samples[-512:]}


def _shown(value: object) -> str:
    """A command argument in an error message: its type and a bounded repr."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:77] + '...'}"
