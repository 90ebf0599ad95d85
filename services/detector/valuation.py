"""Every asset's value in USD, from the quotes of its USD pairs: profits in BTC or ETH are compared in dollars."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def update_asset_usd(
    touched: np.ndarray,  # int64[n] symbol ids
    n_touched: int,
    venues: np.ndarray,  # int64[k] spot venues
    bid: np.ndarray,  # float64[V, S]
    ask: np.ndarray,
    ts: np.ndarray,  # int64[V, S]
    base_asset: np.ndarray,  # int64[S]
    quote_asset: np.ndarray,  # int64[S]
    is_usd: np.ndarray,  # bool[A]
    asset_usd: np.ndarray,  # float64[A], updated in place
) -> None:
    """For each touched USD-quoted symbol, its base asset takes the mid of the venue quoted most recently."""
    for k in range(n_touched):
        s = touched[k]
        if not is_usd[quote_asset[s]] or is_usd[base_asset[s]]:
            continue
        latest = 0
        mid = 0.0
        for x in range(venues.shape[0]):
            v = venues[x]
            if ts[v, s] > latest and bid[v, s] > 0.0 and ask[v, s] > 0.0:
                latest = ts[v, s]
                mid = (bid[v, s] + ask[v, s]) * 0.5
        if mid > 0.0:
            asset_usd[base_asset[s]] = mid
