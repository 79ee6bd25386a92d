"""The Grafana dashboard only charts metrics the gateway really exports."""

import json
import re
from pathlib import Path

from gateway.metrics import GatewayMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deployments" / "grafana" / "gateway-dashboard.json"


def test_dashboard_metrics_exist():
    exported = {m.name for m in GatewayMetrics().registry.collect()}
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    used = {re.sub(r"_(total|bucket)$", "", name) for e in exprs for name in re.findall(r"gateway_[a-z_]+", e)}
    missing = {name for name in used if name not in exported}
    assert not missing, missing
