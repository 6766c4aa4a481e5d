"""Queries. Each opens a short read on the shared pool; connection failures
become `DatabaseUnavailable` so the API can answer with a clear retryable error.

Reads go to the leader unless the operation accepts bounded staleness
(service/consistency.py): then to a replica whose data is fresh enough, measured
on the very connection that serves the read, else to the leader."""
from __future__ import annotations

import weakref
from contextlib import asynccontextmanager
from datetime import datetime
from typing import AsyncIterator
from uuid import UUID

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import queries, replicas, shipments, transfers
from ..db.engine import Database
from ..db.retry import DatabaseUnavailable
from ..domain.models import (
    ItemView,
    LocationView,
    MovementView,
    ReservationView,
    StockLevelView,
)
from ..domain.quantities import Quantities
from ..domain.shipments import InboundShipmentView, StockTransferView
from . import consistency
from .coalesce import Coalescer
from .context import Ctx


def _bounded(ctx: Ctx) -> consistency.ReadConsistency | None:
    chosen = consistency.current.get()
    if chosen is None or chosen.max_staleness_ms is None or ctx.db.replica_engine is None:
        return None
    return chosen


def reading(ctx: Ctx):
    chosen = _bounded(ctx)
    return _reading(ctx.db) if chosen is None else _bounded_reading(ctx.db, chosen)


@asynccontextmanager
async def _bounded_reading(db: Database, chosen: consistency.ReadConsistency
                           ) -> AsyncIterator[AsyncConnection]:
    """A replica connection if its data is at most the bound old, else the leader's.
    An unreachable replica is not an error: the leader serves."""
    replica = await replicas.fresh_connection(db.replica_engine, chosen.max_staleness_ms)
    if replica is None:
        async with _reading(db) as conn:
            chosen.served(consistency.LEADER, 0)
            yield conn
        return
    conn, is_replica, staleness_ms = replica
    try:
        chosen.served(consistency.REPLICA if is_replica else consistency.LEADER, staleness_ms)
        yield conn
    except (sa_exc.OperationalError, sa_exc.InterfaceError, OSError) as error:
        raise DatabaseUnavailable(f"replica unreachable: {error}") from error
    finally:
        await conn.close()


@asynccontextmanager
async def _reading(db: Database) -> AsyncIterator[AsyncConnection]:
    try:
        async with db.reader.connect() as conn:
            yield conn
    except sa_exc.TimeoutError as error:
        raise DatabaseUnavailable("no database connection free in time") from error
    except (sa_exc.OperationalError, sa_exc.InterfaceError, OSError) as error:
        raise DatabaseUnavailable(f"database unreachable: {error}") from error


# Concurrent stockLevel reads of this process share statements (coalesce.py); one
# coalescer per database (the process has one; tests may build several apps).
_LOOKUPS: weakref.WeakKeyDictionary[Database, Coalescer] = weakref.WeakKeyDictionary()


def _level_lookups(ctx: Ctx) -> Coalescer[tuple[UUID, str, str], StockLevelView]:
    lookups = _LOOKUPS.get(ctx.db)
    if lookups is None:
        db_ref = weakref.ref(ctx.db)

        async def load(keys: list[tuple[UUID, str, str]]) -> dict:
            async with _reading(db_ref()) as conn:
                return await queries.levels_by_codes(conn, keys)

        lookups = _LOOKUPS[ctx.db] = Coalescer(
            load, name="stockLevel batch",
            retry_alone=lambda error: not isinstance(error, DatabaseUnavailable),
            # One statement at a time per process: reads arriving meanwhile go
            # together in the next (group commit for reads). Against no limit and
            # two at a time it gave the lowest p99 below peak and the same peak
            # (docs/performance.md, item 32).
            max_loads=1)
    return lookups


async def item_by_sku(ctx: Ctx, sku: str) -> ItemView | None:
    async with reading(ctx) as conn:
        return await queries.item_by_sku(conn, ctx.tenant_id, sku)


async def items_by_ids(ctx: Ctx, ids: list[UUID]) -> dict[UUID, ItemView]:
    async with reading(ctx) as conn:
        return await queries.items_by_ids(conn, ctx.tenant_id, ids)


async def items_page(ctx: Ctx, **kwargs) -> list[ItemView]:
    async with reading(ctx) as conn:
        return await queries.items_page(conn, ctx.tenant_id, **kwargs)


async def location_by_code(ctx: Ctx, code: str) -> LocationView | None:
    async with reading(ctx) as conn:
        return await queries.location_by_code(conn, ctx.tenant_id, code)


async def locations_by_ids(ctx: Ctx, ids: list[UUID]) -> dict[UUID, LocationView]:
    async with reading(ctx) as conn:
        return await queries.locations_by_ids(conn, ctx.tenant_id, ids)


async def locations_page(ctx: Ctx, **kwargs) -> list[LocationView]:
    async with reading(ctx) as conn:
        return await queries.locations_page(conn, ctx.tenant_id, **kwargs)


async def levels_for_items(ctx: Ctx, item_ids: list[UUID]) -> dict[UUID, list[StockLevelView]]:
    async with reading(ctx) as conn:
        return await queries.levels_for_items(conn, ctx.tenant_id, item_ids)


async def levels_by_keys(
    ctx: Ctx, keys: list[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], StockLevelView]:
    async with reading(ctx) as conn:
        return await queries.levels_by_keys(conn, ctx.tenant_id, keys)


async def stock_level(ctx: Ctx, sku: str, location_code: str) -> StockLevelView | None:
    """The level, or a zero level when both item and location exist but no stock
    was ever recorded there; None when either does not exist."""
    if _bounded(ctx) is not None:  # not coalesced with strong reads on the leader
        async with reading(ctx) as conn:
            found = await queries.levels_by_codes(conn, [(ctx.tenant_id, sku, location_code)])
        level = next(iter(found.values()), None)
    else:
        level = await _level_lookups(ctx).get((ctx.tenant_id, sku, location_code))
    if level is not None:
        return level
    async with reading(ctx) as conn:
        items, locs = await queries.resolve(conn, ctx.tenant_id, [sku], [location_code])
    if sku in items and location_code in locs:
        return StockLevelView(items[sku], locs[location_code], sku, location_code,
                              Quantities(), 0, None)
    return None


async def reservations_by_ids(ctx: Ctx, ids: list[UUID]) -> dict[UUID, ReservationView]:
    async with reading(ctx) as conn:
        return await queries.reservations_by_ids(conn, ctx.tenant_id, ids)


async def reservations_page(ctx: Ctx, **kwargs) -> list[ReservationView]:
    async with reading(ctx) as conn:
        return await queries.reservations_page(conn, ctx.tenant_id, **kwargs)


async def inbound_by_ids(ctx: Ctx, ids: list[UUID]) -> dict[UUID, InboundShipmentView]:
    async with reading(ctx) as conn:
        return await shipments.inbound_by_ids(conn, ctx.tenant_id, ids)


async def inbound_page(ctx: Ctx, **kwargs) -> list[InboundShipmentView]:
    async with reading(ctx) as conn:
        return await shipments.inbound_page(conn, ctx.tenant_id, **kwargs)


async def transfers_by_ids(ctx: Ctx, ids: list[UUID]) -> dict[UUID, StockTransferView]:
    async with reading(ctx) as conn:
        return await transfers.transfers_by_ids(conn, ctx.tenant_id, ids)


async def transfers_page(ctx: Ctx, **kwargs) -> list[StockTransferView]:
    async with reading(ctx) as conn:
        return await transfers.transfers_page(conn, ctx.tenant_id, **kwargs)


async def next_expected_at(ctx: Ctx, keys: list[tuple[UUID, UUID]]
                           ) -> dict[tuple[UUID, UUID], datetime]:
    async with reading(ctx) as conn:
        return await shipments.next_expected_at(conn, ctx.tenant_id, keys)


async def movements_page(
    ctx: Ctx,
    *,
    limit: int,
    sku: str | None,
    location_code: str | None,
    before: tuple[datetime, UUID] | None,
    **filters,
) -> list[MovementView] | None:
    """None when the sku or location code given does not exist. `filters`:
    those of `queries.movements_page` (kinds, created_after, created_before)."""
    async with reading(ctx) as conn:
        items, locs = await queries.resolve(
            conn, ctx.tenant_id, [sku] if sku else [], [location_code] if location_code else []
        )
        if (sku and sku not in items) or (location_code and location_code not in locs):
            return None
        return await queries.movements_page(
            conn, ctx.tenant_id, limit=limit,
            item_id=items.get(sku) if sku else None,
            location_id=locs.get(location_code) if location_code else None,
            before=before, **filters,
        )


async def movement_by_id(ctx: Ctx, movement_id: UUID) -> MovementView | None:
    async with reading(ctx) as conn:
        rows = await queries.movements_page(conn, ctx.tenant_id, limit=1, movement_id=movement_id)
    return rows[0] if rows else None
