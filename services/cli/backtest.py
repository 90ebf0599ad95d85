"""`draizer backtest FILE [FILE ...]`: a strategy and its parameters on recorded markets, with the live code.

The recordings (``draizer record``, several venues taken together) drive the feed handlers, detector, risk and
executor on the recording's clock; each venue is the paper fill model on the *recorded* book at the moment an
order would arrive (``--latency VENUE=MS`` one way, default the config's ``paper_latency_ms``; or
``--latency-from`` a paper or live run's journal: measured order round trips). The same files and config give
the same digest of every order and execution.

Writes ``report.json`` and ``report.png`` (equity curve, PnL by strategy) into ``--out`` and prints a summary.
With ``--set key=v1,v2,...`` (repeatable) it runs the grid of those settings in parallel processes, one per core,
and prints a table sorted by net PnL instead.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from shared.config import Config, default_config_path, load_config, parse_config
from shared.errors import ConfigError


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer backtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, help="recordings taken together (one per venue)")
    p.add_argument("--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    p.add_argument("--latency", action="append", default=[], metavar="VENUE=MS",
                   help="one-way order latency to a venue in ms (repeatable); default: its paper_latency_ms")
    p.add_argument("--latency-from", action="append", default=[], type=Path, metavar="JOURNAL",
                   help="draw latency from the order round trips of a run's journal (a directory or files)")
    p.add_argument("--warmup", type=float, default=0.0, metavar="S",
                   help="the first S seconds only build the books: nothing is traded before (default 0)")
    p.add_argument("--trade-seconds", type=float, default=None, metavar="S",
                   help="stop trading S seconds after the warm-up (default: trade to the end)")
    p.add_argument("--seed", type=int, default=0, help="for drawing measured latencies (default 0)")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=V1,V2,...",
                   help="sweep a config setting over values (repeatable: the grid of all of them)")
    p.add_argument("--out", type=Path, default=Path("backtest-out"), help="where report.json and report.png go")
    p.add_argument("--no-plot", action="store_true", help="skip report.png")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    for f in args.files:
        if not f.is_file():
            raise ConfigError(f"{f}: no such recording")
    cfg = load_config(args.config)
    overrides, samples = _latency_inputs(args)
    if args.sets:
        from services.backtest.sweep import run_sweep

        config_dict = msgspec.toml.decode(Path(args.config).read_bytes())
        run_one = functools.partial(sweep_point, [str(f.resolve()) for f in args.files], overrides, samples, args.seed,
                                    args.warmup, args.trade_seconds)
        rows = run_sweep(config_dict, args.sets, run_one)
        return 0 if any(not r.error for r in rows) else 1
    summary = run_and_report(cfg, args.files, overrides, samples, args.seed, args.out, plot=not args.no_plot,
                             warmup_s=args.warmup, trade_s=args.trade_seconds)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_human(summary))
    return 0


def _latency_inputs(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, list[float]]]:
    from services.backtest.latency import engine_samples_from_journal, parse_overrides, samples_from_journal

    overrides = parse_overrides(args.latency)
    samples = samples_from_journal(args.latency_from) if args.latency_from else {}
    if samples:  # the run's own tick->order time too: under "engine" in the samples
        samples["engine"] = engine_samples_from_journal(args.latency_from)
    return overrides, samples


def run_and_report(cfg: Config, files: list[Path], overrides: dict[str, float], samples: dict[str, list[float]],
                   seed: int, out: Path | None, plot: bool = True, warmup_s: float = 0.0,
                   trade_s: float | None = None) -> dict[str, Any]:
    """One backtest; its report (and plot) written to ``out`` when given; the flat summary returned."""
    from services.backtest.engine import run_backtest
    from services.backtest.latency import LatencyModel
    from services.backtest.report import build_report, summarize
    from shared.registry import Registry

    samples = dict(samples)
    engine = samples.pop("engine", [])
    latency = LatencyModel.from_config(cfg, overrides, samples, seed, engine)
    result = run_backtest(cfg, files, latency, warmup_s, trade_s)
    reg = Registry(cfg)
    report = build_report(result.opportunities, result.decisions, result.executions,
                          venue_names=reg.venue_names, symbol_names=reg.symbol_names, latency=result.latency)
    report["digest"] = result.digest
    report["records"] = result.records
    report["seconds_recorded"] = result.seconds_recorded
    report["seconds_wall"] = result.seconds_wall
    report["in_flight_at_end"] = result.in_flight_at_end
    report["paper_accounts"] = result.paper_accounts
    report["files"] = [str(f) for f in files]
    summary = summarize(report, result.digest)
    summary.update(records=result.records, seconds_recorded=result.seconds_recorded,
                   seconds_wall=result.seconds_wall, outcomes=report["executions"]["by_outcome"],
                   latency=result.latency)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        summary["report"] = str(out / "report.json")
        if plot:
            from services.backtest.plot import write_plots

            summary["plot"] = str(write_plots(report, out / "report.png"))
    return summary


def sweep_point(files: list[str], overrides: dict[str, float], samples: dict[str, list[float]], seed: int,
                warmup_s: float, trade_s: float | None, config: dict[str, Any], params: dict[str, Any]
                ) -> dict[str, Any]:
    """One point of a sweep, in its own process: the summary the table shows (no files written)."""
    cfg = parse_config(msgspec.toml.encode(config), "sweep point")
    return run_and_report(cfg, [Path(f) for f in files], overrides, samples, seed, None, plot=False, warmup_s=warmup_s,
                          trade_s=trade_s)


def _human(s: dict[str, Any]) -> str:
    outcomes = ", ".join(f"{k} {v}" for k, v in s["outcomes"].items() if v) or "none"
    lines = [
        f"draizer backtest: {s['records']} records, {s['seconds_recorded']:.1f} s of market in "
        f"{s['seconds_wall']:.2f} s",
        f"  opportunities {s['opportunities']}, executions {s['executions']} ({outcomes}), "
        f"fill ratio {_pct(s['fill_ratio'])}",
        f"  PnL gross {s['gross_usd']:+.4f} USD, fees {s['fees_usd']:.4f}, net {s['net_usd']:+.4f}, "
        f"max drawdown {s['max_drawdown_usd']:.4f}",
        f"  latency: {json.dumps(s['latency'])}",
        f"  digest {s['digest']}",
    ]
    if "report" in s:
        lines.append(f"  report {s['report']}" + (f", plot {s['plot']}" if "plot" in s else ""))
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
