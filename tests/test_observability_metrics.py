from __future__ import annotations

import asyncio
import time

import pytest

from .support import auth_headers, create_database, receive_with_forced_retry

RESERVE = """mutation($s: String!, $c: String!, $q: Quantity!) {
  reserveStock(input: {lines: [{sku: $s, locationCode: $c, quantity: $q}], ttlSeconds: 1}) {
    __typename ... on UserError { code } ... on Reservation { id } } }"""
LEVEL = "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) { onHand } }"


async def wait_until(condition, what: str, timeout: float = 30, every: float = 0.05):
    """Polls `condition()` (sync) until it is true; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every)


@pytest.fixture(scope="module")
def private_api(pg_base_url, start_api_server):
    """A server alone on its own database: the shared test database has other
    servers whose sweepers could expire this test's reservation first (as they
    should), which would leave this process's sweeper counters unmoved."""
    from inventory.db import migrate

    url = create_database(pg_base_url, "inventory_metrics")
    migrate.upgrade(url)
    with start_api_server("metrics", database_url=url) as server:
        yield server, url


async def test_metrics_count_requests_errors_retries_and_sweeps(
        private_api, graphql, stocked_level, scrape_metrics):
    api_server, database_url = private_api
    client = graphql(api_server)
    sku, code = await stocked_level(2, client=client)
    before = scrape_metrics(api_server)
    for _ in range(3):
        await client.gql(LEVEL, {"s": sku, "c": code})
    made = await client.gql(RESERVE, {"s": sku, "c": code, "q": 1})  # ok (expires in 1 s)
    assert made["reserveStock"]["__typename"] == "Reservation", made
    short = await client.gql(RESERVE, {"s": sku, "c": code, "q": 50})
    assert short["reserveStock"]["code"] == "INSUFFICIENT_STOCK", short
    invalid = await client.raw("{ nope }")                    # rejected by validation
    assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    await receive_with_forced_retry(client, database_url, sku, code)
    # The reservation expires and this server's sweeper (every 0.3 s, the only
    # one on this database) expires it.
    await wait_until(lambda: scrape_metrics(api_server).increase(
        before, "inventory_sweeper_expired_total") >= 1, "the sweeper to expire the reservation")
    after = scrape_metrics(api_server)

    def moved(name, **labels):
        return after.increase(before, name, **labels)

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
    assert moved("inventory_sweeper_runs_total") >= 1
    assert moved("inventory_sweeper_expired_total") == 1
    assert after.value("inventory_sweeper_last_run_timestamp_seconds") > time.time() - 10
    for pool in ("read", "write"):  # each: size 10 + overflow 5
        assert after.value("inventory_db_pool_capacity", pool=pool) == 15
        assert 0 <= after.value("inventory_db_pool_connections_in_use", pool=pool) <= 15
        assert after.value("inventory_db_pool_waiting", pool=pool) >= 0
    assert after.value("inventory_subscriptions_active") == 0
    assert after.value("inventory_tx_retries_exhausted_total") == 0
    # Counted at scrape time but cached (seconds): here only that they are
    # exported (value() fails on a missing sample).
    for status in ("ACTIVE", "COMMITTED", "RELEASED", "EXPIRED"):
        assert after.value("inventory_reservations", status=status) >= 0
    assert after.value("inventory_reservations_overdue") >= 0


async def test_refused_requests_are_counted(start_api_server, graphql, scrape_metrics):
    """Requests the HTTP gate refuses never reach GraphQL, yet count (operation
    "refused", outcome "rejected", their code); a rate-limited operation counts
    under its own operation."""
    # One read per credential, then RATE_LIMITED for minutes.
    with start_api_server("low-read-rate", INVENTORY_RATE_READ="0.01",
                          INVENTORY_RATE_READ_BURST="1") as server:
        url = server.url
        client = graphql(server)
        before = scrape_metrics(server)
        variables = {"s": "none", "c": "none"}
        post = client.client.post
        refused = [
            await client.post(LEVEL, variables, credential=None),  # no credential
            await client.post(LEVEL, variables, credential="inv_not-a-key"),
            await post(url + "/graphql", content=b"{" + b" " * 300_000 + b"}",
                       headers={"Content-Type": "application/json"}),  # over 256 KiB
            await post(url + "/graphql", content=b"{not json",
                       headers={**auth_headers(url), "Content-Type": "application/json"}),
        ]
        assert [r.status_code for r in refused] == [401, 401, 413, 400]
        assert refused[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # Parsed, then refused by strawberry: counted under its operation.
        mutation_over_get = await client.client.get(
            url + "/graphql", headers=auth_headers(url),
            params={"query": 'mutation { createLocation(input: {code: "X", name: "X"}) '
                             '{ __typename } }'})
        assert mutation_over_get.status_code == 400, mutation_over_get.text
        assert await client.gql(LEVEL, variables) == {"stockLevel": None}  # its one read
        limited = await client.post(LEVEL, variables)
        assert limited.status_code == 429, limited.text
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        after = scrape_metrics(server)

    def moved(name: str, **labels):
        return after.increase(before, name, **labels)

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
    assert not after.has("inventory_graphql_request_duration_seconds_count",
                         operation="refused")
    # Scrapes and probes are not /graphql requests and count nowhere.
    assert after.total(req) == before.total(req) + 7


async def test_metrics_sum_over_workers(start_api_server, graphql, stocked_level,
                                       scrape_metrics):
    """Requests land on either worker; any scrape reports the sum over both."""
    with start_api_server("two-workers", workers=2) as server:
        client = graphql(server)
        sku, code = await stocked_level(1, client=client)
        for _ in range(40):
            # A new connection per request so the kernel spreads them over the workers.
            await client.gql(LEVEL, {"s": sku, "c": code}, headers={"connection": "close"})
        # Each worker reports its own pool, once its periodic sync or a scrape
        # has run in it: wait for both.
        await wait_until(lambda: scrape_metrics(server).value(
            "inventory_db_pool_capacity", pool="write") == 30, "both workers' pools", every=0.2)
        for _ in range(6):
            samples = scrape_metrics(server)
            assert samples.value("inventory_graphql_requests_total",
                                 operation="query stockLevel", outcome="ok") == 40
            # The scrape sums the live workers' pools.
            assert samples.value("inventory_db_pool_capacity", pool="write") == 30
