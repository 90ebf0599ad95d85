"""`draizer config check FILE`: validate a config; errors name the key."""

from __future__ import annotations

import sys

from shared.config import default_config_path, load_config
from shared.errors import ConfigError


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "check" or len(argv) > 2:
        print("usage: draizer config check [FILE]", file=sys.stderr)
        return 2
    path = argv[1] if len(argv) == 2 else str(default_config_path())
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(
        f"ok: {path}: mode={cfg.mode} venues={[v.name for v in cfg.venues]} symbols={len(cfg.symbols)} "
        f"placement={cfg.runtime.placement}"
    )
    return 0
