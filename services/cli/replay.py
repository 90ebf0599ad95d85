"""`draizer replay FILE [FILE ...] [--speed X]`: drive the feed handlers and the detector from recordings.

Records go through the same ``FeedHandler`` code as live, batch by batch as they were read from the socket,
then into the detector in this process. The detector's clock is the recording's receive stamps, so quote
ages — and therefore every result — repeat exactly, at any speed: ``--speed 0`` (default) runs as fast as
possible, ``--speed 1`` in real time. Several files (venues) are merged by receive stamp. Risk and
execution are left out on purpose: their limits depend on the wall clock and on live positions.

Prints one JSON object: counts per venue, opportunities, and a SHA-256 over the opportunity stream that
two replays of the same files must share.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import msgspec

from services.feed.recorded import handler_for, merged, take_record
from services.feed.recording import Recording
from shared.config import Config, default_config_path, load_config
from shared.errors import ConfigError
from shared.messages import MarketBatch, Opportunity
from shared.runtime.clock import Clock
from shared.runtime.host import ProcessContext, scratch_run_dir


class ReplayResult(msgspec.Struct):
    venues: dict[str, dict[str, int]]
    opportunities: int
    digest: str
    truncated_bytes: int
    seconds: float


def replay(cfg: Config, paths: list[Path], speed: float = 0.0) -> ReplayResult:
    with scratch_run_dir("dz-replay-") as run_dir:  # removed when the replay ends, an error included
        return _replay(cfg, paths, speed, Path(run_dir))


def _replay(cfg: Config, paths: list[Path], speed: float, run_dir: Path) -> ReplayResult:
    recordings = [Recording(p) for p in paths]
    clock = [0]
    ctx = ProcessContext(cfg, run_dir, Clock(lambda: clock[0]))
    reg = ctx.registry
    handlers = [handler_for(cfg, rec.header, reg, "replay") for rec in recordings]

    from services.detector.service import Detector

    detector = Detector(ctx)
    found: list[Opportunity] = []
    detector.opportunities.send = lambda o: found.append(o) or True  # type: ignore[method-assign]
    detector.publish = lambda _event: None  # type: ignore[method-assign]
    detector.warm_up()  # as its start does: the kernels are loaded before the first record, not timed with it

    started = time.monotonic()
    first_tick = 0
    for i, rec in merged(recordings):
        if not first_tick:
            first_tick = rec.tick_ns
        if speed > 0:
            due = started + (rec.tick_ns - first_tick) / 1e9 / speed
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing the replay, not synchronization
        clock[0] = rec.tick_ns
        items = take_record(handlers[i], rec)
        if items:
            detector.on_batch(MarketBatch(rec.tick_ns, items))
    digest = hashlib.sha256()
    for o in found:
        legs = [(leg.venue, leg.symbol, leg.side, leg.price, leg.qty, leg.quote_ns) for leg in o.legs]
        digest.update(msgspec.json.encode((o.strategy, o.action, o.symbol, legs, o.tick_ns)))
    return ReplayResult(
        venues={reg.venue_names[h.venue_id]: h.counters() for h in handlers},
        opportunities=len(found),
        digest=digest.hexdigest(),
        truncated_bytes=sum(r.truncated_bytes for r in recordings),
        seconds=round(time.monotonic() - started, 3),
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer replay", description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--speed", type=float, default=0.0, help="1 = real time, 0 = as fast as possible")
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    args = p.parse_args(argv)
    if args.speed < 0:
        raise ConfigError("--speed must be >= 0")
    cfg = load_config(args.config)
    # The detector needs no running loop, but its Service base expects one to exist when built.
    result = asyncio.run(_run(cfg, args.files, args.speed))
    print(json.dumps(msgspec.to_builtins(result), indent=2))
    return 0


async def _run(cfg: Config, files: list[Path], speed: float) -> ReplayResult:
    return replay(cfg, files, speed)
