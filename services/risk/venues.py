"""What risk knows of each venue account: the executor's last ``VenueState`` (balances, rate usage, blocks)
plus what risk itself approved since — the VenueState lags, so approvals are counted and reserved here.

Balances are floats on this side: risk compares an estimate (price x quantity x fee) with a share of the free
balance, it never sends an amount anywhere; the exact decimal text stays in the VenueState for status. So are
the session deltas (summed over venues per asset into ``net``, the net delta) and a perpetual venue's margin
account (``perp``: parsed once here, read per opportunity by ``services.risk.perp``).
"""

from __future__ import annotations

import logging
import math
from collections import deque

from services.risk.perp import PerpView
from shared.messages import VenueState

log = logging.getLogger(__name__)

WINDOW_10S_NS = 10_000_000_000
WINDOW_1M_NS = 60_000_000_000
PRUNE_AT = 4096  # approvals kept per venue before the 10 s window is pruned regardless


class VenueBook:
    def __init__(self) -> None:
        self.states: dict[int, VenueState] = {}
        # When risk received each VenueState (monotonic): its counts are aged from here, whatever clock the
        # sender stamped ts_ns with.
        self.received_ns: dict[int, int] = {}
        self.free: dict[int, dict[str, float]] = {}
        self.reserved: dict[tuple[int, str], float] = {}  # (venue, asset) -> what in-flight approvals may spend
        self._holders: dict[tuple[int, str], int] = {}  # reservations per key: at 0 the float sum is dropped
        self._recent: dict[int, deque[tuple[int, int]]] = {}  # venue -> (monotonic ns, orders) approved
        self._recent_total: dict[int, int] = {}
        self.day_orders: dict[int, int] = {}  # orders approved this UTC day, per venue
        self.malformed_balances = 0  # malformed amounts of any kind: balances, session deltas, perp margin
        self.deltas: dict[int, dict[str, float]] = {}  # venue -> asset -> the session's delta there
        self.net: dict[str, float] = {}  # asset -> summed over venues: draizer's net delta
        self.perp: dict[int, PerpView] = {}  # perpetual venues whose margin account is known

    # ----- updates
    def update(self, vs: VenueState, now_ns: int) -> None:
        free: dict[str, float] = {}
        for asset, text in vs.balances:
            try:
                free[asset] = float(text)
            except ValueError:
                self.malformed_balances += 1  # missing counts as zero: refuse rather than overspend
        self.states[vs.venue] = vs
        self.received_ns[vs.venue] = now_ns
        self.free[vs.venue] = free
        if vs.session_deltas or vs.venue in self.deltas:
            self._update_deltas(vs)
        if vs.perp is not None:
            view = PerpView.parse(vs.perp)
            if view is not None:
                self.perp[vs.venue] = view
                return
            self.malformed_balances += 1
            log.error("venue %d: malformed perpetual margin state %r: its margin is unknown", vs.venue, vs.perp)
        self.perp.pop(vs.venue, None)

    def _update_deltas(self, vs: VenueState) -> None:
        deltas: dict[str, float] = {}
        for asset, text in vs.session_deltas:
            try:
                x = float(text)
            except ValueError:
                x = math.nan
            if not math.isfinite(x):
                self.malformed_balances += 1  # left out: zero is the one neutral guess
                log.error("venue %d: session delta %s is not a number (%r)", vs.venue, asset, text)
                continue
            deltas[asset] = deltas.get(asset, 0.0) + x
        self.deltas[vs.venue] = deltas
        net: dict[str, float] = {}
        for per_venue in self.deltas.values():
            for asset, x in per_venue.items():
                net[asset] = net.get(asset, 0.0) + x
        self.net = net

    def count_orders(self, venue: int, n: int, now_ns: int) -> None:
        recent = self._recent.get(venue)
        if recent is None:
            recent = self._recent[venue] = deque()
        elif len(recent) >= PRUNE_AT:  # rate_fits prunes only when a limit is near: bound the memory here
            self.own_orders_10s(venue, now_ns)
        recent.append((now_ns, n))
        self._recent_total[venue] = self._recent_total.get(venue, 0) + n
        self.day_orders[venue] = self.day_orders.get(venue, 0) + n

    def new_day(self) -> None:
        self.day_orders.clear()

    def reserve(self, amounts: tuple[tuple[int, str, float], ...]) -> None:
        for venue, asset, amount in amounts:
            key = (venue, asset)
            self.reserved[key] = self.reserved.get(key, 0.0) + amount
            self._holders[key] = self._holders.get(key, 0) + 1

    def release(self, amounts: tuple[tuple[int, str, float], ...]) -> None:
        for venue, asset, amount in amounts:
            key = (venue, asset)
            left = self._holders.get(key, 0) - 1
            if left <= 0:  # exactly nothing reserved: no float residue from add-then-subtract
                self._holders.pop(key, None)
                self.reserved.pop(key, None)
            else:
                self._holders[key] = left
                self.reserved[key] -= amount

    # ----- checks (the decision path)
    def blocked(self, venue: int, wall_ms: int) -> bool:
        vs = self.states[venue]
        return not vs.reachable or vs.blocked_until_ms > wall_ms

    def own_orders_10s(self, venue: int, now_ns: int) -> int:
        recent = self._recent.get(venue)
        if not recent:
            return 0
        oldest = now_ns - WINDOW_10S_NS
        total = self._recent_total[venue]
        while recent and recent[0][0] <= oldest:
            total -= recent.popleft()[1]
        self._recent_total[venue] = total
        return total

    def rate_fits(self, venue: int, orders: int, now_ns: int) -> bool:
        """``orders`` more orders fit the venue's 10 s and daily order budgets and its weight budget.

        Used = the larger of the venue's own count (VenueState, from its headers) and risk's count of what
        it approved: each lags the other. A VenueState count whose window has fully passed no longer
        applies (a quiet executor must not block a venue forever on an old number). A limit of 0: none.
        Risk's own 10 s count is pruned only when its unpruned total (an upper bound) would not fit: on the
        common path the check is two additions."""
        vs = self.states[venue]
        age = now_ns - self.received_ns[venue]
        limit = vs.orders_limit_10s
        if limit:
            used = vs.orders_10s if age < WINDOW_10S_NS else 0
            own = self._recent_total.get(venue, 0)
            if own + orders > limit:
                own = self.own_orders_10s(venue, now_ns)
            if (used if used > own else own) + orders > limit:
                return False
        limit = vs.orders_limit_1d
        if limit:
            own = self.day_orders.get(venue, 0)
            if (vs.orders_1d if vs.orders_1d > own else own) + orders > limit:
                return False
        if vs.weight_limit_1m:  # one order costs one unit of weight (Binance) or one request (MEXC)
            used = vs.weight_1m if age < WINDOW_1M_NS else 0
            if used + orders > vs.weight_limit_1m:
                return False
        return True

    def balance_fits(self, needs: dict[tuple[int, str], float], headroom: float) -> bool:
        """Every (venue, asset) need, plus what approvals in flight reserved, within headroom x free."""
        for key, need in needs.items():
            free = self.free[key[0]].get(key[1], 0.0)
            if need + self.reserved.get(key, 0.0) > headroom * free:
                return False
        return True

    def status(self) -> dict[str, object]:
        return {
            "reserved": {f"{v}:{a}": amount for (v, a), amount in self.reserved.items()},
            "orders_today": dict(self.day_orders),
            "malformed_balances": self.malformed_balances,
        }
