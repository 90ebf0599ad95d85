"""``python -m services.loadgen --config FILE --rate R [--cpu N] [--seconds S] [--dislocation P] [--seed N]``

The benchmark's load source as its own process: builds the tape (a few seconds), pins itself to ``--cpu``
(when >= 0), listens on every port of ``cfg.sim.venues`` (WebSocket and, for spot venues, REST; port 0
means any free one), then prints ONE JSON line to stdout::

    {"ready": true, "ports": {"binance": {"ws": 18701, "rest": 18702}, ...}, "pid": 1234}

and replays at ``--rate`` quotes/s (all spot venues together) until SIGTERM/SIGINT or ``--seconds``. It
then closes every socket and prints a JSON summary line (``"summary": true``: frames sent per venue, the
rate achieved, orders received, its own CPU time) and exits 0. Logs go to stderr. Live figures:
``GET /loadgen/stats`` on any spot venue's REST port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time

from services.loadgen.app import DEFAULT_TAPE_QUOTES, LoadGen
from shared.config import default_config_path, load_config
from shared.runtime.host import pin_cpu, setup_logging

log = logging.getLogger(__name__)


def _print(line: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


async def _serve(lg: LoadGen, seconds: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cpu0, t0 = _cpu_s(), time.monotonic()
    try:
        ports = await lg.start()
        cpu0, t0 = _cpu_s(), time.monotonic()
        _print({"ready": True, "ports": ports, "pid": os.getpid()})
        if seconds is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
    finally:
        await lg.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    wall = time.monotonic() - t0
    cpu = _cpu_s() - cpu0
    stats = lg.stats()
    _print({
        "summary": True,
        "rate_asked": stats["rate_asked"],
        "rate_achieved": stats["rate_achieved"],
        "elapsed_s": stats["elapsed_s"],
        "quotes": stats["quotes"],
        "skipped": stats["skipped"],
        "loops": stats["loops"],
        "frames": stats["frames"],
        "dropped": stats["dropped"],
        "orders": stats["orders"],
        "cpu_s": round(cpu, 3),
        "cpu_share": round(cpu / wall, 4) if wall > 0 else 0.0,
    })


def _stop_early(signum: int, frame: object) -> None:
    log.info("loadgen: stopped (signal %d) before it was ready", signum)
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.loadgen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    p.add_argument("--rate", type=float, required=True, help="quotes per second, all spot venues together")
    p.add_argument("--cpu", type=int, default=-1, help="pin to this CPU (-1: not pinned)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: at a signal)")
    p.add_argument("--dislocation", type=float, default=None,
                   help="probability per quote that a dislocation starts (default: the config's sim value)")
    p.add_argument("--seed", type=int, default=None, help="price and funding seed (default: the config's)")
    p.add_argument("--tape", type=int, default=DEFAULT_TAPE_QUOTES, help="quotes on the tape before it loops")
    args = p.parse_args(argv)
    if args.rate < 0 or (args.dislocation is not None and not 0 <= args.dislocation <= 1) or args.tape < 1:
        p.error("--rate must be >= 0, --dislocation within [0, 1], --tape >= 1")
    setup_logging("loadgen")
    for sig in (signal.SIGTERM, signal.SIGINT):  # until the loop takes over: a stop while the tape is built
        signal.signal(sig, _stop_early)
    cfg = load_config(args.config)
    log.info("loadgen: %s", pin_cpu(args.cpu))
    built = time.monotonic()
    lg = LoadGen(cfg, args.rate, seed=args.seed, dislocation=args.dislocation, tape_quotes=args.tape)
    log.info("loadgen: tape of %d quotes built in %.1fs", lg.tape.n_quotes, time.monotonic() - built)
    asyncio.run(_serve(lg, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
