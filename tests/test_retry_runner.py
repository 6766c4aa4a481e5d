"""The retry runner against real PostgreSQL: a real serialization failure is
retried, exhaustion and an unreachable database give typed, retryable errors."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from inventory.db import retry
from inventory.db.engine import PoolSettings, create_database
from inventory.db.retry import (
    DatabaseUnavailable,
    RetriesExhausted,
    RetryPolicy,
    run_transaction,
)
from inventory.domain.commands import ReceiveStock
from inventory.domain.errors import ErrorCode
from inventory.service.context import Ctx
from inventory.service.stock import receive_stock


@pytest.fixture
async def db(database_url):
    database = create_database(database_url, PoolSettings(size=4, max_overflow=0, timeout_s=2))
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS retry_probe (id int PRIMARY KEY, n bigint)"))
        await conn.execute(text("INSERT INTO retry_probe VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0"))
    yield database
    await database.dispose()


async def _increment_after(conn, gate: asyncio.Event, wait_for: asyncio.Event | None):
    """Read, let the other transaction read too, then write: a write skew that
    SERIALIZABLE must refuse for one of the two."""
    n = (await conn.execute(text("SELECT n FROM retry_probe WHERE id = 1"))).scalar()
    gate.set()
    if wait_for is not None:
        await wait_for.wait()
    await conn.execute(text("UPDATE retry_probe SET n = :n WHERE id = 1"), {"n": n + 1})
    return n


async def test_real_serialization_failure_is_retried(db):
    seen: list[tuple[int, str]] = []
    retry.retry_listeners.append(lambda attempt, state: seen.append((attempt, state)))
    try:
        a_read, b_read = asyncio.Event(), asyncio.Event()
        attempts = {"a": 0, "b": 0}

        async def work_a(conn):
            attempts["a"] += 1
            return await _increment_after(conn, a_read, b_read if attempts["a"] == 1 else None)

        async def work_b(conn):
            attempts["b"] += 1
            return await _increment_after(conn, b_read, a_read if attempts["b"] == 1 else None)

        await asyncio.gather(run_transaction(db, work_a), run_transaction(db, work_b))
    finally:
        retry.retry_listeners.pop()
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM retry_probe"))).scalar() == 2
    assert attempts["a"] + attempts["b"] == 3  # exactly one of them ran twice
    assert seen and seen[0][1] == "40001"


async def test_exhausted_retries_raise_typed_error(db):
    async def always_conflicts(conn):
        await conn.execute(text("SELECT 1"))
        raise retry.RetryTransaction()

    db.retry_policy = RetryPolicy(max_attempts=3, base_delay_s=0.001)
    before = retry.stats.exhausted
    with pytest.raises(RetriesExhausted) as info:
        await run_transaction(db, always_conflicts)
    assert info.value.attempts == 3
    assert retry.stats.exhausted == before + 1


async def test_unreachable_database_is_unavailable_after_bounded_attempts(database_url):
    """Nothing listens on the port: the runner tries to connect as often as its
    policy allows (here twice: one retry), then answers UNAVAILABLE, retryable."""
    dead = create_database(
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", PoolSettings(size=1, timeout_s=1)
    )
    dead.retry_policy = RetryPolicy(max_connection_attempts=2, base_delay_s=0.001)
    seen: list[tuple[int, str]] = []
    retry.retry_listeners.append(lambda attempt, state: seen.append((attempt, state)))
    try:
        with pytest.raises(DatabaseUnavailable):
            await run_transaction(dead, lambda conn: conn.execute(text("SELECT 1")))
        assert seen == [(1, "connection")]
        result = await receive_stock(Ctx(db=dead), ReceiveStock("S-1", "L-1", 1), "k")
        assert result.code is ErrorCode.UNAVAILABLE and result.retry_after_ms
    finally:
        retry.retry_listeners.pop()
        await dead.dispose()


async def test_write_refused_by_a_read_only_node_is_retried_like_a_lost_connection(
        db, database_url):
    """A leader demoted by a failover refuses writes with 25006 (as any standby or
    read-only session does). The write was not applied: it is retried like a lost
    connection, the refusing connections are not reused, and with no writable
    node in reach the caller gets DatabaseUnavailable, not a crash."""
    separator = "&" if "?" in database_url else "?"
    read_only = database_url + separator + "options=-c%20default_transaction_read_only%3Don"
    refusing = create_database(read_only, PoolSettings(size=2, max_overflow=0, timeout_s=2))
    seen: list[str] = []
    listener = lambda attempt, state: seen.append(state)  # noqa: E731
    retry.retry_listeners.append(listener)
    try:
        used = []

        async def write(conn):
            used.append((await conn.get_raw_connection()).driver_connection)
            await conn.execute(text("UPDATE retry_probe SET n = n + 1 WHERE id = 1"))

        for single_statement in (False, True):
            seen.clear()
            used.clear()
            with pytest.raises(DatabaseUnavailable, match="no writable database"):
                await run_transaction(refusing, write, single_statement=single_statement,
                                      policy=RetryPolicy(max_attempts=10))
            assert seen == ["25006", "25006"], seen  # 3 attempts, as for a lost connection
            # Each attempt had a new connection; those that hit the node were closed.
            assert len(used) == 3 and len({id(c) for c in used}) == 3
            assert all(c.closed for c in used)
    finally:
        retry.retry_listeners.remove(listener)
        await refusing.dispose()
