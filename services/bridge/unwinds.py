"""Where an execution's PnL goes in the run's split, and why an unwound one had to be unwound.

Every execution's PnL before fees (``pnl_usd + fees_usd``) falls in one bucket by its outcome: *filled* (the legs
filled as planned), *unwind* (legs filled unevenly and the excess was reversed or completed: unwound, hedged,
orphaned — what getting flat cost) or *other* (funding payments; missed, rejected and aborted executions move
nothing). With the fees apart, the buckets add up to the run's PnL.

An unwind has one cause, read from the planned legs that fell short of their quantity (``LegFill.status`` is the
order's final state as the venue reported it), first match wins:

- ``rejected``: the venue refused a leg (REJECTED: an error answer, a throttle, a balance check);
- ``no_answer``: a leg's state stayed unknown (no answer, nothing found when queried);
- ``book_moved``: a leg filled nothing at its limit (EXPIRED, or CANCELED as MEXC ends an IOC order): the price
  the opportunity saw was gone when the order arrived;
- ``stale_depth``: a leg filled part of its quantity at its limit: the price was there, with less behind it than
  the book showed;
- ``other``: every leg filled in full and the execution was unwound all the same (a correction overshot).

With the leg's quote age at detection (the opportunity's, when the bridge saw it) the report can say how old the
price was that the market had moved away from.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from shared.messages import (
    OUTCOME_FILLED,
    OUTCOME_HEDGED,
    OUTCOME_ORPHANED,
    OUTCOME_PARTIAL,
    OUTCOME_UNWOUND,
    ROLE_LEG,
    Execution,
    LegFill,
)

FILLED = "filled"
UNWIND = "unwind"
OTHER = "other"
BUCKETS = (FILLED, UNWIND, OTHER)  # PnlSplit's order
FILLED_OUTCOMES = frozenset({OUTCOME_FILLED, OUTCOME_PARTIAL})
UNWIND_OUTCOMES = frozenset({OUTCOME_UNWOUND, OUTCOME_HEDGED, OUTCOME_ORPHANED})

REJECTED = "rejected"
NO_ANSWER = "no_answer"
BOOK_MOVED = "book_moved"
STALE_DEPTH = "stale_depth"
CAUSES = (BOOK_MOVED, STALE_DEPTH, REJECTED, NO_ANSWER, OTHER)  # the order reports list them in
CAUSE_WORDS = {
    BOOK_MOVED: "book moved before the order arrived",
    STALE_DEPTH: "stale depth (less at the price than the book showed)",
    REJECTED: "rejected by the venue",
    NO_ANSWER: "no answer from the venue",
    OTHER: "other",
}


def bucket(outcome: str) -> str:
    """FILLED, UNWIND or OTHER: which part of the PnL split an execution with this outcome counts in."""
    if outcome in FILLED_OUTCOMES:
        return FILLED
    return UNWIND if outcome in UNWIND_OUTCOMES else OTHER


def _qty(text: str) -> Decimal:
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _short(leg: LegFill) -> bool:
    return _qty(leg.filled_qty) < _qty(leg.qty)


def classify(exe: Execution, quote_ages_ns: Sequence[int] | None = None) -> tuple[str, int | None]:
    """Why ``exe`` (an unwind) was unwound, and the quote age (ns, at detection) of the leg that decided it: None
    when the opportunity's ages are not known. ``quote_ages_ns[i]`` belongs to planned leg ``i``."""
    short = [leg for leg in exe.legs if leg.role == ROLE_LEG and _short(leg)]

    def age(leg: LegFill) -> int | None:
        ok = quote_ages_ns is not None and 0 <= leg.leg < len(quote_ages_ns)
        return quote_ages_ns[leg.leg] if ok else None  # type: ignore[index]

    for cause, test in (
        (REJECTED, lambda leg: leg.status == "REJECTED"),
        (NO_ANSWER, lambda leg: leg.status == "UNKNOWN"),
        (BOOK_MOVED, lambda leg: _qty(leg.filled_qty) == 0),
        (STALE_DEPTH, lambda leg: True),  # short, with something filled
    ):
        found = next((leg for leg in short if test(leg)), None)
        if found is not None:
            return cause, age(found)
    return OTHER, None
