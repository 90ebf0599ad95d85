"""Runs one or more services in one OS process: the process-wide parts live here.

CPU pinning, the single ZeroMQ context, the private run directory, signal handling, start order
(downstream first) and stop order (upstream first, so nothing new arrives while in-flight work finishes),
and ``gc.freeze()`` once start-up garbage is gone.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import selectors
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import zmq

from shared.config import Config, resolve_run_dir
from shared.registry import Registry
from shared.runtime.clock import SYSTEM_CLOCK, Clock
from shared.runtime.endpoints import Endpoints
from shared.runtime.io_threads import io_cpus, set_io_cpus
from shared.runtime.service import Service

log = logging.getLogger(__name__)

FULL_GC_EVERY = 60  # timed collections between two full ones

ServiceFactory = Callable[["ProcessContext"], Service]


def prepare_run_dir(path: Path) -> Path:
    """The private directory for ipc endpoints and supervisord files (mode 0700: other users stay out)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def scratch_run_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A private throw-away run directory (mode 0700), removed when its ``with`` ends, an error included (a
    kill -9 leaves it: nothing runs then). Under $TMPDIR when set, else /tmp: ipc:// paths stay short (107 bytes)."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=os.environ.get("TMPDIR") or "/tmp")


def pin_cpu(cpu: int) -> str:
    if cpu < 0:
        return "not pinned"
    available = os.sched_getaffinity(0)
    if cpu not in available and cpu >= (os.cpu_count() or 1):
        log.warning("cpu %d does not exist on this machine; not pinned", cpu)
        return "not pinned (no such cpu)"
    os.sched_setaffinity(0, {cpu})
    return f"cpu {cpu}"


def setup_logging(name: str) -> None:
    logging.basicConfig(
        level=os.environ.get("DRAIZER_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )


class ProcessContext:
    def __init__(self, cfg: Config, run_dir: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.cfg = cfg
        self.clock = clock  # every service's time: the system's, or a backtest's recording clock
        self.registry = Registry(cfg)
        self.run_dir = run_dir
        self.endpoints = Endpoints(cfg, run_dir)
        self.zmq = zmq.Context.instance()
        for cpu in sorted(io_cpus()):  # before the first socket: that is when ZeroMQ starts its I/O thread
            self.zmq.set(zmq.THREAD_AFFINITY_CPU_ADD, cpu)
        self.stop_event = asyncio.Event()
        self.stop_reason = ""

    def request_stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
            log.info("stopping: %s", reason)
            self.stop_event.set()


async def serve(
    cfg: Config, factories: Sequence[ServiceFactory], *, on_running: Callable[[], None] | None = None
) -> int:
    run_dir = prepare_run_dir(resolve_run_dir(cfg))
    ctx = ProcessContext(cfg, run_dir)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ctx.request_stop, signal.Signals(sig).name)
    services = [factory(ctx) for factory in factories]
    wire_in_process(services)
    started: list[Service] = []
    code = 0
    gc_was_enabled = gc.isenabled()
    gc_timer: list[asyncio.TimerHandle] = []
    try:
        for svc in reversed(services):  # downstream first: a consumer is ready before its producer sends
            await svc.start()
            started.append(svc)
        gc.collect()
        gc.freeze()  # start-up objects never need scanning again: no full-collection stalls later
        if cfg.runtime.gc_interval_s > 0:
            gc.disable()  # no collection in the middle of a tick: the loop collects between callbacks instead
            gc_timer.append(loop.call_later(cfg.runtime.gc_interval_s, _collect_young, loop,
                                            cfg.runtime.gc_interval_s, 1, gc_timer))
        log.info("running: %s", ", ".join(s.name for s in services))
        if on_running is not None:
            on_running()
        await ctx.stop_event.wait()
    except Exception:
        log.exception("start-up failed")
        code = 1
    finally:
        for svc in services:  # upstream first: stop taking new work, then finish what is in flight
            if svc in started:
                await svc.stop()
        for svc in services:
            svc.close()
        ctx.zmq.term()
        for handle in gc_timer:
            handle.cancel()
        if gc_was_enabled:  # serve() may run inside a longer-lived process (tests): leave the collector as found
            gc.enable()
    return code


def _collect_young(loop: asyncio.AbstractEventLoop, interval_s: float, n: int,
                   handles: list[asyncio.TimerHandle]) -> None:
    """Timed collection (``runtime.gc_interval_s``): the young generations each time, everything not frozen at
    start every FULL_GC_EVERY-th time. A pause lands between two callbacks, never inside a tick's hot path."""
    gc.collect(2 if n % FULL_GC_EVERY == 0 else 1)
    handles[:] = [loop.call_later(interval_s, _collect_young, loop, interval_s, n + 1, handles)]


def wire_in_process(services: Sequence[Service]) -> None:
    """Fused placement: connect co-located services by direct calls instead of sockets."""
    by_kind = {type(s).__name__: s for s in services}
    for svc in services:
        link = getattr(svc, "link_in_process", None)
        if link is not None:
            link(by_kind)


def run_process(cfg: Config, name: str, factories: Sequence[ServiceFactory], cpu: int, io_cpu: int = -1) -> int:
    setup_logging(name)
    allowed = os.sched_getaffinity(0)  # the cpuset, before our pinning narrows it
    log.info("%s: %s", name, pin_cpu(cpu))
    if io_cpu >= 0 and io_cpu != cpu:
        if io_cpu in allowed:  # libzmq aborts the process on an affinity the kernel refuses
            set_io_cpus({io_cpu})
            log.info("%s: ZeroMQ I/O thread on cpu %d", name, io_cpu)
        else:
            log.warning("%s: io_cpu %d does not exist here; the ZeroMQ I/O thread stays with the process", name,
                        io_cpu)
    profile_dir = os.environ.get("DRAIZER_PROFILE_DIR")
    if not profile_dir:
        return _run(cfg, name, factories)
    import cProfile  # `draizer bench --profile`: where the hot path's time goes, per function

    Path(profile_dir).mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(_run, cfg, name, factories)
    finally:
        profiler.dump_stats(str(Path(profile_dir) / f"{name}.prof"))


def _run(cfg: Config, name: str, factories: Sequence[ServiceFactory]) -> int:
    if cfg.runtime.busy_poll:
        log.info("%s: busy-polling (runtime.busy_poll): this process keeps its core at 100 %%", name)
        with asyncio.Runner(loop_factory=busy_poll_loop) as runner:
            return runner.run(serve(cfg, factories))
    return asyncio.run(serve(cfg, factories))


class BusyPollSelector(selectors.EpollSelector):
    """Polls without sleeping until something is ready or the loop's timeout is over.

    A process sleeping in epoll_wait pays a kernel wake-up (tens of µs, more on a busy core) for every frame;
    spinning on a zero-timeout poll sees the frame as soon as the kernel has it. Opt-in (``runtime.busy_poll``)
    for a process that owns a core: the core shows 100 % busy."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return super().select(0)
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        poll = super().select
        while True:
            ready = poll(0)
            if ready or time.monotonic() >= deadline:
                return ready


def busy_poll_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(BusyPollSelector())
