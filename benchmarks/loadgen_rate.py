"""What the benchmark's load source costs, and how far it goes: frames/s delivered and its CPU share.

Starts ``python -m services.loadgen`` pinned to one CPU, once per asked rate, and connects plain picows
clients (this process, kept on the other CPUs) that subscribe exactly as the feeds do: one combined-stream
URL with every ``<s>@bookTicker`` on Binance, ``SUBSCRIPTION`` of every aggregated bookTicker channel on MEXC
(30 per connection), markPrice@1s and ``sub.funding.rate`` on the perp venues. After a warm-up it counts the
frames the clients received over the window and reads the load source's CPU time from /proc/<pid>/stat.

    .venv/bin/python benchmarks/loadgen_rate.py                          # 10k, 50k, 100k quotes/s
    .venv/bin/python benchmarks/loadgen_rate.py --rates 200000 --clients 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import picows

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.config import FeedSettings, default_config_path, venue_symbols  # noqa: E402
from shared.config import parse_config as _parse  # noqa: E402
from shared.http.client import HttpPool  # noqa: E402
from shared.venues import market_format  # noqa: E402
from shared.venues.kinds import kind_of  # noqa: E402

TOPS_ONLY = FeedSettings(depth="none")  # the load source replays bookTickers (and funding)
START_S = 120.0


class Counter(picows.WSListener):  # type: ignore[misc]
    """Counts data frames; sends its subscriptions once connected."""

    def __init__(self, hello: list[str]) -> None:
        self.hello = hello
        self.frames = 0

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        for text in self.hello:
            transport.send(picows.WSMsgType.TEXT, text.encode())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        self.frames += 1


def subscriptions(kind: str, ws_url: str, symbols: list[tuple[str, str, str]]) -> list[tuple[str, list[str]]]:
    """(url, frames to send) per connection, as the feeds subscribe (the kind's own market format, its
    channels per connection); ``symbols`` as (name, base, quote)."""
    fmt = market_format(kind)
    channels = fmt.channels([fmt.wire_symbol(b, q) for _, b, q in symbols], TOPS_ONLY)
    step = fmt.max_channels_per_connection
    chunks = [channels[i:i + step] for i in range(0, len(channels), step)]
    if fmt.subscribes_in_url:
        return [(fmt.url(ws_url, chunk), []) for chunk in chunks]
    return [(ws_url, fmt.subscribe_frames(chunk)) for chunk in chunks]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_loadgen(cfg_path: Path, rate: float, cpu: int, tape: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = {**os.environ, "DRAIZER_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.loadgen", "--config", str(cfg_path), "--rate", str(rate), "--cpu", str(cpu),
         "--tape", str(tape)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"loadgen exited with {proc.returncode}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = json.loads(proc.stdout.readline())
            if line.get("ready"):
                return proc, line["ports"]
    proc.kill()
    raise SystemExit("loadgen did not get ready")


def stop_loadgen(proc: subprocess.Popen[str]) -> dict[str, Any]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    lines = [json.loads(x) for x in out.strip().splitlines() if x.strip()]
    return lines[-1] if lines else {}


async def stats(url: str) -> dict[str, Any]:
    pool = HttpPool(url, size=1)
    try:
        resp = await asyncio.wait_for(pool.request("GET", "/loadgen/stats?last=0", []), 10)
        return dict(json.loads(resp.body))
    finally:
        await pool.close()


async def measure(data: dict[str, Any], ports: dict[str, dict[str, int]], pid: int, clients: int, seconds: float,
                  warmup: float) -> dict[str, Any]:
    cfg = _parse(msgspec.toml.encode(data))
    counters: dict[str, list[Counter]] = {}
    transports = []
    try:
        for v in cfg.venues:
            url = f"ws://127.0.0.1:{ports[v.name]['ws']}{kind_of(v.kind).ws_path}"
            symbols = [(s.name, s.base, s.quote) for s in venue_symbols(v, cfg.symbols)]
            for _ in range(clients):
                for sub_url, hello in subscriptions(v.kind, url, symbols):
                    counter = Counter(hello)
                    t, _ = await picows.ws_connect(lambda c=counter: c, sub_url)
                    counters.setdefault(v.name, []).append(counter)
                    transports.append(t)
        rest = next(f"http://127.0.0.1:{p['rest']}" for p in ports.values() if "rest" in p)
        await asyncio.sleep(warmup)  # past connection set-up, to the steady state
        before = await stats(rest)
        got0 = {n: sum(c.frames for c in cs) for n, cs in counters.items()}
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)  # the measurement window
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        got1 = {n: sum(c.frames for c in cs) for n, cs in counters.items()}
        after = await stats(rest)
    finally:
        for t in transports:
            t.disconnect()
    elapsed = t1 - t0
    spot = [v.name for v in cfg.venues if kind_of(v.kind).spot]
    return {
        "quotes_per_s": (after["quotes"] - before["quotes"]) / elapsed,
        "received_per_s": {n: (got1[n] - got0[n]) / elapsed for n in got1},
        "received_spot_per_s": sum(got1[n] - got0[n] for n in spot) / elapsed / clients,
        "dropped": {n: after["dropped"][n] - before["dropped"][n] for n in after["dropped"]},
        "skipped": after["skipped"] - before["skipped"],
        "cpu_share": (cpu1 - cpu0) / elapsed,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", type=float, nargs="+", default=[10_000.0, 50_000.0, 100_000.0])
    p.add_argument("--clients", type=int, default=1, help="client sets per venue (each subscribes everything)")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--cpu", type=int, default=0, help="CPU the load source is pinned to (-1: not pinned)")
    p.add_argument("--tape", type=int, default=200_000, help="quotes on the tape")
    args = p.parse_args()
    logging.getLogger("shared.http.client").setLevel(logging.ERROR)
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    others = os.sched_getaffinity(0) - {args.cpu}
    if others and args.cpu >= 0:
        os.sched_setaffinity(0, others)  # the clients stay off the load source's core
    print(f"load source on cpu {args.cpu}, clients on {sorted(os.sched_getaffinity(0))}; {args.clients} client "
          f"set(s) per venue, {args.seconds:.0f} s per rate")
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "loadgen.toml"
        cfg_path.write_bytes(msgspec.toml.encode(data))
        for rate in args.rates:
            proc, ports = start_loadgen(cfg_path, rate, args.cpu, args.tape)
            try:
                r = asyncio.run(measure(data, ports, proc.pid, args.clients, args.seconds, args.warmup))
            finally:
                summary = stop_loadgen(proc)
            recv = "  ".join(f"{n} {v:8.0f}/s" for n, v in r["received_per_s"].items())
            print(f"asked {rate:9.0f}/s: sent {r['quotes_per_s']:9.0f} quotes/s, received (per client set) "
                  f"{r['received_spot_per_s']:9.0f}/s, load source CPU {r['cpu_share']:6.1%} of one core; "
                  f"dropped {sum(r['dropped'].values())}, skipped {r['skipped']}  [{recv}]"
                  f"  exit summary: {summary.get('rate_achieved')}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
