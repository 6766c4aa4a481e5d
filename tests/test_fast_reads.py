"""The fast path for reads (inventory/graphql_runtime/fast_reads.py) answers
exactly what graphql-core's own execution answers: every document below is
sent through both, and the HTTP status and the whole JSON body (data, errors
with their paths and locations, extensions) must be equal. The test also
checks which documents the fast path answered itself, so that it cannot pass
by always falling back."""
from __future__ import annotations

import uuid

import pytest

from inventory.domain import ids
from inventory.graphql_runtime import execution, fast_reads

from .support import create_api_key, in_process_app, unique

ITEM_FIELDS = """fragment ItemFields on Item {
  sku name reorderPoint createdAt version archived archivedAt
  totalOnHand totalReserved totalAvailable lowStock
}"""

# (document, variables, answered by the fast path itself)
DOCUMENTS = [
    # The benchmark's page and level reads.
    ("""query($p: String!) { items(first: 50, filter: {skuPrefix: $p}) { edges { node { sku
        totalAvailable stockLevels { onHand reserved available location { code } } } } } }""",
     {"p": "{prefix}"}, True),
    ("""query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c)
        { onHand reserved available version } }""", {"s": "{sku}", "c": "{code}"}, True),
    # Aliases, named and inline fragments, __typename, merged selections.
    (ITEM_FIELDS + """
     query($p: String!, $n: Int) {
       __typename
       page: items(first: $n, filter: {skuPrefix: $p}) {
         __typename
         pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
         edges { cursor node { __typename id ...ItemFields
           levels: stockLevels { id sku locationCode onHand reserved available incoming
                                 damaged qualityControl safetyStock version updatedAt
                                 nextExpectedAt
                                 item { sku ... on Node { id } } location { code name } }
           stockLevels { location { archived createdAt } }
           ... on Item { again: sku }
           ... on Node { id }
         } }
       }
       second: items(first: 1, filter: {skuPrefix: $p}) { edges { node { sku } } }
     }""", {"p": "{prefix}", "n": 3}, True),
    # @include and @skip, with literals and variables, on fields and fragments.
    ("""query($p: String!, $yes: Boolean!, $no: Boolean = false) {
         items(filter: {skuPrefix: $p}) { edges { node {
           sku @include(if: $yes)
           name @skip(if: $yes)
           totalAvailable @include(if: $no)
           ... on Item @skip(if: $no) { reorderPoint }
           ...Levels @include(if: true)
         } } } }
       fragment Levels on Item { stockLevels { onHand @skip(if: false) } }""",
     {"p": "{prefix}", "yes": True}, True),
    ("""query($p: String!, $yes: Boolean!) {
         items(filter: {skuPrefix: $p}) { edges { node {
           sku @include(if: $yes) name @skip(if: $yes) } } } }""",
     {"p": "{prefix}", "yes": False}, True),
    # Nulls: an unknown sku, an item without levels, an archived item.
    ("""query($s: String!) { stockLevel(sku: $s, locationCode: "NOWHERE") { onHand }
         item(sku: $s) { sku } location(code: "NOWHERE") { code } }""",
     {"s": "NO-SUCH-SKU"}, True),
    ("""query($a: String!, $e: String!) {
         archived: item(sku: $a) { sku archived archivedAt stockLevels { onHand } }
         empty: item(sku: $e) { sku totalOnHand lowStock stockLevels { onHand } } }""",
     {"a": "{archived}", "e": "{empty}"}, True),
    ("""query($c: String!) { location(code: $c) { code name archived createdAt id }
         locations(first: 2) { edges { node { code } } pageInfo { hasNextPage } } }""",
     {"c": "{code}"}, True),
    # Every way of reading the items page (one statement per combination of
    # filters): a cursor, low stock either way, archived either way, a prefix
    # with LIKE's wildcards (matched literally), the connection's pageInfo and
    # cursors; a kit on the page (its totals from its components).
    ("""query($p: String!, $after: String) {
         a: items(first: 2, after: $after, filter: {skuPrefix: $p}) {
           pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
           edges { cursor node { sku totalAvailable lowStock } } }
         low: items(filter: {skuPrefix: $p, lowStock: true}) { edges { node { sku
           totalOnHand totalReserved totalAvailable isKit } } }
         high: items(filter: {skuPrefix: $p, lowStock: false}) { edges { node { sku } } }
         archived: items(filter: {archived: true, skuPrefix: $p}) { edges { node { sku
           archived archivedAt } } }
         active: items(first: 50, filter: {archived: false}) { edges { node { sku } } }
         wild: items(filter: {skuPrefix: "FAST_%"}) { edges { node { sku } } }
       }""", {"p": "{prefix}", "after": "{cursor}"}, True),
    ("""query($k: String!) { items(filter: {skuPrefix: $k}) { edges { node { sku isKit
         totalAvailable totalOnHand lowStock stockLevels { onHand } } } } }""",
     {"k": "{kit}"}, True),
    # Values the plan answers as they are (strings, booleans, whole numbers) beside
    # those it completes (dates, nulls, ids), at every depth.
    ("""query($p: String!) { items(first: 3, filter: {skuPrefix: $p}) { edges { node {
         id sku archived archivedAt createdAt reorderPoint
         stockLevels { id onHand available version updatedAt nextExpectedAt
                       location { id code archived archivedAt } item { id archived } } } } } }""",
     {"p": "{prefix}"}, True),
    # Levels answered whole (`@answers("Item.stockLevels")`): every field it
    # answers, aliases, __typename, fragments, @skip, merged selections, a kit
    # and an item without levels; and selections it leaves to StockLevel objects.
    ("""query($p: String!, $k: String!, $no: Boolean!) {
         items(first: 5, filter: {skuPrefix: $p}) { edges { node { sku
           totalAvailable
           stockLevels { __typename sku locationCode onHand reserved available incoming
                         damaged qualityControl safetyStock backordered version
                         backorderLimit units: onHand ...LevelCode
                         place: location { __typename code again: code }
                         location { code } skipped: reserved @skip(if: true)
                         ... on StockLevel { reserved @include(if: $no) } } } } }
         kit: items(filter: {skuPrefix: $k}) { edges { node {
           stockLevels { onHand } totalAvailable } } } }
       fragment LevelCode on StockLevel { locationCode location { code } }""",
     {"p": "{prefix}", "k": "{kit}", "no": False}, True),
    ("""query($p: String!) { items(first: 5, filter: {skuPrefix: $p}) { edges { node {
         stockLevels { onHand location { code name } } } } } }""", {"p": "{prefix}"}, True),
    ("""query($p: String!) { items(first: 5, filter: {skuPrefix: $p}) { edges { node {
         stockLevels { onHand updatedAt } } } } }""", {"p": "{prefix}"}, True),
    # Errors: the fast path gives way, graphql-core reports them.
    ("""query { items(first: 501) { edges { node { sku } } } }""", None, False),
    ("""query { items(after: "not-a-cursor") { edges { node { sku } } } }""", None, False),
    ("""query($p: String!) { ok: items(filter: {skuPrefix: $p}) { edges { node { sku } } }
         bad: items(first: -1) { edges { node { sku } } } }""", {"p": "{prefix}"}, False),
    ("""query($s: String!) { item(sku: $s) { sku availability(channelCode: "NONE") {
         available } } }""", {"s": "{sku}"}, False),
    # Not covered by a plan: abstract types, introspection, resolvers without a batch.
    ("""query($id: ID!) { node(id: $id) { __typename ... on Item { sku } } }""",
     {"id": "{item_id}"}, False),
    ("""query { __schema { queryType { name } } items(first: 1) { edges { node { sku } } } }""",
     None, False),
    ("""query($p: String!) { items(filter: {skuPrefix: $p}) { nodes { sku } } }""",
     {"p": "{prefix}"}, False),
    # Variables that do not coerce, and a mutation: never reach the executor's plan.
    ("""query($s: String!) { item(sku: $s) { sku } }""", {"s": 5}, None),
    ("""mutation($c: String!) { archiveLocation(input: {code: $c}) { __typename } }""",
     {"c": "NO-SUCH-LOCATION"}, None),
]


def _fill(value, names: dict):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return names[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.fixture
async def app_and_data(database_url, monkeypatch, graphql):
    app, key = in_process_app(database_url, monkeypatch)
    api = graphql(app=app, api_key=key, database_url=database_url)
    prefix = unique("FAST")
    codes = [await api.location(), await api.location()]
    skus = [await api.item(f"{prefix}-{i}", reorder_point=5) for i in range(4)]
    for i, sku in enumerate(skus[:3]):
        for code in codes[: 1 + i % 2]:
            await api.receive(sku, code, 3 + i)
    await api.succeed("createInboundShipment", {"lines": [
        {"sku": skus[0], "locationCode": codes[0], "quantity": 4}],
        "expectedAt": "2030-01-02T03:04:05+00:00"})
    archived = await api.item(unique("FAST-ARCHIVED"))
    await api.receive(archived, codes[0], 1)
    await api.succeed("archiveItem", {"sku": archived})
    kit = unique("FAST-KIT")
    await api.succeed("createItem", {"sku": kit, "name": "Kit", "components": [
        {"sku": skus[0], "quantity": 2}, {"sku": skus[1], "quantity": 1}]})
    item_id = (await api.gql("query($s: String!) { item(sku: $s) { id } }",
                             {"s": skus[0]}))["item"]["id"]
    names = {"prefix": prefix, "sku": skus[0], "code": codes[0], "archived": archived,
             "empty": skus[3], "item_id": item_id, "cursor": ids.encode_cursor(skus[0]),
             "kit": kit}
    try:
        yield api, names
    finally:
        await app.state.ctx.db.dispose()


async def test_fast_and_normal_paths_answer_alike(app_and_data, monkeypatch):
    api, names = app_and_data
    outcomes: list[str] = []
    real_run = fast_reads.run

    async def recording_run(plan, executor):
        try:
            data = await real_run(plan, executor)
        except Exception:
            outcomes.append("fell back")
            raise
        outcomes.append("answered")
        return data

    monkeypatch.setattr(fast_reads, "run", recording_run)
    with_errors = 0
    for document, variables, fast in DOCUMENTS:
        variables = _fill(variables, names)
        answers = []
        for on in (True, False):
            monkeypatch.setattr(execution.AcyclicExecutionContext, "fast_reads", on)
            outcomes.clear()
            response = await api.post(document, variables)
            answers.append((response.status_code, response.json()))
            if on:
                seen = list(outcomes)
            else:
                assert outcomes == [], document  # the normal path ran no plan
        assert answers[0] == answers[1], document
        if fast is True:
            assert seen == ["answered"], (document, seen, answers[0])
            assert "errors" not in answers[0][1], answers[0]
        elif fast is False:
            assert "answered" not in seen, (document, seen)
        else:
            assert seen == [], (document, seen)
        with_errors += "errors" in answers[0][1]
    assert with_errors >= 5  # the errors compared above are real ones


async def test_the_fast_page_is_the_normal_page(app_and_data, monkeypatch):
    """Beyond equality: the benchmark's page has what it must (not two equal
    empty answers)."""
    api, names = app_and_data
    document, variables, _ = DOCUMENTS[0]
    data = await api.gql(document, _fill(variables, names))
    edges = data["items"]["edges"]
    assert [e["node"]["sku"] for e in edges] == sorted(e["node"]["sku"] for e in edges)
    assert len(edges) == 4
    first = edges[0]["node"]
    assert first["totalAvailable"] == sum(l["available"] for l in first["stockLevels"]) == 3
    assert edges[3]["node"]["stockLevels"] == []


async def test_the_page_levels_are_answered_whole(app_and_data, monkeypatch):
    """The benchmark page's levels are answered by `@answers("Item.stockLevels")`,
    with no StockLevel object made; a selection it does not answer (a
    location's name) is answered from StockLevel objects."""
    from inventory.schema import types

    api, names = app_and_data
    made = []
    real = types.StockLevel.of
    monkeypatch.setattr(types.StockLevel, "of", lambda *args: made.append(1) or real(*args))
    whole = [d for d in DOCUMENTS if d is DOCUMENTS[0] or "fragment LevelCode" in d[0]]
    assert len(whole) == 2
    for document, variables, _ in whole:
        data = await api.gql(document, _fill(variables, names))
        assert data["items"]["edges"][0]["node"]["stockLevels"] and made == [], document
    data = await api.gql("""query($p: String!) { items(filter: {skuPrefix: $p}) { edges {
        node { stockLevels { location { code name } } } } } }""", {"p": names["prefix"]})
    assert data["items"]["edges"][0]["node"]["stockLevels"] and made


async def test_the_items_page_by_prefix_is_planned_with_its_value(database_url):
    """The items page with a prefix is never a prepared statement (whose
    generic plan cannot bound the index scan by `LIKE $prefix`); without one
    it is prepared, as psycopg prepares a statement run often."""
    from inventory.db import queries
    from inventory.db.engine import create_database

    db = create_database(database_url)
    try:
        async with db.reader.connect() as conn:
            for _ in range(8):
                await queries.items_page(conn, uuid.uuid4(), limit=3, sku_prefix="NONE-")
                await queries.items_page(conn, uuid.uuid4(), limit=3)
            prepared = [row[0] for row in await conn.exec_driver_sql(
                "SELECT statement FROM pg_prepared_statements")]
    finally:
        await db.dispose()
    assert any("FROM items" in s and "ORDER BY items.sku" in s for s in prepared), prepared
    assert not any("LIKE" in s for s in prepared), prepared


async def test_each_tenant_reads_its_own_page_both_ways(app_and_data, monkeypatch,
                                                        database_url):
    """The page's statements are scoped by the caller's tenant on both paths:
    another tenant with the same skus and codes sees its own levels only."""
    api, names = app_and_data
    other = api.with_key(create_api_key(database_url, tenant_id=uuid.uuid4(),
                                        name="second tenant"))
    sku = names["prefix"] + "-0"
    await other.location(names["code"])
    await other.item(sku)
    await other.receive(sku, names["code"], 41)
    document, variables, _ = DOCUMENTS[0]
    variables = _fill(variables, names)
    for on in (True, False):
        monkeypatch.setattr(execution.AcyclicExecutionContext, "fast_reads", on)
        mine = (await api.gql(document, variables))["items"]["edges"]
        theirs = (await other.gql(document, variables))["items"]["edges"]
        assert len(mine) == 4
        assert theirs == [{"node": {"sku": sku, "totalAvailable": 41, "stockLevels": [
            {"onHand": 41, "reserved": 0, "available": 41,
             "location": {"code": names["code"]}}]}}]


def test_levels_made_without_init_are_those_init_makes():
    """StockLevel.of and the driver's rows skip the dataclasses' __init__
    (schema/types.py `_maker`, db/queries.py `_level_of_tuple`): the objects
    are the same as those the __init__ makes."""
    from datetime import datetime, timezone

    from inventory.db.queries import _LEVELS, _level_of_tuple
    from inventory.domain.models import StockLevelView
    from inventory.domain.quantities import NAMES, Quantities
    from inventory.schema.types import StockLevel
    from inventory.schema.states import state_values

    item, location = uuid.uuid4(), uuid.uuid4()
    at = datetime(2030, 1, 2, tzinfo=timezone.utc)
    values = dict(tenant_id=uuid.uuid4(), item_id=item, location_id=location, sku="S",
                  code="C", version=7, updated_at=at, backorder_limit=2,
                  **{n: i + 1 for i, n in enumerate(NAMES)})
    row = tuple(values[c.name] for c in _LEVELS.selected_columns)
    view = _level_of_tuple(row)
    quantities = Quantities({n: i + 1 for i, n in enumerate(NAMES)})
    expected = StockLevelView(item, location, "S", "C", quantities, 7, at, 2)
    assert view == expected and vars(view) == vars(expected) and hash(view) == hash(expected)
    made = StockLevel.of(view)
    by_init = StockLevel(sku="S", location_code="C", **state_values(quantities),
                         available=quantities.available, version=7, updated_at=at,
                         item_id=item, location_id=location, backorder_limit=2)
    assert vars(made) == vars(by_init) and made == by_init
