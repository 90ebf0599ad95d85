"""The executor's books for the whole run (the "session"), kept across restarts of its process.

A session is one run (``shared/runtime/session.py``: ``draizer run`` names it in ``DRAIZER_SESSION``, which
supervisord hands to every program it restarts; a pipeline started otherwise falls back to the parent process).
The settlement at the end of a paper run compares these books with the venues' balance changes since the
simulator started and with risk's session PnL, so they must count every execution of the run, not only those of
the current process.

Every execution the executor books gets the session's next sequence number (1, 2, 3…), and its books (PnL and
exact decimal deltas) ride in its journal ``done`` record, which is on disk before the Execution is published.
Replaying the journal therefore rebuilds the session's books exactly: decimal text is exact and a float survives
a JSON round trip bit for bit. Compaction drops the ``done`` records' books, so it first writes a ``books``
checkpoint with the totals and the most recent executions (``order_journal.py``); a replay takes the checkpoint
*instead of* whatever it summed before it, so a compacted file beside the files it replaces counts nothing twice.

The numbered recent executions also let risk hear what PUB/SUB lost while either process restarted: the executor
answers ``booked`` with the executions after a number (``since``), and risk books those it never heard of
(``services/risk/catchup.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from services.executor.ledger import DeltaRecord, Ledger, decimal_text

RECENT_KEPT = 4096  # numbered executions kept for risk's catch-up: many minutes of trading, a few MB at most
CHECKPOINT_RECENT = 1024  # of those, how many a compaction checkpoint carries (a second restart in a row)
LIST_LIMIT = 500  # executions per ``booked`` answer: a catch-up asks again for the rest


def _delta(venue: object, asset: object, amount: object) -> DeltaRecord:
    """One (venue, asset, decimal text) checked to be a finite decimal: a record never carries garbage on."""
    try:
        d = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"delta {amount!r} is not a decimal") from None
    if not d.is_finite():
        raise ValueError(f"delta {amount!r} is not finite")
    return int(str(venue)), str(asset), decimal_text(d)


class Booked(NamedTuple):
    """One booked execution as the session numbers it."""

    seq: int
    opportunity_id: int
    outcome: str
    pnl_usd: float
    deltas: tuple[DeltaRecord, ...]  # (venue, asset, exact decimal text)

    def to_wire(self) -> list[Any]:
        """Compact form for the checkpoint and the ``booked`` answer."""
        return [self.seq, self.opportunity_id, self.outcome, self.pnl_usd, [list(d) for d in self.deltas]]

    @classmethod
    def from_wire(cls, r: Sequence[Any]) -> Booked:
        """Inverse of ``to_wire``; ValueError, TypeError or KeyError when malformed."""
        seq, opp, outcome, pnl, deltas = r
        return cls(int(seq), int(opp), str(outcome), _finite(pnl), tuple(_delta(*d) for d in deltas))

    def done_fields(self, session: str) -> dict[str, Any]:
        """What the journal's ``done`` record carries besides its id and outcome."""
        return {"session": session, "seq": self.seq, "pnl_usd": self.pnl_usd, "deltas": [list(d) for d in self.deltas]}

    @classmethod
    def from_done(cls, r: Mapping[str, Any]) -> Booked:
        return cls(int(r["seq"]), int(r["opportunity_id"]), str(r["outcome"]), _finite(r["pnl_usd"]),
                   tuple(_delta(*d) for d in r["deltas"]))


def _finite(x: object) -> float:
    value = float(x)  # type: ignore[arg-type]  # a str or number from JSON; anything else raises TypeError
    if not math.isfinite(value):
        raise ValueError(f"pnl {x!r} is not finite")
    return value


class SessionBooks:
    """Totals of every execution booked in one session, and the most recent ones by number."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.seq = 0  # the number of the last execution booked: how many there were
        self.ledger = Ledger()
        self.pnl_usd = 0.0
        self.outcomes: dict[str, int] = {}
        self.recent: deque[Booked] = deque(maxlen=RECENT_KEPT)
        self._unpublished: set[int] = set()  # booked, Execution not yet published: not listed yet

    def next(self, opportunity_id: int, outcome: str, pnl_usd: float, ledger: Ledger) -> Booked:
        """The next execution's record, not yet added: the journal writes it first. A non-finite PnL counts as
        0, as risk refuses to book it."""
        pnl = pnl_usd if math.isfinite(pnl_usd) else 0.0
        return Booked(self.seq + 1, opportunity_id, outcome, pnl, tuple(ledger.to_records()))

    def add(self, b: Booked, *, published: bool = True) -> None:
        """Take one execution into the totals. ``published=False``: its Execution is not out yet, so it is not
        listed until ``published`` (risk would otherwise book it from the list before hearing it: no harm, but
        it would count as lost)."""
        self.seq = b.seq
        for venue, asset, amount in b.deltas:
            self.ledger.add(venue, asset, Decimal(amount))
        self.pnl_usd += b.pnl_usd
        self.outcomes[b.outcome] = self.outcomes.get(b.outcome, 0) + 1
        self.recent.append(b)
        if not published:
            self._unpublished.add(b.seq)

    def published(self, seq: int) -> None:
        self._unpublished.discard(seq)

    def since(self, after: int, limit: int = LIST_LIMIT) -> dict[str, Any]:
        """The ``booked`` answer: the published executions numbered after ``after`` (at most ``limit``, oldest
        first), the latest number listed, and the first one still kept (older ones are only in the totals)."""
        latest = min(self._unpublished, default=self.seq + 1) - 1
        newer: list[Booked] = []
        for b in reversed(self.recent):  # the asker is usually a few behind: walk back only that far
            if b.seq <= after:
                break
            if b.seq <= latest:
                newer.append(b)
        newer.reverse()
        first = self.recent[0].seq if self.recent else self.seq + 1
        return {"session": self.session, "seq": latest, "first": min(first, latest + 1),
                "executions": [b.to_wire() for b in newer[:limit]]}

    def checkpoint(self) -> dict[str, Any]:
        """The ``books`` record a compaction writes: the totals so far and the latest numbered executions."""
        recent = list(self.recent)[-CHECKPOINT_RECENT:]
        return {"t": "books", "session": self.session, "seq": self.seq, "pnl_usd": self.pnl_usd,
                "outcomes": dict(self.outcomes), "deltas": [list(r) for r in self.ledger.to_records()],
                "recent": [b.to_wire() for b in recent]}

    @classmethod
    def from_checkpoint(cls, r: Mapping[str, Any]) -> SessionBooks:
        """Inverse of ``checkpoint``; ValueError, TypeError or KeyError when malformed."""
        books = cls(str(r["session"]))
        books.seq = int(r["seq"])
        books.pnl_usd = float(r["pnl_usd"])
        books.outcomes = {str(k): int(v) for k, v in dict(r["outcomes"]).items()}
        books.ledger = Ledger.from_records(_delta(*d) for d in r["deltas"])
        books.recent.extend(Booked.from_wire(x) for x in r["recent"])
        return books


def resumed(found: SessionBooks | None, session: str) -> SessionBooks:
    """The books a starting executor continues: the journal's when they are this session's, else empty ones (a
    new run starts from zero, as the simulator's balances do)."""
    if found is not None and found.session == session:
        return found
    return SessionBooks(session)
