"""Transfers in transit: their rows, not the stock they move (db/ledger.py moves
the levels). Every query is scoped by tenant_id, which leads every key."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.shipments import StockTransferView, TransferStatus
from .queries import newest_first
from .tables import items, locations, stock_transfers

st = stock_transfers
OPEN_TRANSFER = (TransferStatus.IN_TRANSIT.value, TransferStatus.PARTIALLY_RECEIVED.value)
_source, _destination = locations.alias("source"), locations.alias("destination")
_TRANSFERS = (
    select(st, items.c.sku, _source.c.code.label("from_code"),
           _destination.c.code.label("to_code"))
    .join(items, and_(items.c.tenant_id == st.c.tenant_id, items.c.id == st.c.item_id))
    .join(_source, and_(_source.c.tenant_id == st.c.tenant_id,
                        _source.c.id == st.c.from_location_id))
    .join(_destination, and_(_destination.c.tenant_id == st.c.tenant_id,
                             _destination.c.id == st.c.to_location_id))
)


def _view(r: Any) -> StockTransferView:
    return StockTransferView(
        r.id, r.item_id, r.sku, r.from_location_id, r.from_code, r.to_location_id, r.to_code,
        r.quantity, r.received, r.lost, r.returned, TransferStatus(r.status), r.expected_at,
        r.reference, r.created_at, r.updated_at)


async def insert_transfer(
    conn: AsyncConnection, tenant_id: UUID, transfer_id: UUID, item_id: UUID,
    from_location_id: UUID, to_location_id: UUID, quantity: int,
    expected_at: datetime | None, reference: str | None,
) -> None:
    await conn.execute(insert(st).values(
        tenant_id=tenant_id, id=transfer_id, item_id=item_id, from_location_id=from_location_id,
        to_location_id=to_location_id, quantity=quantity, expected_at=expected_at,
        reference=reference, status=TransferStatus.IN_TRANSIT.value))


async def transfers_by_ids(
    conn: AsyncConnection, tenant_id: UUID, ids: list[UUID], *, lock: bool = False,
) -> dict[UUID, StockTransferView]:
    """`lock`: FOR UPDATE (of the transfer row), so that receipts and
    cancellations of one transfer queue."""
    stmt = _TRANSFERS.where(st.c.tenant_id == tenant_id, st.c.id.in_(ids))
    if lock:
        stmt = stmt.with_for_update(of=st)
    return {r.id: _view(r) for r in await conn.execute(stmt)}


async def account(conn: AsyncConnection, tenant_id: UUID, transfer_id: UUID, *,
                  received: int = 0, lost: int = 0, returned: int = 0,
                  status: TransferStatus) -> None:
    """Adds to what the transfer has received, lost and returned; sets its status."""
    await conn.execute(
        update(st).where(st.c.tenant_id == tenant_id, st.c.id == transfer_id)
        .values(received=st.c.received + received, lost=st.c.lost + lost,
                returned=st.c.returned + returned, status=status.value, updated_at=func.now()))


async def transfers_page(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    limit: int,
    before: tuple[datetime, UUID] | None = None,
    status: TransferStatus | None = None,
    reference: str | None = None,
) -> list[StockTransferView]:
    """Newest first, keyset-paginated on (created_at, id)."""
    rows = await conn.execute(newest_first(_TRANSFERS.where(st.c.tenant_id == tenant_id), st,
                                           before, limit, status=status, reference=reference))
    return [_view(r) for r in rows]


def arrivals(tenant_id: UUID, keys: list[tuple[UUID, UUID]]):
    """(item_id, location_id, at) of each open transfer on its way to one of
    the levels `keys` with an expectedAt."""
    return (
        select(st.c.item_id, st.c.to_location_id.label("location_id"),
               st.c.expected_at.label("at"))
        .where(st.c.tenant_id == tenant_id,
               tuple_(st.c.item_id, st.c.to_location_id).in_(keys),
               st.c.status.in_(OPEN_TRANSFER), st.c.expected_at.is_not(None)))
