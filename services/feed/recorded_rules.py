"""The venue's symbol rules kept in a recording's header, so a backtest applies the filters that held then.

Read at record time from the venue's public exchangeInfo (no key) with the venue's own request builder and
parser, the ones the executor uses (``OrderFormat.build_exchange_info`` / ``parse_exchange_info``), over the
executor's HTTP client. One request, bounded by a timeout: a recording never waits on it for long, and a venue
that does not answer is recorded with no rules (``{}``) and a warning naming the venue and the endpoint.

In the header: ``{config symbol name: {"tick", "step", "min_qty", "min_notional": exact decimal text,
"price_decimals", "qty_decimals": int}}``, keyed as the executor keys them (the config's symbol names).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.config import Venue
from shared.errors import ProtocolError, VenueError
from shared.http.client import HttpPool
from shared.venues import order_format
from shared.venues.common import SymbolRules
from shared.venues.spot_rest import plain_decimal

log = logging.getLogger(__name__)

RULES_TIMEOUT_S = 5.0  # connect, request and answer together
DECIMAL_FIELDS = ("tick", "step", "min_qty", "min_notional")
INT_FIELDS = ("price_decimals", "qty_decimals")


def decimal_text(d: Decimal) -> str:
    """Exact, fixed-point text: ``0.00000001``, never ``1E-8``; ``10``, never ``1E+1``."""
    return format(plain_decimal(d), "f")


def rules_to_header(rules: Mapping[str, SymbolRules]) -> dict[str, dict[str, Any]]:
    return {
        name: {"tick": decimal_text(r.tick), "step": decimal_text(r.step), "min_qty": decimal_text(r.min_qty),
               "min_notional": decimal_text(r.min_notional), "price_decimals": r.price_decimals,
               "qty_decimals": r.qty_decimals}
        for name, r in sorted(rules.items())
    }


def rules_from_header(header: Mapping[str, Any], where: str = "recording") -> dict[str, SymbolRules]:
    """A recording header's rules as the executor's ``SymbolRules`` ({} for a v1 file or none recorded); a bad
    entry is a ValueError naming the symbol and the field."""
    out: dict[str, SymbolRules] = {}
    for name, entry in (header.get("rules") or {}).items():
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: rules[{name}] is not an object")
        values: dict[str, Decimal] = {}
        for field in DECIMAL_FIELDS:
            text = entry.get(field)
            try:
                value = Decimal(text) if isinstance(text, str) else Decimal("NaN")
            except InvalidOperation:
                value = Decimal("NaN")
            if not value.is_finite() or value < 0:
                raise ValueError(f"{where}: rules[{name}].{field} is {text!r}, not a non-negative decimal text")
            values[field] = value
        digits: dict[str, int] = {}
        for field in INT_FIELDS:
            n = entry.get(field)
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"{where}: rules[{name}].{field} is {n!r}, not a whole number >= 0")
            digits[field] = n
        out[name] = SymbolRules(name, values["tick"], values["step"], values["min_qty"], values["min_notional"],
                                digits["price_decimals"], digits["qty_decimals"])
    return out


async def fetch_rules(
    venue: Venue, symbols: Sequence[str], timeout_s: float = RULES_TIMEOUT_S
) -> dict[str, SymbolRules]:
    """``symbols``' rules (config names) from the venue's exchangeInfo; {} with a warning when it cannot be read.
    A symbol the venue does not list is left out, with a warning."""
    try:
        fmt = order_format(venue.kind)
    except ValueError as exc:
        log.warning("%s: no symbol rules recorded (%s)", venue.name, exc)
        return {}
    req = fmt.build_exchange_info(list(symbols))
    endpoint = f"{req.method} {venue.rest_url.rstrip('/')}{req.path.partition('?')[0]}"
    pool = HttpPool(venue.rest_url, size=1, connect_timeout_s=timeout_s)
    try:
        resp = await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), timeout_s)
        if not 200 <= resp.status < 300:
            code, msg = fmt.parse_error(resp.status, resp.body)
            raise VenueError(code, msg, resp.status)
        parsed = fmt.parse_exchange_info(resp.body)
    except TimeoutError:
        log.warning("%s: no symbol rules recorded: %s did not answer within %gs", venue.name, endpoint, timeout_s)
        return {}
    except (OSError, ProtocolError, VenueError, ValueError) as exc:
        log.warning("%s: no symbol rules recorded: %s: %s", venue.name, endpoint, str(exc) or type(exc).__name__)
        return {}
    finally:
        await pool.close()
    missing = [s for s in symbols if s not in parsed]
    if missing:
        log.warning("%s: %s lists no rules for %s; recorded without them", venue.name, endpoint, missing)
    return {s: parsed[s] for s in symbols if s in parsed}
