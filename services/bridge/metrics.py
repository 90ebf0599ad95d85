"""Prometheus exposition of the bridge's state: a custom collector, read at scrape time.

Nothing is counted twice: the collector turns one consistent ``BridgeState.metrics()`` copy into metric
families on each scrape. Base units (seconds, USD), counters end in ``_total``, latency buckets start at 1 µs.
"""

from __future__ import annotations

from collections.abc import Iterator
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

from services.bridge.state import BUCKETS_S, BridgeState

_LE = [floatToGoString(b) for b in BUCKETS_S] + ["+Inf"]


class BridgeCollector(Collector):
    def __init__(self, state: BridgeState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        m = self.state.metrics()

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

        latency = HistogramMetricFamily(
            "draizer_stage_latency_seconds",
            "Latency of each pipeline stage, from message stamps and service heartbeats.",
            labels=["stage"],
            unit="seconds",
        )
        for stage, s in m.stages.items():
            latency.add_metric([stage], list(zip(_LE, s.buckets, strict=True)), s.sum_s)
        yield latency

        up = GaugeMetricFamily(
            "draizer_service_up", "1 while the service heartbeats in state RUNNING.", labels=["service"]
        )
        counters = CounterMetricFamily(
            "draizer_service_counter", "Each service's own cumulative counters.", labels=["service", "name"]
        )
        gauges = GaugeMetricFamily("draizer_service_gauge", "Each service's own gauges.", labels=["service", "name"])
        for service, sm in m.services.items():
            up.add_metric([service], 1.0 if sm.up else 0.0)
            for name, n in sm.counters.items():
                counters.add_metric([service, name], n)
            for name, v in sm.gauges.items():
                gauges.add_metric([service, name], v)
        yield up
        yield counters
        yield gauges


def start_metrics_server(state: BridgeState, host: str, port: int) -> tuple[WSGIServer, int]:
    """Serve /metrics on a daemon thread; returns the server (``shutdown()`` it) and the bound port."""
    # Private registry: none of the default's process/platform collectors; no collect() at registration.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(state))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_port)
