"""The service runtime with real ZeroMQ sockets: lifecycle, control socket, heartbeats, outlets."""

from __future__ import annotations

import asyncio
import gc
import stat
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from shared.codec import control_codec, event_codec
from shared.messages import Command, Reply, Stats
from shared.runtime.host import ProcessContext, serve
from shared.runtime.lifecycle import InvalidTransition, State, check_transition
from shared.runtime.service import Service
from tests.conftest import make_config_dict, write_config


class Counting(Service):
    def __init__(self, ctx: ProcessContext, fail: bool = False) -> None:
        super().__init__("detector", ctx)
        self.fail = fail
        self.started = False

    async def on_start(self) -> None:
        if self.fail:
            raise RuntimeError("boom")
        self.started = True

    def counters(self) -> dict[str, int]:
        return {"answer": 42}


def test_illegal_transitions_are_refused() -> None:
    check_transition(State.READY, State.STARTING)
    with pytest.raises(InvalidTransition):
        check_transition(State.READY, State.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(State.STOPPED, State.STARTING)


async def test_control_socket_status_ping_and_shutdown(tmp_path: Path, run_dir: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", make_config_dict(run_dir))
    codec = control_codec()
    events = event_codec()
    ctx = zmq.asyncio.Context()
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(f"ipc://{run_dir}/detector.ctl")
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"ev.stats")
    sub.connect(f"ipc://{run_dir}/detector.events")

    server = asyncio.ensure_future(serve(cfg, [Counting]))
    try:
        await req.send(codec.encode(Command("status")))
        reply = codec.decode(await asyncio.wait_for(req.recv(), 10))
        assert isinstance(reply, Reply) and reply.ok
        assert reply.data["state"] == "RUNNING" and reply.data["counters"] == {"answer": 42}
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700

        await req.send(codec.encode(Command("ping")))
        assert codec.decode(await asyncio.wait_for(req.recv(), 10)).ok

        await req.send(codec.encode(Command("nonsense")))
        bad = codec.decode(await asyncio.wait_for(req.recv(), 10))
        assert not bad.ok and "unknown command" in bad.error

        _topic, payload = await asyncio.wait_for(sub.recv_multipart(), 10)
        hb = events.decode(payload)
        assert isinstance(hb, Stats) and hb.service == "detector" and hb.counters["answer"] == 42

        await req.send(codec.encode(Command("shutdown")))
        assert codec.decode(await asyncio.wait_for(req.recv(), 10)).ok
        assert await asyncio.wait_for(server, 10) == 0
        # The final heartbeat after stopping carries the STOPPED state.
        async def final_seen() -> bool:
            while True:
                _t, p = await sub.recv_multipart()
                if events.decode(p).state == "STOPPED":
                    return True

        assert await asyncio.wait_for(final_seen(), 10)
    finally:
        if not server.done():
            server.cancel()
        req.close()
        sub.close()
        ctx.term()


async def test_failing_start_hook_is_reported_not_half_started(tmp_path: Path, run_dir: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", make_config_dict(run_dir))
    made: list[Counting] = []

    def factory(ctx: ProcessContext) -> Service:
        svc = Counting(ctx, fail=True)
        made.append(svc)
        return svc

    code = await asyncio.wait_for(serve(cfg, [factory]), 10)
    assert code == 1
    assert made[0].state == State.FAULTED and "boom" in made[0].fault



async def test_serve_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path, run_dir: Path) -> None:
    """With timed collection (runtime.gc_interval_s) serve() turns automatic collection off while it runs; a
    process that hosts serve() among other work (the tests) must get it back afterwards."""
    data = make_config_dict(run_dir)
    data["runtime"]["gc_interval_s"] = 0.05
    cfg = write_config(tmp_path / "c.toml", data)
    assert gc.isenabled()

    class Stops(Counting):
        async def on_start(self) -> None:
            self.ctx.request_stop("test")  # serve() then disables collection after the start, and stops

    assert await asyncio.wait_for(serve(cfg, [Stops]), 30) == 0
    assert gc.isenabled()
