"""The metrics the alert rules need beyond requests and latency move on a
running `inventory serve`: shed requests, ledger audits and their failures,
sweeper lag, and readiness (deploy/prometheus/alerts.yml)."""
from __future__ import annotations

import asyncio
import time

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from inventory.db import migrate

from .conftest import create_database
from .observability_support import post, setup_stock
from .support import ApiServer, auth_headers

LEVEL = "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) { onHand } }"
RESERVE = """mutation($s: String!, $c: String!) {
  reserveStock(input: {lines: [{sku: $s, locationCode: $c, quantity: 1}], ttlSeconds: 1}) {
    __typename } }"""
AUDIT = "{ ledgerAudit { ok discrepancyCount } }"


def scrape(url: str) -> dict[str, float]:
    """{sample name: value} of the unlabelled samples of one scrape."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {s.name: s.value for family in text_string_to_metric_families(response.text)
            for s in family.samples if not s.labels}


def wait_until(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def test_alert_metrics_move(pg_base_url, tmp_path):
    database_url = create_database(pg_base_url, "inventory_alert_metrics")
    migrate.upgrade(database_url)
    # One slot and no queue: concurrent requests beyond one are shed. No
    # sweeper: an expired reservation stays overdue.
    server = ApiServer(database_url, tmp_path / "api.log", INVENTORY_MAX_CONCURRENT="1",
                       INVENTORY_MAX_QUEUE="0", INVENTORY_QUEUE_TIMEOUT="0",
                       INVENTORY_SWEEP_INTERVAL="0").start()
    try:
        url = server.url
        sku, code = setup_stock(url, 5)
        # Sweeper lag: a reservation past its expiry that nobody sweeps (counted
        # at the first scrape; later scrapes reuse the count for 10 s).
        assert post(url, RESERVE, {"s": sku, "c": code}).json()[
            "data"]["reserveStock"]["__typename"] == "Reservation"
        libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(libpq, autocommit=True) as conn:
            wait_until(lambda: conn.execute(
                "SELECT count(*) FROM reservations WHERE status = 'ACTIVE' "
                "AND expires_at < now() - interval '0.5 s'").fetchone()[0], "expiry")
        before = scrape(url)
        assert before["inventory_ready"] == 1
        assert before["inventory_sweeper_lag_seconds"] >= 0.4
        assert before["inventory_reservations_overdue"] == 1

        # Shedding: 30 concurrent reads against one slot.
        async with httpx.AsyncClient(timeout=30, headers=auth_headers(url)) as client:
            responses = await asyncio.gather(*[
                client.post(url + "/graphql", json={"query": LEVEL, "variables": {
                    "s": sku, "c": code}}) for _ in range(30)])
        shed = sum(r.status_code == 503 for r in responses)
        assert shed and shed + sum(r.status_code == 200 for r in responses) == 30

        # Audits: a clean one, then one after a level is corrupted behind the
        # ledger's back.
        assert post(url, AUDIT).json()["data"]["ledgerAudit"]["ok"] is True
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("UPDATE stock_levels SET on_hand = on_hand + 1 WHERE item_id = "
                         "(SELECT id FROM items WHERE sku = %s)", (sku,))
        assert post(url, AUDIT).json()["data"]["ledgerAudit"]["ok"] is False

        after = scrape(url)
        assert after["inventory_requests_shed_total"] - before.get(
            "inventory_requests_shed_total", 0) == shed
        assert after["inventory_ledger_audits_total"] - before["inventory_ledger_audits_total"] == 2
        assert after["inventory_ledger_audit_failures_total"] - before[
            "inventory_ledger_audit_failures_total"] == 1
        assert after["inventory_ready"] == 1

        # Readiness: the database goes away; the process still answers /metrics.
        with psycopg.connect(pg_base_url, autocommit=True) as conn:
            conn.execute('DROP DATABASE "inventory_alert_metrics" WITH (FORCE)')
        wait_until(lambda: scrape(url)["inventory_ready"] == 0, "inventory_ready 0")
        assert httpx.get(url + "/readyz", timeout=10).status_code == 503
    finally:
        server.stop()
