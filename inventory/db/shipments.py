"""Inbound shipments: their rows, not the stock they move (db/ledger.py moves
the levels). Every query is scoped by tenant_id, which leads every key."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, insert, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.shipments import InboundLineView, InboundShipmentView, InboundStatus
from . import transfers
from .queries import children_by_head, newest_first, with_names
from .tables import inbound_lines, inbound_shipments, items, locations

ish, il = inbound_shipments, inbound_lines
OPEN_INBOUND = (InboundStatus.EXPECTED.value, InboundStatus.PARTIALLY_RECEIVED.value)


async def insert_inbound(
    conn: AsyncConnection, tenant_id: UUID, shipment_id: UUID, reference: str | None,
    expected_at: datetime | None, lines: list[tuple[UUID, UUID, int]],
) -> None:
    """An EXPECTED shipment with its (item id, location id, quantity) lines."""
    await conn.execute(insert(ish).values(
        tenant_id=tenant_id, id=shipment_id, reference=reference, expected_at=expected_at,
        status=InboundStatus.EXPECTED.value))
    await conn.execute(insert(il).values([
        dict(tenant_id=tenant_id, shipment_id=shipment_id, line_no=n, item_id=item_id,
             location_id=location_id, quantity=quantity)
        for n, (item_id, location_id, quantity) in enumerate(lines)]))


async def inbound_by_ids(
    conn: AsyncConnection, tenant_id: UUID, ids: list[UUID], *, lock: bool = False,
) -> dict[UUID, InboundShipmentView]:
    """Shipments with their lines; `lock`: FOR UPDATE, so that receipts and
    cancellations of one shipment queue."""
    stmt = select(ish).where(ish.c.tenant_id == tenant_id, ish.c.id.in_(ids))
    if lock:
        stmt = stmt.with_for_update()
    heads = (await conn.execute(stmt)).all()
    return {s.id: s for s in await _with_lines(conn, tenant_id, heads)}


async def _with_lines(conn: AsyncConnection, tenant_id: UUID,
                      heads: list[Any]) -> list[InboundShipmentView]:
    lines = await children_by_head(
        conn,
        with_names(select(il.c.shipment_id, il.c.item_id, il.c.location_id, items.c.sku,
                          locations.c.code, il.c.quantity, il.c.received), il)
        .where(il.c.tenant_id == tenant_id)
        .order_by(il.c.shipment_id, il.c.line_no),
        il.c.shipment_id, heads,
        lambda r: InboundLineView(r.item_id, r.location_id, r.sku, r.code, r.quantity,
                                  r.received))
    return [InboundShipmentView(h.id, h.reference, h.expected_at, InboundStatus(h.status),
                                h.created_at, h.updated_at, tuple(lines[h.id]))
            for h in heads]


async def add_received(conn: AsyncConnection, tenant_id: UUID, shipment_id: UUID,
                       line_no: int, quantity: int) -> None:
    await conn.execute(
        update(il).where(il.c.tenant_id == tenant_id, il.c.shipment_id == shipment_id,
                         il.c.line_no == line_no)
        .values(received=il.c.received + quantity))


async def set_inbound_status(conn: AsyncConnection, tenant_id: UUID, shipment_id: UUID,
                             status: InboundStatus) -> None:
    await conn.execute(
        update(ish).where(ish.c.tenant_id == tenant_id, ish.c.id == shipment_id)
        .values(status=status.value, updated_at=func.now()))


async def inbound_page(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    limit: int,
    before: tuple[datetime, UUID] | None = None,
    status: InboundStatus | None = None,
    reference: str | None = None,
    expected_before: datetime | None = None,
) -> list[InboundShipmentView]:
    """Newest first, keyset-paginated on (created_at, id), with their lines."""
    heads = (await conn.execute(newest_first(
        select(ish).where(ish.c.tenant_id == tenant_id), ish, before, limit,
        status=status, reference=reference, expected_at=expected_before))).all()
    return await _with_lines(conn, tenant_id, heads)


async def next_expected_at(
    conn: AsyncConnection, tenant_id: UUID, keys: list[tuple[UUID, UUID]],
) -> dict[tuple[UUID, UUID], datetime]:
    """For each (item id, location id): the earliest expectedAt of the open
    inbound shipments with units still outstanding there and of the open
    transfers on their way there; absent when none."""
    if not keys:
        return {}
    keys = sorted(set(keys))
    inbound = (
        select(il.c.item_id, il.c.location_id, ish.c.expected_at.label("at"))
        .join(ish, and_(ish.c.tenant_id == il.c.tenant_id, ish.c.id == il.c.shipment_id))
        .where(il.c.tenant_id == tenant_id, tuple_(il.c.item_id, il.c.location_id).in_(keys),
               ish.c.status.in_(OPEN_INBOUND), il.c.received < il.c.quantity,
               ish.c.expected_at.is_not(None)))
    both = union_all(inbound, transfers.arrivals(tenant_id, keys)).subquery("arrivals")
    rows = await conn.execute(
        select(both.c.item_id, both.c.location_id, func.min(both.c.at).label("at"))
        .group_by(both.c.item_id, both.c.location_id))
    return {(r.item_id, r.location_id): r.at for r in rows}
