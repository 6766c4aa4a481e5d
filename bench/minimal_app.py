"""The Python HTTP floor for bench/run.py: starlette + psycopg running the same
SQL as the inventory service for each scenario, with none of the product
around it (no GraphQL, no SQLAlchemy, no idempotency, no validation beyond
what the SQL needs). NOT part of the product.

    INVENTORY_DATABASE_URL=postgresql://... uvicorn bench.minimal_app:app --workers 2

Endpoints take tiny JSON bodies: /level {"sku","code"}, /page {"prefix"},
/reserve {"lines": [[sku, code], ...]} (quantity 1 each, as the benchmark sends;
one line runs the service's single-statement reservation, several lines its
lock-then-write path).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
from uuid import UUID, uuid4

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TENANT = UUID(os.environ.get("BENCH_TENANT", "00000000-0000-0000-0000-000000000001"))
POOL_SIZE = int(os.environ.get("INVENTORY_POOL_SIZE", "10"))
MAX_TRIES = 10

LEVEL = """
SELECT stock_levels.item_id, stock_levels.location_id, items.sku, locations.code,
       stock_levels.on_hand, stock_levels.reserved, stock_levels.version, stock_levels.updated_at
FROM stock_levels
JOIN items ON items.tenant_id = stock_levels.tenant_id AND items.id = stock_levels.item_id
JOIN locations ON locations.tenant_id = stock_levels.tenant_id
              AND locations.id = stock_levels.location_id
WHERE stock_levels.tenant_id = %s AND items.sku = %s AND locations.code = %s"""
PAGE_ITEMS = """
SELECT items.tenant_id, items.id, items.sku, items.name, items.reorder_point, items.created_at
FROM items WHERE items.tenant_id = %s AND items.sku LIKE %s ORDER BY items.sku LIMIT 51"""
PAGE_LEVELS = """
SELECT stock_levels.item_id, stock_levels.location_id, items.sku, locations.code,
       stock_levels.on_hand, stock_levels.reserved, stock_levels.version, stock_levels.updated_at
FROM stock_levels
JOIN items ON items.tenant_id = stock_levels.tenant_id AND items.id = stock_levels.item_id
JOIN locations ON locations.tenant_id = stock_levels.tenant_id
              AND locations.id = stock_levels.location_id
WHERE stock_levels.tenant_id = %s AND stock_levels.item_id = ANY(%s) ORDER BY locations.code"""
PAGE_LOCATIONS = """
SELECT id, code, name, created_at FROM locations WHERE tenant_id = %s AND id = ANY(%s)"""
LOCK = """
SELECT item_id, location_id, on_hand, reserved FROM stock_levels
WHERE tenant_id = %s AND (item_id, location_id) IN (SELECT * FROM unnest(%s::uuid[], %s::uuid[]))
ORDER BY item_id, location_id FOR UPDATE"""
INSERT_RESERVATION = """
INSERT INTO reservations (tenant_id, status, reference, expires_at)
VALUES (%s, 'ACTIVE', NULL, now() + make_interval(0, 0, 0, 0, 0, 0, 600))
RETURNING id, created_at, expires_at"""
INSERT_LINE = """
INSERT INTO reservation_lines (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
VALUES (%s, %s, %s, %s, %s, 1)"""
CHANGE = """
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = %s AND item_id = %s AND location_id = %s AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, %s, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed"""

RESERVE_ONE = """
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = %(t)s AND item_id = %(i)s AND location_id = %(l)s AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key, actor)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, %(r)s, NULL, 'bench' FROM changed),
line AS (
  INSERT INTO reservation_lines (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
  SELECT tenant_id, %(r)s, 0, item_id, location_id, 1 FROM changed),
head AS (
  INSERT INTO reservations (tenant_id, id, status, reference, expires_at)
  SELECT tenant_id, %(r)s, 'ACTIVE', NULL, now() + 600 * INTERVAL '1 second' FROM changed
  RETURNING created_at, expires_at)
SELECT changed.version, head.expires_at FROM changed, head"""

pool: AsyncConnectionPool | None = None
write_pool: AsyncConnectionPool | None = None
ids: dict[str, dict[str, UUID]] = {"items": {}, "locations": {}}


def _json(data, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _level(row) -> dict:
    return {"sku": row[2], "locationCode": row[3], "onHand": row[4], "reserved": row[5],
            "available": row[4] - row[5], "version": row[6]}


async def level(request: Request) -> Response:
    body = orjson.loads(await request.body())
    async with pool.connection() as conn:
        row = await (await conn.execute(LEVEL, (TENANT, body["sku"], body["code"]))).fetchone()
    return _json({"stockLevel": _level(row) if row else None})


async def page(request: Request) -> Response:
    body = orjson.loads(await request.body())
    async with pool.connection() as conn:
        rows = await (await conn.execute(PAGE_ITEMS, (TENANT, body["prefix"] + "%"))).fetchall()
        rows = rows[:50]
        item_ids = [r[1] for r in rows]
        levels = await (await conn.execute(PAGE_LEVELS, (TENANT, item_ids))).fetchall()
        location_ids = list({l[1] for l in levels})
        locs = {r[0]: r[1] for r in
                await (await conn.execute(PAGE_LOCATIONS, (TENANT, location_ids))).fetchall()}
    by_item: dict[UUID, list] = {}
    for l in levels:
        by_item.setdefault(l[0], []).append({**_level(l), "location": {"code": locs[l[1]]}})
    return _json({"items": [{"sku": r[2], "stockLevels": by_item.get(r[1], [])} for r in rows]})


async def _resolve(conn, skus: list[str], codes: list[str]) -> None:
    """Same caching as the product: ids are looked up once per process."""
    missing = [s for s in skus if s not in ids["items"]]
    if missing:
        for i, s in await (await conn.execute(
                "SELECT id, sku FROM items WHERE tenant_id = %s AND sku = ANY(%s)",
                (TENANT, missing))).fetchall():
            ids["items"][s] = i
    missing = [c for c in codes if c not in ids["locations"]]
    if missing:
        for i, c in await (await conn.execute(
                "SELECT id, code FROM locations WHERE tenant_id = %s AND code = ANY(%s)",
                (TENANT, missing))).fetchall():
            ids["locations"][c] = i


async def reserve(request: Request) -> Response:
    body = orjson.loads(await request.body())
    lines = [(sku, code) for sku, code in body["lines"]]
    async with write_pool.connection() as conn:
        await _resolve(conn, [l[0] for l in lines], [l[1] for l in lines])
        keys = [(ids["items"][s], ids["locations"][c]) for s, c in lines]
        for attempt in range(MAX_TRIES):
            try:
                if len(keys) == 1:
                    # The product's single-line path: one statement in autocommit
                    # on a SERIALIZABLE session.
                    rid = uuid4()
                    row = await (await conn.execute(RESERVE_ONE, {
                        "t": TENANT, "i": keys[0][0], "l": keys[0][1], "r": rid})).fetchone()
                    if row is None:
                        return _json({"error": "INSUFFICIENT_STOCK"})
                    return _json({"reservation": {"id": str(rid), "status": "ACTIVE",
                                                  "expiresAt": row[1].isoformat()}})
                async with conn.transaction():  # BEGIN ISOLATION LEVEL SERIALIZABLE
                    levels = {(r[0], r[1]): r[2] - r[3] for r in await (await conn.execute(
                        LOCK, (TENANT, [k[0] for k in keys], [k[1] for k in keys]))).fetchall()}
                    if any(levels.get(k, 0) < 1 for k in keys):
                        return _json({"error": "INSUFFICIENT_STOCK"})
                    rid, _, expires = await (await conn.execute(
                        INSERT_RESERVATION, (TENANT,))).fetchone()
                    for n, (item_id, location_id) in enumerate(keys):
                        await conn.execute(INSERT_LINE, (TENANT, rid, n, item_id, location_id))
                    for item_id, location_id in sorted(keys):
                        await conn.execute(CHANGE, (TENANT, item_id, location_id, rid))
                return _json({"reservation": {"id": str(rid), "status": "ACTIVE",
                                              "expiresAt": expires.isoformat()}})
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                await asyncio.sleep(random.uniform(0, 0.002 * 2 ** attempt))
    return _json({"error": "TRANSACTION_CONFLICT"})


@contextlib.asynccontextmanager
async def lifespan(app):
    global pool, write_pool
    url = os.environ["INVENTORY_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    async def configure(conn):
        # `conn.transaction()` then begins ISOLATION LEVEL SERIALIZABLE.
        await conn.set_isolation_level(psycopg.IsolationLevel.SERIALIZABLE)

    # As in the service: reads in autocommit on default sessions; writes on
    # sessions whose default isolation is SERIALIZABLE, so a single statement in
    # autocommit is a SERIALIZABLE transaction of its own.
    pool = AsyncConnectionPool(url, min_size=2, max_size=POOL_SIZE, open=False,
                               kwargs={"autocommit": True})
    write_pool = AsyncConnectionPool(
        url, min_size=2, max_size=POOL_SIZE, open=False, configure=configure,
        kwargs={"autocommit": True, "options": "-c default_transaction_isolation=serializable"})
    await pool.open()
    await write_pool.open()
    yield
    await write_pool.close()
    await pool.close()


app = Starlette(routes=[Route("/level", level, methods=["POST"]),
                        Route("/page", page, methods=["POST"]),
                        Route("/reserve", reserve, methods=["POST"])],
                lifespan=lifespan)
