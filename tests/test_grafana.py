"""deploy/grafana and deploy/prometheus: valid provisioning, a dashboard with a fixed uid whose every query is
valid PromQL (promtool parses it) and names only metrics the exporter has. That those metrics appear in a
real scrape of the running pipeline is checked in tests/test_observability_e2e.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.bridge.metrics import start_metrics_server
from services.bridge.state import BridgeState
from shared.config import default_config_path, load_config
from tests.test_bridge_state import SERVICES, registry
from tests.test_metrics import feed_pipeline, scrape

REPO = Path(__file__).resolve().parents[1]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "draizer.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "draizer.yml"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"

# Grafana's own variables, as Grafana would substitute them before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
METRIC = re.compile(r"\bdraizer_[a-z0-9_]+")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, rows included."""
    out = []
    for panel in dash["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            out += [(inner["title"], t["expr"]) for t in inner.get("targets", [])]
    return out


def as_prometheus_sees_it(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def metric_names(exprs: list[str]) -> set[str]:
    return {m for e in exprs for m in METRIC.findall(e)}


def exposed_names(text: str) -> set[str]:
    """Every sample name an exposition can carry (counters with _total, histograms with _bucket/_sum/_count),
    including families with no sample yet."""
    names: set[str] = set()
    for f in text_string_to_metric_families(text):
        names |= {s.name for s in f.samples}
        if f.type == "counter":
            names.add(f.name + "_total")
        elif f.type == "histogram":
            names |= {f.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(f.name)
    return names


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run `bash scripts/system-deps.sh` (Debian package prometheus)")
    return found


def test_dashboard_has_its_fixed_uid_and_complete_panels() -> None:
    dash = dashboard()
    assert dash["uid"] == "draizer-main"
    assert dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    datasource_uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    for panel in dash["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    # the list: quotes/s per venue, detected vs executed, spread by symbol, tick->order latency,
    # rejections by reason, PnL, feed staleness, breaker/kill state
    for wanted in ("quotes/s per venue", "detected vs executed", "spread by symbol", "tick → order latency",
                   "rejections by reason", "pnl", "feed staleness", "kill switch", "breakers"):
        assert wanted in titles, wanted


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule: a syntax error in any panel fails here."""
    exprs = [as_prometheus_sees_it(e) for _title, e in queries(dashboard())]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"draizer:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_metric_the_dashboard_names_is_exported() -> None:
    state = BridgeState(registry(), SERVICES)
    feed_pipeline(state)
    server, port = start_metrics_server(state, "127.0.0.1", 0, own_counters=lambda: {"events": 1})
    try:
        exposed = exposed_names(scrape(port))
    finally:
        server.shutdown()
        server.server_close()
    used = metric_names([e for _t, e in queries(dashboard())])
    assert used, "no draizer_* metric found in the dashboard"
    assert used - exposed == set()


def test_provisioning_files_are_what_grafana_expects() -> None:
    ds = yaml.safe_load(DATASOURCES.read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy" and source["url"].startswith("http")
    assert source["uid"] == "draizer-prometheus"

    providers = yaml.safe_load(PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_prometheus_scrape_config_is_valid_and_targets_the_bridge_exporter() -> None:
    proc = subprocess.run([promtool(), "check", "config", str(PROMETHEUS)], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = cfg["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    sinks = load_config(default_config_path()).sinks
    assert job["static_configs"][0]["targets"] == [f"{sinks.prometheus_host}:{sinks.prometheus_port}"]
