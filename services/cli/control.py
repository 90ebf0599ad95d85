"""`draizer strategy | reload | kill | resume`: runtime control of a running pipeline, over the control sockets.

    draizer strategy                              every strategy, on or off, with its parameters
    draizer strategy enable|disable NAME
    draizer strategy set NAME key=value ...       values are TOML scalars: 8, 0.5, true, "text"
    draizer reload [--path FILE]                  re-read the config's strategy sections into the detector
    draizer kill | resume                         risk's kill switch

A change is validated by the detector as a whole (same rules as the config file); a refused change leaves
everything as it was and the error names the key.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import msgspec

from shared.config import default_config_path, load_config, resolve_run_dir
from shared.errors import ConfigError
from shared.runtime.control_client import request
from shared.runtime.endpoints import Endpoints

HELP = {
    "strategy": ("show every strategy, enable or disable one, or set its parameters in the running detector",
                 "[enable|disable NAME | set NAME key=value ...]; nothing: list them"),
    "reload": ("re-read the config file's strategy sections into the running detector", "[FILE]: another file"),
    "kill": ("risk's kill switch: halt trading (open orders are cancelled)", ""),
    "resume": ("risk's kill switch: resume trading", ""),
}


def _parser(command: str) -> argparse.ArgumentParser:
    """Each command's own parser, so ``draizer kill --help`` describes killing, not every control command."""
    description, words = HELP[command]
    p = argparse.ArgumentParser(prog=f"draizer {command}", description=description)
    p.add_argument("--config", type=Path, default=Path(os.environ.get("DRAIZER_CONFIG") or default_config_path()))
    p.add_argument("--run-dir", type=Path, default=None, help="default: $DRAIZER_RUN_DIR, else ./.run")
    p.add_argument("--json", action="store_true", help="print the service's reply as JSON")
    p.add_argument("--timeout", type=float, default=5.0)
    if words:
        p.add_argument("words", nargs="*", help=words)
    return p


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {pair!r}")
        try:
            out[key] = msgspec.toml.decode(f"v = {raw}")["v"]
        except msgspec.DecodeError:
            out[key] = raw  # a bare word: take it as text, the detector validates the type
    return out


def build_request(command: str, words: list[str]) -> tuple[str, str, dict[str, Any]]:
    """(service, command, args) for the words after ``draizer``."""
    if command in ("kill", "resume"):
        return "risk", command, {}
    if command == "reload":
        return "detector", "reload", {"path": str(Path(words[0]).resolve())} if words else {}
    if not words or words == ["list"]:
        return "detector", "strategies", {}
    verb, *rest = words
    if verb in ("enable", "disable") and len(rest) == 1:
        return "detector", "strategy", {"name": rest[0], "enabled": verb == "enable"}
    if verb == "set" and len(rest) >= 2:
        return "detector", "strategy", {"name": rest[0], "params": parse_assignments(rest[1:])}
    raise ConfigError("usage: draizer strategy [enable|disable NAME | set NAME key=value ...]")


def main(argv: list[str]) -> int:
    command = argv[0]
    args = _parser(command).parse_args(argv[1:])
    service, cmd, cmd_args = build_request(command, getattr(args, "words", []))
    cfg = load_config(args.config)
    run_dir = (args.run_dir or Path(os.environ.get("DRAIZER_RUN_DIR") or resolve_run_dir(cfg))).resolve()
    reply = request(Endpoints(cfg, run_dir).control(service), cmd, cmd_args, args.timeout)
    if not reply.ok:
        print(f"draizer: {service} refused {cmd}: {reply.error}")
        return 1
    if args.json:
        print(json.dumps(reply.data, indent=2, sort_keys=True))
        return 0
    strategies = reply.data.get("strategies")
    if isinstance(strategies, dict):
        for name, s in strategies.items():
            params = " ".join(f"{k}={v}" for k, v in s["params"].items() if not isinstance(v, (list, dict)))
            print(f"{name:<15} {'on ' if s['enabled'] else 'off'}  {params}")
        if reply.data.get("needs_restart"):
            print(f"needs a restart to apply: {', '.join(reply.data['needs_restart'])}")
    else:
        print(json.dumps(reply.data, sort_keys=True))
    return 0
