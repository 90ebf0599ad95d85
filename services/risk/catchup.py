"""Risk books every execution the executor booked, exactly once, across restarts of either.

Executions reach risk on PUB/SUB, which drops what nobody is subscribed to: those finished while risk restarts,
those a killed executor had not flushed to its socket, those a restarted executor publishes before risk's
subscription has rejoined, and those booked after risk's last state write when risk is killed. So the executor
numbers every execution it books (a sequence per run, in its journal: ``services/executor/session_books.py``) and
lists the recent ones on request (control command ``booked``); risk keeps ``executor_seq``, the number up to
which it has booked everything, in its state file with the PnL, and asks for what follows (once a second, and
when the settlement asks).

Each execution is booked once, whichever way it comes first:

- published first: booked, and its opportunity id noted in ``ahead`` until the listing passes its number;
- listed first (its publication lost, or not read yet): booked, and its id remembered for a minute so a late
  publication of it is dropped.

Executions refused before any order (outcome ``aborted``) are not numbered: they carry no money, and a lost one
only holds its reservation until it expires.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from services.executor.session_books import Booked
from services.risk.rules import RiskBook
from shared.messages import OUTCOME_ABORTED, Alert, AssetDelta, Execution

log = logging.getLogger(__name__)

CAUGHT_KEEP_MS = 60_000  # a publication arrives within milliseconds of its listing, or never
AHEAD_KEEP_MS = 600_000  # a published execution the listing never reaches (an executor that cannot list it)
CAUGHT_UP_NOTE = "booked from the executor's list: risk had not heard of it"


class ListingError(ValueError):
    """A ``booked`` answer that does not say what it must."""


class CatchUp:
    """The bookkeeping of both paths into ``RiskBook.on_execution``; no I/O (the service asks the executor)."""

    def __init__(self, book: RiskBook) -> None:
        self.book = book
        self._caught: dict[int, int] = {}  # opportunity id -> wall ms: booked from a listing, not yet published
        self.n_caught_up = 0  # executions risk would have missed
        self.n_duplicates = 0  # publications of executions a listing had booked already
        self.n_unlisted = 0  # numbers the executor could no longer list (risk was away too long)

    def published(self, exe: Execution, wall_ns: int) -> list[Alert] | None:
        """Book an execution heard on the events socket; None when a listing booked it already."""
        if exe.opportunity_id in self._caught:
            self.n_duplicates += 1
            return None
        alerts = self.book.on_execution(exe, wall_ns)
        if exe.outcome != OUTCOME_ABORTED:  # the executor numbers every other execution: the listing will pass it
            self.book.state.ahead[exe.opportunity_id] = wall_ns // 1_000_000
        return alerts

    def listed(self, data: Mapping[str, Any], wall_ns: int) -> tuple[list[Alert], bool]:
        """Apply one ``booked`` answer (``SessionBooks.since``): book what risk never heard of. The alerts, and
        whether the executor has more to list. ListingError when the answer is malformed (nothing applied)."""
        try:
            session, latest, first = str(data["session"]), int(data["seq"]), int(data["first"])
            listed = [Booked.from_wire(x) for x in data["executions"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ListingError(f"malformed list of booked executions: {exc!r}") from None
        st = self.book.state
        self._follow(session, latest)
        if first > st.executor_seq + 1:
            missed = first - st.executor_seq - 1
            self.n_unlisted += missed
            log.error("the executor lists its executions from #%d only; #%d to #%d are beyond its list: those risk "
                      "did not hear of are not booked", first, st.executor_seq + 1, first - 1)
            st.executor_seq = first - 1
        alerts: list[Alert] = []
        for b in listed:
            if b.seq <= st.executor_seq:
                continue
            if st.ahead.pop(b.opportunity_id, None) is None and b.opportunity_id not in self._caught:
                alerts += self.book.on_execution(_execution(b), wall_ns)
                self._caught[b.opportunity_id] = wall_ns // 1_000_000
                self.n_caught_up += 1
                log.warning("execution %d (#%d, %s, pnl %+.4f USD) booked from the executor's list: risk had not "
                            "heard of it (lost to a restart)", b.opportunity_id, b.seq, b.outcome, b.pnl_usd)
            st.executor_seq = b.seq
        self.book.dirty = True
        return alerts, st.executor_seq < latest

    def _follow(self, session: str, latest: int) -> None:
        """Start over on another run's numbering; never wait for numbers an executor will not reach again."""
        st = self.book.state
        if session != st.executor_session:
            if st.executor_session:
                log.info("the executor numbers executions in a new run (%s); following it from #1", session)
            st.executor_session, st.executor_seq = session, 0
        elif latest < st.executor_seq:
            log.error("the executor's numbering went back from #%d to #%d (its journal lost records?); following "
                      "it from there", st.executor_seq, latest)
            st.executor_seq = latest

    def prune(self, wall_ns: int) -> None:
        """Forget what can no longer matter (run on the clock)."""
        wall_ms = wall_ns // 1_000_000
        self._caught = {k: t for k, t in self._caught.items() if t >= wall_ms - CAUGHT_KEEP_MS}
        ahead = self.book.state.ahead
        stale = [k for k, t in ahead.items() if t < wall_ms - AHEAD_KEEP_MS]
        for k in stale:
            del ahead[k]
        if stale:
            self.book.dirty = True
            log.warning("%d executions heard on the events socket were never listed by the executor", len(stale))


def _execution(b: Booked) -> Execution:
    """What risk books of a listed execution: its id, outcome, PnL and deltas (nothing else is known here)."""
    deltas = tuple(AssetDelta(v, a, d) for v, a, d in b.deltas)
    return Execution(b.opportunity_id, 0, -1, -1, 0.0, 0.0, 0.0, 0.0, 0.0, b.pnl_usd, 0.0, b.outcome, 0, 0, 0, 0, 0,
                     deltas=deltas, note=CAUGHT_UP_NOTE)
