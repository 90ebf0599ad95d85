"""What the simulator costs: quotes per second and CPU share of its one core, with depth and funding live.

Starts ``python -m services.sim`` pinned to one CPU, connects picows clients (on another CPU when there is
one) that subscribe to every symbol on every venue: bookTicker and diff depth (100 ms) on the spot
venues, markPrice@1s / funding on the perp venues. After a warm-up it compares the sim's own counters
(``/sim/stats``) with the frames the clients received, and reads the sim process's CPU time from /proc.

    .venv/bin/python benchmarks/sim_rate.py                    # the default config's rate (2000 quotes/s)
    .venv/bin/python benchmarks/sim_rate.py --target 200000    # how far one core goes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
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

from services.sim.local_ports import on_free_ports  # noqa: E402
from shared.config import Config, FeedSettings, default_config_path, parse_config, venue_symbols  # noqa: E402
from shared.http.client import HttpPool  # noqa: E402
from shared.venues import market_format  # noqa: E402

TOPS_AND_DEPTH = FeedSettings(depth="diff", depth_interval_ms=100)  # bookTicker and depth@100ms


class Counter(picows.WSListener):  # type: ignore[misc]
    def __init__(self, hello: list[str]) -> None:
        self.hello = hello
        self.frames = 0

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        for text in self.hello:
            transport.send(picows.WSMsgType.TEXT, text.encode())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        self.frames += 1


def bench_config(target: float, cpu: int) -> dict[str, Any]:
    data: dict[str, Any] = on_free_ports(msgspec.toml.decode(default_config_path().read_bytes()))
    data["sim"]["quotes_per_second"] = target
    data["services"]["sim"]["cpu"] = cpu
    return data


def subscriptions(kind: str, ws_url: str, symbols: list[tuple[str, str, str]]) -> list[tuple[str, list[str]]]:
    """(url, frames to send) per connection, as the feeds subscribe (the kind's own market format, its
    channels per connection); ``symbols`` as (name, base, quote)."""
    fmt = market_format(kind)
    channels = fmt.channels([fmt.wire_symbol(b, q) for _, b, q in symbols], TOPS_AND_DEPTH)
    step = fmt.max_channels_per_connection
    chunks = [channels[i:i + step] for i in range(0, len(channels), step)]
    if fmt.subscribes_in_url:
        return [(fmt.url(ws_url, chunk), []) for chunk in chunks]
    return [(ws_url, fmt.subscribe_frames(chunk)) for chunk in chunks]


async def sim_stats(urls: list[str]) -> list[dict[str, Any]]:
    out = []
    for url in urls:
        pool = HttpPool(url, size=1)
        try:
            resp = await asyncio.wait_for(pool.request("GET", "/sim/stats", []), 10)
            out.append(json.loads(resp.body))
        finally:
            await pool.close()
    return out


async def wait_listening(url: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            await sim_stats([url])
            return
        except (ConnectionError, TimeoutError):
            await asyncio.sleep(0.1)
    raise SystemExit("the simulator did not start listening")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def total(stats: dict[str, Any], key: str) -> int:
    value = stats.get(key, 0)
    return sum(value.values()) if isinstance(value, dict) else int(value)


async def measure(cfg: Config, pid: int, seconds: float, warmup: float) -> None:
    rest_urls = [v.rest_url for v in cfg.venues]
    await wait_listening(rest_urls[0], 30)
    counters: list[list[Counter]] = []
    transports = []
    for v in cfg.venues:
        symbols = [(s.name, s.base, s.quote) for s in venue_symbols(v, cfg.symbols)]
        per_venue = []
        for url, hello in subscriptions(v.kind, v.ws_url, symbols):
            counter = Counter(hello)
            t, _ = await picows.ws_connect(lambda c=counter: c, url)
            per_venue.append(counter)
            transports.append(t)
        counters.append(per_venue)
    await asyncio.sleep(warmup)  # let the emitter reach steady state
    before = await sim_stats(rest_urls)
    received_before = [sum(c.frames for c in cs) for cs in counters]
    cpu_before, start = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu_after, elapsed = cpu_seconds(pid), time.monotonic() - start
    after = await sim_stats(rest_urls)
    received_after = [sum(c.frames for c in cs) for cs in counters]
    for t in transports:
        t.disconnect()

    quotes = 0
    for v, b, a, rb, ra in zip(cfg.venues, before, after, received_before, received_after, strict=True):
        emitted = total(a, "quotes") - total(b, "quotes")
        frames = total(a, "frames") - total(b, "frames")
        depth = a["depth_frames"] - b["depth_frames"]
        quotes += emitted
        print(
            f"{v.name:13s} quotes {emitted / elapsed:9.0f}/s  frames {frames / elapsed:9.0f}/s"
            f"  depth {depth / elapsed:7.0f}/s  received {(ra - rb) / elapsed:9.0f}/s"
            f"  dropped {a['dropped'] - b['dropped']}"
        )
    share = (cpu_after - cpu_before) / elapsed
    print(f"sim: {quotes / elapsed:.0f} quotes/s (target {cfg.sim.quotes_per_second:.0f}/s), "
          f"CPU {share:.1%} of one core")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=float, default=2_000.0, help="quotes_per_second asked of the sim")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--cpu", type=int, default=0, help="CPU the sim is pinned to (-1: not pinned)")
    args = p.parse_args()
    logging.getLogger("shared.http.client").setLevel(logging.ERROR)  # polling before the sim listens
    data = bench_config(args.target, args.cpu)
    cfg = parse_config(msgspec.toml.encode(data))
    cpus = os.sched_getaffinity(0) - {args.cpu}
    if cpus:
        os.sched_setaffinity(0, cpus)  # keep the clients off the sim's core
    env = {**os.environ, "PYTHONPATH": str(REPO), "DRAIZER_LOG_LEVEL": "WARNING"}
    for v in cfg.venues:
        if v.api_key_env:
            env[v.api_key_env], env[v.api_secret_env] = secrets.token_hex(16), secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "sim.toml"
        cfg_path.write_bytes(msgspec.toml.encode(data))
        proc = subprocess.Popen([sys.executable, "-m", "services.sim", "--config", str(cfg_path)], env=env, cwd=REPO)
        try:
            asyncio.run(measure(cfg, proc.pid, args.seconds, args.warmup))
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
