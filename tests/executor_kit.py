"""Executor test kit: a still simulator (the test moves nothing, so it knows what each order meets), an
in-process Executor speaking to it over real HTTP/WebSocket, and intents built from the sim's own book."""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import msgspec

from services.executor.service import Executor
from services.sim.app import Simulator
from shared.config import Config, parse_config
from shared.messages import (
    ACTION_OPEN,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_TRIANGULAR,
    Execution,
    Leg,
    Opportunity,
    OrderIntent,
    VenueState,
)
from shared.registry import Registry
from shared.runtime.host import ProcessContext
from shared.venues.kinds import kind_of
from tests.conftest import eventually_async, make_config_dict
from tests.sim_kit import CREDS

ENV = {
    "DRAIZER_BINANCE_API_KEY": CREDS["binance"][0],
    "DRAIZER_BINANCE_API_SECRET": CREDS["binance"][1],
    "DRAIZER_MEXC_API_KEY": CREDS["mexc"][0],
    "DRAIZER_MEXC_API_SECRET": CREDS["mexc"][1],
    "DRAIZER_BINANCE_PERP_API_KEY": CREDS["binance_perp"][0],
    "DRAIZER_BINANCE_PERP_API_SECRET": CREDS["binance_perp"][1],
    "DRAIZER_MEXC_PERP_API_KEY": CREDS["mexc_perp"][0],
    "DRAIZER_MEXC_PERP_API_SECRET": CREDS["mexc_perp"][1],
}


@contextlib.contextmanager
def venue_keys() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def rig_config(run_dir: Path, sim: Simulator | None = None, limits: dict[str, dict[str, Any]] | None = None,
               **execution: Any) -> dict[str, Any]:
    data = make_config_dict(run_dir)
    data["execution"] = {"order_timeout_ms": 1000, "unwind_deadline_ms": 4000, **execution}
    for v in data["venues"]:
        if limits and v["name"] in limits:
            v["limits"] = limits[v["name"]]
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    if sim is not None:
        for v in data["venues"]:
            v["rest_url"] = sim.rest_url(v["name"])  # the perpetuals' too: the executor sets them up at start
            if kind_of(v["kind"]).spot and v.get("ws_api_url"):
                v["ws_api_url"] = sim.ws_api_url(v["name"])
            if kind_of(v["kind"]).listen_key_stream is not None:  # MEXC's user stream on (opt-in in the default)
                v["user_ws_url"] = sim.user_ws_url(v["name"])
    return data


def to_config(data: dict[str, Any]) -> Config:
    return parse_config(msgspec.toml.encode(data))


class Intents:
    """Opportunities priced from the still sim's own book, so the test knows what each leg meets."""

    def __init__(self, sim: Simulator, cfg: Config) -> None:
        self.sim = sim
        self.cfg = cfg
        self.reg = Registry(cfg)

    def cross(self, qty: str = "0.02", symbol: str = "BTCUSDT", buy: str = "binance", sell: str = "mexc",
              through_bps: float = 10.0) -> OrderIntent:
        """Buy on ``buy`` and sell on ``sell``, each limit ``through_bps`` beyond that venue's top (it fills)."""
        s = self.reg.symbol_id[symbol]
        tick = self.reg.tick[0][s]
        b_top = self.sim.top_of_book(buy, symbol)
        s_top = self.sim.top_of_book(sell, symbol)
        assert b_top is not None and s_top is not None
        k = Decimal(repr(through_bps)) / Decimal(10_000)
        buy_px = (Decimal(repr(b_top.ask)) * (1 + k) / tick).to_integral_value(ROUND_CEILING) * tick
        sell_px = (Decimal(repr(s_top.bid)) * (1 - k) / tick).to_integral_value(ROUND_FLOOR) * tick
        now = time.monotonic_ns()
        legs = (
            Leg(self.reg.venue_id[buy], s, SIDE_BUY, float(buy_px), float(qty), 1.0, now),
            Leg(self.reg.venue_id[sell], s, SIDE_SELL, float(sell_px), float(qty), 1.0, now),
        )
        opp = Opportunity(random.getrandbits(48), STRATEGY_CROSS, ACTION_OPEN, s, legs,
                          float(buy_px) * float(qty), 0.0, 0.0, now, now, now)
        return OrderIntent(opportunity=opp, decided_ns=now)


class Rig(Intents):
    """An in-process executor on the still sim; its events collected in order."""

    def __init__(self, sim: Simulator, ex: Executor, cfg: Config) -> None:
        super().__init__(sim, cfg)
        self.ex = ex
        self.events: list[Any] = []
        ex.local_listeners.append(self.events.append)

    def executions(self) -> list[Execution]:
        return [e for e in self.events if isinstance(e, Execution)]

    def execution(self, opp_id: int) -> Execution | None:
        return next((e for e in self.executions() if e.opportunity_id == opp_id), None)

    def venue_states(self, venue: str) -> list[VenueState]:
        v = self.reg.venue_id[venue]
        return [e for e in self.events if isinstance(e, VenueState) and e.venue == v]

    async def run(self, intent: OrderIntent, timeout: float = 20.0) -> Execution:
        assert self.ex.on_intent(intent), "executor refused the intent"
        opp_id = intent.opportunity.id
        return await eventually_async(lambda: self.execution(opp_id), timeout, f"execution {opp_id}")


@contextlib.asynccontextmanager
async def still_sim(run_dir: Path) -> AsyncIterator[Simulator]:
    sim_cfg = to_config(rig_config(run_dir))
    async with Simulator(sim_cfg, CREDS, emit_quotes=False) as sim:
        sim.emit(sim.model.n_slots)  # one quote for every (venue, symbol): books exist, nothing moves after
        yield sim


@contextlib.asynccontextmanager
async def executor_on(sim: Simulator, run_dir: Path, limits: dict[str, dict[str, Any]] | None = None,
                      **execution: Any) -> AsyncIterator[Rig]:
    cfg = to_config(rig_config(run_dir, sim, limits, **execution))
    with venue_keys():
        ex = Executor(ProcessContext(cfg, run_dir))
        ex.link_in_process({"RiskEngine": object()})  # intents come through on_intent, as in the fused placement
        rig = Rig(sim, ex, cfg)
        await ex.start()
        try:
            yield rig
        finally:
            await ex.stop()
            ex.close()


def sim_orders(sim: Simulator, venue: str) -> dict[str, Any]:
    """Every order the venue accepted for our account, by client order id."""
    return dict(sim.venue(venue).book._orders.get(CREDS[venue][0], {}))


def triangle(rig: Intents, venue: str = "binance", eth: str = "0.05", through_bps: float = 10.0) -> OrderIntent:
    """USDT → ETH → BTC → USDT on one venue: buy ETHUSDT, sell ETHBTC, sell the BTC that brings on BTCUSDT."""
    reg, sim = rig.reg, rig.sim
    v = reg.venue_id[venue]
    k = Decimal(repr(through_bps)) / Decimal(10_000)

    def limit(symbol: str, side: int) -> Decimal:
        top = sim.top_of_book(venue, symbol)
        assert top is not None
        tick = reg.tick[v][reg.symbol_id[symbol]]
        if side == SIDE_BUY:
            return (Decimal(repr(top.ask)) * (1 + k) / tick).to_integral_value(ROUND_CEILING) * tick
        return (Decimal(repr(top.bid)) * (1 - k) / tick).to_integral_value(ROUND_FLOOR) * tick

    eth_btc = limit("ETHBTC", SIDE_SELL)
    btc_step = reg.step[v][reg.symbol_id["BTCUSDT"]]
    btc = (Decimal(eth) * eth_btc / btc_step).to_integral_value(ROUND_FLOOR) * btc_step
    now = time.monotonic_ns()
    plan = (("ETHUSDT", SIDE_BUY, Decimal(eth)), ("ETHBTC", SIDE_SELL, Decimal(eth)), ("BTCUSDT", SIDE_SELL, btc))
    legs = tuple(Leg(v, reg.symbol_id[s], side, float(limit(s, side)), float(q), 1.0, now) for s, side, q in plan)
    opp = Opportunity(random.getrandbits(48), STRATEGY_TRIANGULAR, ACTION_OPEN, legs[0].symbol, legs,
                      legs[0].price * legs[0].qty, 0.0, 0.0, now, now, now)
    return OrderIntent(opportunity=opp, decided_ns=now)
