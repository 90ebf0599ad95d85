"""How long a backtest's orders take to reach each venue (and their answers to come back).

Per venue, either a constant (the config's ``paper_latency_ms``, or ``--latency VENUE=MS``) or draws from
measured order round trips: ``--latency-from`` a paper or live run's journal, whose ``order`` records carry when
each request was sent and when its answer came (``sent_at_ns``, ``ack_at_ns``). A round trip is two one-way
trips: each trip draws half of a sampled round trip. The same journal's ``execution`` records carry the engine's
own tick->order time, which a backtest otherwise spends in no time: drawn once per opportunity, it delays that
opportunity's orders. Draws come from seeded ``random.Random``s, so a backtest repeats exactly.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable
from pathlib import Path

from shared.config import Config
from shared.errors import ConfigError


class LatencyModel:
    def __init__(self, constant_ms: dict[str, float], samples_ms: dict[str, list[float]], seed: int = 0,
                 engine_ms: list[float] | None = None) -> None:
        self.constant_ms = dict(constant_ms)
        self.samples_ms = {v: sorted(s) for v, s in samples_ms.items() if s}
        self._rng = {v: random.Random(f"{seed}:{v}") for v in self.samples_ms}
        self.seed = seed
        self.engine_ms = sorted(engine_ms or [])

    def engine_delay_s(self, opportunity_id: int) -> float:
        """The engine's own time from the triggering quote to the request leaving (tick->order), which the backtest
        spends in no time: drawn once per opportunity (every leg of it leaves together), 0 without samples."""
        if not self.engine_ms:
            return 0.0
        return random.Random(f"{self.seed}:engine:{opportunity_id}").choice(self.engine_ms) / 1000.0

    @classmethod
    def from_config(cls, cfg: Config, overrides: dict[str, float] | None = None,
                    samples_ms: dict[str, list[float]] | None = None, seed: int = 0,
                    engine_ms: list[float] | None = None) -> LatencyModel:
        names = {v.name for v in cfg.venues}
        for name in [*(overrides or {}), *(samples_ms or {})]:
            if name not in names:
                raise ConfigError(f"latency: {name!r} is not a configured venue (venues: {', '.join(sorted(names))})")
        constant = {v.name: v.paper_latency_ms for v in cfg.venues}
        constant.update(overrides or {})
        return cls(constant, samples_ms or {}, seed, engine_ms)

    def one_way_s(self, venue: str) -> float:
        samples = self.samples_ms.get(venue)
        if samples:
            return self._rng[venue].choice(samples) / 2 / 1000.0
        return self.constant_ms.get(venue, 0.0) / 1000.0

    def describe(self) -> dict[str, object]:
        """What the report states as the latency assumptions."""
        out: dict[str, object] = {}
        for venue, ms in sorted(self.constant_ms.items()):
            samples = self.samples_ms.get(venue)
            if samples:
                out[venue] = {"model": "measured round trips, halved per trip", "n": len(samples),
                              "rtt_p50_ms": round(statistics.median(samples), 3),
                              "rtt_p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3)}
            else:
                out[venue] = {"model": "constant", "one_way_ms": ms}
        if self.engine_ms:
            out["engine"] = {"model": "measured tick->order, drawn per opportunity", "n": len(self.engine_ms),
                             "p50_ms": round(statistics.median(self.engine_ms), 3)}
        return out


def parse_overrides(items: Iterable[str]) -> dict[str, float]:
    """``VENUE=MS`` pairs (one-way milliseconds)."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if not sep or not name or ms < 0:
            raise ConfigError(f"--latency {item!r}: expected VENUE=MS with MS >= 0, e.g. binance=20")
        out[name] = ms
    return out


def samples_from_journal(paths: list[Path]) -> dict[str, list[float]]:
    """Order round trips (ms) per venue from a run's journal (files or directories): answered orders only."""
    from services.bridge.journal import expand_paths, read_journal

    files = expand_paths(paths)
    if not files:
        raise ConfigError(f"--latency-from: no journal files in {', '.join(str(p) for p in paths)}")
    out: dict[str, list[float]] = {}
    for f in files:
        for r in read_journal(f):
            if r.kind != "order" or not isinstance(r.data, dict):
                continue
            sent, ack, venue = r.data.get("sent_at_ns"), r.data.get("ack_at_ns"), r.data.get("venue")
            if r.data.get("status") in ("UNKNOWN", "PENDING"):
                continue  # never answered: its "ack" is when the execution closed, not a round trip
            if isinstance(sent, int) and isinstance(ack, int) and isinstance(venue, str) and 0 < sent < ack:
                out.setdefault(venue, []).append((ack - sent) / 1e6)
    if not out:
        raise ConfigError(f"--latency-from: no answered orders in {len(files)} journal file(s)")
    return out


def engine_samples_from_journal(paths: list[Path]) -> list[float]:
    """The engine's tick->order times (ms) from a run's journal: each execution's ``tick_to_send_ns``."""
    from services.bridge.journal import expand_paths, read_journal

    out: list[float] = []
    for f in expand_paths(paths):
        for r in read_journal(f):
            if r.kind == "execution" and isinstance(r.data, dict):
                t = r.data.get("tick_to_send_ns")
                if isinstance(t, int) and t > 0:
                    out.append(t / 1e6)
    return out
