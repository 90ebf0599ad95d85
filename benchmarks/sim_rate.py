"""How many quotes per second the simulator emits on one core, with a live subscriber on every venue.

Starts ``python -m services.sim`` pinned to one CPU with a target rate far above what it can do, connects
one picows client per venue (subscribed to every symbol, on another CPU when there is one), and after a
warm-up compares the sim's own counters (``/sim/stats``) with the frames the clients received.

    .venv/bin/python benchmarks/sim_rate.py [--target 200000] [--seconds 5] [--cpu 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import socket
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

from shared.config import default_config_path, parse_config  # noqa: E402
from shared.http.client import HttpPool  # noqa: E402
from shared.venues import market_format  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    for sv, v in zip(data["sim"]["venues"], data["venues"], strict=True):
        sv["ws_port"], sv["rest_port"] = free_port(), free_port()
        v["ws_url"] = f"ws://127.0.0.1:{sv['ws_port']}{'/stream' if v['kind'] == 'binance' else '/ws'}"
        v["rest_url"] = f"http://127.0.0.1:{sv['rest_port']}"
    data["sim"]["quotes_per_second"] = target
    data["services"]["sim"]["cpu"] = cpu
    return data


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


async def measure(cfg_data: dict[str, Any], seconds: float, warmup: float) -> None:
    cfg = parse_config(msgspec.toml.encode(cfg_data))
    symbols = [s.name for s in cfg.symbols]
    rest_urls = [v.rest_url for v in cfg.venues]
    await wait_listening(rest_urls[0], 30)
    counters: list[Counter] = []
    transports = []
    for v in cfg.venues:
        fmt = market_format(v.kind)
        counter = Counter(fmt.subscribe_frames(symbols))
        t, _ = await picows.ws_connect(lambda c=counter: c, fmt.url(v.ws_url, symbols))
        counters.append(counter)
        transports.append(t)
    await asyncio.sleep(warmup)  # let the emitter reach steady state
    before = await sim_stats(rest_urls)
    frames_before = [c.frames for c in counters]
    start = time.monotonic()
    await asyncio.sleep(seconds)
    after = await sim_stats(rest_urls)
    elapsed = time.monotonic() - start
    frames_after = [c.frames for c in counters]
    for t in transports:
        t.disconnect()

    total = 0
    for v, b, a, fb, fa in zip(cfg.venues, before, after, frames_before, frames_after, strict=True):
        emitted = sum(a["quotes"].values()) - sum(b["quotes"].values())
        sent = sum(a["frames"].values()) - sum(b["frames"].values())
        dropped = a["dropped"] - b["dropped"]
        total += emitted
        print(
            f"{v.name:8s} emitted {emitted / elapsed:9.0f}/s  sent {sent / elapsed:9.0f}/s  "
            f"received {(fa - fb) / elapsed:9.0f}/s  dropped {dropped}"
        )
    print(f"sim total: {total / elapsed:.0f} quotes/s on one core (target {cfg.sim.quotes_per_second:.0f}/s)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", type=float, default=200_000.0, help="quotes_per_second asked of the sim")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--cpu", type=int, default=0, help="CPU the sim is pinned to (-1: not pinned)")
    args = p.parse_args()
    logging.getLogger("shared.http.client").setLevel(logging.ERROR)  # polling before the sim listens
    data = bench_config(args.target, args.cpu)
    cpus = os.sched_getaffinity(0) - {args.cpu}
    if cpus:
        os.sched_setaffinity(0, cpus)  # keep the clients off the sim's core
    env = {**os.environ, "PYTHONPATH": str(REPO), "DRAIZER_LOG_LEVEL": "WARNING"}
    for v in data["venues"]:
        env[v["api_key_env"]], env[v["api_secret_env"]] = secrets.token_hex(16), secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "sim.toml"
        cfg_path.write_bytes(msgspec.toml.encode(data))
        proc = subprocess.Popen([sys.executable, "-m", "services.sim", "--config", str(cfg_path)], env=env, cwd=REPO)
        try:
            asyncio.run(measure(data, args.seconds, args.warmup))
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
