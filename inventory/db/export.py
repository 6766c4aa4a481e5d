"""Exports: every stock level, or the ledger since a time, as one streamed read.

One statement per export, read through a server-side cursor inside a
read-only transaction at the engine's snapshot isolation
(`dialect.snapshot_isolation`): the rows come from one consistent snapshot, a
few thousand at a time, so memory stays flat however many there are. On
CockroachDB a long read can be aborted with 40001 (the caller starts again).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, AsyncIterator
from uuid import UUID

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.quantities import NAMES, available, camel
from .dialect import snapshot_isolation
from .tables import items, locations, movements, stock_levels

CHUNK = 2000
sl, mv = stock_levels, movements

# (column name in the export, SQL expression); names as the API spells them,
# a column per quantity state (domain/quantities.py).
LEVEL_COLUMNS = (
    ("sku", items.c.sku), ("locationCode", locations.c.code),
    *((camel(n), sl.c[n]) for n in NAMES),
    ("available", available({n: sl.c[n] for n in NAMES})),
    ("version", sl.c.version), ("updatedAt", sl.c.updated_at),
)
MOVEMENT_COLUMNS = (
    ("id", mv.c.id), ("createdAt", mv.c.created_at), ("sku", items.c.sku),
    ("locationCode", locations.c.code), ("kind", mv.c.kind),
    *((camel(f"{n}_delta"), mv.c[f"{n}_delta"]) for n in NAMES),
    *((camel(f"{n}_after"), mv.c[f"{n}_after"]) for n in NAMES),
    ("version", mv.c.version), ("reason", mv.c.reason), ("reference", mv.c.reference),
    ("reservationId", mv.c.reservation_id), ("actor", mv.c.actor),
)


def _named(table, tenant_id: UUID, columns) -> Select:
    return (select(*(expr.label(name) for name, expr in columns))
            .select_from(table
                         .join(items, and_(items.c.tenant_id == table.c.tenant_id,
                                           items.c.id == table.c.item_id))
                         .join(locations, and_(locations.c.tenant_id == table.c.tenant_id,
                                               locations.c.id == table.c.location_id)))
            .where(table.c.tenant_id == tenant_id))


def levels_query(tenant_id: UUID) -> Select:
    return _named(sl, tenant_id, LEVEL_COLUMNS).order_by(items.c.sku, locations.c.code)


def movements_query(tenant_id: UUID, since: datetime | None) -> Select:
    query = _named(mv, tenant_id, MOVEMENT_COLUMNS)
    if since is not None:
        query = query.where(mv.c.created_at >= since)
    return query.order_by(mv.c.created_at, mv.c.id)


async def stream(engine: AsyncEngine, query: Select, chunk: int = CHUNK
                 ) -> AsyncIterator[list[Any]]:
    """The query's rows, `chunk` at a time, from one snapshot."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(
            isolation_level=snapshot_isolation(engine.dialect), yield_per=chunk)
        async with conn.begin():
            result = await conn.stream(query)
            async for rows in result.partitions(chunk):
                yield rows
