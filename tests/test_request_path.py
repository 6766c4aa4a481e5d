"""The lean request path: statements per nested page, automatic persisted
queries, and the sku/location id cache."""
from __future__ import annotations

import hashlib

from sqlalchemy import event

from inventory.db.driver import DriverStatement
from inventory.web.apq import NOT_FOUND, PersistedQueries

from .support import RoundTrips, in_process_app, unique

PAGE = """query($p: String!, $n: Int!) {
  items(first: $n, filter: {skuPrefix: $p}) {
    edges { node { sku totalAvailable
      stockLevels { onHand reserved available item { sku } location { code name } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_nested_items_page_issues_the_same_few_statements_whatever_its_size(
    database_url, monkeypatch, graphql,
):
    # The key verified once and cached, so its lookup is not among the counted
    # statements.
    app, key = in_process_app(database_url, monkeypatch, INVENTORY_AUTH_CACHE_SECONDS="3600")
    engine = app.state.ctx.db.engine
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    # Statements sent on the driver (db/driver.py) bypass SQLAlchemy's events.
    fetch = DriverStatement._fetch

    async def counted_fetch(self, conn, params, by_name):
        statements.append(self.compiled(conn)[0])
        return await fetch(self, conn, params, by_name)

    monkeypatch.setattr(DriverStatement, "_fetch", counted_fetch)
    try:
        api = graphql(app=app, api_key=key, database_url=database_url)
        prefix = unique("PAGE")
        codes = [await api.location(), await api.location()]
        for i in range(50):
            sku = await api.item(f"{prefix}-{i:03d}")
            for code in codes:
                await api.receive(sku, code, i + 1)
        seen = {}
        for size in (5, 50):
            statements.clear()
            data = await api.gql(PAGE, {"p": prefix, "n": size})
            edges = data["items"]["edges"]
            assert len(edges) == size
            assert all(len(e["node"]["stockLevels"]) == 2 for e in edges)
            assert {l["location"]["code"] for l in edges[-1]["node"]["stockLevels"]} == set(codes)
            seen[size] = list(statements)
    finally:
        await app.state.ctx.db.dispose()
    # The page, one batch of levels, one batch of items and one of locations at most.
    assert len(seen[5]) == len(seen[50]), (seen[5], seen[50])
    assert 3 <= len(seen[50]) <= 4, seen[50]


def _apq(query: str | None, digest: str) -> dict:
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if query is not None:
        body["query"] = query
    return body


async def test_automatic_persisted_queries_round_trip(api, stocked_level):
    sku, code = await stocked_level(4)
    # A document no other test sends, so this server has not stored its hash yet.
    query = f'query {unique("Apq").replace("-", "_")} {{ stockLevel(sku: "{sku}", ' \
            f'locationCode: "{code}") {{ onHand }} }}'
    digest = hashlib.sha256(query.encode()).hexdigest()

    first = (await api.http("POST", json=_apq(None, digest))).json()
    assert first["data"] is None
    assert first["errors"][0]["extensions"]["code"] == NOT_FOUND

    registered = (await api.http("POST", json=_apq(query, digest))).json()
    assert registered["data"] == {"stockLevel": {"onHand": 4}}
    assert registered["extensions"]["cost"]["requested"] == 1

    by_hash = (await api.http("POST", json=_apq(None, digest))).json()
    assert by_hash["data"] == {"stockLevel": {"onHand": 4}}
    # Also over GET, as CDN-friendly clients send it.
    got = await api.http("GET", headers={"accept": "application/json"}, params={
        "extensions": f'{{"persistedQuery":{{"version":1,"sha256Hash":"{digest}"}}}}'})
    assert got.json()["data"] == {"stockLevel": {"onHand": 4}}


async def test_persisted_query_with_wrong_hash_or_bad_extension_is_refused(api):
    wrong = (await api.http("POST", json=_apq("{ __typename }", "0" * 64))).json()
    assert wrong["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"
    # The mismatched document was not stored under the wrong hash.
    again = (await api.http("POST", json=_apq(None, "0" * 64))).json()
    assert again["errors"][0]["extensions"]["code"] == NOT_FOUND
    bad = (await api.http("POST", json={
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": 7}}})).json()
    assert bad["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"


def test_persisted_query_store_is_a_bounded_lru():
    store = PersistedQueries(max_entries=2)
    docs = ["{ a }", "{ b }", "{ c }"]
    digests = [hashlib.sha256(d.encode()).hexdigest() for d in docs]
    ext = lambda h: {"persistedQuery": {"version": 1, "sha256Hash": h}}  # noqa: E731
    store.resolve(docs[0], ext(digests[0]))
    store.resolve(docs[1], ext(digests[1]))
    assert store.resolve(None, ext(digests[0])) == docs[0]  # a is now most recent
    store.resolve(docs[2], ext(digests[2]))  # evicts b
    assert len(store) == 2
    assert store.resolve(None, ext(digests[1])).code == NOT_FOUND
    assert store.resolve(None, ext(digests[0])) == docs[0]
    assert store.resolve("{ x }", None) == "{ x }"  # not an APQ request: untouched


async def test_id_cache_keeps_no_negatives(api):
    """An unknown sku is NOT_FOUND, and found as soon as it is created."""
    sku, code = unique("LATE"), await api.location()
    line = {"lines": [{"sku": sku, "locationCode": code, "quantity": 1}], "ttlSeconds": 60}
    missing = await api.mutate("reserveStock", line)
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "lines[0].sku")
    await api.item(sku)
    await api.receive(sku, code, 2)
    for _ in range(2):  # the second one resolves from the cache
        ok = await api.mutate("reserveStock", line, "... on Reservation { status }")
        assert ok["status"] == "ACTIVE", ok
    short = await api.mutate("reserveStock", line)
    assert short["code"] == "INSUFFICIENT_STOCK"


async def test_keyless_single_line_reservation_is_one_round_trip_the_feed_reads(
    database_url, monkeypatch, graphql,
):
    """A single-line reservation without idempotency key costs one round trip to
    the database (no BEGIN, no notification, no COMMIT), and the change feed
    reads its ledger row, with the after-values, once committed."""
    from inventory.db.changes import XminReader

    from .live_support import ledger_changes

    app, key = in_process_app(database_url, monkeypatch)
    db = app.state.ctx.db
    reader = XminReader(database_url)
    try:
        api = graphql(app=app, api_key=key, database_url=database_url)
        # Made through this app: its id cache knows the sku and code.
        sku = await api.item()
        code = await api.location()
        await api.receive(sku, code, 3)
        cursor = await reader.start()
        with RoundTrips(db.write_engine) as writes, RoundTrips(db.engine) as reads:
            made = await api.mutate("reserveStock", {"lines": [
                {"sku": sku, "locationCode": code, "quantity": 2}]},
                "... on Reservation { id }")
        assert made["__typename"] == "Reservation", made
        assert (writes.count, reads.count) == (1, 0)
        # A refusal is decided by the guard, then answered with the exact amount.
        short = await api.mutate("reserveStock", {"lines": [
            {"sku": sku, "locationCode": code, "quantity": 2}]})
        assert short["code"] == "INSUFFICIENT_STOCK", short
        assert "1 available" in short["message"], short
        assert await api.level(sku, code) == {"onHand": 3, "reserved": 2, "available": 1,
                                              "version": 2}
        async with db.reader.connect() as conn:
            item_id = (await conn.exec_driver_sql(
                "SELECT id FROM items WHERE sku = %(s)s", {"s": sku})).scalar()
        mine = await ledger_changes(reader, cursor, lambda c: c.item_id == item_id, 1)
        assert len(mine) == 1, mine
        assert (mine[0].kind, mine[0].on_hand, mine[0].reserved, mine[0].reserved_delta,
                mine[0].version) == ("RESERVE", 3, 2, 2, 2)
    finally:
        await reader.close()
        await db.dispose()


async def test_plain_json_posts_and_unusual_ones_answer_as_strawberry_does(api):
    """web/view.py answers a plain JSON POST itself, refuses a malformed one,
    and hands anything else to strawberry's own path, body intact."""
    plain = await api.http("POST", content=b'{"query": "{ __typename }"}', headers={
        "content-type": "application/json; charset=utf-8"})
    assert plain.status_code == 200 and plain.json()["data"] == {"__typename": "Query"}
    assert plain.headers["content-type"] == "application/json"
    # Variables of the wrong type: a 400 naming the field, as GraphQL JSON.
    odd = await api.http("POST", json={"query": "{ __typename }", "variables": [1]})
    assert odd.status_code == 400 and "variables" in odd.text
    assert odd.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # NaN is not JSON to the fast parser, but strawberry's parser reads it: same answer
    # as before the fast path existed.
    nan = await api.http("POST", content=b'{"query": "{ __typename }", "variables": '
                                          b'{"x": NaN}}',
                         headers={"content-type": "application/json"})
    assert nan.status_code == 200 and nan.json()["data"] == {"__typename": "Query"}
    # A GraphQL error keeps its code and HTTP 200.
    bad = await api.http("POST", json={"query": "{ nope }"})
    assert bad.status_code == 200
    assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_requests_leave_no_reference_cycles_behind(database_url, monkeypatch, graphql,
                                                         stocked_level):
    """Reads (a level, a page), writes and a refusal are freed by reference
    counting when they end: nothing of theirs is left for the cycle collector
    (graphql-core's executor used to hold itself in a cycle, and with it each
    operation's request and context; the request's DataLoaders, through their
    load functions, held everything a page loaded)."""
    import gc

    from graphql.execution.executor import Executor
    from starlette.requests import Request

    from strawberry.dataloader import DataLoader

    from inventory.domain.models import StockLevelView
    from inventory.resolvers.context import Context, Loaders

    app, key = in_process_app(database_url, monkeypatch)
    per_request = (Executor, Request, Context, Loaders, DataLoader, StockLevelView)
    try:
        api = graphql(app=app, api_key=key, database_url=database_url)
        sku, code = await stocked_level(50, client=api)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # the collector keeps what it finds
        try:
            for _ in range(5):
                assert (await api.level(sku, code))["onHand"] == 50
                made = await api.mutate("reserveStock", {"lines": [
                    {"sku": sku, "locationCode": code, "quantity": 1}]})
                assert made["__typename"] == "Reservation", made
            refused = await api.mutate("reserveStock", {"lines": [
                {"sku": sku, "locationCode": code, "quantity": 0}]})
            assert refused["code"] == "INVALID_INPUT", refused
            page = await api.gql(PAGE, {"p": sku, "n": 5})
            assert page["items"]["edges"][0]["node"]["sku"] == sku
            gc.collect()
            left = [type(o).__name__ for o in gc.garbage if isinstance(o, per_request)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        await app.state.ctx.db.dispose()
    assert left == [], left
