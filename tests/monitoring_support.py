"""Helpers of the monitoring tests: the Grafana dashboard's queries."""
from __future__ import annotations

import json

from .support import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "inventory.json"


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels
            for target in panel.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard query with Grafana's range variable replaced."""
    return expr.replace("$__rate_interval", "1m")
