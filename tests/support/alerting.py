"""The operator's alerting files in deploy/: the Prometheus rules, their promtool unit
tests and the Grafana dashboard, and the metric names each of them uses."""

from __future__ import annotations

import json
import re

import yaml

from tests.support.processes import ROOT

RULES = ROOT / "deploy" / "prometheus" / "petcam-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "petcam-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "petcam-dashboard.json"
PROMTOOL = "/usr/bin/promtool"

# A PromQL metric name: an identifier not followed by "(" (a function) and not a label
# name inside {...} or by (...); petcam's own are all we name, so look for those.
_NAME = re.compile(r"\bpetcam_[A-Za-z0-9_]+\b")


def rules() -> list[dict]:
    """Every rule of every group in the rules file."""
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs(board: dict | None = None) -> list[str]:
    """Every panel query and the template variables' queries."""
    board = board or dashboard()
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else str(query))
    return exprs


def metric_names(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in _NAME.findall(expr)}


def used_metric_names() -> set[str]:
    """Names the rules and the dashboard query (histograms by their _bucket series)."""
    return metric_names([r["expr"] for r in rules()] + dashboard_exprs())


def exported_names(families) -> set[str]:
    """Series names a /metrics page offers (prometheus_client parser families): each
    sample's name, and a histogram's _bucket/_sum/_count even before its first sample."""
    names: set[str] = set()
    for family in families:
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        elif family.type == "counter":
            names.add(family.name + "_total")
        else:
            names.add(family.name)
    return names
