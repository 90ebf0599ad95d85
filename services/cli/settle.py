"""End-of-run settlement for paper mode: wind down, then reconcile the executor's books with the venues.

1. ``kill`` goes to risk (it halts and forwards to the executor, which cancels every open order), then the
   executions still in flight are waited for (they finish their unwinds).
2. Three views of the same money are compared, all of them over the whole run (a restart of the executor or of
   risk within it changes none of them):
   - the venues' balances: the simulator's account now minus at its start (``/sim/balances``,
     ``/sim/starting_balances``), per venue and asset, exact;
   - the executor's ledger: the sum of every execution's balance deltas in this run (``orders`` control command;
     the executor rebuilds it from its order journal after a restart: ``services/executor/session_books.py``);
   - risk's PnL for the run (persisted with its state), and the executor's booked PnL for the run (each execution
     valued at its own prices). Risk first books any execution it never heard of (``risk`` with ``catch_up``:
     a restart loses what the events socket carried meanwhile), and must have booked every one the executor did.
   The ledger must equal the venues' balance changes asset by asset (exactly), hence also valued at the
   current mark prices (to the cent); booked PnL must equal risk's PnL for the run to the cent. Booked PnL and PnL
   at marks differ only by the revaluation of inventory left over (commissions paid in the base asset, step dust),
   which is printed as its own line.
3. Where the PnL came from, from the bridge's shared memory once it has seen every execution the executor booked:
   filled executions, unwinds and fees (``services/bridge/unwinds.py``), why the unwinds happened, and how often a
   breaker halted trading. These lines explain; they never fail the settlement.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.bridge.unwinds import CAUSE_WORDS, CAUSES
from services.cli.status_line import StatusLine
from shared.config import Config, paper_model
from shared.errors import DraizerError
from shared.runtime.control_client import ControlError, request
from shared.runtime.endpoints import Endpoints
from shared.runtime.session import SESSION_ENV
from shared.venues.kinds import kind_of

CENT = 0.01
WIND_DOWN_S = 30.0
BRIDGE_WAIT_S = 10.0  # the bridge hears every execution within milliseconds; a restarted one replays its log


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ok = True

    def add(self, text: str, ok: bool = True) -> None:
        self.lines.append(("  " if ok else "! ") + text)
        self.ok = self.ok and ok


def wind_down(endpoints: Endpoints, timeout_s: float = WIND_DOWN_S) -> dict[str, Any]:
    """Halt through risk (which cancels open orders through the executor); wait for executions in flight."""
    # Not persisted: the next run in this run directory must not start halted by a settlement.
    request(endpoints.control("risk"), "kill", {"persist": False, "reason": "end-of-run settlement"}, timeout_s=10.0)
    deadline = time.monotonic() + timeout_s
    while True:
        data = request(endpoints.control("executor"), "orders", timeout_s=5.0).data
        if data.get("in_flight", 0) == 0 or time.monotonic() > deadline:
            return data
        time.sleep(0.2)  # polling a running process's state: this is the operator's wait, not a test sync


def venue_balances(cfg: Config, env: dict[str, str]) -> dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]]:
    """(start, now) per spot venue, from the simulator's test hooks, with the paper account's key."""
    out = {}
    for v in cfg.venues:
        kind = kind_of(v.kind)
        if not kind.spot or kind.api_key_header is None:
            continue
        headers = {kind.api_key_header: env.get(v.api_key_env, "")}
        now = _get(f"{v.rest_url}/sim/balances", headers)
        start = _get(f"{v.rest_url}/sim/starting_balances", headers)
        out[v.name] = ({a: Decimal(x) for a, x in start.items()}, {a: Decimal(x) for a, x in now.items()})
    return out


def perp_balances(cfg: Config, env: dict[str, str]) -> dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]]:
    """(start, now) per perpetual venue in draizer's cash-flow terms (``shared/venues/perp.py``): each position
    is a signed balance of its base asset, and the margin asset moved by the wallet's change less each open
    position's signed entry cost. From the simulator's ``/sim/perp_account`` hook, with the account's key."""
    base_of = {s.name: s.base for s in cfg.symbols}
    out = {}
    for v in cfg.venues:
        kind = kind_of(v.kind)
        if not kind.perp or kind.api_key_header is None or not v.api_key_env:
            continue
        acct = _get(f"{v.rest_url}/sim/perp_account", {kind.api_key_header: env.get(v.api_key_env, "")})
        start_wallet, wallet = Decimal(acct["starting_wallet"]), Decimal(acct["wallet"])
        now: dict[str, Decimal] = {"USDT": wallet}
        for p in acct["positions"]:
            size, cost = Decimal(p["size"]), Decimal(p["cost"])
            base = base_of.get(p["symbol"], p["symbol"])
            now[base] = now.get(base, Decimal(0)) + size
            now["USDT"] -= cost if size > 0 else -cost
        out[v.name] = ({"USDT": start_wallet}, now)
    return out


def marks(cfg: Config) -> dict[str, float]:
    """USD per asset: the mean over the spot venues of each venue's own marks (the simulator's ``/sim/marks``).
    One mark per asset, so a cross pair's offsetting positions on two venues cancel."""
    per_venue = [_get(f"{v.rest_url}/sim/marks", {}) for v in cfg.venues if kind_of(v.kind).spot]
    assets = {a for m in per_venue for a in m}
    return {a: sum(float(m[a]) for m in per_venue if a in m) / sum(1 for m in per_venue if a in m) for a in assets}


def paper_balances(endpoints: Endpoints) -> tuple[dict[str, tuple[dict[str, Decimal], dict[str, Decimal]]],
                                                  dict[str, float]]:
    """(start, now) per venue from the executor's paper accounts (``paper.fills = "model"``), and the marks of the
    engine's own books."""
    data = request(endpoints.control("executor"), "paper_balances", timeout_s=5.0).data
    balances = {venue: ({a: Decimal(x) for a, x in d["start"].items()}, {a: Decimal(x) for a, x in d["now"].items()})
                for venue, d in data["venues"].items()}
    return balances, {a: float(x) for a, x in data["marks"].items()}


def settle(cfg: Config, env: dict[str, str], say: Callable[[str], None] = print) -> bool:
    endpoints = Endpoints(cfg, _run_dir(env))
    try:
        executor = wind_down(endpoints)
        # Funding the venues paid up to now is booked before the books are read (the executor polls for it).
        if request(endpoints.control("executor"), "book_funding", timeout_s=10.0).data.get("booked"):
            executor = request(endpoints.control("executor"), "orders", timeout_s=5.0).data
        # After the executions in flight: risk books any the events socket lost before it answers.
        risk = request(endpoints.control("risk"), "risk", {"catch_up": True}, timeout_s=10.0).data
    except ControlError as exc:
        say(f"draizer: settlement impossible: {exc}")
        return False
    report = Report()
    outcomes = executor.get("outcomes", {})
    report.add(f"executions by outcome: {json.dumps(outcomes, sort_keys=True)}")
    report.add(f"orphaned positions: {outcomes.get('orphaned', 0)}", outcomes.get("orphaned", 0) == 0)
    report.add(f"open orders left: {len(executor.get('open', []))}", not executor.get("open"))
    ledger: dict[tuple[str, str], Decimal] = {(v, a): Decimal(d) for v, a, d in executor.get("deltas", [])}
    if cfg.mode == "paper":
        if paper_model(cfg):  # the paper venues live in the executor: their accounts and marks are its to tell
            balances, m = paper_balances(endpoints)
        else:
            balances = {**venue_balances(cfg, env), **perp_balances(cfg, env)}
            m = marks(cfg)
        venue_pnl = ledger_pnl = 0.0
        mismatched = []
        for venue, (start, now) in balances.items():
            for asset in sorted(set(start) | set(now)):
                change = now.get(asset, Decimal(0)) - start.get(asset, Decimal(0))
                ours = ledger.get((venue, asset), Decimal(0))
                if change != ours:
                    mismatched.append(f"{venue} {asset}: venue {change} vs executor {ours}")
                mark = m.get(asset, 0.0)
                venue_pnl += float(change) * mark
                ledger_pnl += float(ours) * mark
        add_carry_lines(report, endpoints, balances, ledger, cfg)
        report.add("executor ledger = venue balance changes, asset by asset (exact)"
                   + ("" if not mismatched else ": " + "; ".join(mismatched[:5])), not mismatched)
        report.add(f"PnL at marks: venues {venue_pnl:+.4f} USD, executor {ledger_pnl:+.4f} USD",
                   abs(venue_pnl - ledger_pnl) < CENT)
        booked = float(executor.get("pnl_usd", 0.0))
        add_risk_lines(report, executor, risk)
        report.add(f"inventory revaluation (booked vs marks): {ledger_pnl - booked:+.4f} USD")
    if cfg.sinks.shm:
        shown = bridge_view(StatusLine(cfg.instance, env.get(SESSION_ENV)), int(executor.get("executions", 0)))
        report.lines += explain(shown, executor, risk, cfg)
    say("draizer: settlement\n" + "\n".join(report.lines))
    return report.ok


def add_carry_lines(report: Report, endpoints: Endpoints, balances: dict[str, tuple[dict[str, Decimal],
                    dict[str, Decimal]]], ledger: dict[tuple[str, str], Decimal], cfg: Config) -> None:
    """The carries and the perpetual positions, venue by venue: what the venue holds and what the books say."""
    carries = request(endpoints.control("executor"), "carries", timeout_s=5.0).data
    opened, closed = carries.get("open", []), carries.get("closed", [])
    funding = sum(float(c["funding_usd"]) for c in opened + closed)
    report.add(f"carries: {len(opened)} open, {len(closed)} closed; funding collected by them {funding:+.4f} USD")
    for v in cfg.venues:
        if not kind_of(v.kind).perp or v.name not in balances:
            continue
        _start, now = balances[v.name]
        held = [f"{a} {q.normalize():f}" for a, q in sorted(now.items()) if a != "USDT" and q]
        ours = [f"{a} {q.normalize():f}" for (venue, a), q in sorted(ledger.items())
                if venue == v.name and a != "USDT" and q]
        report.add(f"{v.name} positions: venue [{', '.join(held)}], executor [{', '.join(ours)}]", held == ours)


def add_risk_lines(report: Report, executor: dict[str, Any], risk: dict[str, Any]) -> None:
    """Risk booked every execution of the run the executor booked, and the same PnL: both over the same run."""
    booked = float(executor.get("pnl_usd", 0.0))
    risk_pnl = float(risk.get("session_pnl_usd", 0.0))  # this run's part of risk's (persisted) daily PnL
    same_run = executor.get("session") == risk.get("session") == risk.get("executor_session")
    run_note = "" if same_run else (f" (not one run: executor {executor.get('session')!r}, risk "
                                    f"{risk.get('session')!r} following {risk.get('executor_session')!r})")
    caught_up = risk.get("catch_up", {})
    heard, executions = int(risk.get("executor_seq", 0)), int(executor.get("executions", 0))
    report.add(f"executions booked by risk: {heard} of the executor's {executions}"
               + ("" if caught_up.get("ok") else f" (catch-up failed: {caught_up.get('error')})") + run_note,
               same_run and heard == executions and bool(caught_up.get("ok")))
    report.add(f"booked PnL: executor {booked:+.4f} USD, risk {risk_pnl:+.4f} USD" + run_note,
               same_run and abs(booked - risk_pnl) < CENT)


def _booked(data: dict[str, Any]) -> int:
    """Executions the bridge counted that the executor numbers (an aborted one never reached its books)."""
    return sum(n for outcome, n in data["executions"].items() if outcome != "aborted")


def bridge_view(line: StatusLine, executions: int, timeout_s: float = BRIDGE_WAIT_S) -> dict[str, Any] | None:
    """This run's snapshot once the bridge has counted ``executions`` (or the last one when the wait ends)."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = line.read()
        if (data is not None and _booked(data) >= executions) or time.monotonic() > deadline:
            return data
        time.sleep(0.1)  # the operator's wait for another process's counts, not a test's synchronisation


def explain(d: dict[str, Any] | None, executor: dict[str, Any], risk: dict[str, Any], cfg: Config) -> list[str]:
    """The PnL split into filled executions, unwinds and fees; why the unwinds happened; the breakers' halts
    (risk's trip counts are its process's: a restart of risk starts them again)."""
    if d is None:
        return ["  PnL split: no snapshot of this run in shared memory (is the bridge running?)"]
    split, seen, booked = d["pnl_split"], _booked(d), int(executor.get("executions", 0))
    outcomes = d["executions"]
    n_filled = sum(outcomes.get(o, 0) for o in ("filled", "partial"))
    n_unwound = sum(outcomes.get(o, 0) for o in ("unwound", "hedged", "orphaned"))
    partly = "" if seen >= booked else f" (the bridge has seen {seen} of the executor's {booked} executions)"
    other = f" {split['other_usd']:+.2f} other (funding)" if abs(split["other_usd"]) >= 0.005 else ""
    lines = [
        f"  PnL {d['pnl_usd']:+.2f} USD = {split['filled_usd']:+.2f} filled executions ({n_filled}) "
        f"{split['unwind_usd']:+.2f} unwinds ({n_unwound}){other} -{split['fees_usd']:.2f} fees{partly}"
    ]
    causes = d["unwind_causes"]
    if causes:
        parts = []
        for cause in sorted(causes, key=lambda c: CAUSES.index(c) if c in CAUSES else len(CAUSES)):
            c = causes[cause]
            age = f" (the short leg's quote {c['quote_age_ms']:.1f} ms old at detection, on average)" \
                if c["quote_age_ms"] else ""
            parts.append(f"{c['count']}x {CAUSE_WORDS.get(cause, cause)}{age}")
        lines.append(f"  why unwound: {'; '.join(parts)}")
    breakers = risk.get("breakers", {})
    trips = {name: int(b.get("trips", 0)) for name, b in breakers.items() if isinstance(b, dict) and b.get("trips")}
    r = cfg.risk
    rule = {
        "failure": f"{r.failure_breaker_count} failed executions within {r.failure_window_s:g} s halt the spot "
                   f"strategies for {r.breaker_cooldown_s:g} s",
        "loss": f"a loss of {r.loss_breaker_usd:g} USD within {r.loss_window_s:g} s halts trading for "
                f"{r.breaker_cooldown_s:g} s",
        "orphan": "an orphaned position halts trading until an operator resumes",
    }
    for name, n in trips.items():
        lines.append(f"  trading halted: {name} breaker tripped {n} time{'s' if n != 1 else ''} "
                     f"({rule.get(name, 'see risk.log')})")
    return lines


def _get(url: str, headers: dict[str, str]) -> Any:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5.0) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise DraizerError(f"GET {url}: HTTP {exc.code} {exc.read()[:200]!r}") from None


def _run_dir(env: dict[str, str]) -> Path:
    return Path(env["DRAIZER_RUN_DIR"])
