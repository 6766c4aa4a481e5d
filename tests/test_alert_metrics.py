"""The metrics the alert rules need beyond requests and latency move on a
running `inventory serve`: shed requests, ledger audits and their failures,
sweeper lag, and readiness (deploy/prometheus/alerts.yml)."""
from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from inventory.db import migrate

from .support import create_database

LEVEL = "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) { onHand } }"
RESERVE = """mutation($s: String!, $c: String!) {
  reserveStock(input: {lines: [{sku: $s, locationCode: $c, quantity: 1}], ttlSeconds: 1}) {
    __typename } }"""
AUDIT = "{ ledgerAudit { ok discrepancyCount } }"


async def wait_until(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.ledger_broken_on_purpose  # a level is corrupted, then the database dropped
async def test_alert_metrics_move(pg_base_url, start_api_server, graphql, stocked_level,
                                  scrape_metrics):
    database_url = create_database(pg_base_url, "inventory_alert_metrics")
    migrate.upgrade(database_url)
    # One slot and no queue: concurrent requests beyond one are shed. No
    # sweeper: an expired reservation stays overdue.
    with start_api_server("alert-metrics", database_url=database_url,
                          INVENTORY_MAX_CONCURRENT="1", INVENTORY_MAX_QUEUE="0",
                          INVENTORY_QUEUE_TIMEOUT="0", INVENTORY_SWEEP_INTERVAL="0") as server:
        client = graphql(server)
        sku, code = await stocked_level(5, client=client)
        # Sweeper lag: a reservation past its expiry that nobody sweeps (counted
        # at the first scrape; later scrapes reuse the count for 10 s).
        assert (await client.gql(RESERVE, {"s": sku, "c": code}))[
            "reserveStock"]["__typename"] == "Reservation"
        libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, autocommit=True) as conn:
            await wait_until(lambda: conn.execute(
                "SELECT count(*) FROM reservations WHERE status = 'ACTIVE' "
                "AND expires_at < now() - interval '0.5 s'").fetchone()[0], "expiry")
        before = scrape_metrics(server)
        assert before.value("inventory_ready") == 1
        assert before.value("inventory_sweeper_lag_seconds") >= 0.4
        assert before.value("inventory_reservations_overdue") == 1

        # Shedding: 30 concurrent reads against one slot.
        responses = await asyncio.gather(*[
            client.post(LEVEL, {"s": sku, "c": code}) for _ in range(30)])
        shed = sum(r.status_code == 503 for r in responses)
        assert shed and shed + sum(r.status_code == 200 for r in responses) == 30

        # Audits: a clean one, then one after a level is corrupted behind the
        # ledger's back.
        assert (await client.gql(AUDIT))["ledgerAudit"]["ok"] is True
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("UPDATE stock_levels SET on_hand = on_hand + 1 WHERE item_id = "
                         "(SELECT id FROM items WHERE sku = %s)", (sku,))
        assert (await client.gql(AUDIT))["ledgerAudit"]["ok"] is False

        after = scrape_metrics(server)
        assert after.value("inventory_requests_shed_total") - before.count(
            "inventory_requests_shed_total") == shed
        assert after.increase(before, "inventory_ledger_audits_total") == 2
        assert after.increase(before, "inventory_ledger_audit_failures_total") == 1
        assert after.value("inventory_ready") == 1

        # Readiness: the database goes away; the process still answers /metrics.
        with psycopg.connect(pg_base_url, autocommit=True) as conn:
            conn.execute('DROP DATABASE "inventory_alert_metrics" WITH (FORCE)')
        await wait_until(lambda: scrape_metrics(server).value("inventory_ready") == 0,
                         "inventory_ready 0")
        assert (await client.http("GET", "/readyz")).status_code == 503
