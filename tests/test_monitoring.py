"""Monitoring as code: the alert rules pass `promtool check rules` and their
unit tests (`promtool test rules`), a typo or a weakened threshold is caught,
every alert has tests that fire and stay quiet, names only metrics the service
exports and links its runbook entry."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .monitoring_support import as_promql, dashboard_queries

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RUNBOOK = ROOT / "docs" / "observability.md"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: run scripts/bootstrap as root (Debian prometheus)")

# What operators expect to be alerted on, each by at least one rule.
REQUIRED_ALERTS = {
    "InventoryHighErrorRatio", "InventoryHighLatencyP99", "InventoryRetryStorm",
    "InventoryRetriesExhausted", "InventoryDbPoolSaturated", "InventoryLoadShedding",
    "InventorySubscriptionOverflow", "InventorySweeperLagging", "InventoryLedgerAuditFailed",
    "InventoryNotReady",
}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_rules_pass_promtool_check():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@needs_promtool
def test_rule_unit_tests_pass():
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_scrape_config_is_valid_and_loads_the_rules():
    result = promtool("check", "config", CONFIG.name)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == [RULES.name]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "inventory"]
    assert job.get("metrics_path", "/metrics") == "/metrics"


@needs_promtool
@pytest.mark.parametrize("typo, message", [
    # A missing parenthesis, a misspelt function, a duration without a unit.
    ('[5m]))\n            / sum(rate(inventory_graphql_requests_total[5m]))',
     "[5m])\n            / sum(rate(inventory_graphql_requests_total[5m]))"),
    ("sum(rate(inventory_tx_retries_total", "sum(rat(inventory_tx_retries_total"),
    ("for: 10m", "for: 10"),
])
def test_a_rule_with_a_typo_fails_check_rules(tmp_path, typo, message):
    original = RULES.read_text()
    assert typo in original
    broken = tmp_path / "alerts.yml"
    broken.write_text(original.replace(typo, message, 1))
    result = promtool("check", "rules", str(broken), cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr


@needs_promtool
def test_a_weakened_threshold_fails_the_rule_tests(tmp_path):
    """The unit tests pin behaviour: an error-ratio threshold raised tenfold
    no longer fires where the tests expect it to."""
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    original = RULES.read_text()
    assert "[5m])) > 0.01\n        for: 5m" in original
    (tmp_path / RULES.name).write_text(
        original.replace("[5m])) > 0.01\n        for: 5m", "[5m])) > 0.1\n        for: 5m", 1))
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "alertname: InventoryHighErrorRatio" in result.stdout + result.stderr


def test_required_alerts_exist_with_severity_and_runbook():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    assert REQUIRED_ALERTS <= set(names), REQUIRED_ALERTS - set(names)
    runbook = RUNBOOK.read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "warn"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/observability.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, (
            f"{rule['alert']}: no heading `### {rule['alert']}` in {RUNBOOK.name}")


def test_every_alert_is_tested_firing_and_quiet():
    cases: dict[str, dict[str, int]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            seen = cases.setdefault(case["alertname"], {"firing": 0, "quiet": 0})
            seen["firing" if case.get("exp_alerts") else "quiet"] += 1
    for rule in alert_rules():
        seen = cases.get(rule["alert"], {})
        assert seen.get("firing") and seen.get("quiet"), f"{rule['alert']}: {seen}"


def exported_metric_names() -> set[str]:
    """Sample names the service's metrics produce (from their descriptions)."""
    from prometheus_client import Counter, Gauge, Histogram

    from inventory.observability import metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, (Counter, Gauge, Histogram)):
            for family in value.describe():
                names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def test_rules_use_only_metrics_the_service_exports():
    exported = exported_metric_names()
    assert "inventory_graphql_requests_total" in exported
    used = set()
    for rule in alert_rules():
        used.update(re.findall(r"\b(inventory_[a-z0-9_]+)", rule["expr"]))
    assert used, "no inventory metrics in the rules"
    assert used <= exported, f"not exported by the service: {sorted(used - exported)}"


# --------------------------------------------------------------------------- Grafana dashboard

# What the dashboard shows, each by the metric a panel must query.
DASHBOARD_TOPICS = {
    "request rate": "inventory_graphql_requests_total",
    "errors": "inventory_graphql_errors_total",
    "latency": "inventory_graphql_request_duration_seconds_bucket",
    "retries": "inventory_tx_retries_total",
    "pool": "inventory_db_pool_connections_in_use",
    "subscriptions": "inventory_subscriptions_active",
    "reservations by status": "inventory_reservations",
    "flash batches": "inventory_reservation_batches_total",
}


def test_dashboard_covers_every_topic_with_exported_metrics():
    queries = dashboard_queries()
    used = {name for _, expr in queries for name in re.findall(r"\b(inventory_[a-z0-9_]+)", expr)}
    for topic, metric in DASHBOARD_TOPICS.items():
        assert metric in used, f"no panel shows {topic} ({metric})"
    exported = exported_metric_names()
    assert used <= exported, f"not exported by the service: {sorted(used - exported)}"


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path):
    """Each query as a recording rule: `promtool check rules` parses it."""
    rules = [{"record": f"dashboard:query_{n}", "expr": as_promql(expr)}
             for n, (_, expr) in enumerate(dashboard_queries())]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(
        {"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
