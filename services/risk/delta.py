"""The net delta rule: draizer's directional exposure per asset, over every venue, may not grow past a limit.

Net per asset = the sum over venues of the executor's ``VenueState.session_deltas`` (a perpetual position is
a signed base balance of its venue, so a hedged carry nets to zero and an unhedged short counts), plus what
this opportunity's legs move: a buy adds its quantity of the base and spends quantity x price of the quote,
a sell the reverse. USD assets (``strategies.usd_assets``) are the numeraire and carry no delta.

Refused (``net_delta``) when, for an asset the legs move, |net after| x its USD price exceeds
``max_net_delta_usd`` and the legs increase |net|. Price: the last leg trading it, its price x quote_usd for a
base, its quote_usd for a quote asset. "Increase" tolerates a residue: arbitrage legs net to their profit and
fees, not to exactly zero (a triangular cycle through ETHBTC leaves a few bps of BTC), so a growth of |net| up
to ``RESIDUE`` of what the legs trade of the asset is no new exposure. Cross-exchange legs net to exactly zero.
An opportunity that reduces |net| always passes.

Not reserved: approvals in flight are bounded by ``max_concurrent`` and the (venue, symbol) slots, and the
net catches up with the executor's next VenueState.
"""

from __future__ import annotations

from shared.messages import SIDE_BUY, Leg

NET_DELTA = "net_delta"
RESIDUE = 0.01  # share of the legs' gross flow of an asset that netting may leave without being exposure
_ZERO = (0.0, 0.0, 0.0)


def net_delta_refuses(legs: tuple[Leg, ...], net: dict[str, float], base: tuple[str, ...], quote: tuple[str, ...],
                      base_exposed: tuple[bool, ...], quote_exposed: tuple[bool, ...], limit: float) -> bool:
    """True when the legs grow some asset's |net delta| past ``limit`` USD (module docstring).
    ``*_exposed[symbol]``: the symbol's base / quote is not a USD asset."""
    if len(legs) == 2:  # cross-exchange, the common case: settled here without the per-asset sums
        a, b = legs
        if a.symbol == b.symbol and a.qty == b.qty and a.side != b.side and not quote_exposed[a.symbol]:
            return False  # the base nets to exactly zero and the quote is a USD asset
    # One pass: per exposed asset, what the legs move, their gross flow, and its USD price (the last leg's).
    flows: dict[str, tuple[float, float, float]] = {}
    for leg in legs:
        s = leg.symbol
        buy = leg.side == SIDE_BUY
        if base_exposed[s]:
            a = base[s]
            move, gross, _ = flows.get(a, _ZERO)
            flows[a] = (move + leg.qty if buy else move - leg.qty, gross + leg.qty, leg.price * leg.quote_usd)
        if quote_exposed[s]:
            a = quote[s]
            x = leg.qty * leg.price
            move, gross, _ = flows.get(a, _ZERO)
            flows[a] = (move - x if buy else move + x, gross + x, leg.quote_usd)
    for a, (move, gross, price_usd) in flows.items():
        if move == 0.0:
            continue
        before = net.get(a, 0.0)
        after = abs(before + move)
        if after - abs(before) > RESIDUE * gross and after * price_usd > limit:
            return True
    return False
