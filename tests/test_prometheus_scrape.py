"""A real Prometheus (Debian's package) scrapes `inventory serve --workers 2`
with the shipped scrape configuration and alert rules: the request counter
that moved and the latency histogram are queried through Prometheus's HTTP
API, every alert rule evaluates against the real series without error and
every query of the Grafana dashboard runs."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from .monitoring_support import as_promql, dashboard_queries
from .support import free_port

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus missing: run scripts/bootstrap as root")

LEVEL = "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) { onHand } }"
COUNTER = 'sum(inventory_graphql_requests_total{operation="query stockLevel",outcome="ok"})'
REQUESTS = 30


def wait_until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Prometheus:
    """`prometheus` on a free loopback port with its own data folder, running
    deploy/prometheus/prometheus.yml with the target and intervals replaced."""

    def __init__(self, folder: Path, target: str):
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "inventory"]
        job["static_configs"] = [{"targets": [target]}]
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Prometheus":
        self.log = open(self.folder / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, "Prometheus to be ready")
        return self

    def _ready(self) -> bool:
        assert self.process.poll() is None, (self.folder / "prometheus.log").read_text()[-3000:]
        try:
            return httpx.get(self.url + "/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.process.terminate()  # Prometheus shuts down cleanly on SIGTERM
        self.process.wait(30)
        self.log.close()

    def api(self, path: str, **params) -> object:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def value(self, query: str) -> float | None:
        """The single value of an instant query, None when it has no result."""
        result = self.api("query", query=query)["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def api_two_workers(start_api_server):
    with start_api_server("two-workers", workers=2) as server:
        yield server


async def test_prometheus_scrapes_the_service(api_two_workers, graphql, stocked_level,
                                              tmp_path):
    url = api_two_workers.url
    client = graphql(api_two_workers)
    sku, code = await stocked_level(1, client=client)
    prometheus = Prometheus(tmp_path, url.removeprefix("http://")).start()
    try:
        # The series exists (one request) and is scraped before the measured
        # requests: a series first seen after all of them shows no increase,
        # and its rate() stays 0.
        await client.gql(LEVEL, {"s": sku, "c": code})
        before = wait_until(lambda: prometheus.value(COUNTER), "the counter's first scrape")
        for _ in range(REQUESTS):
            # A new connection per request, so the kernel spreads them over both workers.
            await client.gql(LEVEL, {"s": sku, "c": code}, headers={"connection": "close"})
        # The counter moved by exactly the requests made, whichever worker was scraped.
        wait_until(lambda: prometheus.value(COUNTER) == before + REQUESTS or None,
                   f"{COUNTER} to reach {before + REQUESTS}")
        assert prometheus.value(
            'sum(inventory_graphql_request_duration_seconds_count{operation="query stockLevel"})'
        ) == before + REQUESTS
        # The histogram: every observation falls in some bucket, quantiles are finite.
        buckets = prometheus.api("query", query=(
            'inventory_graphql_request_duration_seconds_bucket{operation="query stockLevel"}'
        ))["result"]
        assert {b["metric"]["le"] for b in buckets} >= {"0.01", "0.1", "1.0", "+Inf"}
        inf = [float(b["value"][1]) for b in buckets if b["metric"]["le"] == "+Inf"]
        assert inf == [before + REQUESTS]
        p99 = prometheus.value('histogram_quantile(0.99, sum by (le) ('
                               'inventory_graphql_request_duration_seconds_bucket'
                               '{operation="query stockLevel"}))')
        assert 0 < p99 <= 10.0
        wait_until(lambda: (prometheus.value(
            'sum(rate(inventory_graphql_requests_total{operation="query stockLevel"}[1m]))'
        ) or 0) > 0 or None, "a request rate")

        # The rules are loaded and evaluate against the real series without error.
        def evaluated_rules():
            groups = prometheus.api("rules")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            if rules and all(rule.get("lastEvaluation", "").startswith("0001") is False
                             and rule.get("evaluationTime", 0) > 0 for rule in rules):
                return rules
            return None

        rules = wait_until(evaluated_rules, "every rule to be evaluated")
        expected = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
        assert {r["name"] for r in rules} == {
            r["alert"] for g in expected for r in g["rules"]}
        assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
        assert prometheus.value("inventory_ready") == 1

        # Every query of the Grafana dashboard runs on the real series.
        for _title, expr in dashboard_queries():
            prometheus.api("query", query=as_promql(expr))  # status "success", else fails
        rate = dashboard_queries()[0][1]
        assert "inventory_graphql_requests_total" in rate
        assert prometheus.api("query", query=as_promql(rate))["result"], rate
    finally:
        prometheus.stop()
