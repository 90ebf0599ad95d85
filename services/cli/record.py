"""`draizer record --venue V --duration S -o FILE`: store a venue's raw market-data frames for replay.

The feed runs as in production (same shards, snapshots and connection rules) with a recorder on its input:
every WebSocket frame with its receive stamp and socket-read boundary, and every REST depth snapshot. It
uses a private run directory, so a running pipeline is not disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from pathlib import Path

import msgspec

from services.feed.recording import Recorder
from shared.config import Config, default_config_path, load_config, venue_symbols
from shared.errors import ConfigError
from shared.runtime.host import ProcessContext, scratch_run_dir, serve, setup_logging
from shared.runtime.service import Service

log = logging.getLogger(__name__)


def recording_header(cfg: Config, venue_name: str) -> dict[str, object]:
    venue = next(v for v in cfg.venues if v.name == venue_name)
    return {
        "venue": venue.name,
        "kind": venue.kind,
        "ws_url": venue.ws_url,
        "symbols": [s.name for s in venue_symbols(venue, cfg.symbols)],
        "feed": msgspec.to_builtins(venue.feed),
        "started_unix_ms": time.time_ns() // 1_000_000,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer record", description=__doc__)
    p.add_argument("--venue", required=True)
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.venue not in {v.name for v in cfg.venues}:
        raise ConfigError(f"--venue: {args.venue!r} is not a configured venue")
    setup_logging("record")
    recorder = Recorder(Path(args.output), recording_header(cfg, args.venue))
    holder: dict[str, ProcessContext] = {}

    def make(ctx: ProcessContext) -> Service:
        from services.feed.service import Feed

        holder["ctx"] = ctx
        return Feed(ctx, args.venue, recorder=recorder, wait_for_subscriber=False)

    def on_running() -> None:
        asyncio.get_running_loop().call_later(args.duration, holder["ctx"].request_stop, "duration reached")

    try:
        with scratch_run_dir("dz-rec-") as run_dir:
            cfg = msgspec.structs.replace(cfg, runtime=msgspec.structs.replace(cfg.runtime, run_dir=run_dir))
            code = asyncio.run(serve(cfg, [make], on_running=on_running))
    finally:
        recorder.close()
    print(json.dumps({"output": args.output, "records": recorder.records, "bytes": recorder.bytes}))
    return code
