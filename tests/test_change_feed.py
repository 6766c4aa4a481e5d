"""The change feed is complete and ordered: a writer that stays open while later
ones commit holds back what comes after it, and nothing is lost or reordered."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from inventory.db import ledger
from inventory.db.changes import XminReader
from inventory.db.engine import create_database
from inventory.domain.models import MovementKind

from .live_support import WsClient


@pytest.fixture(scope="module")
def feed_server(start_api_server):
    with start_api_server("api-feed") as server:
        yield server


def _held_writer(db):
    """A write transaction to hold open. READ COMMITTED: held for seconds beside
    SERIALIZABLE writers, it could otherwise fail at commit with 40001 (a
    predicate-lock conflict), which is not what these tests are about."""
    return db.write_engine.execution_options(isolation_level="READ COMMITTED").connect()


async def _ids(db, sku: str, code: str):
    async with db.reader.connect() as conn:
        row = (await conn.execute(text(
            "SELECT i.tenant_id, i.id, l.id FROM items i JOIN locations l "
            "ON l.tenant_id = i.tenant_id AND l.code = :code WHERE i.sku = :sku"),
            {"sku": sku, "code": code})).one()
    return tuple(row)


async def test_open_writer_holds_back_later_commits_then_all_arrive_in_order(
        api, feed_server, database_url):
    """Level A is changed by a transaction held open for 30 poll intervals while
    level B commits five changes (later transactions). Nothing after the open
    writer is delivered until it commits; then every change arrives, each
    level's versions in order, none twice."""
    code = await api.location()
    sku_a, sku_b, probe = await api.item(), await api.item(), await api.item()
    for sku in (sku_a, sku_b, probe):
        await api.receive(sku, code, 10)
    db = create_database(database_url)
    try:
        tenant, item_a, location = await _ids(db, sku_a, code)
        async with WsClient(feed_server.url) as ws:
            await ws.subscribe_ready((probe, code), {"skus": [sku_a, sku_b]})
            async with _held_writer(db) as held:
                await held.begin()
                await ledger.change_level(held, tenant, item_a, location, MovementKind.ADJUST,
                                          {"on_hand": 1})
                for _ in range(5):  # later transactions, committed while A is open
                    await api.mutate("adjustStock",
                                     {"sku": sku_b, "locationCode": code, "delta": -1})
                # The writer is held open for 30 poll intervals (the feed reads
                # every 0.05 s): nothing may pass it meanwhile.
                with pytest.raises((asyncio.TimeoutError, TimeoutError)):
                    await ws.receive(timeout=1.5)
                await held.commit()
            await api.mutate("adjustStock", {"sku": sku_a, "locationCode": code, "delta": 1})
            got = await ws.changes(7)
            # A marker: nothing (no change twice) comes before it.
            await api.mutate("adjustStock", {"sku": sku_b, "locationCode": code, "delta": 1})
            (marker,) = await ws.changes(1)
            assert (marker["sku"], marker["version"]) == (sku_b, 7), marker
    finally:
        await db.dispose()
    by_level = {sku: [(c["version"], c["onHand"]) for c in got if c["sku"] == sku]
                for sku in (sku_a, sku_b)}
    assert by_level == {sku_a: [(2, 11), (3, 12)],
                        sku_b: [(v, 11 - v) for v in range(2, 7)]}, got


async def test_reader_yields_nothing_past_an_open_writer_and_pages_in_order(
        api, database_url):
    """The ledger reader directly: its cursor stops at the open writer; once that
    commits, one batch holds every change (read in pages smaller than the
    batch), sorted by level and version."""
    code = await api.location()
    sku_a, sku_b = await api.item(), await api.item()
    await api.receive(sku_a, code, 10)
    await api.receive(sku_b, code, 10)
    db = create_database(database_url)
    reader = XminReader(database_url)
    reader.PAGE = 2
    try:
        tenant, item_a, location = await _ids(db, sku_a, code)
        _, item_b, _ = await _ids(db, sku_b, code)
        start = await reader.start()
        async with _held_writer(db) as held:
            await held.begin()
            await ledger.change_level(held, tenant, item_a, location, MovementKind.ADJUST,
                                      {"on_hand": 1})
            for _ in range(4):
                await api.mutate("adjustStock", {"sku": sku_b, "locationCode": code, "delta": 1})
            before = await reader.read(start, None)
            assert [c for c in before.changes if c.item_id in (item_a, item_b)] == []
            assert int(before.cursor) <= int(start) + 1
            await held.commit()
        mine: list = []
        cursor = start
        deadline = asyncio.get_running_loop().time() + 10
        while len(mine) < 5 and asyncio.get_running_loop().time() < deadline:
            batch = await reader.read(cursor, [tenant])
            mine += [c for c in batch.changes if c.item_id in (item_a, item_b)]
            cursor = batch.cursor
    finally:
        await reader.close()
        await db.dispose()
    assert [(c.item_id, c.version) for c in mine] == sorted(
        [(item_a, 2)] + [(item_b, v) for v in range(2, 6)],
        key=lambda pair: ((tenant, pair[0], location), pair[1]))
