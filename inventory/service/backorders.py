"""Backorders: reservations beyond what is available, filled as stock arrives.

A reservation line takes what is available and backorders the rest, up to the
level's backorder limit (its own, or its item's default): the level's
`reserved` holds the filled part, `backordered` the rest, and the line records
its `backordered` part. When a level gains available stock (a receipt, an
upward adjustment or count, a transfer in, units moved back to AVAILABLE, a
reservation released or expired), `fill_waiting` fills its backordered lines
in arrival order (reservation created_at, then id, then line), each fill a
ledger row of kind BACKORDER_FILLED naming its reservation, which the
`stockLevelChanged` subscription delivers. A commit ships filled units only
(domain/lifecycle.py `refuse_unfilled`: RESERVATION_BACKORDERED, nothing
shipped, for more), so no stock that is not on hand ever ships; a partial
commit may take a line's filled units while the rest waits. Backorders wait
only while nothing is available (the audit checks it), so a later reservation
never takes stock ahead of an earlier one.
"""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger, queries
from ..db.ledger import LevelRow, Why
from ..domain.models import MovementKind


async def fill_waiting(conn: AsyncConnection, tenant_id: UUID, level: LevelRow,
                       actor: str | None) -> LevelRow:
    """Fills the level's backordered lines from what it has available, in
    arrival order; returns the level as it is afterwards. Costs nothing when
    nothing is backordered or nothing is available."""
    q = level.quantities
    free = q.available
    if q.backordered <= 0 or free <= 0:
        return level
    for line in await queries.waiting_lines(conn, tenant_id, level.item_id, level.location_id):
        n = min(free, line.backordered)
        await queries.fill_line(conn, tenant_id, line.reservation_id, line.line_no, n)
        # No idempotency key: the fill is a consequence of the request, not it.
        filled = await ledger.change_level(
            conn, tenant_id, level.item_id, level.location_id, MovementKind.BACKORDER_FILLED,
            {"reserved": n, "backordered": -n},
            why=Why(None, line.reference, line.reservation_id, None, actor))
        assert filled is not None, "backordered units missing at their level"
        level, free = filled, free - n
        if free == 0:
            break
    return level
