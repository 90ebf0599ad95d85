"""`draizer config check [FILE]`: validate a config (errors name the key) and list the environment variables it
needs, with whether each is set (never its value)."""

from __future__ import annotations

import argparse
import os
import sys

from shared.config import Config, default_config_path, load_config
from shared.errors import ConfigError
from shared.venues.kinds import kind_of


def needed_env(cfg: Config) -> list[tuple[str, str]]:
    """(variable, what needs it): in live mode, the key and secret of every venue orders can go to. Paper mode
    needs none: its orders never reach a venue (``draizer run`` makes up keys for the simulator). A perpetual venue
    without ``api_key_env`` is a funding feed: it needs none."""
    if cfg.mode != "live":
        return []
    out: list[tuple[str, str]] = []
    for i, v in enumerate(cfg.venues):
        if kind_of(v.kind).order_format is None or not v.api_key_env:
            continue
        out.append((v.api_key_env, f"venues[{i}] {v.name}: api_key_env"))
        out.append((v.api_secret_env or "<api_secret_env unset>", f"venues[{i}] {v.name}: api_secret_env"))
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="draizer config", description="configuration files")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a config file and list the environment variables it needs",
                           description=__doc__)
    check.add_argument("file", nargs="?", default=str(default_config_path()),
                       help="the config file (default: the embedded paper-trading one)")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    path = args.file
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(
        f"ok: {path}: mode={cfg.mode} venues={[v.name for v in cfg.venues]} symbols={len(cfg.symbols)} "
        f"placement={cfg.runtime.placement}"
    )
    needed = needed_env(cfg)
    if needed:
        print("environment:")
        for name, why in needed:
            print(f"  {name:<32} {'set' if os.environ.get(name) else 'NOT SET':<8} {why}")
    else:
        print(f"environment: no keys needed ({cfg.mode} mode)")
    return 0
