"""The service base: lifecycle, control socket, events PUB, heartbeats, socket readiness on asyncio.

A subclass implements hooks (``on_start``, ``on_stop``, ``counters``…) and moves messages; it never
overrides ``start``/``stop``. Sockets are ZeroMQ; readiness comes from the socket's FD registered with the
asyncio loop, so one thread serves every socket and timer of the process without a poller thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import zmq

from shared.codec import Codec, control_codec, event_codec
from shared.messages import TOPIC_OF, TOPIC_STATS, Command, Event, Reply, Stats
from shared.runtime.event_log import EventLog, log_dir
from shared.runtime.lifecycle import State, check_transition
from shared.runtime.session import current_session

if TYPE_CHECKING:
    from shared.runtime.host import ProcessContext

log = logging.getLogger(__name__)
_SEQ = struct.Struct("<Q")
_EPOCH = struct.Struct("<I")

# Events must reach the bridge even at shutdown: a bounded linger flushes them without risking a hang.
EVENTS_LINGER_MS = 1000
MAX_DRAIN = 4096  # messages handled per readiness callback before yielding to the loop
# The topic frame of an event is ``<topic>|<u64 seq><u32 log epoch><service name>``: subscribers filter on the
# topic prefix as before, and the bridge learns which service's sequence the event belongs to (event_log.py).
SEQ_SEP = b"|"
# Counters that are levels, not counts: they are not carried over from the previous process's last heartbeat.
LEVEL_COUNTERS = frozenset({"in_flight", "pending"})


class Service:
    """Base class of every draizer actor."""

    # Keep every published event in a numbered local log the bridge catches up from (the bridge itself: no).
    durable_events = True

    def __init__(self, name: str, ctx: ProcessContext) -> None:
        self.name = name
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.registry = ctx.registry
        self.clock = ctx.clock
        self.state = State.READY
        self.fault: str = ""
        self._sockets: list[zmq.Socket[bytes]] = []
        self._watched: list[int] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._events_codec: Codec[Event] = event_codec()
        self._control_codec = control_codec()
        self._events_pub: zmq.Socket[bytes] | None = None
        self._control_sock: zmq.Socket[bytes] | None = None
        self.local_listeners: list[Callable[[Event], None]] = []
        self._outbox: list[Event] = []  # events waiting for the end of the current callback (see publish)
        self._flush_scheduled = False
        self.events_published = 0
        self.events_dropped = 0
        self.n_malformed = 0
        self.control_malformed = 0  # control frames that are not a Command (answered with an error)
        self.event_log: EventLog | None = None
        self._seq_tail = b""  # what follows the seq in an event's topic frame: this service's name
        # Counters of earlier lifetimes (the last heartbeat in the event log): published counters are cumulative.
        self.counter_base: dict[str, int] = {}

    # ----- hooks for subclasses
    async def on_start(self) -> None:
        """Bind/connect sockets, warm up, open connections."""

    async def on_stop(self) -> None:
        """Stop taking work, finish or cancel what is in flight."""

    def counters(self) -> dict[str, int]:
        return {}

    def gauges(self) -> dict[str, float]:
        return {}

    def prices(self) -> list[tuple[int, int, float, float]]:
        return []

    def funding(self) -> list[tuple[int, int, float, int]]:
        return []

    def book_states(self) -> list[tuple[int, int, int]]:
        return []

    def take_latencies(self) -> dict[str, list[int]]:
        """Latency samples (ns) gathered since the last heartbeat, per stage."""
        return {}

    def on_command(self, cmd: Command) -> Reply | Awaitable[Reply] | None:
        """Service-specific commands; None means unknown."""
        return None

    # ----- lifecycle (not overridden)
    def _set_state(self, new: State) -> None:
        check_transition(self.state, new)
        self.state = new

    async def start(self) -> None:
        self._set_state(State.STARTING)
        try:
            if self.durable_events:
                self._open_event_log()
            self._events_pub = self.socket(zmq.PUB, linger=EVENTS_LINGER_MS)
            self._events_pub.bind(self.ctx.endpoints.events(self.name))
            self._control_sock = self.socket(zmq.ROUTER)
            self._control_sock.bind(self.ctx.endpoints.control(self.name))
            self.watch(self._control_sock, self._on_control)
            await self.on_start()
        except Exception as exc:
            self.fault = f"{type(exc).__name__}: {exc}"
            self._set_state(State.FAULTED)
            log.exception("%s: start failed", self.name)
            raise
        self._set_state(State.RUNNING)
        self.spawn(self._heartbeat_loop())

    async def stop(self) -> None:
        if self.state in (State.STOPPED, State.READY):
            return
        self._set_state(State.STOPPING)
        try:
            await self.on_stop()
        except Exception as exc:
            self.fault = f"{type(exc).__name__}: {exc}"
            log.exception("%s: stop hook failed", self.name)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._set_state(State.STOPPED)
        self.flush_events()  # everything queued counts in the final heartbeat ...
        self.publish_stats()  # the final counters, so sinks see the exact totals
        self.flush_events()  # ... which goes now: close() may come before the loop runs the scheduled flush

    def _open_event_log(self) -> None:
        """Open the event log; continue its numbering and take the previous lifetime's counters from it."""
        ev_log = EventLog(log_dir(self.ctx.run_dir, self.name))
        ev_log.open()
        self.event_log = ev_log
        self._seq_tail = _EPOCH.pack(ev_log.epoch) + self.name.encode()
        last_stats = ev_log.last_record.get(TOPIC_STATS)
        if ev_log.claim(current_session()) and last_stats is not None:  # counts are per run: not a new run's
            try:
                st = self._events_codec.decode(last_stats)
            except Exception:
                st = None
            if isinstance(st, Stats):
                self.counter_base = {k: v for k, v in st.counters.items() if k not in LEVEL_COUNTERS}
        if ev_log.next_seq > 1:
            log.info("%s: event log continues at #%d%s", self.name, ev_log.next_seq,
                     ", counters carried over from the previous run" if self.counter_base else "")

    def cumulative_counters(self) -> dict[str, int]:
        """This process's counters plus those of its earlier lifetimes (levels excepted)."""
        counters = {"events_published": self.events_published, "events_dropped": self.events_dropped,
                    "control_malformed": self.control_malformed}
        counters.update(self.counters())
        if self.event_log is not None:
            counters["event_log_failed"] = self.event_log.n_failed
            counters["event_log_evicted"] = self.event_log.n_evicted
        base = self.counter_base
        if base:
            for k, v in base.items():
                if k not in LEVEL_COUNTERS:
                    counters[k] = counters.get(k, 0) + v
        return counters

    def close(self) -> None:
        self.flush_events()
        if self.event_log is not None:
            self.event_log.close()
        loop = asyncio.get_running_loop()
        for fd in self._watched:
            loop.remove_reader(fd)
        self._watched.clear()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    # ----- helpers for subclasses
    def socket(self, kind: int, *, linger: int = 0, hwm: int = 100_000) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self.ctx.zmq.socket(kind)
        sock.linger = linger
        sock.sndhwm = hwm
        sock.rcvhwm = hwm
        self._sockets.append(sock)
        return sock

    def watch(self, sock: zmq.Socket[bytes], on_readable: Callable[[], None]) -> None:
        """Call ``on_readable`` whenever ``sock`` may have input; the callback drains what it can.

        The ZeroMQ FD is edge-triggered: it signals a change, not a level. So after each callback we look at
        the socket's own event mask and run again (via call_soon, never starving other callbacks) while
        input remains.
        """
        loop = asyncio.get_running_loop()
        fd = sock.getsockopt(zmq.FD)

        def ready() -> None:
            if sock.closed:  # a call_soon queued before close() still runs once: nothing to read any more
                return
            try:
                on_readable()
            except Exception:
                log.exception("%s: handler failed; the service keeps running", self.name)
            if sock.closed:
                return
            if sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                loop.call_soon(ready)

        loop.add_reader(fd, ready)
        self._watched.append(fd)
        loop.call_soon(ready)  # input may have arrived before registration

    def drain(
        self, sock: zmq.Socket[bytes], codec: Codec[Any], handle: Callable[[Any], object], what: str
    ) -> None:
        """Receive and decode everything pending (up to MAX_DRAIN); a message that does not decode is
        counted in ``n_malformed`` and logged once, and the rest go on. The last frame is the payload, so
        the same loop serves PULL (one frame) and SUB (topic + payload)."""
        for _ in range(MAX_DRAIN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = codec.decode(frames[-1])
            except Exception as exc:
                self.n_malformed += 1
                if self.n_malformed == 1:
                    log.warning("%s: malformed %s (%s); counting further ones", self.name, what, exc)
                continue
            handle(msg)

    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.name, exc_info=task.exception())

    def publish(self, event: Event) -> None:
        """Send an event to every subscriber (bridge, tests) and to in-process listeners.

        In-process listeners hear it at once. The socket send waits for the end of the current callback (one
        ``call_soon`` per burst): a drain that finds several opportunities sends every order before any event is
        encoded, and in the single placement the next opportunity's order no longer waits for the previous
        one's events (each send also wakes ZeroMQ's I/O thread)."""
        for listener in self.local_listeners:
            listener(event)
        if self._events_pub is None:
            return
        self._outbox.append(event)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush_events)
            except RuntimeError:  # no loop running (a final heartbeat after the loop): send now
                self.flush_events()

    def flush_events(self) -> None:
        """Send what ``publish`` queued, in order."""
        self._flush_scheduled = False
        sock = self._events_pub
        outbox, self._outbox = self._outbox, []
        if sock is None or sock.closed or not outbox:
            return
        encode = self._events_codec.encode
        frames = [(TOPIC_OF[type(event)], encode(event)) for event in outbox]
        ev_log = self.event_log
        seq = ev_log.append(frames) if ev_log is not None else 0
        tail, pack = self._seq_tail, _SEQ.pack
        for topic, payload in frames:
            head = topic + SEQ_SEP + pack(seq) + tail if seq else topic
            seq += 1 if seq else 0
            try:
                sock.send_multipart((head, payload), zmq.NOBLOCK)
                self.events_published += 1
            except zmq.Again:  # PUB drops at the high-water mark: counted; the bridge catches up from the log
                self.events_dropped += 1

    def publish_stats(self) -> None:
        counters = self.cumulative_counters()
        self.publish(
            Stats(
                service=self.name,
                pid=os.getpid(),
                state=self.state.value,
                ts_ns=self.clock.monotonic_ns(),
                counters=counters,
                gauges=self.gauges(),
                prices=self.prices(),
                latencies_ns=self.take_latencies(),
                funding=self.funding(),
                book_states=self.book_states(),
            )
        )

    async def _heartbeat_loop(self) -> None:
        interval = self.cfg.runtime.heartbeat_interval_s
        while True:
            self.publish_stats()
            await asyncio.sleep(interval)

    # ----- control socket
    def _on_control(self) -> None:
        sock = self._control_sock
        assert sock is not None
        for _ in range(64):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            envelope, payload = frames[:-1], frames[-1]
            reply = self._handle_control(payload)
            if isinstance(reply, Reply):
                try:
                    out = self._control_codec.encode(reply)
                except Exception as exc:  # data the codec cannot carry: the caller still gets an answer
                    log.exception("%s: reply could not be encoded", self.name)
                    out = self._control_codec.encode(Reply(ok=False, error=f"reply could not be encoded: {exc}"))
                sock.send_multipart([*envelope, out])
            else:  # a command that must wait for something (risk's kill waits for the executor's answer)
                self.spawn(self._reply_later(sock, envelope, reply))

    async def _reply_later(self, sock: zmq.Socket[bytes], envelope: list[bytes], reply: Awaitable[Reply]) -> None:
        """The control socket is a ROUTER: a reply may go out after later commands were answered."""
        try:
            answer = await reply
        except Exception as exc:  # the command failed: the caller gets the reason, the service keeps running
            log.exception("%s: command failed", self.name)
            answer = Reply(ok=False, error=f"command failed: {exc}")
        if not sock.closed:
            sock.send_multipart([*envelope, self._control_codec.encode(answer)])

    def _handle_control(self, payload: bytes) -> Reply | Awaitable[Reply]:
        """Every frame gets an answer: garbage is refused (counted in ``control_malformed``, the first one logged),
        and a command whose handler raises is answered with the error while the service keeps running."""
        cmd: object = None
        try:
            cmd = self._control_codec.decode(payload)
            problem = "" if isinstance(cmd, Command) else f"expected a Command, got a {type(cmd).__name__}"
        except Exception as exc:
            problem = f"malformed command: {exc}"
        if problem or not isinstance(cmd, Command):
            self.control_malformed += 1
            if self.control_malformed == 1:
                preview = payload[:32].hex() + ("..." if len(payload) > 32 else "")
                log.warning("%s: control socket: %s (%d bytes: %s); counting further ones in control_malformed",
                            self.name, problem, len(payload), preview)
            return Reply(ok=False, error=problem)
        try:
            if cmd.cmd == "ping":
                return Reply(ok=True, data={"pong": self.clock.monotonic_ns()})
            if cmd.cmd == "status":
                return Reply(
                    ok=True,
                    data={
                        "service": self.name,
                        "state": self.state.value,
                        "pid": os.getpid(),
                        "fault": self.fault,
                        "counters": self.cumulative_counters(),
                        "gauges": self.gauges(),
                    },
                )
            if cmd.cmd == "shutdown":
                self.ctx.request_stop(f"shutdown command to {self.name}")
                return Reply(ok=True, data={"stopping": True})
            custom = self.on_command(cmd)
            if custom is None:
                return Reply(ok=False, error=f"unknown command {cmd.cmd!r}")
            if isinstance(custom, Reply) or inspect.isawaitable(custom):
                return custom
            raise TypeError(f"the handler returned a {type(custom).__name__}, not a Reply")
        except Exception as exc:  # a bug or an argument the handler did not expect: answer, keep running
            args = repr(cmd.args)
            log.exception("%s: command %r failed (args %s)", self.name, cmd.cmd,
                          args if len(args) <= 200 else args[:197] + "...")
            return Reply(ok=False, error=f"command {cmd.cmd!r} failed: {type(exc).__name__}: {exc}")
