"""The net delta rule: draizer's directional exposure per asset, over every venue, may not grow past a limit.

Net per asset = the sum over venues of the executor's ``VenueState.session_deltas`` (a perpetual position is
a signed base balance of its venue, so a hedged carry nets to zero and an unhedged short counts), plus what
this opportunity's legs move: a buy adds its quantity of the base and spends quantity x price of the quote,
a sell the reverse. USD assets (``strategies.usd_assets``) are the numeraire and carry no delta.

Refused (``net_delta``) when, for an asset the legs move, |net after| x its USD price exceeds
``max_net_delta_usd`` and the legs increase |net|. Price: the leg's price x quote_usd for a base, the leg's
quote_usd for a quote asset. "Increase" tolerates a residue: arbitrage legs net to their profit and fees, not
to exactly zero (a triangular cycle through ETHBTC leaves a few bps of BTC), so a growth of |net| up to
``RESIDUE`` of what the legs trade of the asset is no new exposure. Cross-exchange legs net to exactly zero.
An opportunity that reduces |net| always passes.

Not reserved: approvals in flight are bounded by ``max_concurrent`` and the (venue, symbol) slots, and the
net catches up with the executor's next VenueState.
"""

from __future__ import annotations

from shared.messages import SIDE_BUY, Leg

NET_DELTA = "net_delta"
RESIDUE = 0.01  # share of the legs' gross flow of an asset that netting may leave without being exposure


def _refuses(legs: tuple[Leg, ...], asset: str, price_usd: float, net: dict[str, float], base: tuple[str, ...],
             quote: tuple[str, ...], limit: float) -> bool:
    move = gross = 0.0
    for leg in legs:
        s = leg.symbol
        if base[s] == asset:
            x = leg.qty if leg.side == SIDE_BUY else -leg.qty
        elif quote[s] == asset:
            x = -leg.qty * leg.price if leg.side == SIDE_BUY else leg.qty * leg.price
        else:
            continue
        move += x
        gross += abs(x)
    if move == 0.0:
        return False
    before = net.get(asset, 0.0)
    after = abs(before + move)
    return after - abs(before) > RESIDUE * gross and after * price_usd > limit


def net_delta_refuses(legs: tuple[Leg, ...], net: dict[str, float], base: tuple[str, ...], quote: tuple[str, ...],
                      base_exposed: tuple[bool, ...], quote_exposed: tuple[bool, ...], limit: float) -> bool:
    """True when the legs grow some asset's |net delta| past ``limit`` USD (module docstring).
    ``*_exposed[symbol]``: the symbol's base / quote is not a USD asset."""
    for leg in legs:
        s = leg.symbol
        if base_exposed[s] and _refuses(legs, base[s], leg.price * leg.quote_usd, net, base, quote, limit):
            return True
        if quote_exposed[s] and _refuses(legs, quote[s], leg.quote_usd, net, base, quote, limit):
            return True
    return False
