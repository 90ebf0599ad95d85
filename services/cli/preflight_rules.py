"""What `draizer preflight` checks, as pure functions of the config and what the venue answered (no I/O).

Each function returns one ``Check`` row: PASS or FAIL with a reason a person can act on. The rules:

- clock: |venue clock - ours| below half the venue's ``recv_window_ms``: a signed request then reaches the venue
  inside its window with half of it left for the network and for drift until the next re-sync.
- exchangeInfo rules, per traded symbol: the configured step and tick are whole multiples of the venue's (a finer
  one sizes or prices what the venue refuses or floors), the configured ``min_notional`` is not below the venue's,
  and the largest trade the config allows can reach the venue's minimum notional.
- balance (spot): every USD quote asset the venue trades holds, free, one trade of the largest configured size
  divided by ``risk.balance_headroom`` (the share of a free balance one execution may spend). The largest trade is
  the maximum over the enabled strategies of min(max_position_usd, capital_allocation x capital.total_usd,
  risk.max_notional_usd). Quote assets that are not USD are not valued here (risk checks them per trade); the
  base asset a sell needs neither (its amount needs a price).
- balance (perpetual): the available margin covers one carry of the largest configured size at
  ``execution.perp_leverage``.
- rate limits: for every limit the venue declares in its exchangeInfo, the most draizer's limits (the config's,
  else the documented ones) let it send within that interval is not above it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from shared.config import Config, Venue
from shared.venues import documented_limits
from shared.venues.common import DeclaredLimit, SymbolRules, TradingPermission
from shared.venues.perp import PerpAccountInfo

PASS = "PASS"
FAIL = "FAIL"
SPOT_PERMISSION = "SPOT"


class Check(NamedTuple):
    venue: str
    check: str
    status: str  # PASS | FAIL
    reason: str

    @property
    def ok(self) -> bool:
        return self.status == PASS


def check(venue: str, name: str, problems: Iterable[str], passed: str) -> Check:
    """FAIL naming every problem, else PASS saying what was checked."""
    found = list(problems)
    return Check(venue, name, FAIL, "; ".join(found)) if found else Check(venue, name, PASS, passed)


def clock_check(venue: Venue, offset_ms: int) -> Check:
    bound = venue.recv_window_ms / 2
    ok = abs(offset_ms) < bound
    reason = (f"venue clock {offset_ms:+d} ms from ours; the bound is +/-{bound:g} ms (recvWindow "
              f"{venue.recv_window_ms} ms / 2)")
    return Check(venue.name, "clock offset", PASS if ok else FAIL, reason + ("" if ok else ": fix this host's NTP"))


def permission_check(venue: str, permission: TradingPermission, perp: bool) -> Check:
    if perp:  # a perpetual account states its trading right nowhere both venues share: readable is the check
        return Check(venue, "trading permission", PASS, "perpetual account readable")
    problems = []
    if permission.can_trade is not True:
        problems.append("the account answer says canTrade=false" if permission.can_trade is False
                        else "the account answer states no canTrade")
    if permission.permissions and SPOT_PERMISSION not in permission.permissions:
        problems.append(f"permissions {list(permission.permissions)} lack {SPOT_PERMISSION}")
    return check(venue, "trading permission", problems,
                 f"canTrade, permissions {list(permission.permissions) or '(none listed)'}")


def largest_trade_usd(cfg: Config, spot: bool) -> float:
    """The largest notional one trade may have under the config: the detector's sizing caps and risk's."""
    s = cfg.strategies
    caps = []
    if spot:
        caps += [(c.max_position_usd, c.capital_allocation) for c in (s.cross_exchange, s.triangular) if c.enabled]
    if s.funding_rate.enabled:
        caps.append((s.funding_rate.max_position_usd, s.funding_rate.capital_allocation))
    sizes = [min(cap, share * cfg.capital.total_usd) for cap, share in caps]
    return min(max(sizes, default=0.0), cfg.risk.max_notional_usd)


def _multiple(configured: Decimal, venue: Decimal) -> bool:
    return venue <= 0 or configured % venue == 0


def rules_check(cfg: Config, venue: Venue, rules: dict[str, SymbolRules], spot: bool) -> Check:
    largest = Decimal(repr(largest_trade_usd(cfg, spot)))
    usd = set(cfg.strategies.usd_assets)
    problems = []
    for sym in cfg.symbols:
        r = rules.get(sym.name)
        if r is None:
            continue
        step, tick, min_notional = Decimal(sym.step_size), Decimal(sym.tick_size), Decimal(sym.min_notional)
        if not _multiple(step, r.step):
            problems.append(f"{sym.name}: configured step_size {sym.step_size} is not a multiple of the venue's "
                            f"{r.step}")
        if not _multiple(tick, r.tick):
            problems.append(f"{sym.name}: configured tick_size {sym.tick_size} is not a multiple of the venue's "
                            f"{r.tick}")
        if min_notional < r.min_notional:
            problems.append(f"{sym.name}: configured min_notional {sym.min_notional} is below the venue's "
                            f"{r.min_notional}")
        if sym.quote in usd and largest < r.min_notional:
            problems.append(f"{sym.name}: the largest configured trade ({largest} USD) cannot reach the venue's "
                            f"min notional {r.min_notional}")
    return check(venue.name, "exchangeInfo rules", problems,
                 f"{len(rules)} symbols: steps, ticks and min notional fit the config")


def balance_check(cfg: Config, venue: Venue, symbols: Iterable[str], balances: dict[str, Decimal]) -> Check:
    """Spot: the free balance of each USD quote asset the venue trades against one largest trade."""
    by_name = {s.name: s for s in cfg.symbols}
    quotes = sorted({by_name[n].quote for n in symbols})
    usd = [q for q in quotes if q in cfg.strategies.usd_assets]
    need = Decimal(repr(largest_trade_usd(cfg, True))) / Decimal(repr(cfg.risk.balance_headroom))
    need = need.quantize(Decimal("0.01"))
    problems = [f"{q} free {balances.get(q, Decimal(0))} < {need} (one {largest_trade_usd(cfg, True):g} USD trade / "
                f"balance_headroom {cfg.risk.balance_headroom:g})" for q in usd if balances.get(q, Decimal(0)) < need]
    others = [q for q in quotes if q not in usd]
    passed = f"{', '.join(usd) or 'no USD quote'} >= {need} free" + (f" ({', '.join(others)} not valued)"
                                                                       if others else "")
    return check(venue.name, "balance", problems, passed)


def perp_balance_check(cfg: Config, venue: Venue, account: PerpAccountInfo) -> Check:
    largest = largest_trade_usd(cfg, False)
    need = (Decimal(repr(largest)) / cfg.execution.perp_leverage).quantize(Decimal("0.01"))
    problems = [] if account.available >= need else [
        f"available margin {account.available} < {need} (one {largest:g} USD carry at "
        f"{cfg.execution.perp_leverage}x)"]
    return check(venue.name, "balance", problems, f"available margin {account.available} >= {need}")


def _ours(venue: Venue) -> list[tuple[str, int, int]]:
    """draizer's limits for this venue as (kind, window s, limit): the config's, else the documented ones."""
    doc, cfg = documented_limits(venue.kind), venue.limits
    mine = [("REQUEST_WEIGHT", 60, cfg.weight_per_minute or doc.weight_per_minute),
            ("ORDERS", 10, cfg.orders_per_10s or doc.orders_per_10s),
            ("ORDERS", 86_400, cfg.orders_per_day or doc.orders_per_day)]
    return [m for m in mine if m[2] > 0]


def most_we_send(venue: Venue, kind: str, interval_s: int) -> int | None:
    """The most draizer's limits of ``kind`` let it send within ``interval_s``: the tightest of each of our windows
    that divides the interval, times how often it fits (None: none of ours bounds it)."""
    bounds = [limit * (interval_s // window) for k, window, limit in _ours(venue)
              if k == kind and window <= interval_s and interval_s % window == 0]
    return min(bounds) if bounds else None


def rate_limit_check(venue: Venue, declared: tuple[DeclaredLimit, ...] | None) -> Check:
    if declared is None:
        return Check(venue.name, "rate limits", FAIL, "the venue's exchangeInfo rateLimits could not be read")
    ours = ", ".join(f"{k} {limit}/{window}s" for k, window, limit in _ours(venue))
    if not declared:
        return Check(venue.name, "rate limits", PASS, f"the venue declares none; ours (documented): {ours}")
    problems = []
    for d in declared:
        if d.kind not in ("REQUEST_WEIGHT", "ORDERS"):
            continue  # RAW_REQUESTS: draizer sends far fewer requests than weight; not counted separately
        most = most_we_send(venue, d.kind, d.interval_s)
        if most is None:
            problems.append(f"{d.kind} {d.limit}/{d.interval_s}s: no limit of ours bounds it")
        elif most > d.limit:
            problems.append(f"{d.kind}: ours allow {most}/{d.interval_s}s, the venue {d.limit}")
    declared_text = ", ".join(f"{d.kind} {d.limit}/{d.interval_s}s" for d in declared)
    return check(venue.name, "rate limits", problems, f"ours ({ours}) within the venue's ({declared_text})")
