"""How many recorded events per second ``draizer replay`` (detection only) and ``draizer backtest`` (the whole
engine: detector, risk, executor, paper venues, on the virtual clock) take on one core.

The input is made here, in the venues' exact formats: Binance bookTicker JSON and MEXC protobuf book tickers for 8
symbols, the two venues alternating, one frame every 100 µs of recorded time (10k events/s of market), prices
around fixed mids with a 25 bps dislocation starting on 0.05 % of frames (so both runs find and trade something,
as a real recording would). Each frame is its own socket read (the worst case for batching). The recordings are
written with the real ``Recorder`` (format 2) and read back by the real ``Recording``.

Same run, same frames, three measurements, each the median of ``--repeats``:
- baseline: decoding the frames and nothing else (``msgspec`` for Binance, protobuf for MEXC): the floor;
- detection only: ``services.cli.replay.replay`` (feed handlers + detector, kernels warmed before timing);
- backtest: ``services.backtest.engine.run_backtest``'s record loop (start-up and the final settling excluded,
  which are reported separately).

    .venv/bin/python benchmarks/backtest_rate.py [--frames 200000] [--repeats 3] [--cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.backtest.engine import run_backtest  # noqa: E402
from services.backtest.latency import LatencyModel  # noqa: E402
from services.cli.replay import replay  # noqa: E402
from services.feed.recording import BINARY, LAST_IN_BUFFER, TEXT, Recorder  # noqa: E402
from shared.config import Config, default_config_path, parse_config  # noqa: E402
from shared.venues.mexc.proto.push_data_pb2 import PublicAggreBookTickerV3Api, PushDataV3ApiWrapper  # noqa: E402

MIDS = {"BTCUSDT": 97000.0, "ETHUSDT": 3500.0, "SOLUSDT": 200.0, "BNBUSDT": 650.0, "XRPUSDT": 2.3,
        "DOGEUSDT": 0.4, "ADAUSDT": 1.0, "LTCUSDT": 100.0}
STEP_NS = 100_000  # recorded time between two frames
START_NS = 10**12
DISLOCATION_P = 0.0005
DISLOCATION_FRAMES = 50
DISLOCATION_BPS = 25.0


def bench_config(run_dir: Path) -> Config:
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    data["instance"] = f"bt{os.getpid()}"
    data["runtime"]["run_dir"] = str(run_dir)
    data["sim"]["enabled"] = False
    data["symbols"] = [s for s in data["symbols"] if s["name"] in MIDS]
    data["venues"] = [v for v in data["venues"] if v["name"] in ("binance", "mexc")]
    for v in data["venues"]:
        v["symbols"] = [s for s in v.get("symbols", []) if s in MIDS]
        for key in ("api_key_env", "api_secret_env", "ws_api_url", "user_ws_url"):
            v.pop(key, None)
    data["paper"] = {"fills": "model"}
    return parse_config(msgspec.toml.encode(data))


def _decimals(cfg: Config, name: str) -> int:
    tick = Decimal(next(s.tick_size for s in cfg.symbols if s.name == name)).normalize()
    exponent = tick.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def make_frames(cfg: Config, n: int, seed: int = 7) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(seed)
    names = list(MIDS)
    mids = dict(MIDS)
    shift: dict[tuple[int, str], tuple[float, int]] = {}
    binance: list[bytes] = []
    mexc: list[bytes] = []
    for i in range(n):
        venue = i % 2
        s = names[(i // 2) % len(names)]
        mids[s] *= 1.0 + rng.gauss(0.0, 0.00002)
        key = (venue, s)
        bps, left = shift.get(key, (0.0, 0))
        if left == 0 and rng.random() < DISLOCATION_P:
            bps, left = rng.choice((-DISLOCATION_BPS, DISLOCATION_BPS)), DISLOCATION_FRAMES
        shift[key] = (bps, max(0, left - 1))
        mid = mids[s] * (1.0 + (bps if left else 0.0) / 1e4)
        dec = _decimals(cfg, s)
        half = max(mid * 0.00005, 10.0**-dec)
        bid, ask = f"{mid - half:.{dec}f}", f"{mid + half:.{dec}f}"
        qty = f"{2000.0 / mid:.4f}"
        if venue == 0:
            binance.append(f'{{"stream":"{s.lower()}@bookTicker","data":{{"u":{i + 1},"s":"{s}","b":"{bid}",'
                           f'"B":"{qty}","a":"{ask}","A":"{qty}"}}}}'.encode())
        else:
            w = PushDataV3ApiWrapper(
                channel=f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{s}", symbol=s, sendTime=1736412092433 + i,
                publicAggreBookTicker=PublicAggreBookTickerV3Api(bidPrice=bid, bidQuantity=qty, askPrice=ask,
                                                                 askQuantity=qty, version=str(i + 1)))
            mexc.append(w.SerializeToString())
    return binance, mexc


def write_recordings(cfg: Config, out: Path, binance: list[bytes], mexc: list[bytes]) -> list[Path]:
    paths = []
    for v, frames, kind in ((0, binance, TEXT), (1, mexc, BINARY)):
        venue = cfg.venues[v]
        settings = msgspec.structs.replace(venue.feed, depth="none")  # tops only: what this input holds
        header = {"venue": venue.name, "kind": venue.kind, "ws_url": venue.ws_url, "symbols": list(MIDS),
                  "feed": msgspec.to_builtins(settings), "started_unix_ms": 1_796_000_000_000,
                  "started_unix_ns": 1_796_000_000_000_000_000, "started_monotonic_ns": START_NS, "rules": {}}
        path = out / f"{venue.name}.dzrec"
        rec = Recorder(path, header)
        for k, frame in enumerate(frames):
            rec.write(kind, frame, START_NS + (2 * k + v) * STEP_NS, flags=LAST_IN_BUFFER)
        rec.close()
        paths.append(path)
    return paths


def baseline(binance: list[bytes], mexc: list[bytes]) -> float:
    """Events/s for decoding the frames alone."""
    decode = msgspec.json.Decoder().decode
    parse = PushDataV3ApiWrapper.FromString
    t = time.perf_counter()
    for f in binance:
        decode(f)
    for f in mexc:
        parse(f)
    return (len(binance) + len(mexc)) / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpu", type=int, default=1)
    args = p.parse_args()
    if args.cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory(prefix="dz-btb-") as tmp:
        cfg = bench_config(Path(tmp) / "run")
        binance, mexc = make_frames(cfg, args.frames)
        paths = write_recordings(cfg, Path(tmp), binance, mexc)
        base, det, full, startup, opps, execs = [], [], [], [], [], []
        for _ in range(args.repeats):
            base.append(baseline(binance, mexc))
            r = asyncio.run(_replay(cfg, paths))
            det.append(args.frames / r.seconds)
            opps.append(r.opportunities)
            b = run_backtest(cfg, paths, LatencyModel.from_config(cfg))
            full.append(b.records / b.seconds_loop)
            startup.append(b.seconds_wall - b.seconds_loop)
            execs.append(len(b.executions))
    med = statistics.median
    out = {
        "cpu": args.cpu, "frames": args.frames, "recorded_seconds": args.frames * STEP_NS / 1e9,
        "baseline_decode_events_per_s": round(med(base)),
        "detection_only_events_per_s": round(med(det)), "detection_only_runs": [round(x) for x in det],
        "backtest_events_per_s": round(med(full)), "backtest_runs": [round(x) for x in full],
        "backtest_startup_and_settle_s": round(med(startup), 3),
        "detection_vs_baseline": round(med(det) / med(base), 3),
        "backtest_vs_detection": round(med(full) / med(det), 3),
        "opportunities": opps[0], "executions": execs[0],
        "us_per_event": {"baseline": round(1e6 / med(base), 2), "detection_only": round(1e6 / med(det), 2),
                         "backtest": round(1e6 / med(full), 2)},
    }
    print(json.dumps(out, indent=2))
    return 0


async def _replay(cfg: Config, paths: list[Path]) -> Any:
    return replay(cfg, paths)


if __name__ == "__main__":
    sys.exit(main())
