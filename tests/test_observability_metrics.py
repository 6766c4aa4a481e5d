"""/metrics of a running `inventory serve`, scraped and parsed with
prometheus_client's parser: counters move as requests, retries and sweeps
happen, requests refused before GraphQL runs (401, 413, ...) included."""
from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .observability_support import post, receive_with_forced_retry, setup_stock
from .support import ApiServer, auth_headers

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


@pytest.fixture(scope="module")
def private_api(pg_base_url, tmp_path_factory):
    """A server alone on its own database: the shared test database has other
    servers whose sweepers could expire this test's reservation first (as they
    should), which would leave this process's sweeper counters unmoved."""
    from inventory.db import migrate

    from .conftest import create_database

    url = create_database(pg_base_url, "inventory_metrics")
    migrate.upgrade(url)
    server = ApiServer(url, tmp_path_factory.mktemp("metrics") / "api.log").start()
    yield server, url
    server.stop()


def test_metrics_move(private_api):
    api_server, database_url = private_api
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
    for pool in ("read", "write"):  # each: size 10 + overflow 5
        assert value(after, "inventory_db_pool_capacity", pool=pool) == 15
        assert value(after, "inventory_db_pool_connections_in_use", pool=pool) >= 0
        assert ("inventory_db_pool_waiting", (("pool", pool),)) in after
    assert ("inventory_subscriptions_active", ()) in after
    assert ("inventory_tx_retries_exhausted_total", ()) in after
    for status in ("ACTIVE", "COMMITTED", "RELEASED", "EXPIRED"):
        assert ("inventory_reservations", (("status", status),)) in after
    assert ("inventory_reservations_overdue", ()) in after


class LowReadRate(ApiServer):
    """One read per credential, then RATE_LIMITED for minutes."""

    def __init__(self, database_url, log_path):
        super().__init__(database_url, log_path, INVENTORY_RATE_READ="0.01",
                         INVENTORY_RATE_READ_BURST="1")


def test_refused_requests_are_counted(database_url, tmp_path):
    """Requests the HTTP gate refuses never reach GraphQL, yet count (operation
    "refused", outcome "rejected", their code); a rate-limited operation counts
    under its own operation."""
    server = LowReadRate(database_url, tmp_path / "api.log").start()
    try:
        url = server.url
        before = scrape(url)
        query = {"query": LEVEL, "variables": {"s": "none", "c": "none"}}
        refused = [
            httpx.post(url + "/graphql", json=query, timeout=10),  # no credential
            httpx.post(url + "/graphql", json=query, timeout=10,
                       headers={"Authorization": "Bearer inv_not-a-key"}),
            httpx.post(url + "/graphql", timeout=10, content=b"{" + b" " * 300_000 + b"}",
                       headers={"Content-Type": "application/json"}),  # over 256 KiB
            httpx.post(url + "/graphql", timeout=10, content=b"{not json",
                       headers={**auth_headers(url), "Content-Type": "application/json"}),
        ]
        assert [r.status_code for r in refused] == [401, 401, 413, 400]
        assert refused[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # Parsed, then refused by strawberry: counted under its operation.
        mutation_over_get = httpx.get(url + "/graphql", timeout=10, headers=auth_headers(url),
                                      params={"query": 'mutation { createLocation(input: '
                                                       '{code: "X", name: "X"}) { __typename } }'})
        assert mutation_over_get.status_code == 400, mutation_over_get.text
        post(url, LEVEL, {"s": "none", "c": "none"})  # the credential's one read
        limited = httpx.post(url + "/graphql", json=query, headers=auth_headers(url), timeout=10)
        assert limited.status_code == 429, limited.text
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        after = scrape(url)
    finally:
        server.stop()

    def moved(name: str, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    req, err = "inventory_graphql_requests_total", "inventory_graphql_errors_total"
    assert moved(req, operation="refused", outcome="rejected") == 4
    assert moved(err, operation="refused", code="UNAUTHENTICATED") == 2
    assert moved(err, operation="refused", code="PAYLOAD_TOO_LARGE") == 1
    assert moved(err, operation="refused", code="BAD_REQUEST") == 1
    assert moved(req, operation="mutation createLocation", outcome="rejected") == 1
    assert moved(err, operation="mutation createLocation", code="BAD_REQUEST") == 1
    assert moved(req, operation="query stockLevel", outcome="ok") == 1
    assert moved(req, operation="query stockLevel", outcome="rejected") == 1
    assert moved(err, operation="query stockLevel", code="RATE_LIMITED") == 1
    # Refusals are not operations: the duration histogram is of operations only.
    assert moved("inventory_graphql_request_duration_seconds_count", operation="refused") == 0
    # Scrapes and probes are not /graphql requests and count nowhere.
    assert sum(v for (name, _), v in after.items() if name == req) == sum(
        v for (name, _), v in before.items() if name == req) + 7


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
        assert value(samples, "inventory_db_pool_capacity", pool="write") == 30
