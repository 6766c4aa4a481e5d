"""`inventory keys create|list|revoke` against the test database, used for real
against the running API; migration 0002 re-runs cleanly."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid

from sqlalchemy import create_engine, inspect, text

from inventory.db import migrate

from inventory.db import api_keys

from ..support import ROOT, create_api_key, create_database, in_process_app


def _cli(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INVENTORY_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "inventory.cli", "keys", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


async def test_keys_create_list_revoke(database_url, secure_api, sync_engine):
    tenant = str(uuid.uuid4())
    created = _cli("create", "--tenant", tenant, "--scopes", "inventory:read,inventory:admin",
                   "--name", "warehouse sync", url=database_url)
    assert created.returncode == 0, created.stderr
    key = re.search(r"^(inv_\S+)$", created.stdout, re.M).group(1)
    key_id = re.search(r"Created API key (\S+)", created.stdout).group(1)
    assert "shown only this once" in created.stdout
    with sync_engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, scopes FROM api_keys WHERE id = :i"),
                              {"i": key_id}).one()
    assert key.split("_", 2)[2] not in stored.key_hash  # only the hash is stored
    assert stored.scopes == "inventory:admin inventory:read"

    client = secure_api.with_key(key)
    code = await client.location(f"CLI-{uuid.uuid4().hex[:8]}")
    assert await client.gql("query($c: String!) { location(code: $c) { code } }",
                            {"c": code}) == {"location": {"code": code}}

    listing = _cli("list", "--tenant", tenant, url=database_url)
    assert key_id in listing.stdout and "active" in listing.stdout
    assert key.split("_", 2)[2] not in listing.stdout  # never the secret

    revoked = _cli("revoke", key_id, url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _cli("list", "--tenant", tenant, url=database_url).stdout
    assert (await client.post("{ __typename }")).status_code == 401  # cache is off here
    again = _cli("revoke", key_id, url=database_url)
    assert again.returncode == 1 and "no active key" in again.stderr

    bad = _cli("create", "--tenant", tenant, "--scopes", "inventory:root", "--name", "x",
               url=database_url)
    assert bad.returncode == 2 and "scopes must be among" in bad.stderr


def test_migration_0002_is_idempotent(pg_base_url):
    url = create_database(pg_base_url, "inventory_0002")
    migrate.upgrade(url, "0001")
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        # Re-running the DDL (as after a partial failure on CockroachDB) changes nothing.
        import importlib.util
        path = migrate.migrations_dir() / "versions" / "0002_api_keys_and_actor.py"
        spec = importlib.util.spec_from_file_location("revision_0002", path)
        revision = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(revision)
        with engine.begin() as conn:
            for statement in revision.STATEMENTS:
                conn.execute(text(statement))
        columns = {c["name"] for c in inspect(engine).get_columns("movements")}
        assert "actor" in columns
        assert inspect(engine).get_pk_constraint("api_keys")["constrained_columns"] == \
            ["tenant_id", "id"]
    finally:
        engine.dispose()


async def test_a_revoked_key_works_only_while_the_cache_holds_it(
        database_url, sync_engine, monkeypatch, graphql):
    """INVENTORY_AUTH_CACHE_SECONDS (3 here): a key verified just before its
    revocation keeps working from the cache, and is refused once the cached
    verification runs out (within a deadline). If the machine stalled so long
    that the cache ran out before the second request, the round is repeated
    with a new key rather than judged."""
    cache_s = 3.0
    app, _ = in_process_app(database_url, monkeypatch,
                            INVENTORY_AUTH_CACHE_SECONDS=str(cache_s))
    try:
        for _ in range(3):
            name = f"revoked while cached {uuid.uuid4()}"
            key = create_api_key(database_url, ("inventory:read",), uuid.uuid4(), name)
            client = graphql(app=app, api_key=key, database_url=database_url)
            started = time.monotonic()
            assert (await client.post("{ __typename }")).status_code == 200  # now cached
            with sync_engine.begin() as conn:
                key_id = conn.execute(text("SELECT id FROM api_keys WHERE name = :n"),
                                      {"n": name}).scalar_one()
                assert api_keys.revoke_key(conn, key_id) == 1
            cached = await client.post("{ __typename }")
            if time.monotonic() - started < cache_s:
                break
        assert cached.status_code == 200  # revoked, but still in the cache
        deadline = time.monotonic() + 30
        while (await client.post("{ __typename }")).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key was never refused"
            await asyncio.sleep(0.1)
    finally:
        await app.state.ctx.db.dispose()
