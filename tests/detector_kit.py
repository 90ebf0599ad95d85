"""Test kit for the detection kernels: a small market held in the detector's arrays, kernel calls, and
plain-Python reference implementations written from the rules (not from the kernels' code)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from services.detector import cross, funding, triangular
from services.detector.ladder import ASKS, BIDS

NOW = 10_000_000_000
LEVELS = 5
SLACK = 1e-9


@dataclass
class Market:
    n_venues: int
    n_symbols: int
    n_assets: int = 1
    levels: int = LEVELS
    bid: np.ndarray = field(init=False)
    bid_qty: np.ndarray = field(init=False)
    ask: np.ndarray = field(init=False)
    ask_qty: np.ndarray = field(init=False)
    ts: np.ndarray = field(init=False)
    depth_px: np.ndarray = field(init=False)
    depth_qty: np.ndarray = field(init=False)
    depth_ts: np.ndarray = field(init=False)
    fee: np.ndarray = field(init=False)
    step: np.ndarray = field(init=False)
    min_notional: np.ndarray = field(init=False)
    quote_asset: np.ndarray = field(init=False)
    base_asset: np.ndarray = field(init=False)
    asset_usd: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (self.n_venues, self.n_symbols)
        self.bid, self.bid_qty, self.ask, self.ask_qty = (np.zeros(shape) for _ in range(4))
        self.ts = np.zeros(shape, dtype=np.int64)
        self.depth_px = np.zeros((*shape, 2, self.levels))
        self.depth_qty = np.zeros((*shape, 2, self.levels))
        self.depth_ts = np.zeros(shape, dtype=np.int64)
        self.fee = np.zeros(self.n_venues)
        self.step = np.full(shape, 1e-8)
        self.min_notional = np.zeros(shape)
        self.quote_asset = np.zeros(self.n_symbols, dtype=np.int64)
        self.base_asset = np.zeros(self.n_symbols, dtype=np.int64)
        self.asset_usd = np.ones(self.n_assets)

    def top(self, v: int, s: int, bid: float, bid_qty: float, ask: float, ask_qty: float, ts: int = NOW) -> None:
        self.bid[v, s], self.bid_qty[v, s], self.ask[v, s], self.ask_qty[v, s] = bid, bid_qty, ask, ask_qty
        self.ts[v, s] = ts

    def depth(self, v: int, s: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
              ts: int = NOW) -> None:
        self.depth_px[v, s] = 0.0
        self.depth_qty[v, s] = 0.0
        for side, levels in ((BIDS, bids), (ASKS, asks)):
            for i, (p, q) in enumerate(levels[: self.levels]):
                self.depth_px[v, s, side, i], self.depth_qty[v, s, side, i] = p, q
        self.depth_ts[v, s] = ts

    def scratch_cross(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self.levels + 1
        return (np.zeros((self.n_venues, 2, n)), np.zeros((self.n_venues, 2, n)),
                np.zeros((self.n_venues, 2), dtype=np.int64), np.zeros((self.n_venues, 2), dtype=np.int64))


# ----- the reference: plain Python, one rule at a time
def ladder(m: Market, v: int, s: int, side: int, now: int, max_age: float) -> tuple[list[tuple[float, float]], int]:
    """The side's levels, best first, merged from the top and the depth by freshness; and the stamp."""
    top_px = m.ask[v, s] if side == ASKS else m.bid[v, s]
    top_qty = m.ask_qty[v, s] if side == ASKS else m.bid_qty[v, s]
    top_ok = m.ts[v, s] > 0 and now - m.ts[v, s] <= max_age and top_px > 0 and top_qty > 0
    depth = []
    for i in range(m.levels):
        if m.depth_qty[v, s, side, i] <= 0:
            break
        depth.append((float(m.depth_px[v, s, side, i]), float(m.depth_qty[v, s, side, i])))
    depth_ok = m.depth_ts[v, s] > 0 and now - m.depth_ts[v, s] <= max_age and bool(depth)
    if depth_ok and (not top_ok or m.depth_ts[v, s] >= m.ts[v, s]):
        return depth, int(m.depth_ts[v, s])
    if not top_ok:
        return [], 0
    worse = (lambda p: p > top_px) if side == ASKS else (lambda p: p < top_px)
    rest = [lv for lv in depth if worse(lv[0])] if depth_ok else []
    return [(float(top_px), float(top_qty)), *rest], int(m.ts[v, s])


def fill(levels: list[tuple[float, float]], qty: float) -> tuple[float, float, float]:
    """(quote amount, worst price, filled) for ``qty`` base units walked through ``levels``."""
    amount, worst, left = 0.0, 0.0, qty
    for p, q in levels:
        if left <= 1e-12:
            break
        take = min(q, left)
        amount += take * p
        worst = p
        left -= take
    return amount, worst, qty - left


def floor_step(x: float, step: float) -> float:
    return math.floor(x / step + SLACK) * step


def reference_cross(m: Market, s: int, params: np.ndarray, now: int = NOW) -> tuple | None:
    """Best (buy venue, sell venue, qty, profit USD, buy limit, sell limit) for symbol ``s``, or None.

    Written as segments: between the breakpoints of both ladders' cumulative quantities the marginal edge is
    constant; segments are taken in order while their net spread clears the threshold and the cap allows."""
    max_age = params[cross.P_MAX_AGE_NS]
    usd = m.asset_usd[m.quote_asset[s]]
    if usd <= 0:
        return None
    cap_quote = min(params[cross.P_MAX_POSITION_USD], params[cross.P_CAPITAL_USD]) / usd
    best = None
    for i in range(m.n_venues):
        asks, _ = ladder(m, i, s, ASKS, now, max_age)
        for j in range(m.n_venues):
            bids, _ = ladder(m, j, s, BIDS, now, max_age)
            if i == j or not asks or not bids:
                continue
            cuts = sorted({0.0, *np.cumsum([q for _, q in asks]), *np.cumsum([q for _, q in bids])})
            limit = min(sum(q for _, q in asks), sum(q for _, q in bids))
            qty = spent = 0.0
            for lo, hi in itertools.pairwise(cuts):
                if lo >= limit - 1e-12:
                    break
                pa = _price_at(asks, (lo + hi) / 2)
                pb = _price_at(bids, (lo + hi) / 2)
                edge = pb * (1 - m.fee[j]) - pa * (1 + m.fee[i])
                if edge <= 0 or edge / pa * 1e4 < params[cross.P_MIN_SPREAD_BPS]:
                    break
                seg = hi - lo
                if spent + seg * pa >= cap_quote:
                    qty += (cap_quote - spent) / pa
                    break
                qty += seg
                spent += seg * pa
            qty = floor_step(qty, max(m.step[i, s], m.step[j, s]))
            if qty <= 0:
                continue
            cost, worst_ask, _ = fill(asks, qty)
            proceeds, worst_bid, _ = fill(bids, qty)
            if qty * worst_ask < m.min_notional[i, s] or qty * worst_bid < m.min_notional[j, s]:
                continue
            profit = (proceeds * (1 - m.fee[j]) - cost * (1 + m.fee[i])) * usd
            if profit <= 0 or profit < params[cross.P_MIN_PROFIT_USD]:
                continue
            if best is None or profit > best[3]:
                best = (i, j, qty, profit, worst_ask, worst_bid)
    return best


def _price_at(levels: list[tuple[float, float]], position: float) -> float:
    cum = 0.0
    for p, q in levels:
        cum += q
        if position < cum:
            return p
    return levels[-1][0]


def run_cross(m: Market, symbols: list[int], params: np.ndarray, now: int = NOW) -> np.ndarray:
    touched = np.array(symbols, dtype=np.int64)
    out = np.zeros((len(symbols), cross.OUT_COLUMNS))
    rows = cross.detect_cross(
        touched, len(symbols), np.arange(m.n_venues, dtype=np.int64), m.bid, m.bid_qty, m.ask, m.ask_qty, m.ts,
        m.depth_px, m.depth_qty, m.depth_ts, m.fee, m.step, m.min_notional, m.quote_asset, m.asset_usd, params,
        now, *m.scratch_cross(), out,
    )
    return out[:rows]


def cross_params(min_bps: float = 0.0, min_profit: float = 0.0, max_pos: float = 1e12, capital: float = 1e12,
                 max_age_ns: float = 1e9) -> np.ndarray:
    p = np.zeros(cross.P_COUNT)
    p[cross.P_MIN_SPREAD_BPS], p[cross.P_MIN_PROFIT_USD] = min_bps, min_profit
    p[cross.P_MAX_POSITION_USD], p[cross.P_CAPITAL_USD], p[cross.P_MAX_AGE_NS] = max_pos, capital, max_age_ns
    return p


def tri_params(min_bps: float = 0.0, min_profit: float = 0.0, max_pos: float = 1e12, capital: float = 1e12,
               max_age_ns: float = 1e9) -> np.ndarray:
    p = np.zeros(triangular.P_COUNT)
    p[triangular.P_MIN_PROFIT_BPS], p[triangular.P_MIN_PROFIT_USD] = min_bps, min_profit
    p[triangular.P_MAX_POSITION_USD], p[triangular.P_CAPITAL_USD] = max_pos, capital
    p[triangular.P_MAX_AGE_NS] = max_age_ns
    return p


def leg_output(levels: list[tuple[float, float]], side: int, amount: float, fee: float) -> float:
    """What ``amount`` of the leg's input currency yields, walking the levels (no rounding)."""
    got, left = 0.0, amount
    for p, q in levels:
        if left <= 0:
            break
        if side == triangular.LEG_BUY:
            cap = p * q
            use = min(cap, left)
            got += q if use == cap else use / p  # a level bought whole yields its quantity exactly
        else:
            use = min(q, left)
            got += use * p
        left -= use
    return got * (1 - fee)


def marginal_rate(levels: list[tuple[float, float]], side: int, amount: float, fee: float) -> float | None:
    """The rate of the next unit of input after ``amount`` has gone through; None past the last level."""
    used = 0.0
    for p, q in levels:
        cap = p * q if side == triangular.LEG_BUY else q
        if amount < used + cap:
            return (1 - fee) / p if side == triangular.LEG_BUY else p * (1 - fee)
        used += cap
    return None


def reference_cycle(m: Market, venue: int, symbols: list[int], sides: list[int], start_asset: int,
                    params: np.ndarray, now: int = NOW) -> tuple | None:
    """(profit USD, bps, [(price, qty)] per leg) for one cycle, or None. The size is found by bisection on the
    composed marginal return, independently of the kernel's simultaneous walk."""
    max_age = params[triangular.P_MAX_AGE_NS]
    books = []
    for s, side in zip(symbols, sides, strict=True):
        levels, _ = ladder(m, venue, s, ASKS if side == triangular.LEG_BUY else BIDS, now, max_age)
        if not levels:
            return None
        books.append(levels)
    fee = m.fee[venue]
    min_bps = params[triangular.P_MIN_PROFIT_BPS]
    usd = m.asset_usd[start_asset]
    if usd <= 0:
        return None

    def clears(x: float) -> bool:
        rate, amount = 1.0, x
        for levels, side in zip(books, sides, strict=True):
            r = marginal_rate(levels, side, amount, fee)
            if r is None:
                return False
            rate *= r
            amount = leg_output(levels, side, amount, fee)
        return (rate - 1) * 1e4 >= min_bps

    cap = min(params[triangular.P_MAX_POSITION_USD], params[triangular.P_CAPITAL_USD]) / usd
    if not clears(0.0):
        return None
    if clears(cap):
        size = cap
    else:
        lo, hi = 0.0, cap
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if clears(mid) else (lo, mid)
        size = hi
    amount, spent, legs = size, 0.0, []
    for k, (levels, side, s) in enumerate(zip(books, sides, symbols, strict=True)):
        if side == triangular.LEG_BUY:
            affordable = leg_output(levels, side, amount, 0.0)
            q = floor_step(affordable, m.step[venue, s])
            cost, worst, filled = fill(levels, q)
            leg_in, amount = cost, q * (1 - fee)
        else:
            q = floor_step(amount, m.step[venue, s])
            proceeds, worst, filled = fill(levels, q)
            leg_in, amount = q, proceeds * (1 - fee)
        if q <= 0 or filled < q - 1e-12 * max(1.0, q) or q * worst < m.min_notional[venue, s]:
            return None
        spent = leg_in if k == 0 else spent
        legs.append((worst, q))
    profit = amount - spent
    if profit <= 0:
        return None
    bps = profit / spent * 1e4
    if bps < min_bps or profit * usd < params[triangular.P_MIN_PROFIT_USD]:
        return None
    return profit * usd, bps, legs


def funding_params(min_annual: float = 0.1, hedge: bool = True, check_ns: float = 0.0, horizon_h: float = 720.0,
                   period_h: float = 8.0, cap_usd: float = 10_000.0, max_age_ns: float = 1e9,
                   min_profit: float = 0.0) -> np.ndarray:
    p = np.zeros(funding.P_COUNT)
    p[funding.P_MIN_ANNUAL], p[funding.P_HEDGE], p[funding.P_CHECK_NS] = min_annual, float(hedge), check_ns
    p[funding.P_HORIZON_H], p[funding.P_PERIOD_H], p[funding.P_CAP_USD] = horizon_h, period_h, cap_usd
    p[funding.P_MAX_AGE_NS], p[funding.P_MIN_PROFIT_USD] = max_age_ns, min_profit
    return p
