"""`draizer api`: serve the HTTP API on ``sinks.api_host:sinks.api_port`` until SIGTERM/SIGINT.

supervisord starts it as ``[program:api]`` after the bridge. With ``api_port = 0`` the API is switched off:
the program exits 0 at once and supervisord (autorestart=unexpected) leaves it stopped. A port that is
taken is retried with backoff instead of exiting, so supervisord never restarts it in a tight loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import time
from pathlib import Path

import uvicorn

from services.api.app import create_app
from services.api.auth import TokenCheck
from services.api.monitor import Monitor
from services.api.sources import Controls, ShmSource
from services.api.tape import Tape, TapeReader, risk_asker
from shared.config import default_config_path, load_config, resolve_run_dir
from shared.registry import Registry
from shared.runtime.endpoints import Endpoints
from shared.runtime.host import setup_logging
from shared.shm import shm_path

log = logging.getLogger("draizer.api")

BIND_RETRY_MAX_S = 5.0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; while the address is taken, log once and retry with backoff."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    delay, logged = 0.2, False
    while True:
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
            sock.listen(128)
            return sock
        except OSError as exc:
            sock.close()
            if not logged:
                log.warning("cannot listen on %s:%d (%s); retrying", host, port, exc.strerror)
                logged = True
            time.sleep(delay)
            delay = min(delay * 2, BIND_RETRY_MAX_S)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer api", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path(os.environ.get("DRAIZER_CONFIG") or default_config_path()))
    p.add_argument("--run-dir", type=Path, default=None, help="default: the config's, else $DRAIZER_RUN_DIR")
    p.add_argument("--host", default=None, help="default: sinks.api_host")
    p.add_argument("--port", type=int, default=None, help="default: sinks.api_port (0: API off, exit 0)")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    setup_logging("api")
    host = args.host or cfg.sinks.api_host
    port = cfg.sinks.api_port if args.port is None else args.port
    if port == 0:
        log.info("sinks.api_port is 0: the HTTP API is off")
        return 0
    run_dir = (args.run_dir or resolve_run_dir(cfg)).resolve()
    endpoints = Endpoints(cfg, run_dir)
    env_var = cfg.sinks.api_token_env
    auth = TokenCheck(os.environ.get(env_var, "") if env_var else "", env_var)
    if not auth.enabled:
        log.warning("%s is not set: write endpoints refuse every request (503)", env_var or "sinks.api_token_env")
    controls = Controls({s: endpoints.control(s) for s in endpoints.all_services()})
    source = ShmSource(shm_path(cfg.instance))
    # The monitor's tape: executions, risk state and rate budgets from the executor's and risk's events.
    tape = Tape(Registry(cfg), max_daily_loss_usd=cfg.risk.max_daily_loss_usd,
                ask_risk=risk_asker(endpoints.control("risk")))
    reader = TapeReader(tape, [endpoints.events("executor"), endpoints.events("risk")])
    monitor = Monitor(source, tape, cfg.instance, cfg.mode)
    app = create_app(source, controls, auth, cfg.instance, monitor)
    sock = bind(host, port)
    log.info("HTTP API on http://%s:%d (web monitor /, OpenAPI /openapi.json, docs /docs), instance %s", host, port,
             cfg.instance)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                       server_header=False, timeout_graceful_shutdown=5)
    )
    monitor.stopping = lambda: server.should_exit  # open monitor streams end, so shutdown does not wait for them
    # uvicorn catches SIGTERM/SIGINT, shuts down gracefully, restores the handlers it found and raises the
    # signal again. These no-op handlers make that last step a plain return: exit 0, like every draizer program.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: None)
    reader.start()
    try:
        server.run(sockets=[sock])
    finally:
        reader.stop()
        source.close()
    return 0 if server.started else 1
