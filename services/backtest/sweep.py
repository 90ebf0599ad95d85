"""Parameter sweeps: ``--set key=v1,v2,...`` options into a grid of configs, each run in its own process.

A key is a dotted config path (``strategies.cross_exchange.min_spread_bps``; a list element by index or by its
``name``: ``venues.binance.taker_fee``, ``venues.0.taker_fee``). Values are TOML scalars (``5``, ``5.0``, ``true``,
``"text"``); a bare word that is no TOML value is a string (``market``). The grid is the cartesian product in the
order the options were given, the first option varying slowest, each option's values in their given order.

Everything is validated before anything runs: each value alone on the base config, then every point, through
``shared.config.parse_config`` (schema, finiteness, cross-field rules), so a bad key or value fails naming it.

Each point runs ``run_one(config_dict, params)`` in a fresh process of a ``ProcessPoolExecutor`` (one worker per
core; a process per point, so no state of one run reaches the next and a point's result does not depend on which
ran before it). ``run_one`` must be a module-level function (it is pickled by name). A point that raises is an
error in its row; the other points still run.
"""

from __future__ import annotations

import copy
import itertools
import multiprocessing
import os
import pickle
import re
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgspec

from shared.config import Config, parse_config
from shared.errors import ConfigError

Scalar = bool | int | float | str
Params = dict[str, Scalar]
RunOne = Callable[[dict[str, Any], Params], Mapping[str, Any]]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


@dataclass
class SweepRow:
    index: int  # the point's position in the grid
    params: Params
    summary: dict[str, Any] = field(default_factory=dict)  # what run_one returned (report.summarize's keys)
    error: str = ""
    pid: int = 0  # the process that ran it

    @property
    def net_usd(self) -> float | None:
        net = self.summary.get("net_usd")
        return float(net) if isinstance(net, int | float) and not self.error else None


def parse_set(option: str) -> tuple[str, list[Scalar]]:
    """``key=v1,v2,...`` -> (key, [values]). Commas inside a quoted string do not split it."""
    key, sep, raw = option.partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise ConfigError(f"--set {option!r}: expected key=value[,value...] with a dotted config key")
    items = _split(raw, option)
    if not items:
        raise ConfigError(f"--set {key}: no values")
    values: list[Scalar] = []
    for item in items:
        if not item:
            raise ConfigError(f"--set {key}: an empty value in {raw!r}")
        values.append(_scalar(key, item))
    return key, values


def parse_sets(options: Sequence[str]) -> list[tuple[str, list[Scalar]]]:
    axes = [parse_set(o) for o in options]
    keys = [k for k, _ in axes]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError(f"--set {dup[0]}: given more than once (list every value in one option)")
    return axes


def grid(axes: Sequence[tuple[str, Sequence[Scalar]]]) -> list[Params]:
    """Every combination, the first axis varying slowest. No axes: one point with no parameters."""
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


def apply(config: Mapping[str, Any], params: Mapping[str, Scalar]) -> dict[str, Any]:
    """A deep copy of the raw config dict with each dotted key set (missing tables are created)."""
    out = copy.deepcopy(dict(config))
    for key, value in params.items():
        node: Any = out
        parts = key.split(".")
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth]) or "the config"
            last = depth == len(parts) - 1
            if isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            elif isinstance(node, list):
                i = _element(node, part, key, where)
                if last:
                    node[i] = value
                else:
                    node = node[i]
            else:
                raise ConfigError(f"--set {key}: {where} is a value, not a table")
    return out


def validate(config: Mapping[str, Any], axes: Sequence[tuple[str, Sequence[Scalar]]]) -> list[Params]:
    """The grid, once the base config, each value on it alone, and every point have passed the config's checks."""
    _check(config, "config")
    for key, values in axes:
        for value in values:
            _check(apply(config, {key: value}), f"--set {key}={_show(value)}")
    points = grid(axes)
    for params in points:
        _check(apply(config, params), f"sweep point {_label(params)}")
    return points


def run_sweep(config: Mapping[str, Any], options: Sequence[str], run_one: RunOne, *, max_workers: int | None = None,
              out: TextIO | None = None, mp_context: str = "forkserver") -> list[SweepRow]:
    """Validate, run every point in parallel, print the table to ``out`` (default stdout); the rows, best net first.

    ``mp_context``: forkserver by default, not fork: the caller may hold threads (ZeroMQ, numba) that a fork would
    copy mid-operation."""
    points = validate(config, parse_sets(options))
    try:
        pickle.dumps(run_one)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ValueError(f"run_one {run_one!r} cannot be sent to a worker process (a module-level function is "
                         f"needed): {exc}") from None
    rows = [SweepRow(i, p) for i, p in enumerate(points)]
    workers = max(1, min(max_workers or os.cpu_count() or 1, len(points)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(mp_context),
                             max_tasks_per_child=1) as pool:
        futures: list[Future[tuple[int, dict[str, Any], str]]] = [
            pool.submit(_run_point, run_one, apply(config, row.params), row.params) for row in rows
        ]
        for row, fut in zip(rows, futures, strict=True):
            try:
                row.pid, row.summary, row.error = fut.result()
            except BrokenProcessPool as exc:  # a worker died (killed, crashed): every unfinished point is lost
                row.error = f"worker process died: {exc}"
            except Exception as exc:  # the result could not come back (unpicklable summary)
                row.error = f"{type(exc).__name__}: {exc}"
    ranked = sort_rows(rows)
    print(format_table(ranked), file=out or sys.stdout, flush=True)
    return ranked


def sort_rows(rows: Sequence[SweepRow]) -> list[SweepRow]:
    """Best net PnL first; rows without one (errors) last; ties keep grid order."""
    return sorted(rows, key=lambda r: (r.net_usd is None, -(r.net_usd or 0.0), r.index))


def format_table(rows: Sequence[SweepRow]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r.params))
    head = ["#", *keys, "opps", "execs", "fill", "gross_usd", "fees_usd", "net_usd", "max_dd_usd", "digest"]
    body: list[list[str]] = []
    for r in rows:
        s = r.summary
        cells = [str(r.index), *(_show(r.params[k]) if k in r.params else "" for k in keys)]
        if r.error:
            body.append([*cells, *(["-"] * 7), f"error: {r.error}"])
            continue
        body.append([*cells, _int(s.get("opportunities")), _int(s.get("executions")),
                     _num(s.get("fill_ratio"), "{:.3f}"), *(_num(s.get(k), "{:.4f}") for k in
                     ("gross_usd", "fees_usd", "net_usd", "max_drawdown_usd")), str(s.get("digest") or "-")[:12]])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head) - 1)]

    def line(cells: list[str]) -> str:
        # Parameters and figures right-aligned; the last column (digest or error) as is, never padded.
        return "  ".join([*(c.rjust(w) for c, w in zip(cells, widths, strict=False)), cells[-1]])

    return "\n".join([line(head), *(line(b) for b in body)])


def _run_point(run_one: RunOne, config: dict[str, Any], params: Params) -> tuple[int, dict[str, Any], str]:
    """In the worker: one point, its failure caught and returned as text (with where it happened)."""
    try:
        return os.getpid(), dict(run_one(config, params)), ""
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return os.getpid(), {}, f"{type(exc).__name__}: {exc} ({os.path.basename(where.filename)}:{where.lineno})"


def _check(data: Mapping[str, Any], source: str) -> Config:
    try:
        text = msgspec.toml.encode(data)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ConfigError(f"{source}: cannot be written as TOML: {exc}") from None
    return parse_config(text, source)


def _split(raw: str, option: str) -> list[str]:
    items, cur, quote = [], [], ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if quote:
        raise ConfigError(f"--set {option!r}: unterminated quote")
    items.append("".join(cur).strip())
    return [] if items == [""] else items


def _scalar(key: str, text: str) -> Scalar:
    try:
        value = msgspec.toml.decode(f"v = {text}")["v"]
    except msgspec.DecodeError:
        if text[0] in "\"'[{":  # meant as a TOML value, but not one: say so rather than take it as a word
            raise ConfigError(f"--set {key}: {text!r} is not a TOML value") from None
        return text  # a bare word: a string
    if isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(f"--set {key}: {text!r} is a {type(value).__name__}; a sweep takes numbers, booleans and strings")


def _element(node: list[Any], part: str, key: str, where: str) -> int:
    if part.isdigit():
        if int(part) < len(node):
            return int(part)
        raise ConfigError(f"--set {key}: {where} has {len(node)} entries, no [{part}]")
    for i, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    raise ConfigError(f"--set {key}: {where} has no entry named {part!r}")


def _show(value: Scalar) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _label(params: Mapping[str, Scalar]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in params.items()) or "(no parameters)"


def _int(x: Any) -> str:
    return str(x) if isinstance(x, int) else "-"


def _num(x: Any, fmt: str) -> str:
    return fmt.format(x) if isinstance(x, int | float) and not isinstance(x, bool) else "-"
