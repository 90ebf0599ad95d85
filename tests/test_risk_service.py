"""The risk service over real ZeroMQ sockets: opportunities in, decisions and intents out; the executor's
VenueState/Execution/Alert events from a fake executor (sockets speaking our own codec, bound where the
executor binds); kill/resume forwarded to the executor's control socket; state surviving a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from services.risk.service import RiskEngine
from shared.codec import control_codec, event_codec, intent_codec, opportunity_codec
from shared.config import Config
from shared.messages import (
    ACTION_OPEN,
    OUTCOME_FILLED,
    OUTCOME_ORPHANED,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    TOPIC_OF,
    Alert,
    AssetDelta,
    Command,
    Event,
    Execution,
    Leg,
    Opportunity,
    OrderIntent,
    Reply,
    RiskDecision,
    Stats,
    VenueState,
)
from shared.registry import Registry
from shared.runtime.control_client import request
from shared.runtime.endpoints import Endpoints
from shared.runtime.host import serve
from shared.runtime.session import SESSION_ENV
from tests.conftest import eventually_async, make_config_dict, write_config

EXECUTOR_KILL_ANSWER = {"cancelled": 3, "open_orders": 0}


class FakeExecutor:
    """The executor's side of risk's sockets, plus the detector's opportunity PUSH and a SUB on risk's events."""

    def __init__(self, cfg: Config, run_dir: Path) -> None:
        self.ep = Endpoints(cfg, run_dir)
        self.reg = Registry(cfg)
        self.zctx = zmq.asyncio.Context()
        self.pub = self._sock(zmq.PUB, bind=self.ep.events("executor"))
        self.intents_pull = self._sock(zmq.PULL, bind=self.ep.intents)
        self.rep: zmq.asyncio.Socket | None = self._sock(zmq.REP, bind=self.ep.control("executor"))
        self.opps_push = self._sock(zmq.PUSH, connect=self.ep.opportunities)
        self.sub = self._sock(zmq.SUB, connect=self.ep.events("risk"))
        self.sub.setsockopt(zmq.SUBSCRIBE, b"ev.")
        self.events = event_codec()
        self.opps = opportunity_codec()
        self.intent_codec = intent_codec()
        self.control = control_codec()
        self.commands: list[str] = []  # every command but `booked` (risk asks for that once a second)
        self.session = "fake-run"
        self.booked: list[list[Any]] = []  # what it answers `booked` with (SessionBooks.since's executions)
        self.received: list[Event] = []
        self.intents: list[OrderIntent] = []
        self.next_id = 1
        self._tasks = [asyncio.ensure_future(f()) for f in (self._serve_control, self._read_events, self._read_intents)]

    def _sock(self, kind: int, bind: str = "", connect: str = "") -> zmq.asyncio.Socket:
        s = self.zctx.socket(kind)
        s.linger = 0
        if bind:
            s.bind(bind)
        else:
            s.connect(connect)
        return s

    async def _serve_control(self) -> None:
        assert self.rep is not None
        while True:
            cmd = self.control.decode(await self.rep.recv())
            assert isinstance(cmd, Command)
            if cmd.cmd == "booked":
                await self.rep.send(self.control.encode(Reply(ok=True, data=self.listing(cmd.args))))
                continue
            self.commands.append(cmd.cmd)
            data = EXECUTOR_KILL_ANSWER if cmd.cmd == "kill" else {"intake": "open"}
            await self.rep.send(self.control.encode(Reply(ok=True, data=data)))

    def listing(self, args: dict[str, Any]) -> dict[str, Any]:
        """The executor's answer to `booked`: its numbered executions after ``after``."""
        after = int(args.get("after", 0)) if args.get("session") == self.session else 0
        seq = self.booked[-1][0] if self.booked else 0
        return {"session": self.session, "seq": seq, "first": 1, "executions": [b for b in self.booked if b[0] > after]}

    def book(self, exe: Execution) -> None:
        """Number an execution as the executor does when it books one (before it publishes it, if it does)."""
        seq = len(self.booked) + 1
        self.booked.append([seq, exe.opportunity_id, exe.outcome, exe.pnl_usd,
                            [[d.venue, d.asset, d.delta] for d in exe.deltas]])

    def stop_answering(self) -> None:
        self._tasks[0].cancel()
        assert self.rep is not None
        self.rep.close()
        self.rep = None

    async def _read_events(self) -> None:
        while True:
            frames = await self.sub.recv_multipart()
            self.received.append(self.events.decode(frames[-1]))

    async def _read_intents(self) -> None:
        while True:
            self.intents.append(self.intent_codec.decode(await self.intents_pull.recv()))

    async def publish(self, event: Event) -> None:
        await self.pub.send_multipart([TOPIC_OF[type(event)], self.events.encode(event)])

    def venue_state(self, venue: str, **kw: Any) -> VenueState:
        fields: dict[str, Any] = {
            "venue": self.reg.venue_id[venue], "ts_ns": time.monotonic_ns(), "reachable": True,
            "balances": (("USDT", "100000.00000000"), ("BTC", "2.00000000")),
            "weight_1m": 1, "weight_limit_1m": 4800, "orders_10s": 0, "orders_limit_10s": 40,
            "orders_1d": 0, "orders_limit_1d": 128_000, "blocked_until_ms": 0, "open_orders": 0,
        }
        fields.update(kw)
        return VenueState(**fields)

    async def report_venues(self, risk: Risk) -> None:
        """Publish both venues' states until risk has them (a SUB joins a moment after it connects)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for venue in ("binance", "mexc"):
                await self.publish(self.venue_state(venue))
            venues = (await risk.ask("risk")).data["venues"]
            if {"binance", "mexc"} <= set(venues):
                return
        raise AssertionError("risk never took the VenueStates")

    async def opportunity(self, symbol: str = "BTCUSDT", qty: float = 0.01) -> int:
        oid = self.next_id
        self.next_id += 1
        s, b, m = self.reg.symbol_id[symbol], self.reg.venue_id["binance"], self.reg.venue_id["mexc"]
        now = time.monotonic_ns()
        legs = (Leg(b, s, SIDE_BUY, 97_000.0, qty, 1.0, now), Leg(m, s, SIDE_SELL, 97_200.0, qty, 1.0, now))
        opp = Opportunity(oid, STRATEGY_CROSS, ACTION_OPEN, s, legs, 970.0, 15.0, 1.0, now, now, now)
        await self.opps_push.send(self.opps.encode(opp))
        return oid

    async def decision(self, oid: int) -> str:
        def found() -> RiskDecision | None:
            return next((e for e in self.received if isinstance(e, RiskDecision) and e.opportunity.id == oid), None)

        decision: RiskDecision = await eventually_async(found, 20, f"risk's decision on opportunity {oid}")
        return decision.reason

    async def alert(self, kind: str) -> Alert:
        def found() -> Alert | None:
            return next((e for e in self.received if isinstance(e, Alert) and e.kind == kind), None)

        alert: Alert = await eventually_async(found, 20, f"a {kind} alert")
        return alert

    def execution(self, oid: int, pnl: float, outcome: str = OUTCOME_FILLED,
                  deltas: tuple[AssetDelta, ...] = ()) -> Execution:
        s, b, m = self.reg.symbol_id["BTCUSDT"], self.reg.venue_id["binance"], self.reg.venue_id["mexc"]
        now = time.monotonic_ns()
        return Execution(oid, s, b, m, 0.01, 0.01, 97_000.0, 97_200.0, 1.0, pnl, 970.0, outcome,
                         now, now, now, now, now, STRATEGY_CROSS, (), deltas, 0.0, "")

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.zctx.destroy(linger=0)


class Risk:
    """A RiskEngine under ``serve`` in this process, asked things over its real control socket."""

    def __init__(self, cfg: Config, endpoints: Endpoints) -> None:
        self.endpoint = endpoints.control("risk")
        self.server: asyncio.Future[int] = asyncio.ensure_future(serve(cfg, [RiskEngine]))

    async def ask(self, cmd: str, args: dict[str, Any] | None = None, timeout: float = 10.0) -> Reply:
        return await asyncio.to_thread(request, self.endpoint, cmd, args, timeout)

    async def stop(self) -> None:
        assert (await self.ask("shutdown")).ok
        assert await asyncio.wait_for(self.server, 30) == 0


async def until(risk: Risk, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Ask risk for its status until ``check`` holds (polling with a deadline); the status that passed."""
    deadline = time.monotonic() + 20
    while True:
        data = dict((await risk.ask("risk")).data)
        if check(data):
            return data
        assert time.monotonic() < deadline, f"timed out waiting for {what}: last status {data}"
        await asyncio.sleep(0.02)


def config(tmp_path: Path, run_dir: Path) -> Config:
    data = make_config_dict(run_dir, risk={"max_opportunity_age_ms": 10_000.0, "max_concurrent": 2},
                            runtime={"heartbeat_interval_s": 0.1})
    return write_config(tmp_path / "c.toml", data)


async def started(cfg: Config, fake: FakeExecutor) -> Risk:
    risk = Risk(cfg, fake.ep)

    def heard() -> bool:  # risk's heartbeat reached our SUB: its decisions will too
        return any(isinstance(e, Stats) and e.service == "risk" and e.state == "RUNNING" for e in fake.received)

    await eventually_async(heard, 30, "risk running and heard on its events socket")
    return risk


async def test_opportunities_in_decisions_and_intents_out_with_executor_events(tmp_path: Path, run_dir: Path) -> None:
    cfg = config(tmp_path, run_dir)
    fake = FakeExecutor(cfg, run_dir)
    risk = await started(cfg, fake)
    try:
        assert await fake.decision(await fake.opportunity()) == "balance_unknown"
        await fake.report_venues(risk)
        approved = await fake.opportunity()
        assert await fake.decision(approved) == "approved"
        await eventually_async(lambda: [i for i in fake.intents if i.opportunity.id == approved], 20, "the intent")
        assert await fake.decision(await fake.opportunity()) == "symbol_in_flight"
        assert await fake.decision(await fake.opportunity("ETHUSDT", qty=25.0)) == "insufficient_balance"

        deltas = (AssetDelta(0, "BTC", "0.01000000"), AssetDelta(0, "USDT", "-970.97000000"),
                  AssetDelta(1, "BTC", "-0.01000000"), AssetDelta(1, "USDT", "971.41460000"))
        await fake.publish(fake.execution(approved, -3.25, deltas=deltas))

        status = await until(risk, lambda d: d["in_flight"] == 0 and d["daily_pnl_usd"] == -3.25, "the booking")
        assert status["positions"] == {"binance": {"BTC": "0.01000000", "USDT": "-970.97000000"},
                                       "mexc": {"BTC": "-0.01000000", "USDT": "971.41460000"}}
        assert status["venues"]["binance"]["balances"]["USDT"] == "100000.00000000"
        assert await fake.decision(await fake.opportunity()) == "approved"  # the slot and symbol are free again

        await fake.publish(fake.venue_state("mexc", blocked_until_ms=time.time_ns() // 1_000_000 + 60_000))
        await until(risk, lambda d: d["venues"]["mexc"]["blocked_until_ms"] > 0, "the Retry-After block")
        assert await fake.decision(await fake.opportunity("ETHUSDT")) == "venue_blocked"
        counters = (await risk.ask("status")).data["counters"]
        assert counters["decision.approved"] == 2 and counters["decision.balance_unknown"] == 1
    finally:
        await risk.stop()
        await fake.close()


async def test_kill_halts_forwards_to_the_executor_and_resume_clears_both(tmp_path: Path, run_dir: Path) -> None:
    cfg = config(tmp_path, run_dir)
    fake = FakeExecutor(cfg, run_dir)
    risk = await started(cfg, fake)
    try:
        await fake.report_venues(risk)
        killed = await risk.ask("kill")
        assert killed.ok and killed.data["halted"] is True and killed.data["persisted"] is True
        assert killed.data["executor"] == EXECUTOR_KILL_ANSWER and fake.commands == ["kill"]
        alert = await fake.alert("kill_switch")
        assert alert.source == "risk" and alert.until_ms == 0
        assert await fake.decision(await fake.opportunity()) == "kill_switch"
        gauges = (await risk.ask("status")).data["gauges"]
        assert gauges["halted"] == 1.0

        resumed = await risk.ask("resume")
        assert resumed.ok and resumed.data["halted"] is False and resumed.data["cleared"] == ["kill_switch"]
        assert resumed.data["executor"] == {"intake": "open"} and fake.commands == ["kill", "resume"]
        assert await fake.decision(await fake.opportunity()) == "approved"

        # The executor gone: risk halts all the same and says why the cancel could not be confirmed.
        fake.stop_answering()
        started_at = time.monotonic()
        lonely = await risk.ask("kill")
        assert lonely.ok and lonely.data["halted"] is True
        assert str(lonely.data["executor"]).startswith("executor not answering")
        assert time.monotonic() - started_at < 3.0  # inside the HTTP API's 3 s wait for risk
        assert await fake.decision(await fake.opportunity("ETHUSDT")) == "kill_switch"
    finally:
        await risk.stop()
        await fake.close()


async def test_pnl_positions_and_breakers_survive_a_restart(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SESSION_ENV, "run-1")
    cfg = config(tmp_path, run_dir)
    fake = FakeExecutor(cfg, run_dir)
    risk = await started(cfg, fake)
    try:
        await fake.report_venues(risk)  # risk's SUB is joined: the executions below are not lost
        for exe in (fake.execution(50, -7.5, deltas=(AssetDelta(0, "BTC", "-0.00100000"),)),
                    fake.execution(51, -1.0, OUTCOME_ORPHANED)):
            fake.book(exe)
            await fake.publish(exe)
        await fake.alert("orphan")
        wind_down = await risk.ask("kill", {"persist": False, "reason": "end of run"})
        assert wind_down.data["persisted"] is False and wind_down.data["executor"] == EXECUTOR_KILL_ANSWER
        before = (await risk.ask("risk")).data
        assert before["breakers"]["orphan"]["open"] and before["daily_pnl_usd"] == -8.5
        assert before["kill_switch"] and not before["kill_persisted"] and before["session_pnl_usd"] == -8.5
        await risk.stop()
        assert (run_dir / "state" / "risk.json").exists()

        fake.received.clear()
        risk = await started(cfg, fake)  # a restart within the run: its PnL so far comes back
        after = (await risk.ask("risk", {"catch_up": True})).data
        assert after["daily_pnl_usd"] == -8.5 and after["session_pnl_usd"] == -8.5 and after["session"] == "run-1"
        assert after["executor_seq"] == 2 and after["catch_up"]["ok"]  # nothing booked twice
        assert after["kill_switch"] is False  # the wind-down halt ended with the process
        assert after["positions"] == {"binance": {"BTC": "-0.00100000"}}
        assert after["breakers"]["orphan"]["open"] and "opportunity 51 orphaned" in after["breakers"]["orphan"]["note"]
        assert await fake.decision(await fake.opportunity()) == "breaker_failure"
        gauges = (await risk.ask("status")).data["gauges"]
        assert gauges["breaker_failure"] == 1.0 and gauges["daily_pnl_usd"] == -8.5

        await risk.ask("resume")
        await risk.stop()
        monkeypatch.setenv(SESSION_ENV, "run-2")
        risk = await started(cfg, fake)
        again = (await risk.ask("risk")).data
        assert not again["breakers"]["orphan"]["open"]  # the resume was persisted too
        assert again["daily_pnl_usd"] == -8.5 and again["session_pnl_usd"] == 0.0  # a new run starts from zero
    finally:
        await risk.stop()
        await fake.close()


async def test_executions_the_events_socket_lost_are_booked_from_the_executors_list_once(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published while risk was down, or numbered and never published (the executor killed in between): risk books
    them from the executor's list; one it heard, or hears late, is never booked twice; all across a restart."""
    monkeypatch.setenv(SESSION_ENV, "run-1")
    cfg = config(tmp_path, run_dir)
    fake = FakeExecutor(cfg, run_dir)
    risk = await started(cfg, fake)
    try:
        await fake.report_venues(risk)
        heard = fake.execution(60, -1.0, deltas=(AssetDelta(0, "BTC", "0.001"),))
        fake.book(heard)
        await fake.publish(heard)
        await until(risk, lambda d: d["session_pnl_usd"] == -1.0, "the published execution booked")
        await risk.stop()  # the list may or may not have passed #1 yet: either way it is booked once

        lost = fake.execution(61, -2.0, deltas=(AssetDelta(0, "BTC", "0.002"),))
        fake.book(lost)
        await fake.publish(lost)  # nobody subscribed: gone
        risk = await started(cfg, fake)
        status = (await risk.ask("risk", {"catch_up": True})).data
        assert status["catch_up"] == {"ok": True, "error": ""}
        assert (status["session_pnl_usd"], status["daily_pnl_usd"], status["executor_seq"]) == (-3.0, -3.0, 2)
        assert status["positions"] == {"binance": {"BTC": "0.003"}}

        late = fake.execution(62, -4.0)
        fake.book(late)  # numbered; its publication comes after risk has listed it
        status = (await risk.ask("risk", {"catch_up": True})).data
        assert (status["session_pnl_usd"], status["executor_seq"]) == (-7.0, 3)
        await fake.publish(late)
        counters = await until_counters(risk, lambda c: c["duplicate_executions"] == 1, "the late one dropped")
        assert counters["caught_up"] == 2
        both = fake.execution(63, -0.5)
        fake.book(both)
        await fake.publish(both)
        status = await until(risk, lambda d: d["executor_seq"] == 4, "the list passing #4")
        assert status["session_pnl_usd"] == -7.5 and status["daily_pnl_usd"] == -7.5
        assert (await risk.ask("status")).data["counters"]["caught_up"] == 2
    finally:
        await risk.stop()
        await fake.close()


async def until_counters(risk: Risk, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        counters = dict((await risk.ask("status")).data["counters"])
        if check(counters):
            return counters
        assert time.monotonic() < deadline, f"timed out waiting for {what}: last counters {counters}"
        await asyncio.sleep(0.02)


async def test_a_corrupt_state_file_stops_the_start_naming_the_file(
    tmp_path: Path, run_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path, run_dir)
    path = run_dir / "state" / "risk.json"
    path.parent.mkdir()
    path.write_bytes(b'{"version": 1, "daily_pnl_usd": -12')  # torn by hand
    with caplog.at_level(logging.ERROR):
        assert await asyncio.wait_for(serve(cfg, [RiskEngine]), 30) == 1
    assert str(path) in caplog.text and "corrupt" in caplog.text
    assert path.read_bytes() == b'{"version": 1, "daily_pnl_usd": -12'  # left as it was: never reset
