"""The service runtime with real ZeroMQ sockets: lifecycle, control socket, heartbeats, outlets."""

from __future__ import annotations

import asyncio
import gc
import logging
import stat
import time
from collections.abc import Iterator
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


@pytest.fixture
def detector_sockets(run_dir: Path) -> Iterator[tuple[zmq.asyncio.Socket, zmq.asyncio.Socket]]:
    """A REQ on the detector's control socket and a SUB on its heartbeats, closed whatever the test does."""
    ctx = zmq.asyncio.Context()
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(f"ipc://{run_dir}/detector.ctl")
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"ev.stats")
    sub.connect(f"ipc://{run_dir}/detector.events")
    try:
        yield req, sub
    finally:
        req.close()
        sub.close()
        ctx.term()


def test_illegal_transitions_are_refused() -> None:
    check_transition(State.READY, State.STARTING)
    with pytest.raises(InvalidTransition):
        check_transition(State.READY, State.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(State.STOPPED, State.STARTING)


async def test_control_socket_status_ping_and_shutdown(
    tmp_path: Path, run_dir: Path, detector_sockets: tuple[zmq.asyncio.Socket, zmq.asyncio.Socket]
) -> None:
    cfg = write_config(tmp_path / "c.toml", make_config_dict(run_dir))
    codec = control_codec()
    events = event_codec()
    req, sub = detector_sockets

    server = asyncio.ensure_future(serve(cfg, [Counting]))
    try:
        await req.send(codec.encode(Command("status")))
        reply = codec.decode(await asyncio.wait_for(req.recv(), 10))
        assert isinstance(reply, Reply) and reply.ok
        assert reply.data["state"] == "RUNNING" and reply.data["counters"]["answer"] == 42
        assert reply.data["counters"]["event_log_failed"] == 0  # the base service's own counters come along
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


class Faulty(Counting):
    """A service whose command handler has bugs: one raises, one returns something that is not a Reply."""

    def on_command(self, cmd: Command) -> Reply | None:
        if cmd.cmd == "explode":
            raise KeyError("no such thing")
        if cmd.cmd == "weird":
            return {"not": "a reply"}  # type: ignore[return-value]
        if cmd.cmd == "unencodable":
            return Reply(ok=True, data={"thing": object()})
        return None


async def _ask(req: zmq.asyncio.Socket, payload: bytes) -> Reply:
    codec = control_codec()
    await req.send(payload)
    if not await req.poll(10_000):
        raise AssertionError("no answer from the control socket within 10 s")
    reply = codec.decode(await req.recv())
    assert isinstance(reply, Reply)
    return reply


async def test_a_failing_command_handler_is_answered_with_the_error_and_logged(
    tmp_path: Path, run_dir: Path, caplog: pytest.LogCaptureFixture,
    detector_sockets: tuple[zmq.asyncio.Socket, zmq.asyncio.Socket],
) -> None:
    cfg = write_config(tmp_path / "c.toml", make_config_dict(run_dir))
    codec = control_codec()
    req, _sub = detector_sockets
    server = asyncio.ensure_future(serve(cfg, [Faulty]))
    try:
        caplog.set_level(logging.WARNING, logger="shared.runtime.service")
        failed = await _ask(req, codec.encode(Command("explode", {"what": 1})))
        assert not failed.ok and "explode" in failed.error and "KeyError" in failed.error, failed.error
        logged = [r for r in caplog.records if "explode" in r.getMessage()]
        assert logged and logged[0].exc_info is not None and "'what': 1" in logged[0].getMessage()

        weird = await _ask(req, codec.encode(Command("weird")))
        assert not weird.ok and "not a Reply" in weird.error, weird.error
        unencodable = await _ask(req, codec.encode(Command("unencodable")))
        assert not unencodable.ok and "could not be encoded" in unencodable.error, unencodable.error

        assert (await _ask(req, codec.encode(Command("ping")))).ok  # the service kept running
        assert (await _ask(req, codec.encode(Command("status")))).data["state"] == "RUNNING"
        assert (await _ask(req, codec.encode(Command("shutdown")))).ok
        assert await asyncio.wait_for(server, 10) == 0
    finally:
        if not server.done():
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)


async def test_garbage_on_the_control_socket_is_answered_counted_and_logged_once(
    tmp_path: Path, run_dir: Path, caplog: pytest.LogCaptureFixture,
    detector_sockets: tuple[zmq.asyncio.Socket, zmq.asyncio.Socket],
) -> None:
    cfg = write_config(tmp_path / "c.toml", make_config_dict(run_dir))
    codec = control_codec()
    events = event_codec()
    req, sub = detector_sockets
    server = asyncio.ensure_future(serve(cfg, [Counting]))
    try:
        caplog.set_level(logging.WARNING, logger="shared.runtime.service")
        garbage = await _ask(req, b"\xde\xad\xbe\xef not msgpack")
        assert not garbage.ok and "malformed command" in garbage.error
        not_a_command = await _ask(req, codec.encode(Reply(ok=True)))  # decodes, but is no Command
        assert not not_a_command.ok and "expected a Command" in not_a_command.error
        assert not (await _ask(req, b"")).ok
        assert (await _ask(req, codec.encode(Command("ping")))).ok  # a good command is not counted

        async def counted() -> int:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if not await sub.poll(500):
                    continue
                _topic, payload = await sub.recv_multipart()
                hb = events.decode(payload)
                if isinstance(hb, Stats) and hb.counters.get("control_malformed") == 3:
                    return 3
            raise AssertionError("no heartbeat counted the 3 malformed control frames within 10 s")

        assert await counted() == 3
        warnings = [r for r in caplog.records if "control_malformed" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # the first one, then only counted
        assert "deadbeef" in warnings[0].getMessage() and "detector" in warnings[0].getMessage()
        assert (await _ask(req, codec.encode(Command("shutdown")))).ok
        assert await asyncio.wait_for(server, 10) == 0
    finally:
        if not server.done():
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
