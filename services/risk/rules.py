"""Inline risk rules: pure logic, no sockets, no I/O. Every opportunity gets a decision with a reason.

``RiskBook.check`` runs the rules cheapest and most decisive first; the first that refuses names the
decision. An approval reserves what the execution will use — a concurrency slot, its (venue, symbol) pairs,
its balances and its orders in the rate budget — until the executor's ``Execution`` for the same
opportunity releases them (or 120 s pass with none: the slot is freed and counted as expired).

Executable strategies: cross_exchange OPEN (two legs), triangular OPEN (three legs on one venue, all sent at
once) and the funding carry: OPEN [spot BUY, perp SELL] (or the perp SELL alone, unhedged) and CLOSE
[spot SELL, perp BUY reduce-only], which the executor sizes to what the carry holds.

A leg on a perpetual venue needs no base balance, it needs margin: ``services/risk/perp.py`` (leverage,
margin, liquidation distance, carry notional); every OPEN then passes ``services/risk/delta.py`` (net delta).

What a CLOSE passes through. It reduces risk, so the rules about taking new risk do not apply to it: the loss
breaker, the daily loss limit, max_notional (a lowered cap must not trap a position), the spot balance of its
SELL (the executor sells what the carry holds, not the detector's estimate), the perpetual rules and the net
delta. A quant wants the carry unwound after a loss, not held. It still needs the order path to be sound: the
kill switch (an operator's halt stops every order), the failure breaker (orphans and failed legs mean the
order path is broken; a two-leg close could orphan too), staleness (its limits are priced on that data), the
concurrency slots (one order per (venue, symbol) at once) and the venues' state, blocks and rate budget.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal, InvalidOperation

from services.risk.breakers import Breakers
from services.risk.delta import NET_DELTA, net_delta_refuses
from services.risk.perp import (
    CARRY_NOTIONAL,
    MAINT_MARGIN_RATE,
    PERP_LEVERAGE,
    PERP_LIQUIDATION,
    PERP_MARGIN,
    PERP_MARGIN_UNKNOWN,
    PerpRules,
)
from services.risk.state import MS_PER_DAY, NS_PER_DAY, Reservation, RiskState, utc_day
from services.risk.venues import VenueBook
from shared.config import Risk
from shared.messages import (
    ACTION_CLOSE,
    ACTION_OPEN,
    SIDE_BUY,
    STRATEGY_CROSS,
    STRATEGY_FUNDING,
    STRATEGY_TRIANGULAR,
    Alert,
    Execution,
    Opportunity,
    VenueState,
)
from shared.registry import Registry
from shared.runtime.clock import SYSTEM_CLOCK, Clock
from shared.venues.kinds import kind_of

log = logging.getLogger(__name__)

APPROVED = "approved"
KILL_SWITCH = "kill_switch"
BREAKER_LOSS = "breaker_loss"
BREAKER_FAILURE = "breaker_failure"
NOT_EXECUTABLE = "strategy_not_executable"
TOO_OLD = "opportunity_too_old"
MAX_NOTIONAL = "max_notional"
MAX_DAILY_LOSS = "max_daily_loss"
MAX_CONCURRENT = "max_concurrent"
SYMBOL_IN_FLIGHT = "symbol_in_flight"
BALANCE_UNKNOWN = "balance_unknown"
VENUE_BLOCKED = "venue_blocked"
RATE_BUDGET = "rate_budget"
INSUFFICIENT_BALANCE = "insufficient_balance"
EXECUTOR_UNAVAILABLE = "executor_unavailable"  # approved, but the hand-off to the executor failed

# In check order; EXECUTOR_UNAVAILABLE is booked after the decision, when the intent cannot be handed over.
REASONS = (
    APPROVED,
    KILL_SWITCH,
    BREAKER_LOSS,
    BREAKER_FAILURE,
    NOT_EXECUTABLE,
    TOO_OLD,
    MAX_NOTIONAL,
    MAX_DAILY_LOSS,
    MAX_CONCURRENT,
    SYMBOL_IN_FLIGHT,
    BALANCE_UNKNOWN,
    VENUE_BLOCKED,
    RATE_BUDGET,
    INSUFFICIENT_BALANCE,
    PERP_MARGIN_UNKNOWN,
    PERP_LEVERAGE,
    CARRY_NOTIONAL,
    PERP_MARGIN,
    PERP_LIQUIDATION,
    NET_DELTA,
    EXECUTOR_UNAVAILABLE,
)

EXECUTABLE = frozenset({
    (STRATEGY_CROSS, ACTION_OPEN),
    (STRATEGY_TRIANGULAR, ACTION_OPEN),
    (STRATEGY_FUNDING, ACTION_OPEN),
    (STRATEGY_FUNDING, ACTION_CLOSE),
})

IN_FLIGHT_TIMEOUT_MS = 120_000  # an approval with no Execution after this long is released (and counted)
ALERT_DAILY_LOSS = "daily_loss"

_Needs = dict[tuple[int, str], float]
_Orders = dict[int, int]
_NONE: tuple[_Needs, _Orders] = ({}, {})  # a refusal reserves nothing (shared, never written to)


class RiskBook:
    """Limits, today's realized PnL, positions, breakers and the executions in flight."""

    def __init__(self, limits: Risk, registry: Registry, state: RiskState | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.limits = limits
        self.clock = clock
        self.state = state if state is not None else RiskState(day=utc_day(clock.time_ns()))
        self.breakers = Breakers(limits, self.state.breakers)
        self.venues = VenueBook()
        self.venue_names = registry.venue_names
        self.symbol_names = registry.symbol_names
        self._base = tuple(s.base for s in registry.symbols)
        self._quote = tuple(s.quote for s in registry.symbols)
        self._buy_cost = tuple(1.0 + v.taker_fee for v in registry.venues)  # quote spent per unit of notional
        self._perp = tuple(kind_of(v.kind).perp for v in registry.venues)
        usd = {a for a, is_usd in zip(registry.assets, registry.is_usd_asset, strict=True) if is_usd}
        self._base_exposed = tuple(b not in usd for b in self._base)  # carries a net delta (not a USD asset)
        self._quote_exposed = tuple(q not in usd for q in self._quote)
        self._max_net_delta = limits.max_net_delta_usd
        self.perp_rules = PerpRules(limits, tuple(v.taker_fee for v in registry.venues))
        self._max_age_ns = limits.max_opportunity_age_ms * 1_000_000
        self._max_notional = limits.max_notional_usd
        self._loss_floor = -limits.max_daily_loss_usd
        self._max_concurrent = limits.max_concurrent
        self._headroom = limits.balance_headroom
        self.decisions: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.n_in_flight_expired = 0
        self.n_foreign_executions = 0
        self.dirty = False  # state changed since the last write (approvals are written lazily)
        # A kill for this process's life only (end-of-run wind-down): the next start trades again.
        self.session_kill = False
        self._busy: dict[tuple[int, int], int] = {}
        for reservation in self.state.in_flight.values():  # reloaded after a restart: hold them again
            self._hold(reservation)

    @property
    def session_pnl_usd(self) -> float:
        """Booked in this run (``state.session``), across restarts of risk; the day's figure may span runs."""
        return self.state.session_pnl_usd

    def begin_session(self, session: str) -> bool:
        """Continue the state's run figures when they are ``session``'s (a restart within the run), else start
        them from zero. True when continued."""
        st = self.state
        if st.session == session:
            return True
        st.session, st.session_pnl_usd = session, 0.0
        self.dirty = True
        return False

    # ----- the decision path
    def check(self, opp: Opportunity, now_ns: int, wall_ns: int) -> str:
        """The first rule that refuses ``opp``, or APPROVED. ``now_ns`` monotonic, ``wall_ns`` wall clock."""
        return self._evaluate(opp, now_ns, wall_ns)[0]

    def decide(self, opp: Opportunity, now_ns: int, wall_ns: int) -> str:
        """Check, and on approval reserve the slot, the symbols, the balances and the orders."""
        reason, needs, orders = self._evaluate(opp, now_ns, wall_ns)
        self.decisions[reason] += 1
        if reason is APPROVED:
            slots = [(leg.venue, leg.symbol) for leg in opp.legs]
            amounts = [(key[0], key[1], amount) for key, amount in needs.items()]
            reservation = Reservation(wall_ns // 1_000_000, tuple(slots), tuple(amounts), tuple(orders.items()))
            self.state.in_flight[opp.id] = reservation
            busy = self._busy
            for slot in slots:
                busy[slot] = busy.get(slot, 0) + 1
            venues = self.venues
            venues.reserve(reservation.amounts)
            for venue, n in orders.items():
                venues.count_orders(venue, n, now_ns)
            self.dirty = True
        return reason

    def _evaluate(self, opp: Opportunity, now_ns: int, wall_ns: int) -> tuple[str, _Needs, _Orders]:
        # The rules in REASONS order; the first that refuses names the decision. Written for speed (this runs
        # inline on every opportunity): limits read once into attributes, no helper calls on the common path.
        st = self.state
        if st.kill or self.session_kill:
            return KILL_SWITCH, *_NONE
        wall_ms = wall_ns // 1_000_000
        br = st.breakers
        closing = opp.action == ACTION_CLOSE  # a carry's unwind: what it passes through, see the docstring
        if br.loss_until_ms > wall_ms and not closing:
            return BREAKER_LOSS, *_NONE
        failed_until = br.carry_failure_until_ms if opp.strategy == STRATEGY_FUNDING else br.failure_until_ms
        if br.orphan or failed_until > wall_ms:  # the orphan latch halts everything; failures, their own path
            return BREAKER_FAILURE, *_NONE
        if (opp.strategy, opp.action) not in EXECUTABLE:
            return NOT_EXECUTABLE, *_NONE
        if now_ns - opp.detected_ns > self._max_age_ns:
            return TOO_OLD, *_NONE
        if opp.notional_usd > self._max_notional and not closing:
            return MAX_NOTIONAL, *_NONE
        if wall_ns // NS_PER_DAY != st.day:
            self.roll_day(wall_ns)
        if st.daily_pnl_usd <= self._loss_floor and not closing:
            return MAX_DAILY_LOSS, *_NONE
        if len(st.in_flight) >= self._max_concurrent:
            return MAX_CONCURRENT, *_NONE
        legs = opp.legs
        busy = self._busy
        for leg in legs:
            if (leg.venue, leg.symbol) in busy:
                return SYMBOL_IN_FLIGHT, *_NONE
        venues = self.venues
        states = venues.states
        for leg in legs:
            if leg.venue not in states:
                return BALANCE_UNKNOWN, *_NONE
        for leg in legs:
            vs = states[leg.venue]
            if not vs.reachable or vs.blocked_until_ms > wall_ms:
                return VENUE_BLOCKED, *_NONE
        orders: _Orders = {}
        needs: _Needs = {}
        base, quote, buy_cost, perp = self._base, self._quote, self._buy_cost, self._perp
        has_perp = False
        for leg in legs:
            v = leg.venue
            orders[v] = orders.get(v, 0) + 1
            if perp[v]:  # margin, not a balance: the perpetual rules below
                has_perp = True
                continue
            if closing:  # sells what the carry holds (the executor sizes it), reserves nothing but its slot
                continue
            if leg.side == SIDE_BUY:
                key = (v, quote[leg.symbol])
                amount = leg.qty * leg.price * buy_cost[v]
            else:
                key = (v, base[leg.symbol])
                amount = leg.qty
            needs[key] = needs.get(key, 0.0) + amount
        for v, n in orders.items():
            if not venues.rate_fits(v, n, now_ns):
                return RATE_BUDGET, *_NONE
        if not venues.balance_fits(needs, self._headroom):
            return INSUFFICIENT_BALANCE, *_NONE
        if closing:
            return APPROVED, needs, orders
        if has_perp:
            refused = self.perp_rules.check(legs, perp, venues.perp, venues.reserved, needs)
            if refused is not None:
                return refused, *_NONE
        if net_delta_refuses(legs, venues.net, base, quote, self._base_exposed, self._quote_exposed,
                             self._max_net_delta):
            return NET_DELTA, *_NONE
        return APPROVED, needs, orders

    # ----- reservations
    def _hold(self, r: Reservation) -> None:
        for slot in r.slots:
            self._busy[slot] = self._busy.get(slot, 0) + 1
        self.venues.reserve(r.amounts)

    def _release(self, opportunity_id: int) -> Reservation | None:
        r = self.state.in_flight.pop(opportunity_id, None)
        if r is None:
            return None
        for slot in r.slots:
            left = self._busy[slot] - 1
            if left:
                self._busy[slot] = left
            else:
                del self._busy[slot]
        self.venues.release(r.amounts)
        self.dirty = True
        return r

    def handoff_failed(self, opp: Opportunity) -> None:
        """The approved intent never reached the executor: free what it held and book the real reason."""
        if self._release(opp.id) is not None:
            self.decisions[APPROVED] -= 1
            self.decisions[EXECUTOR_UNAVAILABLE] += 1

    def expire(self, wall_ns: int) -> list[int]:
        """Release approvals older than IN_FLIGHT_TIMEOUT_MS with no Execution; their opportunity ids."""
        oldest = wall_ns // 1_000_000 - IN_FLIGHT_TIMEOUT_MS
        stale = [oid for oid, r in self.state.in_flight.items() if r.wall_ms < oldest]
        for oid in stale:
            self._release(oid)
            self.n_in_flight_expired += 1
        return stale

    # ----- what the executor reports
    def on_venue_state(self, vs: VenueState, now_ns: int) -> None:
        """The executor's account view; ``now_ns`` (monotonic) is when it arrived."""
        self.venues.update(vs, now_ns)

    def on_execution(self, exe: Execution, wall_ns: int) -> list[Alert]:
        """Book an execution: release its reservation, add its PnL and deltas, feed the breakers. The alerts
        it raises. Executions risk did not approve (e.g. finished by the executor after a restart) are booked
        all the same: the money moved."""
        self.roll_day(wall_ns)
        if self._release(exe.opportunity_id) is None:
            self.n_foreign_executions += 1
        st = self.state
        alerts: list[Alert] = []
        if math.isfinite(exe.pnl_usd):
            before = st.daily_pnl_usd
            st.daily_pnl_usd += exe.pnl_usd
            st.session_pnl_usd += exe.pnl_usd
            limit = -self.limits.max_daily_loss_usd
            if before > limit >= st.daily_pnl_usd:
                alerts.append(Alert(
                    source="risk",
                    kind=ALERT_DAILY_LOSS,
                    message=f"daily loss limit reached: {st.daily_pnl_usd:.2f} USD today (limit {limit:.2f}); "
                    "nothing trades until the next UTC day",
                    until_ms=(st.day + 1) * MS_PER_DAY,
                    ts_ns=self.clock.time_ns(),
                ))
        else:
            log.error("execution %d carries a non-finite pnl (%r); not booked", exe.opportunity_id, exe.pnl_usd)
        for d in exe.deltas:
            venue = self.venue_names[d.venue] if 0 <= d.venue < len(self.venue_names) else f"venue{d.venue}"
            try:
                delta = Decimal(d.delta)
            except InvalidOperation:
                delta = Decimal("NaN")
            if not delta.is_finite():
                log.error("execution %d: delta %s/%s is not a number (%r); not booked",
                          exe.opportunity_id, venue, d.asset, d.delta)
                continue
            assets = st.positions.setdefault(venue, {})
            assets[d.asset] = assets.get(d.asset, Decimal(0)) + delta
        alerts.extend(self.breakers.record(exe, wall_ns // 1_000_000))
        self.dirty = True
        return alerts

    def on_alert(self, alert: Alert) -> Alert | None:
        """Another service reports an orphan (e.g. the executor's reconciliation): latch the halt too."""
        if alert.source == "risk" or alert.kind != "orphan":
            return None
        self.dirty = True
        return self.breakers.latch_orphan(f"{alert.source}: {alert.message}")

    # ----- operator and clock
    def kill(self, reason: str, persist: bool = True) -> Alert:
        """Halt until resume. ``persist=False``: for this process's life only (a wind-down before a stop must
        not leave the next start halted); an operator's kill persists across restarts."""
        if persist:
            self.state.kill = True
            self.dirty = True
        else:
            self.session_kill = True
        until = "resume" if persist else "resume or a restart"
        return Alert(source="risk", kind=KILL_SWITCH, message=f"kill switch engaged ({reason}): nothing trades "
                     f"until {until}; the executor cancels every open order", until_ms=0, ts_ns=self.clock.time_ns())

    def resume(self) -> list[str]:
        """Clear the kill switch and every breaker (operator override); what was cleared."""
        cleared = ["kill_switch"] if self.state.kill or self.session_kill else []
        self.state.kill = self.session_kill = False
        cleared += [f"breaker_{name}" for name in self.breakers.reset()]
        self.dirty = True
        return cleared

    def roll_day(self, wall_ns: int) -> bool:
        if self.state.roll_day(wall_ns):
            self.venues.new_day()
            self.dirty = True
            return True
        return False

    def halted(self, wall_ns: int) -> bool:
        """Nothing can be approved: kill switch or an open breaker."""
        wall_ms = wall_ns // 1_000_000
        return (self.state.kill or self.session_kill or self.breakers.loss_open(wall_ms)
                or self.breakers.failure_open(wall_ms))

    def status(self, wall_ns: int) -> dict[str, object]:
        st = self.state
        lim = self.limits
        wall_ms = wall_ns // 1_000_000
        return {
            "kill_switch": st.kill or self.session_kill,
            "kill_persisted": st.kill,
            "halted": self.halted(wall_ns),
            "day": st.day,
            "daily_pnl_usd": st.daily_pnl_usd,
            "session": st.session,
            "session_pnl_usd": st.session_pnl_usd,
            "executor_session": st.executor_session,
            "executor_seq": st.executor_seq,
            "positions": {v: {a: format(q, "f") for a, q in assets.items()} for v, assets in st.positions.items()},
            "breakers": self.breakers.status(wall_ms),
            "in_flight": len(st.in_flight),
            "reservations": {
                str(oid): {
                    "age_ms": wall_ms - r.wall_ms,
                    "slots": [f"{self.venue_names[v]}:{self.symbol_names[s]}" for v, s in r.slots],
                    "amounts": [[self.venue_names[v], a, x] for v, a, x in r.amounts],
                    "orders": {self.venue_names[v]: n for v, n in r.orders},
                }
                for oid, r in st.in_flight.items()
            },
            "venues": {
                self.venue_names[v]: {
                    "reachable": vs.reachable,
                    "balances": dict(vs.balances),
                    "weight_1m": vs.weight_1m,
                    "weight_limit_1m": vs.weight_limit_1m,
                    "orders_10s": vs.orders_10s,
                    "orders_limit_10s": vs.orders_limit_10s,
                    "orders_1d": vs.orders_1d,
                    "orders_limit_1d": vs.orders_limit_1d,
                    "blocked_until_ms": vs.blocked_until_ms,
                    "open_orders": vs.open_orders,
                    "age_s": (self.clock.monotonic_ns() - self.venues.received_ns[v]) / 1e9,
                    **({"perp": self._perp_status(v)} if self._perp[v] else {}),
                }
                for v, vs in self.venues.states.items()
            },
            "perp_limits": {
                "max_leverage": lim.max_leverage,
                "max_margin_ratio": lim.max_margin_ratio,
                "min_liquidation_distance": lim.min_liquidation_distance,
                "max_net_delta_usd": lim.max_net_delta_usd,
                "max_carry_notional_usd": lim.max_carry_notional_usd,
                "maint_margin_rate": MAINT_MARGIN_RATE,
            },
            "net_delta": {a: x for a, x in self.venues.net.items() if x},
            "carry_notional_usd": sum(view.open_notional for view in self.venues.perp.values()),
            "budget": self.venues.status(),
            "decisions": dict(self.decisions),
            "in_flight_expired": self.n_in_flight_expired,
        }

    def _perp_status(self, venue: int) -> dict[str, object] | None:
        """A perpetual venue's margin as risk reads it; None until the executor has stated it."""
        view = self.venues.perp.get(venue)
        if view is None:
            return None
        return {
            "available": view.available,
            "margin_balance": view.margin_balance,
            "maint_margin": view.maint_margin,
            "margin_ratio": view.maint_margin / view.margin_balance if view.margin_balance > 0 else None,
            "leverage": {self._symbol_name(s): lev for s, lev in view.leverage.items()},
            "open_notional": view.open_notional,
            "positions": {
                self._symbol_name(s): {"size": p.size, "entry": p.entry, "mark": p.mark,
                                       "liquidation": p.liquidation, "margin": p.margin}
                for s, p in view.positions.items()
            },
        }

    def _symbol_name(self, symbol: int) -> str:
        names = self.symbol_names
        return names[symbol] if 0 <= symbol < len(names) else f"symbol{symbol}"
