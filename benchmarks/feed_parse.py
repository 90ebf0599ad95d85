"""How many frames one feed process parses and publishes per second, per wire format, and how long a frame
takes from receipt to publish.

Frames are pre-built in the venues' exact formats (Binance bookTicker JSON, Binance depth diff JSON, MEXC
protobuf book ticker, MEXC protobuf depth), then pushed through the feed's real code — ``Feed.on_frame``
(the ``FeedHandler``: parse, duplicate check, local book, output) and ``Feed.flush`` (one MessagePack
``MarketBatch`` sent on a real ZeroMQ ipc PUB socket to a subscriber in another process on the other core).

- throughput: frames flushed in batches of ``--batch`` (what one socket read delivers under load);
- latency: batches of one, receive stamp -> after the PUB send, per frame (P50/P99);
- baseline, same run: ``msgspec`` decoding the same frames and nothing else, for a ratio.

    .venv/bin/python benchmarks/feed_parse.py [--frames 200000] [--batch 64] [--cpu 0]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import zmq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.feed.service import Feed  # noqa: E402
from shared.config import default_config_path, load_config  # noqa: E402
from shared.runtime.host import ProcessContext  # noqa: E402
from shared.venues.mexc.proto.push_data_pb2 import (  # noqa: E402
    PublicAggreBookTickerV3Api,
    PublicAggreDepthItem,
    PublicAggreDepthsV3Api,
    PushDataV3ApiWrapper,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "LTCUSDT")


def binance_tickers(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        s = SYMBOLS[i % len(SYMBOLS)]
        px = 100 + (i % 50) * 0.01
        out.append(
            f'{{"stream":"{s.lower()}@bookTicker","data":{{"u":{i + 1},"s":"{s}","b":"{px:.2f}000000",'
            f'"B":"31.21000000","a":"{px + 0.01:.2f}000000","A":"40.66000000"}}}}'.encode()
        )
    return out


def binance_depth(n: int) -> tuple[list[bytes], dict[str, bytes]]:
    """Diffs continuing each symbol's snapshot (id 1000): five changed levels each."""
    out = []
    for i in range(n):
        s = SYMBOLS[i % len(SYMBOLS)]
        uid = 1001 + i // len(SYMBOLS)
        lv = i % 20
        b = [[f"{99.9 - (lv + k) * 0.01:.2f}", f"{1 + (i + k) % 7}"] for k in range(3)]
        a = [[f"{100.1 + (lv + k) * 0.01:.2f}", f"{(i + k) % 5}"] for k in range(2)]
        data = {"e": "depthUpdate", "E": 1, "s": s, "U": uid, "u": uid, "b": b, "a": a}
        out.append(json.dumps({"stream": f"{s.lower()}@depth@100ms", "data": data}, separators=(",", ":")).encode())
    snap = {
        "lastUpdateId": 1000,
        "bids": [[f"{99.9 - k * 0.01:.2f}", "5"] for k in range(100)],
        "asks": [[f"{100.1 + k * 0.01:.2f}", "5"] for k in range(100)],
    }
    return out, {s: json.dumps(snap).encode() for s in SYMBOLS}


def mexc_tickers(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        s = SYMBOLS[i % len(SYMBOLS)]
        px = 100 + (i % 50) * 0.01
        w = PushDataV3ApiWrapper(
            channel=f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{s}", symbol=s, sendTime=1736412092433,
            publicAggreBookTicker=PublicAggreBookTickerV3Api(
                bidPrice=f"{px:.2f}", bidQuantity="1.5", askPrice=f"{px + 0.01:.2f}", askQuantity="2.5",
                version=str(i + 1),
            ),
        )
        out.append(w.SerializeToString())
    return out


def mexc_depth(n: int) -> tuple[list[bytes], dict[str, bytes]]:
    out = []
    for i in range(n):
        s = SYMBOLS[i % len(SYMBOLS)]
        uid = 1001 + i // len(SYMBOLS)
        lv = i % 20
        w = PushDataV3ApiWrapper(
            channel=f"spot@public.aggre.depth.v3.api.pb@100ms@{s}", symbol=s, sendTime=1736412092433,
            publicAggreDepths=PublicAggreDepthsV3Api(
                bids=[PublicAggreDepthItem(price=f"{99.9 - (lv + k) * 0.01:.2f}", quantity=f"{1 + (i + k) % 7}")
                      for k in range(3)],
                asks=[PublicAggreDepthItem(price=f"{100.1 + (lv + k) * 0.01:.2f}", quantity=f"{(i + k) % 5}")
                      for k in range(2)],
                eventType="spot@public.aggre.depth.v3.api.pb@100ms", fromVersion=str(uid), toVersion=str(uid),
            ),
        )
        out.append(w.SerializeToString())
    snap = {
        "lastUpdateId": 1000,
        "bids": [[f"{99.9 - k * 0.01:.2f}", "5"] for k in range(100)],
        "asks": [[f"{100.1 + k * 0.01:.2f}", "5"] for k in range(100)],
    }
    return out, {s: json.dumps(snap).encode() for s in SYMBOLS}


def _subscriber(endpoint: str, ready: Any, cpu: int) -> None:
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(endpoint)
    ready.set()
    while True:
        _topic, payload = sub.recv_multipart()
        if payload == b"stop":
            return


class FeedUnderTest:
    def __init__(self, venue: str, run_dir: str) -> None:
        cfg = load_config(default_config_path())
        self.ctx = ProcessContext(cfg, Path(run_dir))
        self.feed = Feed(self.ctx, venue)
        pub = self.ctx.zmq.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 0)
        self.endpoint = f"ipc://{run_dir}/bench.{venue}"
        pub.bind(self.endpoint)
        self.feed._pub = pub
        self.pub = pub


def _measure(feed: Feed, frames: list[bytes], binary: bool, batch: int) -> tuple[float, np.ndarray]:
    class Conn:
        number = 1

    conn = Conn()
    on_frame, flush = feed.on_frame, feed.flush
    lat = np.empty(len(frames) if batch == 1 else 0, dtype=np.int64)
    t0 = time.perf_counter()
    if batch == 1:
        for i, f in enumerate(frames):
            tick = time.monotonic_ns()
            on_frame(conn, f, binary, tick, True)  # type: ignore[arg-type]
            flush()
            lat[i] = time.monotonic_ns() - tick
    else:
        n = 0
        for f in frames:
            on_frame(conn, f, binary, 0, False)  # type: ignore[arg-type]
            n += 1
            if n == batch:
                flush()
                n = 0
        flush()
    return time.perf_counter() - t0, lat


def run_case(name: str, venue: str, frames: list[bytes], binary: bool, batch: int, snapshots: dict[str, bytes],
             baseline: Callable[[bytes], object], cpu_sub: int) -> dict[str, Any]:
    run_dir = tempfile.mkdtemp(prefix="dz-fb-", dir="/tmp")
    results: dict[str, Any] = {"format": name, "frames": len(frames)}
    for mode in ("throughput", "latency"):
        fut = FeedUnderTest(venue, run_dir)
        ready = mp.Event()
        proc = mp.Process(target=_subscriber, args=(fut.endpoint, ready, cpu_sub), daemon=True)
        proc.start()
        ready.wait(10)
        time.sleep(0.3)  # let the subscription reach the PUB socket before measuring (bench setup, not a test)
        for symbol, body in snapshots.items():
            fut.feed.handler.on_snapshot(symbol, body, 0)
        fut.feed.handler.take()
        frames_run = frames if mode == "throughput" else frames[: min(len(frames), 50_000)]
        seconds, lat = _measure(fut.feed, frames_run, binary, batch if mode == "throughput" else 1)
        if mode == "throughput":
            results["frames_per_s"] = round(len(frames_run) / seconds)
            results["batch"] = batch
            c = fut.feed.counters()
            results["malformed"] = c["malformed"]
            results["gaps"] = c["gaps"]
        else:
            results["frame_to_publish_p50_us"] = round(float(np.percentile(lat, 50)) / 1e3, 2)
            results["frame_to_publish_p99_us"] = round(float(np.percentile(lat, 99)) / 1e3, 2)
        fut.pub.send_multipart((b"x", b"stop"))
        proc.join(10)
        fut.pub.close(0)
        fut.feed._pub = None
    t0 = time.perf_counter()
    for f in frames:
        baseline(f)
    results["baseline_decode_only_per_s"] = round(len(frames) / (time.perf_counter() - t0))
    results["ratio_to_decode_only"] = round(results["frames_per_s"] / results["baseline_decode_only_per_s"], 3)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cpu", type=int, default=0, help="CPU for the feed; the subscriber takes the other one")
    args = ap.parse_args()
    n_cpu = os.cpu_count() or 1
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    cpu_sub = (args.cpu + 1) % n_cpu if n_cpu > 1 else -1
    json_any = msgspec.json.Decoder()

    def pb_decode(f: bytes) -> object:
        return PushDataV3ApiWrapper.FromString(f)

    depth_b, snaps_b = binance_depth(args.frames)
    depth_m, snaps_m = mexc_depth(args.frames)
    cases = [
        ("binance bookTicker (JSON)", "binance", binance_tickers(args.frames), False, {}, json_any.decode),
        ("binance depth diff (JSON, 5 levels)", "binance", depth_b, False, snaps_b, json_any.decode),
        ("mexc aggre.bookTicker (protobuf)", "mexc", mexc_tickers(args.frames), True, {}, pb_decode),
        ("mexc aggre.depth (protobuf, 5 levels)", "mexc", depth_m, True, snaps_m, pb_decode),
    ]
    print(f"feed on cpu {args.cpu}, subscriber on cpu {cpu_sub}; {n_cpu} cores on this machine")
    for name, venue, frames, binary, snaps, base in cases:
        r = run_case(name, venue, frames, binary, args.batch, snaps, base, cpu_sub)
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
