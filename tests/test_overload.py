"""Load shedding: beyond the configured concurrency and queue, /graphql answers
HTTP 503 OVERLOADED with a retry hint at once, writes nothing for shed
requests, and keeps serving the rest; health checks are never shed."""
from __future__ import annotations

import asyncio


async def test_requests_beyond_the_limit_are_shed_with_a_retry_hint(
        start_api_server, graphql, stocked_level):
    # Rate limits off: only shedding may refuse here (429 would blur 503's meaning).
    with start_api_server("overload", INVENTORY_MAX_CONCURRENT="1", INVENTORY_MAX_QUEUE="2",
                          INVENTORY_QUEUE_TIMEOUT="0.05", INVENTORY_RATE_READ="0",
                          INVENTORY_RATE_WRITE="0") as server:
        api = graphql(server)
        sku, code = await stocked_level(0, client=api)
        query = ("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
                 "{ __typename ... on StockLevel { onHand } } }")
        responses = await asyncio.gather(*[
            api.post(query, {"i": {"sku": sku, "locationCode": code, "quantity": 1,
                                   "idempotencyKey": f"ovl-{sku}-{n}"}})
            for n in range(60)
        ], api.http("GET", "/healthz"))
        health = responses.pop()
        assert health.status_code == 200
        accepted = [r for r in responses if r.status_code == 200]
        shed = [r for r in responses if r.status_code == 503]
        assert len(accepted) + len(shed) == 60, [r.status_code for r in responses]
        assert accepted and shed, (len(accepted), len(shed))
        assert all(r.json()["data"]["receiveStock"]["__typename"] == "StockLevel"
                   for r in accepted)
        body = shed[0].json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"] == {"code": "OVERLOADED", "retryAfterMs": 200}
        assert shed[0].headers["retry-after"] == "1"
        # Shed writes did nothing; accepted ones did exactly once.
        level = await api.level(sku, code)
        assert level["onHand"] == len(accepted)
