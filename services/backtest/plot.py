"""The report's pictures, one PNG: the equity curve over the recording and PnL by strategy.

matplotlib is imported inside ``write_plots``: importing it costs a large share of a second (more on its first run,
building the font cache), which ``draizer backtest`` pays only when it draws. The figure is drawn on an Agg canvas
directly (no pyplot), so no global backend state changes in the calling process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COLOURS = {"gross": "#4c72b0", "fees": "#c44e52", "net": "#55a868"}


def write_plots(report: Mapping[str, Any], path: Path) -> Path:
    """Draw ``report`` (``services.backtest.report.build_report``'s dict, or the same read back from its JSON) into
    the PNG at ``path`` (written whole, then renamed into place). Returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    _equity(top, report)
    _by_strategy(bottom, report)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def _equity(ax: Any, report: Mapping[str, Any]) -> None:
    span, eq = report["span"], report["equity"]
    start, end = span["start_ns"], span["end_ns"]
    t = [(x - start) / 1e9 for x in eq["t_ns"]]
    end_s = max([(end - start) / 1e9, *t])
    # Steps: the total holds its value between executions; it starts at 0 and runs to the recording's end.
    total = [0.0, *eq["cum_net_usd"]]
    ax.step([0.0, *t, end_s], [*total, total[-1]], where="post", color="black", linewidth=2, label="total",
            zorder=3)
    for name in dict.fromkeys(eq["strategy"]):
        cum, xs, ys = 0.0, [0.0], [0.0]
        for x, s, net in zip(t, eq["strategy"], eq["net_usd"], strict=True):
            if s == name:
                cum += net
                xs.append(x)
                ys.append(cum)
        ax.step([*xs, end_s], [*ys, ys[-1]], where="post", linewidth=1, label=name)
    dd = report["drawdown"]
    if dd["max_usd"] > 0:
        ax.axvspan(dd["peak_s"], dd["trough_s"], color="grey", alpha=0.2,
                   label=f"max drawdown {dd['max_usd']:.2f} USD")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_title("Equity: cumulative net PnL")
    ax.set_xlabel("seconds into the recording")
    ax.set_ylabel("USD")
    ax.legend(loc="best", fontsize="small")


def _by_strategy(ax: Any, report: Mapping[str, Any]) -> None:
    rows = [(name, p) for name, p in report["pnl"]["by_strategy"].items() if p["executions"] > 0]
    ax.set_title("PnL by strategy")
    ax.set_ylabel("USD")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    if not rows:
        ax.text(0.5, 0.5, "no executions", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        return
    width = 0.25
    for k, (label, key) in enumerate((("gross", "gross_usd"), ("fees", "fees_usd"), ("net", "net_usd"))):
        xs = [i + (k - 1) * width for i in range(len(rows))]
        ax.bar(xs, [p[key] for _, p in rows], width, label=label, color=COLOURS[label])
    ax.set_xticks(range(len(rows)), [f"{name}\n({p['executions']} execution{'' if p['executions'] == 1 else 's'})"
                                     for name, p in rows])
    ax.legend(loc="best", fontsize="small")
