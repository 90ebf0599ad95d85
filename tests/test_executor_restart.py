"""kill -9 the executor process in the middle of an execution; after a restart the journal and the venue agree,
the execution is settled (its open leg queried, the imbalance unwound) and no order is ever sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import zmq

from services.executor.order_journal import OrderJournal
from shared.codec import event_codec, intent_codec
from shared.messages import SIDE_BUY, TOPIC_EXECUTION, Execution, OrderIntent
from shared.runtime.endpoints import Endpoints
from tests.conftest import eventually_async, write_config
from tests.executor_kit import ENV, Intents, rig_config, sim_orders, still_sim, to_config
from tests.sim_kit import CREDS

REPO = Path(__file__).resolve().parents[1]


def start_executor(cfg_path: Path) -> subprocess.Popen[bytes]:
    """Its log goes to executor.log next to the config (read it when this test fails)."""
    env = {**os.environ, **ENV, "DRAIZER_LOG_LEVEL": "INFO"}
    with open(cfg_path.parent / "executor.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "services.cli.main", "service", "executor", "--config",
                                 str(cfg_path)], cwd=REPO, env=env, stdout=log, stderr=log)


async def test_kill_9_mid_execution_then_restart_settles_it_without_resending(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim:
        data = rig_config(run_dir, sim, order_timeout_ms=1000, unwind_deadline_ms=4000)
        cfg = write_config(run_dir / "executor.toml", data)
        endpoints = Endpoints(cfg, run_dir)
        zctx = zmq.Context()
        sub = zctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, TOPIC_EXECUTION)
        sub.linger = 0
        sub.connect(endpoints.events("executor"))
        push = zctx.socket(zmq.PUSH)
        push.linger = 0
        push.setsockopt(zmq.IMMEDIATE, 1)  # queue only once the executor has bound: it must not age in a pipe
        push.connect(endpoints.intents)
        rig = Intents(sim, to_config(data))
        journal_dir = run_dir / "state" / "orders"
        proc = start_executor(run_dir / "executor.toml")
        try:
            # The mexc leg is held open by the venue for 8 s: the executor dies while it waits for it.
            sim.inject_order_fault("mexc", "slow", count=1, seconds=8.0)
            intent = rig.cross()
            opp_id = intent.opportunity.id
            await eventually_async(lambda: _try_send(push, intent_codec().encode(_fresh(intent))), 30,
                                   "intent accepted by the executor socket")
            await eventually_async(lambda: sim.venue("mexc").book.open_orders(CREDS["mexc"][0]), 30,
                                   "the mexc leg resting on the venue")
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)  # the sim runs on this loop: never block it
            state = OrderJournal.load(journal_dir)
            assert opp_id in state.open_executions  # it died mid-execution
            journaled = set(state.orders)
            before = {v: set(sim_orders(sim, v)) for v in ("binance", "mexc")}
            assert journaled >= before["binance"] | before["mexc"]  # journaled before sent

            proc = start_executor(run_dir / "executor.toml")
            exe = await eventually_async(lambda: _receive_execution(sub, opp_id), 60, "the settled execution")
            assert exe.note == "reconciled after a restart"
            assert exe.outcome in ("unwound", "filled", "missed")
            # no order sent twice: the legs went out once, only corrections are new
            after = {v: sim_orders(sim, v) for v in ("binance", "mexc")}
            leg_ids = {f.client_order_id for f in exe.legs if f.role == 0}
            for v in ("binance", "mexc"):
                assert {c for c in after[v] if c in leg_ids} == {c for c in before[v] if c in leg_ids}
            # the journal and the venue agree on every order's final state
            for f in exe.legs:
                venue_order = after[rig.reg.venue(f.venue)].get(f.client_order_id)
                if venue_order is not None:
                    assert str(venue_order.executed.normalize()) == str(Decimal(f.filled_qty).normalize()), f
            signed = sum((Decimal(f.filled_qty) * (1 if f.side == SIDE_BUY else -1) for f in exe.legs), Decimal(0))
            assert abs(signed) < rig.reg.step[0][exe.symbol]  # bought and sold match: nothing orphaned
            await eventually_async(lambda: not OrderJournal.load(journal_dir).open_executions, 10, "journal closed")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)
                raise AssertionError("the executor did not stop on SIGTERM: " +
                                     (run_dir / "executor.log").read_text()[-3000:]) from None
            assert code == 0, (run_dir / "executor.log").read_text()[-3000:]
            sub.close()
            push.close()
            zctx.term()


def _receive_execution(sub: Any, opp_id: int) -> Execution | None:
    codec = event_codec()
    while True:
        try:
            _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        ev = codec.decode(payload)
        if isinstance(ev, Execution) and ev.opportunity_id == opp_id:
            return ev


def _fresh(intent: OrderIntent) -> OrderIntent:
    """Stamped now: the executor refuses an intent older than the opportunity age limit at send time."""
    now = time.monotonic_ns()
    return msgspec.structs.replace(intent, decided_ns=now,
                                   opportunity=msgspec.structs.replace(intent.opportunity, detected_ns=now))


def _try_send(sock: Any, payload: bytes) -> bool:
    """The executor binds its intent socket only after reconciling: until then nothing takes the intent."""
    try:
        sock.send(payload, zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True
