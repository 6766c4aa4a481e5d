"""With the database down, the API answers at once with UNAVAILABLE (queries
and mutations), /readyz says 503 and /healthz stays 200; when the database is
back the same API process serves again by itself. A credential the process
has not verified yet cannot be looked up then: that too is a retryable 503
UNAVAILABLE, not a 500 (nor a 401: the key is fine). Uses its own database
server, so the rest of the suite is not disturbed."""
from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time

from sqlalchemy import create_engine

from inventory.db import embedded, migrate

from .support import assert_invariants, create_api_key

LEVEL = "query($s: String!, $l: String!) { stockLevel(sku: $s, locationCode: $l) { onHand } }"


async def test_database_outage_fails_fast_and_recovers_without_restart(
        tmp_path, start_api_server, graphql, stocked_level):
    url, server = embedded.start(tmp_path / "db")
    migrate.upgrade(url)
    try:
        with start_api_server("outage", database_url=url, INVENTORY_POOL_TIMEOUT="2") \
                as api_server:
            # The client's timeout (30 s) is far above the service's own: a hang fails.
            api = graphql(api_server)
            client = api.client
            sku, code = await stocked_level(3, client=api)
            unverified_key = create_api_key(url, name="not yet used")

            embedded.stop(server, "immediate")
            down = await api.raw(LEVEL, {"s": sku, "l": code})
            assert down["data"] == {"stockLevel": None} or down["data"] is None
            assert down["errors"][0]["extensions"]["code"] == "UNAVAILABLE", down
            assert "retryAfterMs" in down["errors"][0]["extensions"]
            write = await api.mutate("receiveStock", {
                "sku": sku, "locationCode": code, "quantity": 1, "idempotencyKey": "av-1"})
            assert write["code"] == "UNAVAILABLE", write
            ready = await client.get(api_server.url + "/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            assert (await client.get(api_server.url + "/healthz")).status_code == 200
            fresh = await client.post(
                api_server.url + "/graphql",
                json={"query": LEVEL, "variables": {"s": sku, "l": code}},
                headers={"Authorization": f"Bearer {unverified_key}"})
            assert fresh.status_code == 503, fresh.text
            assert fresh.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE", fresh.text

            embedded.start_again(server)
            deadline = time.monotonic() + 30
            while (await client.get(api_server.url + "/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "API did not become ready again"
                await asyncio.sleep(0.2)
            # Same process, no restart: the retried write lands once.
            write = await api.mutate("receiveStock", {
                "sku": sku, "locationCode": code, "quantity": 1, "idempotencyKey": "av-1"},
                "... on StockLevel { onHand }")
            assert write == {"__typename": "StockLevel", "onHand": 4}, write
            assert (await api.level(sku, code))["onHand"] == 4
            assert api_server.process.poll() is None
            engine = create_engine(url)
            try:
                assert_invariants(engine)  # before this database goes away
            finally:
                engine.dispose()
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already down if we failed
            embedded.stop(server)
