"""Group commit of single-line reservations on a busy level (service/hot_levels.py),
through the real HTTP server: batches form, and every answer is the one a
request would have had alone, in arrival order."""
from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy import text

from .support import RESERVATION_FIELDS, Metrics, RoundTrips, in_process_app, unique

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


async def _sent_while_held(api, sync_engine, sku: str, code: str, requests) -> list:
    """Sends `requests` (coroutines) while the level is held; lets go once the
    server is working on them: a statement of theirs waits for the lock, and a
    request sent after all of them (/healthz) has been answered."""
    with level_held(sync_engine, sku, code):
        tasks = [asyncio.ensure_future(request) for request in requests]
        deadline = time.monotonic() + 60
        while True:
            with sync_engine.connect() as conn:
                waiting = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar()
            if waiting:
                break
            assert not any(t.done() for t in tasks), [t.result() for t in tasks if t.done()]
            assert time.monotonic() < deadline, "no request reached the held level"
            await asyncio.sleep(0.02)
        assert (await api.http("GET", "/healthz")).status_code == 200
    return await asyncio.gather(*tasks)


async def test_flash_sale_batches_sell_exactly_the_stock(api, sync_engine, stocked_level,
                                                        scrape_metrics):
    sku, code = await stocked_level(37)
    before = scrape_metrics(api.url)

    async def reserve(quantity: int) -> dict:
        body = {"lines": [{"sku": sku, "locationCode": code, "quantity": quantity}]}
        return await api.mutate("reserveStock", body, FIELDS)

    # 120 concurrent requests for 1, 2 or 3 units: 240 units asked, 37 there.
    quantities = [1 + i % 3 for i in range(120)]
    results = await _sent_while_held(api, sync_engine, sku, code, [reserve(q) for q in quantities])

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
    assert scrape_metrics(api.url).increase(before, "inventory_reservations_batched_total") > 0, \
        "no batch formed: the test did not test batching"


async def test_batched_requests_keep_their_idempotency_keys(api, sync_engine, stocked_level,
                                                            scrape_metrics):
    sku, code = await stocked_level(1000)
    body = {"lines": [{"sku": sku, "locationCode": code, "quantity": 2}]}
    keys = [unique("flash") for _ in range(30)]
    before = scrape_metrics(api.url)
    # Each key sent three times at once, interleaved with 30 requests without a key.
    sends = [{**body, "idempotencyKey": k} for k in keys for _ in range(3)] + [body] * 30
    results = await _sent_while_held(api, sync_engine, sku, code, [
        api.mutate("reserveStock", s, RESERVATION_FIELDS) for s in sends])
    assert all(r["__typename"] == "Reservation" for r in results), results
    by_key: dict[str, set] = {}
    for sent, result in zip(sends, results):
        if "idempotencyKey" in sent:
            by_key.setdefault(sent["idempotencyKey"], set()).add(result["id"])
    assert all(len(ids) == 1 for ids in by_key.values()), "a key was applied twice"
    assert (await api.level(sku, code))["reserved"] == 2 * (30 + 30)
    assert scrape_metrics(api.url).increase(before, "inventory_reservations_batched_total") > 0, \
        "no batch formed"
    # The same key with a different request is refused, also inside a batch.
    other = {"lines": [{"sku": sku, "locationCode": code, "quantity": 5}],
             "idempotencyKey": keys[0]}
    reused = await asyncio.gather(*[
        api.mutate("reserveStock", other, RESERVATION_FIELDS) for _ in range(3)])
    assert {r.get("code") for r in reused} == {"IDEMPOTENCY_KEY_REUSED"}


async def test_keys_used_before_a_batch_replay_inside_it(api, sync_engine, stocked_level):
    sku, code = await stocked_level(5)
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


async def test_equal_keyless_reservations_are_one_statement_per_batch(
        database_url, sync_engine, monkeypatch, stocked_level, graphql):
    """The flash-sale batch (no keys, one quantity) is decided and written by
    one statement: the app's round trips to the database are one per batch plus
    one per request answered alone. The stock sells out exactly, refusals say
    what was left, the ledger chains, and the change feed reads every change."""
    from inventory.db.changes import XminReader

    from .live_support import ledger_changes

    app, key = in_process_app(database_url, monkeypatch)
    db = app.state.ctx.db
    reader = XminReader(database_url)
    try:
        api = graphql(app=app, api_key=key, database_url=database_url)
        sku, code = await stocked_level(37, client=api)
        cursor = await reader.start()
        body = {"lines": [{"sku": sku, "locationCode": code, "quantity": 2}]}
        before = Metrics((await api.http("GET", "/metrics")).text)
        with RoundTrips(db.write_engine) as writes, RoundTrips(db.engine) as reads:
            results = await _sent_while_held(api, sync_engine, sku, code, [
                api.mutate("reserveStock", body, FIELDS) for _ in range(60)])
        after = Metrics((await api.http("GET", "/metrics")).text)
        batches = after.increase(before, "inventory_reservation_batches_total")
        batched = after.increase(before, "inventory_reservations_batched_total")
        assert batches >= 1 and batched >= 2 * batches, (batches, batched)
        assert writes.count == batches + (60 - batched), (writes.count, batches, batched)
        assert reads.count == 0
        level = await api.level(sku, code)
        made = [r for r in results if r["__typename"] == "Reservation"]
        assert len(made) == 18 and level["reserved"] == 36 and level["version"] == 19
        refused = [r for r in results if r["__typename"] != "Reservation"]
        assert all(r["shortages"][0] == {"requested": 2, "available": 1} for r in refused)
        async with db.reader.connect() as conn:
            item_id = (await conn.exec_driver_sql(
                "SELECT id FROM items WHERE sku = %(s)s", {"s": sku})).scalar()
        got = await ledger_changes(
            reader, cursor, lambda c: c.item_id == item_id and c.kind == "RESERVE", 18)
        assert all((c.on_hand, c.reserved) == (37, 2 * (c.version - 1)) for c in got), got
        versions = [c.version for c in got]
        assert versions == list(range(2, 20))
    finally:
        await reader.close()
        await db.dispose()
