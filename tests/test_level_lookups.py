"""The stockLevel lookup of the database layer: one level goes on the driver
(db/driver.py), several in one SQLAlchemy statement; both answer alike, and a
lost connection fails like any SQLAlchemy statement."""
from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from inventory.db import queries
from inventory.db.engine import create_database


async def _tenant_of(db, sku: str):
    async with db.reader.connect() as conn:
        return (await conn.execute(text("SELECT tenant_id FROM items WHERE sku = :s"),
                                   {"s": sku})).scalar_one()


async def test_one_level_alone_and_in_a_batch_answer_alike(api, database_url):
    sku, code, other = await api.item(), await api.location(), await api.location()
    await api.receive(sku, code, 7)
    db = create_database(database_url)
    try:
        tenant = await _tenant_of(db, sku)
        key = (tenant, sku, code)
        async with db.reader.connect() as conn:
            alone = await queries.levels_by_codes(conn, [key])
            batch = await queries.levels_by_codes(conn, [key, (tenant, sku, other),
                                                         (tenant, "NO-SUCH-SKU", code)])
            missing = await queries.levels_by_codes(conn, [(tenant, "NO-SUCH-SKU", code)])
    finally:
        await db.dispose()
    assert alone == {key: batch[key]}
    assert (alone[key].sku, alone[key].location_code, alone[key].on_hand, alone[key].version) \
        == (sku, code, 7, 1)
    assert missing == {}


async def test_a_lost_connection_is_invalidated_and_raised_as_sqlalchemy_does(
        api, database_url):
    sku, code = await api.item(), await api.location()
    db = create_database(database_url)
    try:
        tenant = await _tenant_of(db, sku)
        async with db.reader.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with db.reader.connect() as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with pytest.raises(sa_exc.OperationalError) as raised:
                await queries.levels_by_codes(conn, [(tenant, sku, code)])
            assert raised.value.connection_invalidated
            assert conn.invalidated  # the pool will not hand this connection out again
        async with db.reader.connect() as conn:  # a fresh one answers
            assert await queries.levels_by_codes(conn, [(tenant, sku, code)]) == {}
    finally:
        await db.dispose()


async def test_a_failing_statement_keeps_a_healthy_connection(database_url):
    """An error that is not a lost connection (here a statement timeout) is
    raised as SQLAlchemy's class for it, and the connection stays in use."""
    from sqlalchemy import func, select

    from inventory.db.driver import DriverStatement

    slow = DriverStatement(select(func.pg_sleep(1)))
    db = create_database(database_url)
    try:
        async with db.reader.connect() as conn:
            await conn.execute(text("SET statement_timeout = '20ms'"))
            with pytest.raises(sa_exc.OperationalError) as raised:
                await slow.rows(conn, {})
            assert "statement timeout" in str(raised.value.orig)
            assert not raised.value.connection_invalidated and not conn.invalidated
            await conn.execute(text("RESET statement_timeout"))
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await db.dispose()
