"""Calculated query cost and the bounds checked before validation: the cost
model's figures, the refusals of the server-freezing documents (checked by
their answer, not by a time; bench/stall.py measures the time), cost charged to
the read budget, invalid and refused documents charged too."""
from __future__ import annotations

import uuid

import pytest

from ..support import create_api_key
from .support import ALL

# The probe's 474-byte query: depth 12, 30 aliases possible, a 500-item page
# walking back and forth between items and their levels.
NESTED = ("items(first:500){nodes{stockLevels{item{stockLevels{item{stockLevels{item{"
          "stockLevels{item{stockLevels{onHand}}}}}}}}}}}")
STALL_QUERY = "{ " + " ".join(f"a{i}: {NESTED}" for i in range(3)) + " }"
# Fragments F0-F5 each spread the next ten times; F6 holds one field: a
# million stockLevel selections after expansion, from 611 bytes.
SPREAD_QUERY = ("query { ...F0 } " + " ".join(
    f"fragment F{i} on Query {{ " + " ".join([f"...F{i + 1}"] * 10) + " }" for i in range(6))
    + ' fragment F6 on Query { stockLevel(sku: "S", locationCode: "L") { onHand } }')
DASHBOARD_PAGE = """query($after: String) { items(first: 500, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { sku reorderPoint stockLevels { locationCode onHand reserved available version } } } }"""
README_RESERVE = """mutation {
  reserveStock(input: {
    lines: [{sku: "NO-SUCH-SKU", locationCode: "WH-01", quantity: 2}]
    ttlSeconds: 600, reference: "order-1001"
  }) {
    __typename
    ... on Reservation { id status expiresAt lines { sku locationCode quantity } }
    ... on InsufficientStockError { shortages { sku locationCode requested available } }
    ... on UserError { code message field }
  }
}"""


def _error(response) -> dict:
    assert response.status_code < 500, response.text
    return response.json()["errors"][0]


async def test_every_answer_reports_its_cost_and_lists_multiply_by_first(secure_api, tenants):
    client = secure_api
    key = tenants[1].keys["all"]

    async def cost(query, variables=None):
        response = await client.post(query, variables, credential=key)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        assert body["extensions"]["cost"]["maximum"] == 10_000
        assert body["extensions"]["cost"]["actual"] <= body["extensions"]["cost"]["requested"]
        return body["extensions"]["cost"]["requested"]

    assert await cost("{ __typename }") == 0
    assert await cost('{ stockLevel(sku: "S", locationCode: "L") { onHand } }') == 1
    # A connection costs 2, each of its `first` nodes its own cost.
    assert await cost("{ items(first: 7) { nodes { sku } } }") == 2 + 7
    assert await cost("query($n: Int) { items(first: $n) { nodes { sku } } }", {"n": 20}) == 2 + 20
    assert await cost("query($n: Int) { items(first: $n) { nodes { sku } } }", {"n": 30}) == 2 + 30
    # Default page: 50; an edge and its node are an object each.
    assert await cost("{ items { edges { node { sku } } } }") == 2 + 50 * 2
    # A list without `first` counts as 10 elements.
    assert await cost("{ items(first: 10) { nodes { stockLevels { onHand } } } }") == 2 + 10 * (1 + 10)
    # The dashboard's page and the README's example pass easily.
    assert await cost(DASHBOARD_PAGE) == 2 + 1 + 500 * (1 + 10 * 1)
    assert await cost(README_RESERVE) < 100


async def test_every_answer_reports_the_actual_cost_of_what_came_back(secure_api, tenants):
    client = secure_api
    key = tenants[1].keys["all"]

    async def answer(query, variables=None):
        response = await client.post(query, variables, credential=key)
        return response.json()

    # A page prices the elements it returned, not the `first` it asked for.
    page = await answer("{ items(first: 500) { nodes { sku stockLevels { onHand } } } }")
    nodes = page["data"]["items"]["nodes"]
    levels = sum(len(node["stockLevels"]) for node in nodes)
    assert page["extensions"]["cost"] == {"requested": 2 + 500 * (1 + 10), "maximum": 10_000,
                                          "actual": 2 + len(nodes) + levels}
    # The same name in two fragments is priced once; null objects cost nothing.
    merged = await answer("""query { ...A ...B missing: stockLevel(sku: "NO", locationCode: "NO")
        { onHand } } fragment A on Query { items(first: 2) { nodes { sku } } }
        fragment B on Query { items(first: 2) { nodes { name } } }""")
    assert merged["extensions"]["cost"]["actual"] == 2 + len(merged["data"]["items"]["nodes"])
    assert (await answer("{ __typename }"))["extensions"]["cost"]["actual"] == 0
    # A mutation's root field costs its 10 on top of what it returned.
    receipt = await answer('mutation { receiveStock(input: {sku: "NO-SUCH", locationCode: "NO",'
                           ' quantity: 1}) { __typename ... on UserError { code } } }')
    assert receipt["extensions"]["cost"]["actual"] == 10 + 1
    # Refused before running: actual 0, with the requested cost when it was priced.
    for refused in ("{ {", SPREAD_QUERY, STALL_QUERY, "{ noSuchField }"):
        cost = (await answer(refused))["extensions"]["cost"]
        assert cost["actual"] == 0 and cost["maximum"] == 10_000, (refused, cost)
    assert (await answer(STALL_QUERY))["extensions"]["cost"]["requested"] > 10_000


async def test_the_freezing_documents_are_refused_before_running(secure_api, tenants):
    client = secure_api
    key = tenants[1].keys["all"]
    costly = await client.post(STALL_QUERY, credential=key)
    error = _error(costly)
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"]["maximum"] == 10_000
    assert error["extensions"]["cost"]["requested"] > 10_000
    assert costly.json()["data"] is None
    assert costly.json()["extensions"]["cost"] == {**error["extensions"]["cost"], "actual": 0}
    spread = await client.post(SPREAD_QUERY, credential=key)
    error = _error(spread)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "fieldSelections"
    # Many fields of one name with selections below them (the overlap check's
    # quadratic case) are refused too, while a few repeats pass.
    overlap = "{ " + "items(first: 1) { nodes { sku name } } " * 40 + "}"
    assert _error(await client.post(overlap, credential=key))["extensions"]["limit"] == "overlapChecks"
    assert await client.gql("{ " + "items(first: 1) { nodes { sku } } " * 3 + "}", credential=key)
    # A fragment cycle is still validation's to report (the walk does not loop).
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    assert _error(await client.post(cycle, credential=key))["extensions"]["code"] == \
        "GRAPHQL_VALIDATION_FAILED"
    # The server still answers at once.
    assert await client.gql("{ __typename }", credential=key) == {"__typename": "Query"}


async def test_several_operations_need_an_operation_name(secure_api, tenants):
    client = secure_api
    key = tenants[1].keys["all"]
    document = "query A { __typename } query B { items(first: 1) { nodes { sku } } }"
    response = await client.post(document, credential=key)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert _error(response)["extensions"]["code"] == "BAD_REQUEST"
    assert response.json()["data"] is None
    named = await client.client.post(client.url + "/graphql", json={"query": document, "operationName": "A"},
                             headers={"Authorization": f"Bearer {key}"})
    assert named.json()["data"] == {"__typename": "Query"}
    unknown = await client.client.post(client.url + "/graphql", json={"query": document, "operationName": "C" * 5000},
                               headers={"Authorization": f"Bearer {key}"})
    assert unknown.status_code == 400
    assert _error(unknown)["extensions"]["code"] == "BAD_REQUEST"
    assert len(unknown.text) < 500  # the name is not echoed in full


@pytest.fixture(scope="module")
def costed(start_api_server):
    """A server whose read budget barely refills: 30 points of burst."""
    # The refusal budget off: here the read budget shows.
    with start_api_server("costed", INVENTORY_RATE_READ="0.01", INVENTORY_RATE_READ_BURST="30",
                          INVENTORY_RATE_TENANT_FACTOR="0", INVENTORY_RATE_REFUSED="0") as server:
        yield server


def _code(response) -> str:
    body = response.json()
    return body["errors"][0]["extensions"]["code"] if "errors" in body else "ok"


async def test_reads_are_charged_their_cost(costed, database_url, graphql):
    client = graphql(costed)
    key = create_api_key(database_url, ALL, uuid.uuid4(), "cost")
    page = "{ items(first: 10) { nodes { sku } } }"  # 12 points
    assert [_code(await client.post(page, credential=key)) for _ in range(3)] == \
        ["ok", "ok", "RATE_LIMITED"]
    limited = await client.post(page, credential=key)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # 6 points are left: a cheap read still passes.
    assert _code(await client.post('{ location(code: "x") { code } }', credential=key)) == "ok"


async def test_invalid_and_refused_documents_are_charged(costed, database_url, graphql):
    client = graphql(costed)
    for bad in ("{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }",  # invalid
                "{ {",  # unreadable
                SPREAD_QUERY,  # too complex
                STALL_QUERY,  # too costly: charged 1 like the others, not its cost
                "{ noSuchField }"):
        key = create_api_key(database_url, ALL, uuid.uuid4(), "invalid")
        codes = [_code(await client.post(bad, credential=key)) for _ in range(32)]
        assert codes[:30] == [codes[0]] * 30 and codes[0] != "RATE_LIMITED", (bad, codes)
        assert codes[30:] == ["RATE_LIMITED"] * 2, (bad, codes)


@pytest.fixture(scope="module")
def refusing(start_api_server):
    """A server allowing a credential one refused document per second, burst 4."""
    with start_api_server("refusing", INVENTORY_RATE_REFUSED="1") as server:
        yield server


async def test_a_key_whose_documents_keep_being_refused_is_refused_unparsed(
        refusing, database_url, graphql):
    client = graphql(refusing)
    key = create_api_key(database_url, ALL, uuid.uuid4(), "refused")
    codes = []
    for _ in range(20):
        codes.append(_code(await client.post(f"# {uuid.uuid4().hex}\n{SPREAD_QUERY}",
                                             credential=key)))
        if codes[-1] == "RATE_LIMITED":
            break
    assert codes[-1] == "RATE_LIMITED", codes
    assert set(codes[:-1]) == {"QUERY_TOO_COMPLEX"} and len(codes) > 4, codes
    # Now even a good document of this key waits (it is not parsed to find out).
    limited = await client.post("{ __typename }", credential=key)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # Another key is not affected.
    other = create_api_key(database_url, ALL, uuid.uuid4(), "fine")
    assert _code(await client.post("{ __typename }", credential=other)) == "ok"
