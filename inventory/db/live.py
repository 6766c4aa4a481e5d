"""Reads behind live stock: ledger replay, and the names events carry.

Replay reads `movements`, whose rows hold each level's state after every
version (`<state>_after`, version), so a missed change can always
be rebuilt from the ledger, through the per-level version unique key. The live
reader itself is in `changes`.
"""
from __future__ import annotations

from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.quantities import NAMES
from .changes import Change
from .tables import items, locations, movements

mv = movements
_CHANGE_COLUMNS = (
    mv.c.tenant_id, mv.c.item_id, mv.c.location_id,
    *(mv.c[f"{n}_{part}"] for part in ("after", "delta") for n in NAMES),
    mv.c.version, mv.c.kind, mv.c.created_at, mv.c.reservation_id,
)


def _changes(rows) -> list[Change]:
    return [Change.of(row._mapping) for row in rows]


async def changes_after_versions(
    conn: AsyncConnection,
    tenant_id: UUID,
    after: dict[tuple[UUID, UUID], int],
    below: dict[tuple[UUID, UUID], int] | None = None,
    limit: int = 10_000,
) -> list[Change]:
    """Per level: versions greater than after[level] (and lower than
    below[level] when given), in version order per level."""
    if not after:
        return []
    conditions = []
    for (item_id, location_id), version in after.items():
        cond = [mv.c.item_id == item_id, mv.c.location_id == location_id, mv.c.version > version]
        if below and (item_id, location_id) in below:
            cond.append(mv.c.version < below[(item_id, location_id)])
        conditions.append(and_(*cond))
    rows = await conn.execute(
        select(*_CHANGE_COLUMNS)
        .where(mv.c.tenant_id == tenant_id, or_(*conditions))
        .order_by(mv.c.item_id, mv.c.location_id, mv.c.version)
        .limit(limit)
    )
    return _changes(rows)


async def item_names(
    conn: AsyncConnection, tenant_id: UUID, ids: list[UUID]
) -> dict[UUID, tuple[str, int]]:
    """item id -> (sku, reorder point)."""
    rows = await conn.execute(
        select(items.c.id, items.c.sku, items.c.reorder_point)
        .where(items.c.tenant_id == tenant_id, items.c.id.in_(ids))
    )
    return {r.id: (r.sku, r.reorder_point) for r in rows}


async def location_codes(
    conn: AsyncConnection, tenant_id: UUID, ids: list[UUID]
) -> dict[UUID, str]:
    rows = await conn.execute(
        select(locations.c.id, locations.c.code)
        .where(locations.c.tenant_id == tenant_id, locations.c.id.in_(ids))
    )
    return {r.id: r.code for r in rows}
