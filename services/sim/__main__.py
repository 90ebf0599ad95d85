"""``python -m services.sim --config FILE``: the simulated exchange as its own process.

SIGTERM and SIGINT stop it cleanly (exit 0). API keys come from the environment variables each venue's
config names; they are never read from files or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from services.sim.app import run_sim
from shared.config import Config, default_config_path, load_config
from shared.runtime.host import pin_cpu, setup_logging

log = logging.getLogger(__name__)


async def _serve(cfg: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_sim(cfg, stop)
    log.info("sim stopped")


def run(cfg: Config) -> int:
    """Entry point shared with ``draizer service sim``."""
    setup_logging("sim")
    log.info("sim: %s", pin_cpu(cfg.services.sim.cpu))
    if not cfg.sim.enabled:
        log.error("sim.enabled is false in this config")
        return 1
    asyncio.run(_serve(cfg))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.sim", description=__doc__)
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    args = p.parse_args(argv)
    return run(load_config(args.config))


if __name__ == "__main__":
    raise SystemExit(main())
