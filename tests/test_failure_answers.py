"""The answers a client must handle when something fails, provoked for real:
contention beyond the retries (TRANSACTION_CONFLICT), a connection lost during
COMMIT (RESULT_UNKNOWN without an idempotency key; with one the retry settles
it) and an unexpected error (INTERNAL, with an id that is in the server log)."""
from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from inventory.db import migrate

from .support import create_database, in_process_app, receive_after_a_conflict, unique

LEVEL_FIELDS = "... on StockLevel { onHand version }"
# A COMMIT that waits: a deferred constraint trigger on ledger rows sleeps at
# commit time while `hang_commit` has a row.
HANG_AT_COMMIT = """
CREATE TABLE IF NOT EXISTS hang_commit (on_ boolean);
CREATE OR REPLACE FUNCTION hang_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM hang_commit) THEN PERFORM pg_sleep(120); END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS hang_at_commit ON movements;
CREATE CONSTRAINT TRIGGER hang_at_commit AFTER INSERT ON movements
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hang_at_commit();
"""


@pytest.fixture(scope="module")
def private_server(pg_base_url, start_api_server):
    """A server alone on its own database (no sweeper), whose schema these
    tests may change."""
    url = create_database(pg_base_url, "inventory_failures")
    migrate.upgrade(url)
    with start_api_server("failures", database_url=url, INVENTORY_SWEEP_INTERVAL="0") as server:
        yield server


async def test_contention_beyond_the_retries_is_transaction_conflict(
        database_url, monkeypatch, graphql, stocked_level):
    """One attempt allowed and a real serialization failure: TRANSACTION_CONFLICT
    with a retry hint, nothing written; the same request with its key then lands."""
    app, key = in_process_app(database_url, monkeypatch, settings={"tx_max_attempts": 1})
    try:
        client = graphql(app=app, api_key=key, database_url=database_url)
        sku, code = await stocked_level(5, client=client)
        idempotency_key = unique("k")
        response = await receive_after_a_conflict(client, database_url, sku, code,
                                                  idempotency_key)
        conflict = response.json()["data"]["receiveStock"]
        assert conflict["__typename"] == "TransientError", conflict
        assert conflict["code"] == "TRANSACTION_CONFLICT" and conflict["retryAfterMs"] > 0
        assert (await client.level(sku, code))["onHand"] == 5
        again = await client.mutate("receiveStock", {
            "sku": sku, "locationCode": code, "quantity": 1,
            "idempotencyKey": idempotency_key}, LEVEL_FIELDS)
        assert again == {"__typename": "StockLevel", "onHand": 6, "version": 2}, again
    finally:
        await app.state.ctx.db.dispose()


async def _commit_waiting(admin, mutation: asyncio.Future) -> int:
    """The pid of the backend whose COMMIT sleeps in the trigger."""
    deadline = time.monotonic() + 30
    while True:
        row = await (await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = 'COMMIT' AND wait_event = 'PgSleep'")).fetchone()
        if row:
            return row[0]
        assert not mutation.done(), mutation.result()
        assert time.monotonic() < deadline, "no COMMIT waited in the trigger"
        await asyncio.sleep(0.02)


async def test_connection_lost_during_commit(private_server, graphql, stocked_level):
    """The backend is terminated while its COMMIT runs. Without a key the
    outcome is unknown to the service: RESULT_UNKNOWN (here nothing was
    written: the trigger runs before the commit completes). With a key the
    service retries, and the request lands once."""
    client = graphql(private_server)
    sku, code = await stocked_level(5, client=client)
    libpq = private_server.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    async with await psycopg.AsyncConnection.connect(libpq, autocommit=True) as admin:
        await admin.execute(HANG_AT_COMMIT)
        try:
            await admin.execute("INSERT INTO hang_commit VALUES (true)")
            body = {"sku": sku, "locationCode": code, "quantity": 1}
            keyless = asyncio.ensure_future(client.mutate("receiveStock", body))
            await admin.execute("SELECT pg_terminate_backend(%s)",
                                (await _commit_waiting(admin, keyless),))
            lost = await keyless
            assert (lost["__typename"], lost["code"]) == ("TransientError", "RESULT_UNKNOWN")
            assert (await client.level(sku, code))["onHand"] == 5

            keyed_body = {**body, "idempotencyKey": unique("k")}
            keyed = asyncio.ensure_future(client.mutate("receiveStock", keyed_body,
                                                        LEVEL_FIELDS))
            pid = await _commit_waiting(admin, keyed)
            await admin.execute("DELETE FROM hang_commit")  # the retry commits at once
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            settled = await keyed
            assert settled == {"__typename": "StockLevel", "onHand": 6, "version": 2}, settled
            assert await client.mutate("receiveStock", keyed_body, LEVEL_FIELDS) == settled
            assert (await client.level(sku, code))["onHand"] == 6
        finally:
            await admin.execute("DROP TRIGGER IF EXISTS hang_at_commit ON movements")
            await admin.execute("DELETE FROM hang_commit")


async def test_unexpected_error_is_internal_with_an_id_in_the_log(private_server, graphql):
    """A failure the service does not expect (here a column gone from under it)
    is masked as INTERNAL with an error id; the id is in the server log, the
    database's message is not in the answer."""
    client = graphql(private_server)
    code = await client.location()
    libpq = private_server.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    query = "query($c: String!) { location(code: $c) { code name } }"
    async with await psycopg.AsyncConnection.connect(libpq, autocommit=True) as admin:
        await admin.execute("ALTER TABLE locations RENAME COLUMN name TO name_gone")
        try:
            response = await client.post(query, {"c": code})
        finally:
            await admin.execute("ALTER TABLE locations RENAME COLUMN name_gone TO name")
    assert response.status_code == 200, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL", error
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"internal error (id {error_id})"
    assert "name_gone" not in response.text and "psycopg" not in response.text
    deadline = time.monotonic() + 10
    while error_id not in private_server.log_path.read_text():
        assert time.monotonic() < deadline, "the error id is not in the server log"
        await asyncio.sleep(0.05)
    assert (await client.gql(query, {"c": code}))["location"]["code"] == code
