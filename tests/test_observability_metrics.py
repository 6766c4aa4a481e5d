"""/metrics of a running `inventory serve`, scraped and parsed with
prometheus_client's parser: counters move as requests, retries and sweeps happen."""
from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .observability_support import post, receive_with_forced_retry, setup_stock
from .support import ApiServer

RESERVE = """mutation($s: String!, $c: String!, $q: Quantity!) {
  reserveStock(input: {lines: [{sku: $s, locationCode: $c, quantity: $q}], ttlSeconds: 1}) {
    __typename ... on UserError { code } } }"""
LEVEL = "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) { onHand } }"


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move(api_server, database_url):
    url = api_server.url
    sku, code = setup_stock(url, 2)
    before = scrape(url)
    for _ in range(3):
        post(url, LEVEL, {"s": sku, "c": code})
    post(url, RESERVE, {"s": sku, "c": code, "q": 1})   # ok (expires in 1 s)
    post(url, RESERVE, {"s": sku, "c": code, "q": 50})  # INSUFFICIENT_STOCK
    post(url, "{ nope }")                               # rejected by validation
    receive_with_forced_retry(url, database_url, sku, code)
    time.sleep(1.5)  # the reservation expires and the sweeper (every 0.3 s) runs
    after = scrape(url)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    req = "inventory_graphql_requests_total"
    assert moved(req, operation="query stockLevel", outcome="ok") == 3
    assert moved(req, operation="mutation reserveStock", outcome="ok") == 1
    assert moved(req, operation="mutation reserveStock", outcome="user_error") == 1
    assert moved(req, operation="invalid", outcome="rejected") == 1
    assert moved("inventory_graphql_errors_total", operation="mutation reserveStock",
                 code="INSUFFICIENT_STOCK") == 1
    assert moved("inventory_graphql_request_duration_seconds_count",
                 operation="query stockLevel") == 3
    assert moved("inventory_tx_retries_total", sqlstate="40001") >= 1
    assert moved("inventory_tx_total") >= 3
    assert moved("inventory_sweeper_runs_total") >= 2
    assert moved("inventory_sweeper_expired_total") >= 1
    assert value(after, "inventory_sweeper_last_run_timestamp_seconds") > time.time() - 10
    assert value(after, "inventory_db_pool_capacity") == 15  # size 10 + overflow 5
    assert value(after, "inventory_db_pool_connections_in_use") >= 0
    assert ("inventory_db_pool_waiting", ()) in after
    assert ("inventory_subscriptions_active", ()) in after
    assert ("inventory_tx_retries_exhausted_total", ()) in after
    for status in ("ACTIVE", "COMMITTED", "RELEASED", "EXPIRED"):
        assert ("inventory_reservations", (("status", status),)) in after
    assert ("inventory_reservations_overdue", ()) in after


class TwoWorkers(ApiServer):
    extra_args = ("--workers", "2")


@pytest.fixture
def two_workers(database_url, tmp_path):
    server = TwoWorkers(database_url, tmp_path / "api.log").start(timeout=60)
    yield server
    server.stop()


def test_metrics_sum_over_workers(two_workers):
    """Requests land on either worker; any scrape reports the sum over both."""
    url = two_workers.url
    sku, code = setup_stock(url, 1)
    for _ in range(40):
        # A new connection per request so the kernel spreads them over the workers.
        post(url, LEVEL, {"s": sku, "c": code}, headers={"connection": "close"})
    for _ in range(6):
        samples = scrape(url)
        assert value(samples, "inventory_graphql_requests_total",
                     operation="query stockLevel", outcome="ok") == 40
        # Each worker reports its own pool; the scrape sums the live ones.
        assert value(samples, "inventory_db_pool_capacity") == 30
