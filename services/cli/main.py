"""The `draizer` command."""

from __future__ import annotations

import sys

from shared.errors import DraizerError

USAGE = """usage: draizer COMMAND [ARGS]

commands:
  run            run the whole pipeline under supervisord (embedded default: simulator + paper trading)
  status         live counters from shared memory (--json for machines)
  bench          drive the pipeline at fixed quote rates; tick->order latency and max sustained rate
  record         store venues' raw market-data frames (--venue V[,V...] --duration S -o FILE|DIR)
  replay         drive the feed handlers and detector from recordings, deterministically
  backtest       recorded markets through detector, risk and executor with simulated fills; report, sweeps
  config check   validate a config file; list the environment variables it needs
  preflight      check keys, permissions, clock, venue rules, balances and rate limits before live trading
  strategy       show strategies, enable/disable one or set its parameters at runtime (no restart)
  reload         re-read the config file into the running detector (strategy sections)
  kill / resume  risk kill switch: halt (and cancel) / resume trading
  db migrate     apply draizer's numbered SQL migrations to PostgreSQL ($DRAIZER_POSTGRES_DSN)
  journal import load a local journal file into PostgreSQL, idempotently
  top            a live, refreshing view of shared memory
  api            the HTTP API (reads shared memory; commands go to the control sockets)
  ctl ARGS       supervisorctl for the running pipeline (draizer ctl status, draizer ctl tail risk)
  env            print the exports supervisord.conf needs (for supervisord/supervisorctl by hand)
  service KIND   run one service (what supervisord starts)
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    try:
        if command == "run":
            from services.cli.run import main as run

            return run(rest)
        if command == "status":
            from services.cli.status import main as status

            return status(rest)
        if command == "bench":
            from services.cli.bench import main as bench

            return bench(rest)
        if command == "record":
            from services.cli.record import main as record

            return record(rest)
        if command == "replay":
            from services.cli.replay import main as replay

            return replay(rest)
        if command == "backtest":
            from services.cli.backtest import main as backtest

            return backtest(rest)
        if command == "config":
            from services.cli.config_check import main as config

            return config(rest)
        if command == "preflight":
            from services.cli.preflight import main as preflight

            return preflight(rest)
        if command in ("strategy", "reload", "kill", "resume"):
            from services.cli.control import main as control

            return control([command, *rest])
        if command == "db":
            from services.cli.db import main as db

            return db(rest)
        if command == "journal":
            from services.cli.journal import main as journal

            return journal(rest)
        if command == "top":
            from services.cli.top import main as top

            return top(rest)
        if command == "api":
            from services.api.main import main as api

            return api(rest)
        if command == "ctl":
            from services.cli.ctl import ctl_main

            return ctl_main(rest)
        if command == "env":
            from services.cli.ctl import env_main

            return env_main(rest)
        if command == "service":
            from services.cli.service import main as service

            return service(rest)
    except DraizerError as exc:
        print(f"draizer: {exc}", file=sys.stderr)
        return 2
    print(f"draizer: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
