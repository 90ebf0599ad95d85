"""The detector process's runtime control over real sockets: strategies switched, tuned and reloaded while it
runs, with market data in on its SUB socket and opportunities out on its PUSH socket."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from services.detector.service import Detector
from shared.codec import market_data_codec, opportunity_codec
from shared.config import Config
from shared.messages import STRATEGY_CROSS, MarketBatch, Opportunity, Quote, Reply
from shared.registry import Registry
from shared.runtime.control_client import ControlError, request
from shared.runtime.endpoints import Endpoints
from shared.runtime.host import serve
from tests.conftest import make_config_dict, write_config

REPO = Path(__file__).resolve().parents[1]


class Rig:
    """A running detector with a fake feed (PUB per venue) and risk's end of the opportunity socket (PULL)."""

    def __init__(self, cfg: Config, run_dir: Path) -> None:
        self.cfg = cfg
        self.endpoints = Endpoints(cfg, run_dir)
        self.reg = Registry(cfg)
        self.zctx = zmq.asyncio.Context()
        self.pubs = {}
        for venue in ("binance", "mexc"):
            pub = self.zctx.socket(zmq.PUB)
            pub.linger = 0
            pub.bind(self.endpoints.market_data(venue))
            self.pubs[venue] = pub
        self.pull = self.zctx.socket(zmq.PULL)
        self.pull.linger = 0
        self.pull.bind(self.endpoints.opportunities)
        self.md = market_data_codec()
        self.opps = opportunity_codec()

    async def publish_dislocation(self, symbol: str = "BTCUSDT", ask: float = 97_000.0, bid: float = 97_200.0) -> None:
        """Binance offers below MEXC's bid by ~20 bps: a cross-exchange opportunity net of fees."""
        s = self.reg.symbol_id[symbol]
        now = time.monotonic_ns()
        b, m = self.reg.venue_id["binance"], self.reg.venue_id["mexc"]
        await self.pubs["binance"].send_multipart(
            [b"q", self.md.encode(MarketBatch(now, [Quote(b, s, ask - 10, 1.0, ask, 1.0, 1, now)]))])
        await self.pubs["mexc"].send_multipart(
            [b"q", self.md.encode(MarketBatch(now, [Quote(m, s, bid, 1.0, bid + 10, 1.0, 1, now)]))])

    async def next_cross(self, timeout: float) -> Opportunity | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.pull.poll(50):
                opp = self.opps.decode(await self.pull.recv())
                if opp.strategy == STRATEGY_CROSS:
                    return opp
            else:
                await self.publish_dislocation()
        return None

    async def ask(self, cmd: str, args: dict[str, Any] | None = None) -> Reply:
        return await asyncio.to_thread(request, self.endpoints.control("detector"), cmd, args, 10.0)

    async def evaluations(self) -> int:
        return int((await self.ask("status")).data["counters"]["evaluations"])

    def close(self) -> None:
        self.zctx.destroy(linger=0)


async def start(tmp_path: Path, run_dir: Path) -> tuple[Rig, asyncio.Task[int], Path]:
    path = tmp_path / "c.toml"
    cfg = write_config(path, make_config_dict(run_dir))
    rig = Rig(cfg, run_dir)
    server = asyncio.ensure_future(serve(cfg, [Detector]))
    return rig, server, path


async def stop(rig: Rig, server: asyncio.Task[int]) -> None:
    await rig.ask("shutdown")
    assert await asyncio.wait_for(server, 30) == 0
    rig.close()


async def quiet_after_update(rig: Rig) -> bool:
    """Publish the dislocation until the detector has evaluated it; True if no cross opportunity came out."""
    before = await rig.evaluations()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and await rig.evaluations() <= before + 2:
        await rig.publish_dislocation()
        await asyncio.sleep(0.02)
    assert await rig.evaluations() > before + 2, "the detector never evaluated the update"
    while await rig.pull.poll(100):
        if rig.opps.decode(await rig.pull.recv()).strategy == STRATEGY_CROSS:
            return False
    return True


async def test_strategies_are_switched_and_tuned_at_runtime_and_bad_changes_are_refused(
    tmp_path: Path, run_dir: Path
) -> None:
    rig, server, _ = await start(tmp_path, run_dir)
    try:
        assert await rig.next_cross(60) is not None, "no opportunity from a 20 bps dislocation"
        listed = (await rig.ask("strategies")).data["strategies"]
        assert set(listed) == {"cross_exchange", "triangular", "funding_rate"}
        assert listed["cross_exchange"]["enabled"] and listed["cross_exchange"]["params"]["min_spread_bps"] == 5.0

        off = await rig.ask("strategy", {"name": "cross_exchange", "enabled": False})
        assert off.ok and off.data["strategies"]["cross_exchange"]["enabled"] is False
        assert await quiet_after_update(rig)

        on = await rig.ask("strategy", {"name": "cross_exchange", "enabled": True, "params": {"min_spread_bps": 50}})
        assert on.ok and on.data["strategies"]["cross_exchange"]["params"]["min_spread_bps"] == 50
        assert await quiet_after_update(rig)  # 20 bps no longer clears 50

        bad_params = {"min_spread_bps": -1, "min_profit_usd": 0}
        bad = await rig.ask("strategy", {"name": "cross_exchange", "params": bad_params})
        assert not bad.ok and "min_spread_bps" in bad.error
        unknown = await rig.ask("strategy", {"name": "cross_exchange", "params": {"min_sprad_bps": 1}})
        assert not unknown.ok and "min_sprad_bps" in unknown.error
        nameless = await rig.ask("strategy", {"name": "arbitrage"})
        assert not nameless.ok and "unknown strategy" in nameless.error
        kept = (await rig.ask("strategies")).data["strategies"]["cross_exchange"]["params"]
        assert kept["min_spread_bps"] == 50 and kept["min_profit_usd"] == 0.05  # the refused change left nothing

        assert (await rig.ask("strategy", {"name": "cross_exchange", "params": {"min_spread_bps": 5}})).ok
        assert await rig.next_cross(30) is not None
    finally:
        await stop(rig, server)


async def test_reload_applies_the_strategy_sections_and_names_what_needs_a_restart(
    tmp_path: Path, run_dir: Path
) -> None:
    rig, server, path = await start(tmp_path, run_dir)
    try:
        data = msgspec.toml.decode(path.read_bytes())
        data["strategies"]["cross_exchange"]["enabled"] = False
        data["strategies"]["triangular"]["discover"] = False
        data["strategies"]["triangular"]["cycles"] = [["BTCUSDT", "ETHBTC", "ETHUSDT"]]
        data["risk"]["max_concurrent"] = 7
        edited = tmp_path / "edited.toml"
        edited.write_bytes(msgspec.toml.encode(data))
        reply = await rig.ask("reload", {"path": str(edited)})
        assert reply.ok, reply.error
        assert reply.data["strategies"]["cross_exchange"]["enabled"] is False
        assert reply.data["strategies"]["triangular"]["cycles_active"] == 4  # one triangle, 2 venues × 2 ways
        assert reply.data["needs_restart"] == ["risk"]
        assert await quiet_after_update(rig)

        broken = tmp_path / "broken.toml"
        broken.write_text(path.read_text().replace("min_spread_bps = 5.0", "min_spread_bps = -5.0"))
        refused = await rig.ask("reload", {"path": str(broken)})
        assert not refused.ok and "min_spread_bps" in refused.error
        assert (await rig.ask("strategies")).data["strategies"]["cross_exchange"]["enabled"] is False

        # The CLI speaks the same commands.
        env = {**os.environ, "DRAIZER_CONFIG": str(path), "DRAIZER_RUN_DIR": str(run_dir)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli.main", "strategy", "enable", "cross_exchange", "--json",
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["strategies"]["cross_exchange"]["enabled"] is True
        assert await rig.next_cross(30) is not None
    finally:
        await stop(rig, server)


async def test_bad_arguments_are_answered_with_an_error_and_the_detector_keeps_running(
    tmp_path: Path, run_dir: Path
) -> None:
    rig, server, path = await start(tmp_path, run_dir)

    async def refused(cmd: str, args: dict[str, Any], *names: str) -> None:
        try:
            reply = await asyncio.to_thread(request, rig.endpoints.control("detector"), cmd, args, 5.0)
        except ControlError as exc:
            raise AssertionError(f"{cmd} {args!r} got no answer: {exc}") from None
        assert not reply.ok, f"{cmd} {args!r} was accepted"
        for name in names:
            assert name in reply.error, f"{cmd} {args!r}: {reply.error!r} does not name {name!r}"

    try:
        before = (await rig.ask("strategies")).data["strategies"]
        await refused("reload", {"path": 123}, "'path'", "int")
        await refused("reload", {"path": ["a.toml"]}, "'path'", "list")
        await refused("reload", {"path": {"file": "a.toml"}}, "'path'", "dict")
        await refused("reload", {"path": "a\0b.toml"}, "'path'", "NUL")
        await refused("reload", {"path": str(path), "pth": 1}, "pth")
        await refused("reload", {"path": str(tmp_path)}, str(tmp_path))  # a directory: cannot read
        await refused("strategy", {"name": 5}, "'name'", "int")
        await refused("strategy", {"name": ["cross_exchange"]}, "'name'", "list")
        await refused("strategy", {"enabled": True}, "'name'")
        await refused("strategy", {"name": "cross_exchange", "enabled": "yes"}, "'enabled'")
        await refused("strategy", {"name": "cross_exchange", "params": [1, 2]}, "'params'", "list")
        await refused("strategy", {"name": "cross_exchange", "params": "min_spread_bps=1"}, "'params'", "str")
        await refused("strategy", {"name": "cross_exchange", "params": 0}, "'params'", "int")
        await refused("strategy", {"name": "cross_exchange", "params": {1: 2, "min_spread_bps": 1.0}},
                      "parameter names")
        await refused("strategy", {"name": "cross_exchange", "params": {"min_spread_bps": "5"}},
                      "$.strategies.cross_exchange.min_spread_bps", "str")
        await refused("strategy", {"name": "cross_exchange", "params": {"min_spread_bps": {"x": 1}}},
                      "$.strategies.cross_exchange.min_spread_bps")
        await refused("strategy", {"name": "cross_exchange", "params": {"enabled": 1}},
                      "$.strategies.cross_exchange.enabled")
        await refused("strategy", {"name": "triangular", "params": {"discover": "no"}},
                      "$.strategies.triangular.discover")
        await refused("strategy", {"name": "triangular", "params": {"cycles": "BTCUSDT"}},
                      "$.strategies.triangular.cycles")
        await refused("strategy", {"name": "triangular", "params": {"cycles": [["BTCUSDT", "ZZZUSDT", "ETHUSDT"]]}},
                      "strategies.triangular.cycles[0]", "ZZZUSDT")
        await refused("strategy", {"name": "triangular", "params": {"cycles": [["BTCUSDT", "BTCUSDT", "BTCUSDT"]]}},
                      "strategies.triangular.cycles[0]", "triangle")
        for value in (math.inf, -math.inf, math.nan, 1e308):
            await refused("strategy", {"name": "cross_exchange", "params": {"min_profit_usd": 1.0,
                                                                            "min_spread_bps": value}},
                          "$.strategies.cross_exchange.min_spread_bps")
            await refused("strategy", {"name": "funding_rate", "params": {"max_position_usd": value}},
                          "$.strategies.funding_rate.max_position_usd")

        assert (await rig.ask("strategies")).data["strategies"] == before  # every refusal left everything as it was
        assert (await rig.ask("status")).data["state"] == "RUNNING"
        reloaded = await rig.ask("reload", {"path": str(path)})  # and good commands still work
        assert reloaded.ok and reloaded.data["needs_restart"] == [], reloaded.error

        # The CLI's TOML scalars carry inf and nan: refused whole, the key named, exit status 1.
        env = {**os.environ, "DRAIZER_CONFIG": str(path), "DRAIZER_RUN_DIR": str(run_dir)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli.main", "strategy", "set", "cross_exchange", "min_profit_usd=1",
            "min_spread_bps=inf", cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1, (out, err)
        assert b"$.strategies.cross_exchange.min_spread_bps" in out, out
        assert (await rig.ask("strategies")).data["strategies"] == before
    finally:
        await stop(rig, server)
