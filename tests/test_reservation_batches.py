"""Group commit of single-line reservations on a busy level (service/batches.py),
through the real HTTP server: batches form, and every answer is the one a
request would have had alone, in arrival order."""
from __future__ import annotations

import asyncio
import contextlib
import re

import httpx
from sqlalchemy import text

from .support import RESERVATION_FIELDS, assert_invariants, unique

FIELDS = RESERVATION_FIELDS + " ... on InsufficientStockError { shortages { requested available } }"


@contextlib.contextmanager
def level_held(sync_engine, sku: str, code: str):
    """Holds the level's row lock (as a slow writer would) until the block ends,
    so that the requests sent meanwhile queue up and must form batches: without
    it, a fast server can finish each reservation before the next arrives."""
    with sync_engine.begin() as conn:
        conn.execute(text(
            "SELECT 1 FROM stock_levels sl JOIN items i ON i.id = sl.item_id "
            "JOIN locations l ON l.id = sl.location_id "
            "WHERE i.sku = :s AND l.code = :c FOR UPDATE OF sl"), {"s": sku, "c": code})
        yield


async def _sent_while_held(sync_engine, sku: str, code: str, requests) -> list:
    with level_held(sync_engine, sku, code):
        tasks = [asyncio.ensure_future(request) for request in requests]
        await asyncio.sleep(1.0)  # every request is in the server, queued behind the lock
    return await asyncio.gather(*tasks)


def _batched_so_far(url: str) -> float:
    body = httpx.get(url + "/metrics", timeout=10).text
    match = re.search(r"^inventory_reservations_batched_total (\S+)$", body, re.M)
    return float(match.group(1)) if match else 0.0


async def test_flash_sale_batches_sell_exactly_the_stock(api, sync_engine):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 37)
    before = _batched_so_far(api.url)

    async def reserve(quantity: int) -> dict:
        body = {"lines": [{"sku": sku, "locationCode": code, "quantity": quantity}]}
        return await api.mutate("reserveStock", body, FIELDS)

    # 120 concurrent requests for 1, 2 or 3 units: 240 units asked, 37 there.
    quantities = [1 + i % 3 for i in range(120)]
    results = await _sent_while_held(sync_engine, sku, code, [reserve(q) for q in quantities])

    kinds = [r["__typename"] for r in results]
    assert set(kinds) == {"Reservation", "InsufficientStockError"}, kinds
    sold = sum(q for q, r in zip(quantities, results) if r["__typename"] == "Reservation")
    level = await api.level(sku, code)
    assert level["reserved"] == sold and level["onHand"] == 37
    # Every unit that could be sold was: what is left is smaller than every refused
    # request (1 unit is asked often enough that nothing should be left).
    refused = [q for q, r in zip(quantities, results) if r["__typename"] != "Reservation"]
    assert level["available"] < min(refused)
    assert level["version"] == 1 + kinds.count("Reservation")  # one version per reservation
    for q, r in zip(quantities, results):
        if r["__typename"] == "InsufficientStockError":
            assert r["shortages"][0]["requested"] == q
            assert r["shortages"][0]["available"] < q
    ids = [r["id"] for r in results if r["__typename"] == "Reservation"]
    assert len(set(ids)) == len(ids)
    assert _batched_so_far(api.url) > before, "no batch formed: the test did not test batching"
    assert_invariants(sync_engine)


async def test_batched_requests_keep_their_idempotency_keys(api, sync_engine):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 1000)
    body = {"lines": [{"sku": sku, "locationCode": code, "quantity": 2}]}
    keys = [unique("flash") for _ in range(30)]
    before = _batched_so_far(api.url)
    # Each key sent three times at once, interleaved with 30 requests without a key.
    sends = [{**body, "idempotencyKey": k} for k in keys for _ in range(3)] + [body] * 30
    results = await _sent_while_held(sync_engine, sku, code, [
        api.mutate("reserveStock", s, RESERVATION_FIELDS) for s in sends])
    assert all(r["__typename"] == "Reservation" for r in results), results
    by_key: dict[str, set] = {}
    for sent, result in zip(sends, results):
        if "idempotencyKey" in sent:
            by_key.setdefault(sent["idempotencyKey"], set()).add(result["id"])
    assert all(len(ids) == 1 for ids in by_key.values()), "a key was applied twice"
    assert (await api.level(sku, code))["reserved"] == 2 * (30 + 30)
    assert _batched_so_far(api.url) > before, "no batch formed"
    # The same key with a different request is refused, also inside a batch.
    other = {"lines": [{"sku": sku, "locationCode": code, "quantity": 5}],
             "idempotencyKey": keys[0]}
    reused = await asyncio.gather(*[
        api.mutate("reserveStock", other, RESERVATION_FIELDS) for _ in range(3)])
    assert {r.get("code") for r in reused} == {"IDEMPOTENCY_KEY_REUSED"}
    assert_invariants(sync_engine)


async def test_keys_used_before_a_batch_replay_inside_it(api, sync_engine):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 5)
    line = {"sku": sku, "locationCode": code, "quantity": 5}
    first_key, short_key = unique("k"), unique("k")
    original = await api.mutate("reserveStock", {"lines": [line], "idempotencyKey": first_key},
                                FIELDS)
    assert original["__typename"] == "Reservation"
    short = await api.mutate("reserveStock", {"lines": [line], "idempotencyKey": short_key},
                             FIELDS)
    assert short["__typename"] == "InsufficientStockError"  # stored with its key
    await api.receive(sku, code, 100)  # enough now, but a replay must not change its answer

    one = {"lines": [{**line, "quantity": 1}]}
    sends = ([one] * 10 + [{**one, "idempotencyKey": first_key},  # different request, same key
                           {"lines": [line], "idempotencyKey": first_key},  # the same request
                           {"lines": [line], "idempotencyKey": short_key}] + [one] * 10)
    results = await asyncio.gather(*[api.mutate("reserveStock", s, FIELDS) for s in sends])
    assert results[10].get("code") == "IDEMPOTENCY_KEY_REUSED"
    assert results[11]["__typename"] == "Reservation" and results[11]["id"] == original["id"]
    assert results[12]["__typename"] == "InsufficientStockError"
    assert sum(r["__typename"] == "Reservation" for r in results) == 21
    assert (await api.level(sku, code))["reserved"] == 5 + 20
    assert_invariants(sync_engine)


async def test_unknown_sku_in_a_batch_is_not_stored_under_its_key(api, sync_engine):
    sku, code = unique("LATE"), await api.location()
    key = unique("k")
    line = {"sku": sku, "locationCode": code, "quantity": 1}
    results = await asyncio.gather(*[
        api.mutate("reserveStock", {"lines": [line], "idempotencyKey": key if n == 5 else None},
                   FIELDS) for n in range(12)])
    assert {r.get("code") for r in results} == {"NOT_FOUND"}
    await api.item(sku)
    await api.receive(sku, code, 3)
    again = await api.mutate("reserveStock", {"lines": [line], "idempotencyKey": key}, FIELDS)
    assert again["__typename"] == "Reservation"  # the key was still free
    assert_invariants(sync_engine)


async def test_equal_keyless_reservations_are_one_statement_per_batch(
        database_url, sync_engine, monkeypatch):
    """The flash-sale batch (no keys, one quantity) is decided and written by one
    statement in autocommit that also announces each change; the stock sells out
    exactly, refusals say what was left, the ledger chains."""
    import psycopg
    from sqlalchemy import event

    from inventory.app import create_app
    from inventory.config import Settings
    from inventory.db.changes import CHANNEL, decode

    from .support import Api, create_api_key

    monkeypatch.setenv("INVENTORY_RATE_READ", "0")
    monkeypatch.setenv("INVENTORY_RATE_WRITE", "0")
    key = create_api_key(database_url)
    app = create_app(Settings(database_url=database_url, sweep_interval_s=0, graphiql=False))
    db = app.state.ctx.db
    batch_statements: list[bool] = []
    event.listen(db.write_engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: batch_statements.append(
                     conn.connection.driver_connection.autocommit)
                 if "generate_series" in statement and "FOR UPDATE" in statement else None)
    listener = await psycopg.AsyncConnection.connect(
        database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://app", timeout=30) as client:
            api = Api(client, "http://app", api_key=key)
            sku, code = await api.item(), await api.location()
            await api.receive(sku, code, 37)
            await listener.execute(f"LISTEN {CHANNEL}")
            body = {"lines": [{"sku": sku, "locationCode": code, "quantity": 2}]}
            results = await _sent_while_held(sync_engine, sku, code, [
                api.mutate("reserveStock", body, FIELDS) for _ in range(60)])
            level = await api.level(sku, code)
        made = [r for r in results if r["__typename"] == "Reservation"]
        assert len(made) == 18 and level["reserved"] == 36 and level["version"] == 19
        refused = [r for r in results if r["__typename"] != "Reservation"]
        assert all(r["shortages"][0] == {"requested": 2, "available": 1} for r in refused)
        assert batch_statements and all(batch_statements), batch_statements
        async with db.reader.connect() as conn:
            item_id = (await conn.exec_driver_sql(
                "SELECT id FROM items WHERE sku = %(s)s", {"s": sku})).scalar()
        versions: list[int] = []
        async for note in listener.notifies(timeout=5):
            for change in decode(note.payload):
                if change.item_id == item_id and change.kind == "RESERVE":
                    assert (change.on_hand, change.reserved) == (37, 2 * (change.version - 1))
                    versions.append(change.version)
            if len(versions) == 18:
                break
        assert sorted(versions) == list(range(2, 20))
        assert_invariants(sync_engine)
    finally:
        await listener.close()
        await db.dispose()
