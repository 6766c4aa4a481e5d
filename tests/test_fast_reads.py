"""The fast path for reads (inventory/graphql_runtime/fast_reads.py) answers
exactly what graphql-core's own execution answers: every document below is
sent through both, and the HTTP status and the whole JSON body (data, errors
with their paths and locations, extensions) must be equal. The test also
checks which documents the fast path answered itself, so that it cannot pass
by always falling back."""
from __future__ import annotations

import pytest

from inventory.graphql_runtime import execution, fast_reads

from .support import in_process_app, unique

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
    item_id = (await api.gql("query($s: String!) { item(sku: $s) { id } }",
                             {"s": skus[0]}))["item"]["id"]
    names = {"prefix": prefix, "sku": skus[0], "code": codes[0], "archived": archived,
             "empty": skus[3], "item_id": item_id}
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
