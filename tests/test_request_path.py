"""The lean request path: statements per nested page, automatic persisted
queries, and the sku/location id cache."""
from __future__ import annotations

import contextlib
import hashlib

import httpx
from sqlalchemy import event

from inventory.apq import NOT_FOUND, PersistedQueries
from inventory.app import create_app
from inventory.config import Settings

from .support import Api, create_api_key, unique

PAGE = """query($p: String!, $n: Int!) {
  items(first: $n, filter: {skuPrefix: $p}) {
    edges { node { sku totalAvailable
      stockLevels { onHand reserved available item { sku } location { code name } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _in_process_app(database_url: str, monkeypatch):
    """The app in this process, and an API key for it. The app reads its security
    settings from the environment here: no rate limits (setups send many writes
    at once)."""
    monkeypatch.setenv("INVENTORY_RATE_READ", "0")
    monkeypatch.setenv("INVENTORY_RATE_WRITE", "0")
    key = create_api_key(database_url)
    return create_app(Settings(database_url=database_url, sweep_interval_s=0,
                               graphiql=False)), key


@contextlib.asynccontextmanager
async def _api(app, key: str):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://app") as client:
        yield Api(client, "http://app", api_key=key)


async def test_nested_items_page_issues_the_same_few_statements_whatever_its_size(
    database_url, monkeypatch,
):
    # The key verified once and cached, so its lookup is not among the counted
    # statements.
    monkeypatch.setenv("INVENTORY_AUTH_CACHE_SECONDS", "3600")
    app, key = _in_process_app(database_url, monkeypatch)
    engine = app.state.ctx.db.engine
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    try:
        async with _api(app, key) as api:
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
    assert 1 <= len(seen[50]) <= 4, seen[50]


def _apq(query: str | None, digest: str) -> dict:
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if query is not None:
        body["query"] = query
    return body


async def test_automatic_persisted_queries_round_trip(api):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 4)
    # A document no other test sends, so this server has not stored its hash yet.
    query = f'query {unique("Apq").replace("-", "_")} {{ stockLevel(sku: "{sku}", ' \
            f'locationCode: "{code}") {{ onHand }} }}'
    digest = hashlib.sha256(query.encode()).hexdigest()
    url = api.url + "/graphql"

    first = (await api.client.post(url, json=_apq(None, digest))).json()
    assert first["data"] is None
    assert first["errors"][0]["extensions"]["code"] == NOT_FOUND

    registered = (await api.client.post(url, json=_apq(query, digest))).json()
    assert registered["data"] == {"stockLevel": {"onHand": 4}}
    assert registered["extensions"]["cost"]["requested"] == 1

    by_hash = (await api.client.post(url, json=_apq(None, digest))).json()
    assert by_hash["data"] == {"stockLevel": {"onHand": 4}}
    # Also over GET, as CDN-friendly clients send it.
    got = await api.client.get(url, headers={"accept": "application/json"}, params={
        "extensions": f'{{"persistedQuery":{{"version":1,"sha256Hash":"{digest}"}}}}'})
    assert got.json()["data"] == {"stockLevel": {"onHand": 4}}


async def test_persisted_query_with_wrong_hash_or_bad_extension_is_refused(api):
    url = api.url + "/graphql"
    wrong = (await api.client.post(url, json=_apq("{ __typename }", "0" * 64))).json()
    assert wrong["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"
    # The mismatched document was not stored under the wrong hash.
    again = (await api.client.post(url, json=_apq(None, "0" * 64))).json()
    assert again["errors"][0]["extensions"]["code"] == NOT_FOUND
    bad = (await api.client.post(url, json={
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


async def test_keyless_single_line_reservation_is_one_serializable_statement(
    database_url, monkeypatch,
):
    """No BEGIN, no separate notification, no COMMIT: one statement in autocommit
    on a session whose default isolation is SERIALIZABLE, which also sends the
    change notification (with the after-values of the ledger row)."""
    import psycopg

    from inventory.db.changes import CHANNEL, decode

    app, key = _in_process_app(database_url, monkeypatch)
    db = app.state.ctx.db
    sent: list[tuple[str, bool]] = []
    event.listen(db.write_engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: sent.append(
                     (statement, conn.connection.driver_connection.autocommit)))
    listener = await psycopg.AsyncConnection.connect(
        database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    try:
        async with _api(app, key) as api:
            sku, code = await api.item(), await api.location()
            await api.receive(sku, code, 3)
            await listener.execute(f"LISTEN {CHANNEL}")
            sent.clear()
            made = await api.mutate("reserveStock", {"lines": [
                {"sku": sku, "locationCode": code, "quantity": 2}]}, "... on Reservation { id }")
            assert made["__typename"] == "Reservation", made
            assert [autocommit for _, autocommit in sent] == [True], sent
            assert "pg_notify" in sent[0][0]
            # A refusal is decided by the guard, then answered with the exact amount.
            short = await api.mutate("reserveStock", {"lines": [
                {"sku": sku, "locationCode": code, "quantity": 2}]})
            assert short["code"] == "INSUFFICIENT_STOCK", short
            assert "1 available" in short["message"], short
        async with db.single_writer.connect() as conn:
            isolation = (await conn.exec_driver_sql("SHOW default_transaction_isolation")).scalar()
        async with db.reader.connect() as conn:
            read_isolation = (await conn.exec_driver_sql(
                "SHOW default_transaction_isolation")).scalar()
        assert (isolation, read_isolation) == ("serializable", "read committed")
        async with db.reader.connect() as conn:
            item_id = (await conn.exec_driver_sql(
                "SELECT id FROM items WHERE sku = %(s)s", {"s": sku})).scalar()
        mine = []
        # Other servers on this database may announce their own changes meanwhile.
        async for note in listener.notifies(timeout=5):
            mine = [c for c in decode(note.payload) if c.item_id == item_id]
            if mine:
                break
        assert len(mine) == 1, mine
        assert (mine[0].kind, mine[0].on_hand, mine[0].reserved, mine[0].reserved_delta,
                mine[0].version) == ("RESERVE", 3, 2, 2, 2)
    finally:
        await listener.close()
        await db.dispose()


async def test_plain_json_posts_and_unusual_ones_answer_as_strawberry_does(api):
    """graphql_view.py answers a plain JSON POST itself, refuses a malformed one,
    and hands anything else to strawberry's own path, body intact."""
    url = api.url + "/graphql"
    plain = await api.client.post(url, content=b'{"query": "{ __typename }"}', headers={
        **api.headers, "content-type": "application/json; charset=utf-8"})
    assert plain.status_code == 200 and plain.json()["data"] == {"__typename": "Query"}
    assert plain.headers["content-type"] == "application/json"
    # Variables of the wrong type: a 400 naming the field, as GraphQL JSON.
    odd = await api.client.post(url, json={"query": "{ __typename }", "variables": [1]},
                                headers=api.headers)
    assert odd.status_code == 400 and "variables" in odd.text
    assert odd.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # NaN is not JSON to the fast parser, but strawberry's parser reads it: same answer
    # as before the fast path existed.
    nan = await api.client.post(url, content=b'{"query": "{ __typename }", "variables": '
                                             b'{"x": NaN}}',
                                headers={**api.headers, "content-type": "application/json"})
    assert nan.status_code == 200 and nan.json()["data"] == {"__typename": "Query"}
    # A GraphQL error keeps its code and HTTP 200.
    bad = await api.client.post(url, json={"query": "{ nope }"}, headers=api.headers)
    assert bad.status_code == 200
    assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_requests_leave_no_reference_cycles_behind(database_url, monkeypatch):
    """Reads (a level, a page), writes and a refusal are freed by reference
    counting when they end: nothing of theirs is left for the cycle collector
    (graphql-core's executor used to hold itself in a cycle, and with it each
    operation's request and context)."""
    import gc

    from graphql.execution.executor import Executor
    from starlette.requests import Request

    from inventory.resolvers.context import Context

    app, key = _in_process_app(database_url, monkeypatch)
    per_request = (Executor, Request, Context)
    try:
        async with _api(app, key) as api:
            sku, code = await api.item(), await api.location()
            await api.receive(sku, code, 50)
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
