"""How many quotes per second the detector process takes in through its sockets, with all three strategies on.

The real detector runs in its own process (``serve`` with the ``Detector`` service, pinned to one core) on the
default config (29 symbols, 2 spot and 2 perpetual venues, 20 triangular cycles). This process, pinned to the
other core, plays the feeds: it publishes pre-encoded ``MarketBatch`` messages of K quotes (random symbols and
venues, prices around fixed mids with random dislocations, so part of them are opportunities) on the real ipc
PUB endpoints as fast as it can, and takes the opportunities off the PULL end. The PUB queue drops what the
detector cannot take, so the detector's own ``quotes`` counter (read over its control socket before and after)
is its sustained intake. Coalescing shows as quotes per evaluated symbol.

Quote ages are made irrelevant (max_price_age_ms is set very high): the frames are encoded once, up front.

    .venv/bin/python benchmarks/detector_throughput.py [--seconds 5] [--batches 1,8,64]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import zmq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.codec import market_data_codec  # noqa: E402
from shared.config import Config, default_config_path, parse_config  # noqa: E402
from shared.messages import MarketBatch, Quote  # noqa: E402
from shared.registry import Registry  # noqa: E402
from shared.runtime.control_client import request  # noqa: E402
from shared.runtime.endpoints import Endpoints  # noqa: E402


def bench_config(run_dir: Path) -> Config:
    data = msgspec.toml.decode(default_config_path().read_bytes())
    data["instance"] = f"bench{os.getpid()}"
    data["runtime"]["run_dir"] = str(run_dir)
    data["sim"]["enabled"] = False
    for name in ("cross_exchange", "triangular", "funding_rate"):
        data["strategies"][name]["max_price_age_ms"] = 1e12
    return parse_config(msgspec.toml.encode(data))


def run_detector(config_text: bytes, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    from services.detector.service import Detector
    from shared.runtime.host import serve

    cfg = parse_config(config_text)
    asyncio.run(serve(cfg, [Detector]))


def frames(cfg: Config, per_message: int, n_messages: int, rng: np.random.Generator) -> list[tuple[bytes, bytes]]:
    reg = Registry(cfg)
    codec = market_data_codec()
    mids = np.array([s.start_price for s in cfg.symbols])
    spot = [int(v) for v in reg.spot_venues]
    out = []
    now = time.monotonic_ns()
    for _ in range(n_messages):
        venue = spot[int(rng.integers(0, len(spot)))]
        items = []
        for s in rng.integers(0, reg.n_symbols, per_message):
            shift = 1.0 + rng.normal(0.0, 1e-3)
            mid = float(mids[s] * shift)
            items.append(Quote(venue, int(s), mid * (1 - 1e-4), 1.0, mid * (1 + 1e-4), 1.0, 1, now))
        out.append((reg.venue(venue).encode(), codec.encode(MarketBatch(now, items))))
    return out


def counters(control: str) -> dict[str, int]:
    return request(control, "status", timeout_s=10.0).data["counters"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batches", default="1,8,64", help="quotes per message, comma-separated")
    p.add_argument("--detector-cpu", type=int, default=1)
    p.add_argument("--feed-cpu", type=int, default=0)
    args = p.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="dzb-", dir="/tmp"))
    run_dir.chmod(0o700)
    cfg = bench_config(run_dir)
    endpoints = Endpoints(cfg, run_dir)
    ctx = zmq.Context()
    pubs = {}
    for venue in Registry(cfg).venue_names:
        pub = ctx.socket(zmq.PUB)
        pub.sndhwm = 100_000
        pub.linger = 0
        pub.bind(endpoints.market_data(venue))
        pubs[venue.encode()] = pub
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.bind(endpoints.opportunities)
    stop = threading.Event()
    taken = [0]

    def drain() -> None:
        while not stop.is_set():
            if pull.poll(50):
                while True:
                    try:
                        pull.recv(zmq.NOBLOCK)
                        taken[0] += 1
                    except zmq.Again:
                        break

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    proc = mp.get_context("spawn").Process(
        target=run_detector, args=(msgspec.toml.encode(msgspec.to_builtins(cfg)), args.detector_cpu), daemon=True
    )
    proc.start()
    os.sched_setaffinity(0, {args.feed_cpu})
    control = endpoints.control("detector")
    rng = np.random.default_rng(7)
    probe = frames(cfg, 1, 1, rng)[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # started, subscribed and past its warm-up
        pubs[probe[0]].send_multipart(list(probe))
        try:
            if counters(control)["quotes"] > 0:
                break
        except Exception:
            time.sleep(0.2)
    print(f"detector on cpu {args.detector_cpu}, feeds on cpu {args.feed_cpu}; default config, all strategies on;"
          f" {args.seconds:.0f} s per row")
    print(f"{'quotes/msg':>10} {'offered/s':>12} {'detector quotes/s':>18} {'quotes per eval':>16} {'opps/s':>9}")
    for per_message in (int(x) for x in args.batches.split(",")):
        batch = frames(cfg, per_message, max(2_000, 200_000 // per_message), rng)
        before = counters(control)
        opps_before = taken[0]
        t0 = time.monotonic()
        sent = 0
        i = 0
        while time.monotonic() - t0 < args.seconds:
            for _ in range(256):
                topic, payload = batch[i]
                try:  # noqa: SIM105 - contextlib.suppress costs a context manager per message in this loop
                    pubs[topic].send_multipart([topic, payload], zmq.NOBLOCK)
                except zmq.Again:
                    pass
                sent += per_message
                i = (i + 1) % len(batch)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)  # let the detector finish what it took in
        after = counters(control)
        quotes = after["quotes"] - before["quotes"]
        evals = max(1, after["evaluations"] - before["evaluations"])
        print(f"{per_message:>10} {sent / elapsed:>12,.0f} {quotes / elapsed:>18,.0f} {quotes / evals:>16.1f}"
              f" {(taken[0] - opps_before) / elapsed:>9,.0f}", flush=True)
    request(control, "shutdown", timeout_s=10.0)
    proc.join(30)
    stop.set()
    drainer.join(5)
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
