"""`draizer record --venue V[,V...] --duration S -o PATH`: store venues' raw market-data frames for replay.

The feed runs as in production (same shards, snapshots and connection rules) with a recorder on its input:
every WebSocket frame with its receive stamp, socket-read boundary and the venue's own event time, and every
REST depth snapshot. The header keeps the venue's symbol rules read from its public exchangeInfo at the start
(``services/feed/recorded_rules.py``) and the wall and monotonic clocks read together. Several venues
(``--venue`` repeated or comma-separated) are recorded in one process, on one clock, one file each: ``-o`` is
then a directory that receives ``<venue>.dzrec`` per venue (with one venue, ``-o`` is the file, unless it
names an existing directory). It uses a private run directory, so a running pipeline is not disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from services.feed.recorded_rules import fetch_rules, rules_to_header
from services.feed.recording import VERSION, Recorder
from shared.config import Config, default_config_path, load_config, venue_symbols
from shared.errors import ConfigError
from shared.runtime.host import ProcessContext, scratch_run_dir, serve, setup_logging
from shared.runtime.service import Service
from shared.venues.common import SymbolRules

log = logging.getLogger(__name__)


def recording_header(cfg: Config, venue_name: str, rules: dict[str, SymbolRules] | None = None,
                     started: tuple[int, int] | None = None) -> dict[str, object]:
    """``started``: (wall clock ns, monotonic ns) read together; now when not given."""
    venue = next(v for v in cfg.venues if v.name == venue_name)
    unix_ns, mono_ns = started if started is not None else clocks()
    return {
        "version": VERSION,
        "venue": venue.name,
        "kind": venue.kind,
        "ws_url": venue.ws_url,
        "symbols": [s.name for s in venue_symbols(venue, cfg.symbols)],
        "feed": msgspec.to_builtins(venue.feed),
        "started_unix_ms": unix_ns // 1_000_000,
        "started_unix_ns": unix_ns,
        "started_monotonic_ns": mono_ns,
        "rules": rules_to_header(rules or {}),
    }


def clocks() -> tuple[int, int]:
    """The wall clock and the monotonic clock (the receive stamps' clock), read back to back."""
    mono = time.monotonic_ns()
    return time.time_ns(), mono


def venue_names(values: Sequence[str], cfg: Config) -> list[str]:
    """``--venue`` values, each possibly comma-separated, in order, once each; an unknown one is a ConfigError."""
    names: list[str] = []
    for value in values:
        for name in (n.strip() for n in value.split(",")):
            if name and name not in names:
                names.append(name)
    if not names:
        raise ConfigError("--venue: name at least one venue")
    known = [v.name for v in cfg.venues]
    for name in names:
        if name not in known:
            raise ConfigError(f"--venue: {name!r} is not a configured venue (configured: {', '.join(known)})")
    return names


def output_paths(output: Path, names: Sequence[str]) -> dict[str, Path]:
    """One venue: ``output`` is the file (or a directory to put ``<venue>.dzrec`` in); several: a directory."""
    if len(names) == 1 and not output.is_dir():
        return {names[0]: output}
    if output.exists() and not output.is_dir():
        raise ConfigError(f"-o {output}: several venues are recorded into a directory, and this is a file")
    output.mkdir(parents=True, exist_ok=True)
    return {name: output / f"{name}.dzrec" for name in names}


async def _record(cfg: Config, names: list[str], paths: dict[str, Path], duration_s: float,
                  recorders: dict[str, Recorder]) -> int:
    by_name = {v.name: v for v in cfg.venues}
    fetched = await asyncio.gather(*(
        fetch_rules(by_name[n], [s.name for s in venue_symbols(by_name[n], cfg.symbols)]) for n in names
    ))
    started = clocks()  # one moment for every file: they share the receive stamps' clock
    for name, rules in zip(names, fetched, strict=True):
        recorders[name] = Recorder(paths[name], recording_header(cfg, name, rules, started))
    holder: dict[str, ProcessContext] = {}

    def factory(name: str) -> Callable[[ProcessContext], Service]:
        def make(ctx: ProcessContext) -> Service:
            from services.feed.service import Feed

            holder["ctx"] = ctx
            return Feed(ctx, name, recorder=recorders[name], wait_for_subscriber=False)

        return make

    def on_running() -> None:
        asyncio.get_running_loop().call_later(duration_s, holder["ctx"].request_stop, "duration reached")

    return await serve(cfg, [factory(n) for n in names], on_running=on_running)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer record", description=__doc__)
    p.add_argument("--venue", action="append", required=True, help="a venue; repeat it or separate with commas")
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("-o", "--output", required=True, type=Path, help="the file; a directory for several venues")
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    args = p.parse_args(argv)
    if args.duration <= 0:
        raise ConfigError("--duration must be > 0 seconds")
    cfg = load_config(args.config)
    names = venue_names(args.venue, cfg)
    paths = output_paths(args.output, names)
    setup_logging("record")
    recorders: dict[str, Recorder] = {}
    try:
        with scratch_run_dir("dz-rec-") as run_dir:
            cfg = msgspec.structs.replace(cfg, runtime=msgspec.structs.replace(cfg.runtime, run_dir=run_dir))
            code = asyncio.run(_record(cfg, names, paths, args.duration, recorders))
    finally:
        for recorder in recorders.values():
            recorder.close()
    venues = {n: {"output": str(r.path), "records": r.records, "bytes": r.bytes} for n, r in recorders.items()}
    print(json.dumps({"output": str(args.output), "records": sum(r.records for r in recorders.values()),
                      "bytes": sum(r.bytes for r in recorders.values()), "venues": venues}))
    return code
