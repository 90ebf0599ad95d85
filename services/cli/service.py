"""`draizer service KIND`: one supervisord program. The config path comes from --config or DRAIZER_CONFIG."""

from __future__ import annotations

import argparse
import os
import signal

from shared.config import Config, load_config
from shared.runtime.host import ProcessContext, ServiceFactory, run_process
from shared.runtime.service import Service

KINDS = ("sim", "feed", "detector", "risk", "executor", "engine", "single", "bridge")


def _detector(ctx: ProcessContext) -> Service:
    from services.detector.service import Detector

    return Detector(ctx)


def _risk(ctx: ProcessContext) -> Service:
    from services.risk.service import RiskEngine

    return RiskEngine(ctx)


def _executor(ctx: ProcessContext) -> Service:
    from services.executor.service import Executor

    return Executor(ctx)


def _bridge(ctx: ProcessContext) -> Service:
    from services.bridge.service import Bridge

    return Bridge(ctx)


def _feed(venue: str) -> ServiceFactory:
    def make(ctx: ProcessContext) -> Service:
        from services.feed.service import Feed

        return Feed(ctx, venue)

    return make


def io_cpu_for(kind: str, cfg: Config) -> int:
    """The core of the process's ZeroMQ I/O thread (``services.<kind>.io_cpu``; the engine's for fused and single)."""
    settings = cfg.services.engine if kind in ("engine", "single") else getattr(cfg.services, kind, None)
    return settings.io_cpu if settings is not None else -1


def factories_for(kind: str, cfg: Config, venue_index: int = 0) -> tuple[list[ServiceFactory], int]:
    """The services one process hosts, in pipeline order, and the CPU it is pinned to."""
    cpus = cfg.services
    if kind == "feed":
        if not 0 <= venue_index < len(cfg.venues):
            raise SystemExit(f"--venue-index {venue_index}: the config has {len(cfg.venues)} venues")
        return [_feed(cfg.venues[venue_index].name)], cpus.feed.cpu
    if kind == "detector":
        return [_detector], cpus.detector.cpu
    if kind == "risk":
        return [_risk], cpus.risk.cpu
    if kind == "executor":
        return [_executor], cpus.executor.cpu
    engine_cpu = cpus.engine.cpu if cpus.engine.cpu >= 0 else cpus.detector.cpu
    if kind == "engine":  # fused placement: one process, direct calls on the hot path
        return [_detector, _risk, _executor], engine_cpu
    if kind == "single":  # the feeds too: the order is written in the call that parsed the frame
        return [*(_feed(v.name) for v in cfg.venues), _detector, _risk, _executor], engine_cpu
    if kind == "bridge":
        return [_bridge], cpus.bridge.cpu
    raise SystemExit(f"unknown service kind {kind!r}; expected one of {', '.join(KINDS)}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer service", description=__doc__)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG"))
    p.add_argument("--venue-index", type=int, default=0)
    args = p.parse_args(argv)
    if not args.config:
        p.error("--config or DRAIZER_CONFIG is required")
    cfg = load_config(args.config)
    if args.kind == "sim":
        if not cfg.sim.enabled:  # live venues, or an external load source (the bench): nothing to simulate
            print("draizer service sim: sim.enabled is false in this config; idle until stopped", flush=True)
            stops = {signal.SIGTERM, signal.SIGINT}
            signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # delivered to sigwait, not to the default handler
            signal.sigwait(stops)  # stays RUNNING meanwhile, so a real sim keeps supervisord's crash backoff
            return 0
        from services.sim.__main__ import run as run_sim

        return run_sim(cfg)
    factories, cpu = factories_for(args.kind, cfg, args.venue_index)
    name = args.kind if args.kind != "feed" else f"feed.{cfg.venues[args.venue_index].name}"
    return run_process(cfg, name, factories, cpu, io_cpu_for(args.kind, cfg))
