"""A paper demo and the backtest of its own recording, side by side: how far apart are they, and why?

Runs the embedded demo (`draizer run`, simulated venues, paper mode) for ``--seconds`` of trading, records the
venues' market data while it trades (`draizer record`, every configured venue, started when the run is ready and
stopped when its trading time ends), then backtests the recording with the demo's config twice: with the
config's constant latency, and with latency drawn from the order round trips the demo measured (its journal).
Prints one JSON object: what the demo booked, what each backtest booked, and the differences.

    .venv/bin/python scripts/backtest_vs_paper.py [--seconds 60] [--fills venue|model] [--keep DIR]

``--fills venue`` (the demo's default): the simulator fills the demo's orders and its book shows what they
took, so the recording carries the demo's own market impact; ``model``: both fill with the same model.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.backtest.latency import engine_samples_from_journal, samples_from_journal  # noqa: E402
from services.bridge.journal import expand_paths, read_journal  # noqa: E402
from services.cli.backtest import run_and_report  # noqa: E402
from services.sim.local_ports import on_free_ports  # noqa: E402
from shared.config import default_config_path, parse_config  # noqa: E402
from shared.venues.kinds import kind_of  # noqa: E402


def demo_config(run_dir: Path, fills: str) -> dict[str, Any]:
    """The embedded default on free ports with a private run directory (so it can run beside anything)."""
    data: dict[str, Any] = on_free_ports(msgspec.toml.decode(default_config_path().read_bytes()))
    data["instance"] = "cmp" + uuid.uuid4().hex[:10]
    data["runtime"]["run_dir"] = str(run_dir)
    data.setdefault("paper", {})["fills"] = fills
    return data


def demo_executions(journal: Path) -> list[dict[str, Any]]:
    """The executions the demo booked, from its journal (each once)."""
    seen: dict[str, dict[str, Any]] = {}
    for f in expand_paths([journal]):
        for r in read_journal(f):
            if r.kind == "execution" and isinstance(r.data, dict):
                seen.setdefault(r.key, r.data)
    return sorted(seen.values(), key=lambda e: int(e["done_at_ns"]))


def booked(executions: list[dict[str, Any]]) -> dict[str, Any]:
    """Executions by outcome, net PnL and fees."""
    outcomes = Counter(str(e["outcome"]) for e in executions)
    return {"executions": len(executions), "outcomes": dict(outcomes),
            "net_usd": round(sum(float(e["pnl_usd"]) for e in executions), 6),
            "fees_usd": round(sum(float(e["fees_usd"]) for e in executions), 6)}


MATCH_NS = 100_000_000  # the same trade: same symbol and venues, booked within 100 ms of each other


def compare(demo: list[dict[str, Any]], bt: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair the demo's executions with the backtest's (greedy, by time): where the two runs did the same trade,
    how often the outcome agreed and how far the PnL differs there, and what each did that the other did not."""
    left = list(bt)
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    demo_only: list[dict[str, Any]] = []
    for e in demo:
        key = (e["symbol"], e["buy_venue"], e["sell_venue"])
        near = [b for b in left if (b["symbol"], b["buy_venue"], b["sell_venue"]) == key
                and abs(int(b["done_at_ns"]) - int(e["done_at_ns"])) <= MATCH_NS]
        if near:
            b = min(near, key=lambda b: abs(int(b["done_at_ns"]) - int(e["done_at_ns"])))
            left.remove(b)
            pairs.append((e, b))
        else:
            demo_only.append(e)
    same = [(e, b) for e, b in pairs if e["outcome"] == b["outcome"]]
    return {
        "paired": len(pairs), "same_outcome": len(same),
        "paired_net_difference_usd": round(sum(b["pnl_usd"] - e["pnl_usd"] for e, b in pairs), 6),
        "same_outcome_net_difference_usd": round(sum(b["pnl_usd"] - e["pnl_usd"] for e, b in same), 6),
        "demo_only": booked(demo_only), "backtest_only": booked(left),
    }


def backtest_executions(cfg: Any, files: list[Path], latency: Any, warmup: float, trade_s: float
                        ) -> list[dict[str, Any]]:
    """The backtest's executions in the journal's shape (names, wall-clock done time) for the pairing."""
    from services.backtest.engine import run_backtest
    from services.feed.recording import Recording
    from shared.registry import Registry

    h = Recording(files[0]).header
    offset = int(h["started_unix_ns"]) - int(h["started_monotonic_ns"])
    reg = Registry(cfg)
    return [{"symbol": reg.symbol_names[e.symbol], "buy_venue": reg.venue_names[e.buy_venue],
             "sell_venue": reg.venue_names[e.sell_venue], "outcome": e.outcome, "pnl_usd": e.pnl_usd,
             "fees_usd": e.fees_usd, "done_at_ns": e.done_ns + offset}
            for e in run_backtest(cfg, files, latency, warmup, trade_s).executions]


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _recording(directory: Path, spot: list[str]) -> bool:
    """Every spot venue's file has data past its header (the recorder's feeds are connected and receiving; the
    perpetuals' funding pushes are too rare to wait for)."""
    files = [directory / f"{name}.dzrec" for name in spot]
    return all(f.is_file() and f.stat().st_size > 4096 for f in files)


def wait_for(check: Any, proc: subprocess.Popen[bytes], out_path: Path, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start:\n{out_path.read_text()[-3000:]}")
        time.sleep(0.05)  # polling a subprocess's progress, with a deadline


def trading_window(files: list[Path], journal: Path) -> tuple[float, float]:
    """(seconds from the recording's first record to the demo's first decision, seconds from there to its last):
    the window the backtest trades in, so both runs start (and stop) trading at the same market moment."""
    from services.feed.recording import Recording

    decided = [int(r.data["decided_at_ns"]) for f in expand_paths([journal]) for r in read_journal(f)
               if r.kind == "decision" and isinstance(r.data, dict)]
    first_decision, last_decision = min(decided), max(decided)
    starts = []
    for f in files:
        rec = Recording(f)
        h = rec.header
        first = next(iter(rec)).tick_ns
        starts.append(int(h["started_unix_ns"]) - int(h["started_monotonic_ns"]) + first)
    return max(0.0, (first_decision - min(starts)) / 1e9), (last_decision - first_decision) / 1e9 + 0.001


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--fills", choices=("venue", "model"), default="venue")
    p.add_argument("--keep", type=Path, help="keep the recording, config and journal here")
    args = p.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dz-cmp-"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="dz-", dir="/tmp"))
    data = demo_config(run_dir, args.fills)
    sim_path, cfg_path = work / "sim.toml", work / "demo.toml"
    sim_path.write_bytes(msgspec.toml.encode(data))
    data["sim"]["enabled"] = False  # the demo trades on the simulator started here, before the recorder
    cfg_path.write_bytes(msgspec.toml.encode(data))
    cfg = parse_config(cfg_path.read_bytes(), str(cfg_path))
    cli = [sys.executable, "-m", "services.cli.main"]
    out_path = work / "run.out"
    out_path.write_text("")
    # The simulator started here and the demo must share the venues' keys (``draizer run`` makes fresh ones for a
    # simulator it starts itself): random ones, in the environment of both, never in a file.
    env = dict(os.environ)
    for v in cfg.venues:
        for name in (v.api_key_env, v.api_secret_env):
            if name and not env.get(name):
                env[name] = secrets.token_hex(32)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # The simulator first, then the recorder, then the demo: the recording holds every quote the demo saw.
        procs.append(subprocess.Popen([sys.executable, "-m", "services.sim", "--config", str(sim_path)], cwd=REPO,
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports = [p for sv in data["sim"]["venues"] for p in (sv["ws_port"], sv["rest_port"])]
        wait_for(lambda: all(_open(port) for port in ports), procs[0], out_path, "the simulated venues")
        venues = ",".join(v.name for v in cfg.venues)
        rec = subprocess.Popen([*cli, "record", "--venue", venues, "-o", str(work / "rec"), "--duration",
                                str(args.seconds + 600), "--config", str(sim_path)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(rec)
        spot = [v.name for v in cfg.venues if not kind_of(v.kind).perp]
        wait_for(lambda: _recording(work / "rec", spot), rec, out_path, "the recorder")
        with open(out_path, "wb") as out:
            run = subprocess.Popen([*cli, "run", "--config", str(cfg_path), "--run-dir", str(run_dir), "--duration",
                                    str(args.seconds), "--quiet"], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
        procs.append(run)
        run.wait(args.seconds + 900)  # the demo's start, its trading time, its settlement
        rec.send_signal(signal.SIGINT)
        rec.wait(60)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(120)
    journal = run_dir / "journal"
    demo_list = demo_executions(journal)
    demo = booked(demo_list)
    files = sorted((work / "rec").glob("*.dzrec"))
    warmup, trade_s = trading_window(files, journal)
    constant = run_and_report(cfg, files, {}, {}, 0, work / "backtest-constant", plot=True, warmup_s=warmup,
                              trade_s=trade_s)
    samples = samples_from_journal([journal])
    engine = engine_samples_from_journal([journal])
    measured = run_and_report(cfg, files, {}, {**samples, "engine": engine}, 0, work / "backtest-measured",
                              plot=True, warmup_s=warmup, trade_s=trade_s)
    if args.keep:
        shutil.copytree(journal, work / "journal", dirs_exist_ok=True)
    result = {
        "seconds": args.seconds, "fills": args.fills, "work": str(work), "warmup_s": round(warmup, 3),
        "trade_s": round(trade_s, 3),
        "demo": demo,
        "backtest_constant": {k: constant[k] for k in ("executions", "outcomes", "net_usd", "fees_usd", "digest")},
        "backtest_measured": {k: measured[k] for k in ("executions", "outcomes", "net_usd", "fees_usd", "digest")},
        "measured_rtt_ms": {v: {"n": len(s), "p50": sorted(s)[len(s) // 2]} for v, s in samples.items()},
        "measured_tick_to_order_ms": {"n": len(engine), "p50": sorted(engine)[len(engine) // 2] if engine else None},
    }
    result["difference_usd"] = {"constant": round(constant["net_usd"] - demo["net_usd"], 6),
                                "measured": round(measured["net_usd"] - demo["net_usd"], 6)}
    from services.backtest.latency import LatencyModel

    result["pairing_constant"] = compare(demo_list, backtest_executions(
        cfg, files, LatencyModel.from_config(cfg), warmup, trade_s))
    result["pairing_measured"] = compare(demo_list, backtest_executions(
        cfg, files, LatencyModel.from_config(cfg, samples_ms=samples, engine_ms=engine), warmup, trade_s))
    result["difference_share_of_fees"] = {k: round(abs(v) / demo["fees_usd"], 4) if demo["fees_usd"] else None
                                          for k, v in result["difference_usd"].items()}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
