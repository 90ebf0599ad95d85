"""The detector's one Numba entry per drain: asset values, then the three strategies, over packed state.

``DetectorArrays`` lays every array the kernels read or write out in four arenas (floats, integers, and the
cycle table's integers and floats, which are rebuilt when the cycles change) and keeps numpy views of them
for the Python side. ``evaluate`` takes the four buffers and one layout table — five arrays, where the four
kernel calls it replaces took ~100 between them — rebuilds the views inside compiled code and calls the
kernels (``cross.py``, ``triangular.py``, ``funding.py``, ``valuation.py``) unchanged.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from services.detector import cross, funding, triangular
from services.detector.arena import Arena, view1, view2, view3, view4
from services.detector.cycles import CycleTable
from services.detector.valuation import update_asset_usd
from shared.registry import Registry

ENABLE_CROSS = 1
ENABLE_TRIANGULAR = 2
ENABLE_FUNDING = 4

# Slots, in the order they are added (the layout table's rows: floats, then integers, then the cycle table).
F_NAMES = (
    "bid", "bid_qty", "ask", "ask_qty", "depth_px", "depth_qty", "funding_rate", "mark", "asset_usd", "taker_fee",
    "step", "min_notional", "p_cross", "p_tri", "p_fund", "cross_lad_px", "cross_lad_qty", "tri_lad_px",
    "tri_lad_qty", "fund_lad_px", "fund_lad_qty", "cross_out", "funding_out", "open_qty",
)
I_NAMES = (
    "ts", "depth_ts", "funding_next_ms", "funding_ts", "spot_venues", "perp_venues", "listed", "quote_asset",
    "base_asset", "is_usd", "cross_lad_n", "cross_lad_ts", "tri_lad_n", "tri_lad_ts", "open_spot", "open_perp",
    "open_settle_ms", "last_funding_eval", "touched",
)
CI_NAMES = ("index_start", "index_cycles", "cycle_mark", "cyc_venue", "cyc_sym", "cyc_side", "cyc_start")
CF_NAMES = ("tri_out",)
_F = {n: k for k, n in enumerate(F_NAMES)}
_I = {n: len(F_NAMES) + k for k, n in enumerate(I_NAMES)}
_CI = {n: len(F_NAMES) + len(I_NAMES) + k for k, n in enumerate(CI_NAMES)}
_CF = {n: len(F_NAMES) + len(I_NAMES) + len(CI_NAMES) + k for k, n in enumerate(CF_NAMES)}

# Row numbers as plain module constants: Numba reads globals as compile-time constants.
F_BID, F_BID_QTY, F_ASK, F_ASK_QTY = _F["bid"], _F["bid_qty"], _F["ask"], _F["ask_qty"]
F_DEPTH_PX, F_DEPTH_QTY, F_FUNDING_RATE, F_MARK = _F["depth_px"], _F["depth_qty"], _F["funding_rate"], _F["mark"]
F_ASSET_USD, F_TAKER_FEE, F_STEP, F_MIN_NOTIONAL = _F["asset_usd"], _F["taker_fee"], _F["step"], _F["min_notional"]
F_P_CROSS, F_P_TRI, F_P_FUND = _F["p_cross"], _F["p_tri"], _F["p_fund"]
F_CROSS_LAD_PX, F_CROSS_LAD_QTY = _F["cross_lad_px"], _F["cross_lad_qty"]
F_TRI_LAD_PX, F_TRI_LAD_QTY = _F["tri_lad_px"], _F["tri_lad_qty"]
F_FUND_LAD_PX, F_FUND_LAD_QTY = _F["fund_lad_px"], _F["fund_lad_qty"]
F_CROSS_OUT, F_FUNDING_OUT, F_OPEN_QTY = _F["cross_out"], _F["funding_out"], _F["open_qty"]
I_TS, I_DEPTH_TS, I_FUNDING_NEXT_MS, I_FUNDING_TS = _I["ts"], _I["depth_ts"], _I["funding_next_ms"], _I["funding_ts"]
I_SPOT_VENUES, I_PERP_VENUES, I_LISTED = _I["spot_venues"], _I["perp_venues"], _I["listed"]
I_QUOTE_ASSET, I_BASE_ASSET, I_IS_USD = _I["quote_asset"], _I["base_asset"], _I["is_usd"]
I_CROSS_LAD_N, I_CROSS_LAD_TS, I_TRI_LAD_N, I_TRI_LAD_TS = (
    _I["cross_lad_n"], _I["cross_lad_ts"], _I["tri_lad_n"], _I["tri_lad_ts"])
I_OPEN_SPOT, I_OPEN_PERP, I_OPEN_SETTLE_MS = _I["open_spot"], _I["open_perp"], _I["open_settle_ms"]
I_LAST_FUNDING_EVAL, I_TOUCHED = _I["last_funding_eval"], _I["touched"]
CI_INDEX_START, CI_INDEX_CYCLES, CI_MARK = _CI["index_start"], _CI["index_cycles"], _CI["cycle_mark"]
CI_VENUE, CI_SYM, CI_SIDE, CI_START = _CI["cyc_venue"], _CI["cyc_sym"], _CI["cyc_side"], _CI["cyc_start"]
CF_TRI_OUT = _CF["tri_out"]


class DetectorArrays:
    """Every array of the detector's kernels, as numpy views (attributes named as in ``*_NAMES``)."""

    def __init__(self, reg: Registry, levels: int) -> None:
        v, s, a = reg.n_venues, reg.n_symbols, len(reg.is_usd_asset)
        ladder = levels + 1
        f = Arena(0, np.float64)
        shapes_f = {
            "bid": (v, s), "bid_qty": (v, s), "ask": (v, s), "ask_qty": (v, s), "depth_px": (v, s, 2, levels),
            "depth_qty": (v, s, 2, levels), "funding_rate": (v, s), "mark": (v, s), "asset_usd": (a,),
            "taker_fee": (v,), "step": (v, s), "min_notional": (v, s), "p_cross": (cross.P_COUNT,),
            "p_tri": (triangular.P_COUNT,), "p_fund": (funding.P_COUNT,), "cross_lad_px": (v, 2, ladder),
            "cross_lad_qty": (v, 2, ladder), "tri_lad_px": (3, ladder), "tri_lad_qty": (3, ladder),
            "fund_lad_px": (ladder,), "fund_lad_qty": (ladder,), "cross_out": (s, cross.OUT_COLUMNS),
            "funding_out": (s, funding.OUT_COLUMNS), "open_qty": (s,),
        }
        i = Arena(1, np.int64)
        spot, perp = np.asarray(reg.spot_venues), np.asarray(reg.perp_venues)
        shapes_i = {
            "ts": (v, s), "depth_ts": (v, s), "funding_next_ms": (v, s), "funding_ts": (v, s),
            "spot_venues": (len(spot),), "perp_venues": (len(perp),), "listed": (v, s), "quote_asset": (s,),
            "base_asset": (s,), "is_usd": (a,), "cross_lad_n": (v, 2), "cross_lad_ts": (v, 2), "tri_lad_n": (3,),
            "tri_lad_ts": (3,), "open_spot": (s,), "open_perp": (s,), "open_settle_ms": (s,),
            "last_funding_eval": (s,), "touched": (max(1, s),),
        }
        for arena, names, shapes in ((f, F_NAMES, shapes_f), (i, I_NAMES, shapes_i)):
            for name in names:
                arena.add(*shapes[name])
            for name, view in zip(names, arena.allocate(), strict=True):
                setattr(self, name, view)
        self.f, self.i = f, i
        self.asset_usd[:] = np.where(reg.is_usd_asset, 1.0, 0.0)
        self.taker_fee[:] = reg.taker_fee
        self.step[:] = reg.step_array
        self.min_notional[:] = reg.min_notional_array
        self.spot_venues[:] = spot
        self.perp_venues[:] = perp
        self.listed[:] = reg.listed
        self.quote_asset[:] = reg.quote_asset
        self.base_asset[:] = reg.base_asset
        self.is_usd[:] = reg.is_usd_asset
        self.open_spot[:] = -1
        self.open_perp[:] = -1
        self.ci = Arena(2, np.int64)
        self.cf = Arena(3, np.float64)
        self.layout = np.zeros((0, 6), dtype=np.int64)

    def set_cycles(self, t: CycleTable) -> None:
        """The cycle table's arrays (and a fresh output block) replace the previous ones."""
        n = max(1, len(t.cycles))
        ci, cf = Arena(2, np.int64), Arena(3, np.float64)
        sources = (t.index_start, t.index_cycles, np.zeros(n, dtype=np.int64), t.venue, t.symbols, t.sides, t.start)
        for src in sources:
            ci.add(*np.shape(src))
        for view, src in zip(ci.allocate(), sources, strict=True):
            view[...] = src
        cf.add(n, triangular.OUT_COLUMNS)
        cf.allocate()
        self.ci, self.cf = ci, cf
        self.cycle_mark = ci.views[CI_MARK - CI_INDEX_START]
        self.tri_out = cf.views[0]
        self.layout = np.vstack([self.f.layout_rows(), self.i.layout_rows(), ci.layout_rows(), cf.layout_rows()])


@njit(cache=True, nogil=True)
def evaluate(
    f: np.ndarray, i: np.ndarray, ci: np.ndarray, cf: np.ndarray, lay: np.ndarray,
    n_touched: int, now_ns: int, venue_now_ms: int, epoch: int, enabled: int,
) -> tuple[int, int, int]:
    """Rows found per strategy (cross, triangular, funding), written to their output blocks."""
    touched = view1(i, lay, I_TOUCHED)
    spot = view1(i, lay, I_SPOT_VENUES)
    bid, bid_qty = view2(f, lay, F_BID), view2(f, lay, F_BID_QTY)
    ask, ask_qty = view2(f, lay, F_ASK), view2(f, lay, F_ASK_QTY)
    ts = view2(i, lay, I_TS)
    depth_px, depth_qty = view4(f, lay, F_DEPTH_PX), view4(f, lay, F_DEPTH_QTY)
    depth_ts = view2(i, lay, I_DEPTH_TS)
    taker_fee, step, min_notional = view1(f, lay, F_TAKER_FEE), view2(f, lay, F_STEP), view2(f, lay, F_MIN_NOTIONAL)
    quote_asset = view1(i, lay, I_QUOTE_ASSET)
    asset_usd = view1(f, lay, F_ASSET_USD)
    update_asset_usd(touched, n_touched, spot, bid, ask, ts, view1(i, lay, I_BASE_ASSET), quote_asset,
                     view1(i, lay, I_IS_USD), asset_usd)
    n_cross = n_tri = n_fund = 0
    if enabled & ENABLE_CROSS:
        n_cross = cross.detect_cross(
            touched, n_touched, spot, bid, bid_qty, ask, ask_qty, ts, depth_px, depth_qty, depth_ts, taker_fee,
            step, min_notional, quote_asset, asset_usd, view1(f, lay, F_P_CROSS), now_ns,
            view3(f, lay, F_CROSS_LAD_PX), view3(f, lay, F_CROSS_LAD_QTY), view2(i, lay, I_CROSS_LAD_N),
            view2(i, lay, I_CROSS_LAD_TS), view2(f, lay, F_CROSS_OUT),
        )
    if enabled & ENABLE_TRIANGULAR:
        n_tri = triangular.detect_triangular(
            touched, n_touched, spot, view1(ci, lay, CI_INDEX_START), view1(ci, lay, CI_INDEX_CYCLES),
            view1(ci, lay, CI_MARK), epoch, view1(ci, lay, CI_VENUE), view2(ci, lay, CI_SYM),
            view2(ci, lay, CI_SIDE), view1(ci, lay, CI_START), bid, bid_qty, ask, ask_qty, ts, depth_px, depth_qty,
            depth_ts, taker_fee, step, min_notional, asset_usd, view1(f, lay, F_P_TRI), now_ns,
            view2(f, lay, F_TRI_LAD_PX), view2(f, lay, F_TRI_LAD_QTY), view1(i, lay, I_TRI_LAD_N),
            view1(i, lay, I_TRI_LAD_TS), view2(cf, lay, CF_TRI_OUT),
        )
    if enabled & ENABLE_FUNDING:
        n_fund = funding.detect_funding(
            touched, n_touched, spot, view1(i, lay, I_PERP_VENUES), view2(i, lay, I_LISTED), bid, bid_qty, ask,
            ask_qty, ts, depth_px, depth_qty, depth_ts, view2(f, lay, F_FUNDING_RATE),
            view2(i, lay, I_FUNDING_NEXT_MS), view2(f, lay, F_MARK), view2(i, lay, I_FUNDING_TS), taker_fee, step,
            min_notional, quote_asset, asset_usd, view1(f, lay, F_P_FUND), now_ns, venue_now_ms,
            view1(i, lay, I_OPEN_SPOT), view1(i, lay, I_OPEN_PERP), view1(f, lay, F_OPEN_QTY),
            view1(i, lay, I_OPEN_SETTLE_MS), view1(i, lay, I_LAST_FUNDING_EVAL), view1(f, lay, F_FUND_LAD_PX),
            view1(f, lay, F_FUND_LAD_QTY), view2(f, lay, F_FUNDING_OUT),
        )
    return n_cross, n_tri, n_fund

