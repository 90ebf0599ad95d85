"""Prometheus exposition of the bridge's state: a custom collector, read at scrape time.

Nothing is counted twice: the collector turns one consistent ``BridgeState.metrics()`` copy into metric
families on each scrape. Base units (seconds, USD), counters end in ``_total``, latency buckets start at 1 µs.
Every family is emitted on every scrape, empty until something happened, so dashboards and alerts can name
them from the first scrape on. ``promtool check metrics`` passes on the output (tests/test_prometheus.py).
The full list, with labels, is in docs/OBSERVABILITY.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from services.bridge.latency import BUCKETS_S
from services.bridge.state import BridgeState, Metrics

_LE = [floatToGoString(b) for b in BUCKETS_S] + ["+Inf"]

# The bridge itself is not one of its own event sources; its counters (events, sink writes and drops) come
# from this callable when the bridge passes one.
OwnCounters = Callable[[], dict[str, int]]


class BridgeCollector(Collector):
    def __init__(self, state: BridgeState, own_counters: OwnCounters | None = None) -> None:
        self.state = state
        self.own_counters = own_counters

    def collect(self) -> Iterator[Metric]:
        m = self.state.metrics()
        yield from self._trading(m)
        yield from self._latency(m)
        yield from self._feeds(m)
        yield from self._risk_state(m)
        yield from self._carry(m)
        yield from self._services(m)

    def _trading(self, m: Metrics) -> Iterator[Metric]:
        quotes = CounterMetricFamily("draizer_quotes", "Quotes parsed by each venue's feed.", labels=["venue"])
        for venue, n in m.quotes.items():
            quotes.add_metric([venue], n)
        yield quotes

        opps = CounterMetricFamily("draizer_opportunities", "Opportunities found by the detector.", labels=["strategy"])
        for strategy, n in m.opportunities.items():
            opps.add_metric([strategy], n)
        yield opps

        decisions = CounterMetricFamily(
            "draizer_risk_decisions", "Risk decisions, by decision and reason.", labels=["decision", "reason"]
        )
        for (decision, reason), n in m.decisions.items():
            decisions.add_metric([decision, reason], n)
        yield decisions

        orders = CounterMetricFamily(
            "draizer_orders", "Orders by venue and the status the venue reported.", labels=["venue", "status"]
        )
        for (venue, status), n in m.orders.items():
            orders.add_metric([venue, status], n)
        yield orders

        fills = CounterMetricFamily("draizer_fills", "Fills by venue.", labels=["venue"])
        for venue, n in m.fills.items():
            fills.add_metric([venue], n)
        yield fills

        executions = CounterMetricFamily(
            "draizer_executions", "Executions (both legs settled) by outcome.", labels=["outcome"]
        )
        for outcome, n in m.executions.items():
            executions.add_metric([outcome], n)
        yield executions

        yield GaugeMetricFamily("draizer_pnl_usd", "Realized PnL net of fees, in USD.", value=m.pnl_usd)
        yield CounterMetricFamily("draizer_fees_usd", "Fees paid, in USD.", value=m.fees_usd)

        spreads = GaugeMetricFamily(
            "draizer_market_spread_bps",
            "Best gross cross-venue spread per symbol, (bid on one venue - ask on another) / mid, in bps, "
            "before fees; positive: the venues cross.",
            labels=["symbol"],
        )
        for symbol, bps in m.spreads_bps.items():
            spreads.add_metric([symbol], bps)
        yield spreads

    def _latency(self, m: Metrics) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            "draizer_stage_latency_seconds",
            "Latency of each pipeline stage, from message stamps and service heartbeats.",
            labels=["stage"],
            unit="seconds",
        )
        for stage, s in m.stages.items():
            latency.add_metric([stage], list(zip(_LE, s.buckets, strict=True)), s.sum_s)
        yield latency

    def _feeds(self, m: Metrics) -> Iterator[Metric]:
        def counter(name: str, doc: str, attr: str) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=["venue"])
            for venue, f in m.feeds.items():
                family.add_metric([venue], getattr(f, attr))
            return family

        def gauge(name: str, doc: str, attr: str) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=["venue"])
            for venue, f in m.feeds.items():
                family.add_metric([venue], getattr(f, attr))
            return family

        yield counter("draizer_feed_messages", "WebSocket messages (frames) each venue's feed received.", "messages")
        yield counter(
            "draizer_feed_gaps", "Order-book sequence gaps (each one discards the book and re-snapshots).", "gaps"
        )
        yield counter(
            "draizer_feed_resyncs", "Order books re-synchronised from a snapshot after a gap or a cross.", "resyncs"
        )
        yield counter(
            "draizer_feed_connects",
            "WebSocket connections opened: the first per shard, every reconnect, every roll-over successor.",
            "connects",
        )
        yield counter("draizer_feed_stalls", "Connections dropped and reopened for carrying no data.", "stalls")
        yield counter("draizer_feed_rolls", "Planned connection roll-overs (max age or serverShutdown).", "rolls")
        yield counter("draizer_feed_resubscribes", "Stale channels resubscribed.", "resubscribes")
        bad = CounterMetricFamily(
            "draizer_feed_bad_input",
            "Bad or redundant input each feed counted and dropped, by kind.",
            labels=["venue", "kind"],
        )
        for venue, f in m.feeds.items():
            for kind, n in f.bad_input.items():
                bad.add_metric([venue, kind], n)
        yield bad
        yield gauge(
            "draizer_feed_stale_symbols", "Symbols with a channel silent past stale_after_s right now.", "stale_symbols"
        )
        yield gauge("draizer_feed_books_live", "Order books in sync.", "books_live")
        yield gauge("draizer_feed_connections", "Shards with a live WebSocket connection.", "connections")
        yield gauge(
            "draizer_feed_heartbeat_age_seconds",
            "Seconds since the feed's last heartbeat reached the bridge.",
            "heartbeat_age_s",
        )

    def _risk_state(self, m: Metrics) -> Iterator[Metric]:
        halted = GaugeMetricFamily("draizer_risk_halted", "1 while risk's kill switch is engaged (nothing trades).")
        if m.halted is not None:
            halted.add_metric([], m.halted)
        yield halted
        breakers = GaugeMetricFamily(
            "draizer_risk_breaker_open", "1 while a risk circuit breaker is open (tripped).", labels=["breaker"]
        )
        for name, value in m.breakers.items():
            breakers.add_metric([name], value)
        yield breakers

    def _carry(self, m: Metrics) -> Iterator[Metric]:
        # Funding can be paid as well as received: one counter per direction, so neither ever goes down.
        funding = CounterMetricFamily(
            "draizer_funding_usd",
            "Funding booked on each perpetual venue this run, in USD, by direction (received, paid); "
            "net = received - paid.",
            labels=["venue", "direction"],
        )
        for (venue, direction), usd in m.funding_usd.items():
            funding.add_metric([venue, direction], usd)
        yield funding
        payments = CounterMetricFamily(
            "draizer_funding_payments", "Funding settlements booked on each perpetual venue.", labels=["venue"]
        )
        for venue, n in m.funding_payments.items():
            payments.add_metric([venue], n)
        yield payments
        yield GaugeMetricFamily("draizer_carry_open", "Spot-perpetual carries open now.", value=m.carries_open)
        yield CounterMetricFamily("draizer_carry_closed", "Carries closed this run.", value=m.carries_closed)
        yield GaugeMetricFamily(
            "draizer_carry_notional_usd",
            "Open carries' size (the perpetual leg) at the latest mark or mid price, in USD.",
            value=m.carry_notional_usd,
        )

    def _services(self, m: Metrics) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "draizer_service_up", "1 while the service heartbeats in state RUNNING.", labels=["service"]
        )
        age = GaugeMetricFamily(
            "draizer_service_heartbeat_age_seconds", "Seconds since the service's last heartbeat.", labels=["service"]
        )
        counts = CounterMetricFamily(
            "draizer_service_count",
            "Each service's own cumulative counters, by counter name.",
            labels=["service", "name"],
        )
        values = GaugeMetricFamily(
            "draizer_service_value", "Each service's own gauges, by gauge name.", labels=["service", "name"]
        )
        for service, sm in m.services.items():
            up.add_metric([service], 1.0 if sm.up else 0.0)
            if sm.heartbeat_age_s >= 0:
                age.add_metric([service], sm.heartbeat_age_s)
            for name, n in sm.counters.items():
                counts.add_metric([service, name], n)
            for name, v in sm.gauges.items():
                values.add_metric([service, name], v)
        if self.own_counters is not None:
            up.add_metric(["bridge"], 1.0)  # it is answering this scrape
            age.add_metric(["bridge"], 0.0)
            for name, n in self.own_counters().items():
                counts.add_metric(["bridge", name], n)
        yield up
        yield age
        yield counts
        yield values


def start_metrics_server(
    state: BridgeState, host: str, port: int, own_counters: OwnCounters | None = None
) -> tuple[WSGIServer, int]:
    """Serve /metrics on a daemon thread; returns the server (``shutdown()`` it) and the bound port."""
    # Private registry: none of the default's process/platform collectors; no collect() at registration.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(state, own_counters))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_port)
