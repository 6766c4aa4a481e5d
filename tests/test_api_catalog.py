"""Locations, items and the read side of the API, through the running server."""
from __future__ import annotations

from uuid import uuid4

from .support import create_api_key, unique


async def test_create_location_and_query_it(api):
    code = await api.location()
    data = await api.gql(
        "query($c: String!) { location(code: $c) { id code name createdAt } }", {"c": code}
    )
    assert data["location"]["code"] == code
    node = await api.gql(
        "query($id: ID!) { node(id: $id) { __typename ... on Location { code } } }",
        {"id": data["location"]["id"]},
    )
    assert node["node"] == {"__typename": "Location", "code": code}


async def test_duplicate_location_and_item_are_already_exists(api):
    code = await api.location()
    again = await api.mutate("createLocation", {"code": code, "name": "Other"})
    assert (again["__typename"], again["code"], again["field"]) == (
        "AlreadyExistsError", "ALREADY_EXISTS", "code")
    sku = await api.item()
    again = await api.mutate("createItem", {"sku": sku, "name": "Other"})
    assert (again["code"], again["field"]) == ("ALREADY_EXISTS", "sku")


async def test_unknown_lookups_return_null(api):
    data = await api.gql(
        '{ item(sku: "NOPE-x") { sku } location(code: "NOPE-x") { code } '
        'stockLevel(sku: "NOPE-x", locationCode: "NOPE-y") { onHand } }'
    )
    assert data == {"item": None, "location": None, "stockLevel": None}


async def test_item_totals_and_stock_levels(api):
    sku, east, west = await api.item(reorder_point=5), await api.location(), await api.location()
    await api.receive(sku, east, 7)
    await api.receive(sku, west, 3)
    data = await api.gql(
        """query($s: String!) { item(sku: $s) { id sku reorderPoint totalOnHand totalReserved
             totalAvailable lowStock stockLevels { locationCode onHand available
             item { sku } location { code } } } }""",
        {"s": sku},
    )
    item = data["item"]
    assert (item["totalOnHand"], item["totalReserved"], item["totalAvailable"]) == (10, 0, 10)
    assert item["lowStock"] is False
    levels = {l["locationCode"]: l["onHand"] for l in item["stockLevels"]}
    assert levels == {east: 7, west: 3}
    assert all(l["item"]["sku"] == sku for l in item["stockLevels"])
    node = await api.gql("query($id: ID!) { node(id: $id) { ... on Item { sku } } }",
                         {"id": item["id"]})
    assert node["node"]["sku"] == sku


async def test_stock_level_of_never_stocked_pair_is_zero(api):
    sku, code = await api.item(), await api.location()
    assert await api.level(sku, code) == {"onHand": 0, "reserved": 0, "available": 0,
                                          "version": 0}


async def test_items_pagination_and_filters(api):
    prefix = unique("PG")
    skus = [await api.item(f"{prefix}-{i}", reorder_point=10) for i in range(5)]
    code = await api.location()
    await api.receive(skus[0], code, 50)  # above reorder point: not low
    query = """query($first: Int, $after: String, $f: ItemFilter) {
        items(first: $first, after: $after, filter: $f) {
          edges { cursor node { sku } } pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
    seen, after = [], None
    while True:
        page = (await api.gql(query, {"first": 2, "after": after,
                                      "f": {"skuPrefix": prefix}}))["items"]
        seen += [e["node"]["sku"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(skus)
    low = (await api.gql(query, {"first": 50, "f": {"skuPrefix": prefix, "lowStock": True}}))
    assert [e["node"]["sku"] for e in low["items"]["edges"]] == sorted(skus[1:])
    high = (await api.gql(query, {"first": 50, "f": {"skuPrefix": prefix, "lowStock": False}}))
    assert [e["node"]["sku"] for e in high["items"]["edges"]] == [skus[0]]


async def test_sku_prefix_treats_wildcards_literally(api):
    prefix = unique("WC")
    await api.item(f"{prefix}_a")
    await api.item(f"{prefix}Xb")
    data = await api.gql('query($p: String!) { items(filter: {skuPrefix: $p}) { nodes { sku } } }',
                         {"p": f"{prefix}_"})
    assert [n["sku"] for n in data["items"]["nodes"]] == [f"{prefix}_a"]


async def test_locations_pagination_walks_every_page_in_code_order(api, database_url):
    """A tenant of its own, so its five locations are the whole listing: pages of
    two, each after the previous page's end cursor, with hasPreviousPage and
    hasNextPage telling where the page is."""
    tenant = api.with_key(create_api_key(database_url, tenant_id=uuid4(), name="locations"))
    codes = sorted([await tenant.location() for _ in range(5)])
    query = """query($after: String) { locations(first: 2, after: $after) {
        edges { cursor node { code } } pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
    pages, after = [], None
    while True:
        page = (await tenant.gql(query, {"after": after}))["locations"]
        pages.append(([e["node"]["code"] for e in page["edges"]],
                      page["pageInfo"]["hasPreviousPage"], page["pageInfo"]["hasNextPage"]))
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == [(codes[0:2], False, True), (codes[2:4], True, True),
                     (codes[4:], True, False)]


async def test_page_size_and_cursor_errors_are_typed(api):
    for args, field in [("first: -1", "first"), ("first: 501", "first"),
                        ('after: "!!!"', "after")]:
        body = await api.raw(f"{{ items({args}) {{ nodes {{ sku }} }} }}")
        assert body["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": field}


async def test_malformed_and_unknown_node_ids(api):
    body = await api.raw('{ node(id: "not-an-id") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    from inventory.domain import ids
    data = await api.gql("query($id: ID!) { node(id: $id) { id } }",
                         {"id": ids.encode("Item", uuid4())})
    assert data["node"] is None


async def test_movements_ledger_listing(api, stocked_level):
    sku, code = await stocked_level(5)
    await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -2,
                                     "reason": "damaged"})
    query = """query($s: String, $c: String, $after: String) {
        movements(sku: $s, locationCode: $c, first: 1, after: $after) {
          edges { node { id kind onHandDelta onHandAfter version reason sku locationCode } }
          pageInfo { hasNextPage endCursor } } }"""
    first = (await api.gql(query, {"s": sku, "c": code}))["movements"]
    movement_id = first["edges"][0]["node"].pop("id")
    assert first["edges"][0]["node"] == {
        "kind": "ADJUST", "onHandDelta": -2, "onHandAfter": 3, "version": 2,
        "reason": "damaged", "sku": sku, "locationCode": code}
    assert first["pageInfo"]["hasNextPage"] is True
    second = (await api.gql(query, {"s": sku, "c": code,
                                    "after": first["pageInfo"]["endCursor"]}))["movements"]
    assert second["edges"][0]["node"]["kind"] == "RECEIVE"
    assert second["pageInfo"]["hasNextPage"] is False
    node = await api.gql("query($id: ID!) { node(id: $id) { ... on Movement { kind } } }",
                         {"id": movement_id})
    assert node["node"] == {"kind": "ADJUST"}
    unknown = (await api.gql(query, {"s": "NOPE-x"}))["movements"]
    assert unknown["edges"] == []


async def test_validation_errors_are_coded_not_500(api):
    response = await api.post("{ nope }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    response = await api.http("POST", content=b"{not json",
                              headers={"content-type": "application/json"})
    assert response.status_code == 400


async def test_health_and_readiness(api):
    assert (await api.client.get(api.url + "/healthz")).json() == {"status": "ok"}
    ready = await api.client.get(api.url + "/readyz")
    from inventory.db.migrate import head_revision

    assert ready.status_code == 200 and ready.json()["migration"] == head_revision()


async def test_graphiql_is_served(api):
    response = await api.http("GET", headers={"accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
