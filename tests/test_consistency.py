"""Read consistency chosen per query operation, on the single-server API (no
replica configured): strong by default, `@boundedStaleness(maxMs:)` accepted and
served by the leader, every query's response saying what served it, a bad bound
refused as INVALID_INPUT, mutations ignoring the directive. The replica path is
in test_cluster.py."""
from __future__ import annotations

import pytest

LEVEL = """query($sku: String!, $code: String!) %s {
  stockLevel(sku: $sku, locationCode: $code) { onHand } }"""


async def test_strong_reads_are_the_default_and_say_the_leader_served_them(api):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 4)
    body = await api.raw(LEVEL % "", {"sku": sku, "code": code})
    assert body["data"]["stockLevel"]["onHand"] == 4
    assert body["extensions"]["consistency"] == {"servedBy": "leader", "stalenessMs": 0}


async def test_bounded_staleness_without_replicas_is_served_by_the_leader(api):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 3)
    for directive, variables in (("@boundedStaleness(maxMs: 500)", {}),
                                 ("@boundedStaleness(maxMs: $ms)", {"ms": 0})):
        query = LEVEL.replace("$code: String!)", "$code: String!%s)" % (
            ", $ms: Int!" if variables else "")) % directive
        body = await api.raw(query, {"sku": sku, "code": code, **variables})
        assert "errors" not in body, body
        assert body["data"]["stockLevel"]["onHand"] == 3
        assert body["extensions"]["consistency"] == {"servedBy": "leader", "stalenessMs": 0}


@pytest.mark.parametrize("bound", [-1, 3_600_001, 2_000_000_000])
async def test_a_bad_bound_is_invalid_input(api, bound):
    body = await api.raw("query($ms: Int!) @boundedStaleness(maxMs: $ms) { "
                         "locations(first: 1) { nodes { code } } }", {"ms": bound})
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", body
    assert "maxMs" in body["errors"][0]["message"]
    literal = await api.raw("query @boundedStaleness(maxMs: -5) { locations(first: 1) { "
                            "nodes { code } } }")
    assert literal["errors"][0]["extensions"]["code"] == "INVALID_INPUT", literal


async def test_a_bound_that_is_not_an_int_is_a_validation_error(api):
    body = await api.raw('query @boundedStaleness(maxMs: "soon") { locations(first: 1) { '
                         'nodes { code } } }')
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body


async def test_mutations_ignore_the_directive(api):
    sku, code = await api.item(), await api.location()
    body = await api.raw(
        "mutation($i: ReceiveStockInput!) @boundedStaleness(maxMs: -1) { receiveStock(input: $i) "
        "{ __typename ... on StockLevel { onHand } } }",
        {"i": {"sku": sku, "locationCode": code, "quantity": 2}})
    assert body["data"]["receiveStock"] == {"__typename": "StockLevel", "onHand": 2}, body
    assert "consistency" not in (body.get("extensions") or {})
