"""`draizer status`: the engine's live numbers, read from the bridge's shared memory and nothing else.

No config, no sockets: it works while the pipeline runs, and shows the last snapshot after it stopped, marked as
the last run's ("(last run, ended …)"): the file names its writer (pid, start, run), and a writer that no longer
holds its lock on the file has stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from shared.halt import active, halt_text
from shared.shm import ShmError, ShmMissingError, ShmReader, shm_path, snapshot_json

RECENT_SHOWN = 5
SYMBOLS_SHOWN = 12


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="draizer status", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="one JSON object, for machines")
    p.add_argument(
        "--instance",
        default=os.environ.get("DRAIZER_INSTANCE", "demo"),
        help="instance name from the config (default: $DRAIZER_INSTANCE, else demo)",
    )
    p.add_argument("--path", help="shared-memory file to read instead of /dev/shm/draizer-<instance>")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    path = args.path or str(shm_path(args.instance))
    where = f"instance '{args.instance}'" if not args.path else "instance"
    try:
        with ShmReader(path) as reader:
            snap = reader.read()
            writer = writer_fields(reader)
            pid = reader.writer_pid
    except ShmMissingError:
        print(f"no running draizer {where} (no {path})", file=sys.stderr)
        return 1
    except ShmError as exc:
        print(f"draizer status: {exc}", file=sys.stderr)
        return 1
    if snap is None:
        print(f"draizer {where}: the bridge (pid {pid}) has not published a snapshot yet", file=sys.stderr)
        return 1
    data = snapshot_json(snap, time.monotonic_ns())
    data["instance"] = args.instance if not args.path else None
    data.update(writer)
    if not data["writer_alive"]:  # the last publish was the writer's last act: when its run ended
        data["ended_ms"] = int(time.time() * 1000 - (data["snapshot_age_s"] or 0.0) * 1000)
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0


def writer_fields(reader: ShmReader) -> dict[str, Any]:
    """Who wrote the file: ``writer_pid``, ``writer_alive``, ``writer_session`` (its run), ``writer_started_ms``."""
    w = reader.writer
    return {"writer_pid": w.pid, "writer_alive": reader.writer_alive(), "writer_session": w.session,
            "writer_started_ms": w.started_ms}


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


def _header(d: dict[str, Any]) -> str:
    who = f"draizer '{d['instance']}'" if d.get("instance") else "draizer"
    run = f"run {d['writer_session']}, " if d.get("writer_session") else ""
    if d["writer_alive"]:
        return f"{who}: {run}bridge pid {d['writer_pid']} running, snapshot {_age(d['snapshot_age_s'])}"
    ended = ""
    if d.get("ended_ms"):
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(d["ended_ms"] / 1000))
        ended = f", ended {_ago(time.time() - d['ended_ms'] / 1000)} ago at {at}"
    return (f"{who} (last run{ended}): {run}bridge pid {d['writer_pid']} not running; "
            "these are that run's final numbers")


def _split(d: dict[str, Any]) -> list[str]:
    """Where the PnL came from and why executions were unwound (absent in a snapshot of an older bridge)."""
    split = d.get("pnl_split")
    if not split or not d["executions"]:
        return []
    other = f"  other {split['other_usd']:+.4f}" if split["other_usd"] else ""
    lines = [f"  split        filled {split['filled_usd']:+.4f}  unwinds {split['unwind_usd']:+.4f}{other}"
             f"  fees -{split['fees_usd']:.4f} USD"]
    causes = d.get("unwind_causes") or {}
    if causes:
        lines.append("  unwound by   " + "  ".join(
            f"{cause} {c['count']}" + (f" (quote {c['quote_age_ms']:.1f} ms old)" if c["quote_age_ms"] else "")
            for cause, c in causes.items()))
    return lines


def _halt(d: dict[str, Any]) -> list[str]:
    """Whether risk approves anything right now; only for a live writer (a stopped run's halts are over)."""
    if not d["writer_alive"] or d.get("halt") is None:
        return []
    now_ms = time.time_ns() // 1_000_000
    return [f"risk           {halt_text(d['halt'], now_ms) if active(d['halt'], now_ms) else 'trading (no halt)'}"]


def _num(x: float) -> str:
    """A price as the venue would print it: no exponent, no trailing zeros."""
    return f"{x:.8f}".rstrip("0").rstrip(".")


def _counts(counts: dict[str, int]) -> str:
    return "  ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f}s ago"


def _carry(c: dict[str, Any]) -> list[str]:
    """The carry line and one line per open carry; nothing when the run has neither carries nor funding."""
    if not (c["open"] or c["closed"] or c["funding_by_venue"]):
        return []
    by_venue = "  ".join(
        f"{venue} {f['usd']:+.4f} USD/{f['payments']}" for venue, f in c["funding_by_venue"].items()
    )
    lines = [
        f"carry          {c['open']} open  {c['closed']} closed  funding {c['funding_usd']:+.4f} USD"
        + (f" ({by_venue})" if by_venue else "")
    ]
    for p in c["positions"]:
        if p["state"] != "open":
            continue
        venues = f"{p['spot_venue']}/{p['perp_venue']}" if p["spot_venue"] else f"{p['perp_venue']} unhedged"
        lines.append(
            f"  #{p['carry_id']} {p['symbol']} {venues} spot {p['spot_qty']} perp {p['perp_qty']}"
            f" entry {p['entry_basis_bps']:+.1f}bps funding {p['funding_usd']:+.4f} pnl {p['pnl_usd']:+.4f} USD"
        )
    return lines


def render(d: dict[str, Any]) -> str:
    """The human block: counters, PnL, latency, services, the last opportunities, prices."""
    lines = [_header(d), *_halt(d)]
    rejections = f" ({_counts(d['rejections_by_reason'])})" if d["rejections_by_reason"] else ""
    lines += [
        f"quotes         {_counts(d['quotes'])}",
        f"opportunities  {d['opportunities']}  approved {d['approved']}  rejected {d['rejected']}{rejections}",
        "  by strategy  " + ("  ".join(f"{k} {n}" for k, n in d["opportunities_by_strategy"].items()) or "-"),
        f"orders         {_counts(d['orders'])}  fills {d['fills']}",
        f"executions     {_counts(d['executions'])}",
        f"pnl            {d['pnl_usd']:+.4f} USD  fees {d['fees_usd']:.4f} USD",
        *_split(d),
        *_carry(d["carry"]),
    ]
    if d["latency"]:
        width = max(len(s) for s in d["latency"])
        lines.append(f"latency {'':<{width - 6}} {'p50 µs':>10} {'p99 µs':>10} {'avg µs':>10} {'samples':>9}")
        for stage, lat in d["latency"].items():
            lines.append(
                f"  {stage:<{width}} {lat['p50_us']:>10.1f} {lat['p99_us']:>10.1f} {lat['avg_us']:>10.1f}"
                f" {lat['count']:>9}"
            )
    lines.append("services")
    width = max((len(s) for s in d["services"]), default=0)
    for name, svc in d["services"].items():
        pid = f"pid {svc['pid']}" if svc["pid"] else ""
        lines.append(f"  {name:<{width}}  {svc['state']:<8} {pid:<11} heartbeat {_age(svc['heartbeat_age_s'])}")
    if d["recent"]:
        lines.append(f"last {min(RECENT_SHOWN, len(d['recent']))} opportunities (newest first)")
        for r in reversed(d["recent"][-RECENT_SHOWN:]):
            legs = ", ".join(
                f"{leg['side']} {_num(leg['qty'])} {leg['symbol']}@{leg['venue']} {_num(leg['price'])}"
                for leg in r["legs"]
            )
            lines.append(
                f"  #{r['id']} {r['strategy']}/{r['action']} [{legs}]"
                f" {r['spread_bps']:.1f}bps {r['expected_profit_usd']:+.4f} USD  {r['decision']}"
            )
    if d["books"]:
        lines.append("books")
        for venue, b in d["books"].items():
            stale = f"  stale: {' '.join(b['stale_symbols'])}" if b["stale"] else ""
            lines.append(f"  {venue:<14} {b['live']} live, {b['stale']} stale{stale}")
    if d["funding"]:
        lines.append("funding (rate per period, next settlement)")
        for symbol, venues in d["funding"].items():
            rates = "  ".join(
                f"{v} {f['rate'] * 1e4:+.2f}bp @{time.strftime('%H:%M', time.gmtime(f['next_funding_ms'] / 1000))}Z"
                for v, f in venues.items()
            )
            lines.append(f"  {symbol:<10} {rates}")
    if d["prices"]:
        lines.append("prices (bid/ask)")
        for symbol, venues in list(d["prices"].items())[:SYMBOLS_SHOWN]:
            quoted = "  ".join(f"{v} {_num(q['bid'])}/{_num(q['ask'])}" for v, q in venues.items())
            lines.append(f"  {symbol:<10} {quoted}")
        if len(d["prices"]) > SYMBOLS_SHOWN:
            lines.append(f"  … {len(d['prices']) - SYMBOLS_SHOWN} more symbols (--json for all)")
    return "\n".join(lines)
