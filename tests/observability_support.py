"""Helpers for the observability tests: plain HTTP calls (authenticated with the
test key of the server at that URL, see tests/support.py API_KEYS) and a real
forced retry."""
from __future__ import annotations

import threading
import time

import httpx
import psycopg

from .support import API_KEYS, unique

RECEIVE = """mutation Receive($sku: String!, $code: String!) {
  receiveStock(input: {sku: $sku, locationCode: $code, quantity: 1}) {
    __typename ... on UserError { code } } }"""


def post(url: str, query: str, variables: dict | None = None, headers: dict | None = None):
    """POSTs an operation as the server's test key (unless `headers` carry an
    Authorization of their own); the answer must be HTTP 200."""
    auth = {"Authorization": f"Bearer {API_KEYS[url]}"} if url in API_KEYS else {}
    response = httpx.post(url + "/graphql", json={"query": query, "variables": variables or {}},
                          headers={**auth, **(headers or {})}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def setup_stock(url: str, quantity: int) -> tuple[str, str]:
    sku, code = unique("TSKU"), unique("TLOC")
    post(url, 'mutation($c: String!) { createLocation(input: {code: $c, name: "T"}) '
              '{ __typename } }', {"c": code})
    post(url, 'mutation($s: String!) { createItem(input: {sku: $s, name: "T", reorderPoint: 0}) '
              '{ __typename } }', {"s": sku})
    post(url, 'mutation($s: String!, $c: String!, $q: Quantity!) { receiveStock(input: '
              '{sku: $s, locationCode: $c, quantity: $q}) { __typename } }',
         {"s": sku, "c": code, "q": quantity})
    return sku, code


def receive_with_forced_retry(url: str, database_url: str, sku: str, code: str) -> httpx.Response:
    """Runs `receiveStock` while another transaction holds the level's row lock,
    and commits that transaction once the mutation waits for the lock: the
    mutation's SERIALIZABLE update then fails with 40001 and is retried."""
    libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as blocker, psycopg.connect(libpq, autocommit=True) as watcher:
        # A no-op update: takes the row lock, changes no quantity or version.
        blocker.execute(
            "UPDATE stock_levels SET version = version WHERE (item_id, location_id) = "
            "(SELECT i.id, l.id FROM items i, locations l WHERE i.sku = %s AND l.code = %s)",
            (sku, code))
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(
            response=post(url, RECEIVE, {"sku": sku, "code": code})))
        thread.start()
        deadline = time.monotonic() + 10
        while not watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%%stock_levels%%'").fetchone()[0]:
            assert time.monotonic() < deadline, "the mutation never waited for the row lock"
            time.sleep(0.02)
        blocker.commit()
        thread.join(30)
    response = result["response"]
    assert response.json()["data"]["receiveStock"]["__typename"] == "StockLevel", response.text
    return response
