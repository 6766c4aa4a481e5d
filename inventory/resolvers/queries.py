from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Optional
from uuid import UUID

import strawberry
from strawberry.types import Info

from ..domain import ids
from ..schema.inputs import ItemFilter, LocationFilter, MovementFilter, ReservationFilter
from ..schema.shipments import (
    InboundShipment, InboundShipmentFilter, StockTransfer, StockTransferFilter,
)
from ..schema.types import (
    Channel,
    Connection,
    Item,
    Location,
    Movement,
    Node,
    Reservation,
    StockLevel,
    connection,
)
from ..service import channels as channel_reads
from ..service import kits, reads
from .errors import invalid_argument, kit_has_no_stock

DEFAULT_PAGE = 50
MAX_PAGE = 500


def _page_size(first: Optional[int]) -> int:
    size = DEFAULT_PAGE if first is None else first
    if not 0 <= size <= MAX_PAGE:
        raise invalid_argument("first", f"first must be between 0 and {MAX_PAGE}")
    return size


def _after(after: Optional[str]) -> Optional[str]:
    if after is None:
        return None
    try:
        return ids.decode_cursor(after)
    except ids.MalformedId:
        raise invalid_argument("after", "after is not a cursor returned by this connection")


def _decode(type_name: str, global_id: str, arity: int = 1) -> tuple[UUID, ...]:
    try:
        return ids.decode_as(type_name, global_id, arity)
    except ids.MalformedId:
        raise invalid_argument("id", f"{global_id!r} is not a valid {type_name} id")


async def item(info: Info, sku: str) -> Optional[Item]:
    found = await reads.item_by_sku(info.context.ctx, sku)
    return Item.of(found) if found else None


async def items(
    info: Info,
    first: Optional[int] = None,
    after: Optional[str] = None,
    filter: Optional[ItemFilter] = None,
) -> Connection[Item]:
    size = _page_size(first)
    after_sku = _after(after)
    rows = await reads.items_page(
        info.context.ctx, limit=size + 1, after_sku=after_sku,
        sku_prefix=filter.sku_prefix if filter else None,
        low_stock=filter.low_stock if filter else None,
        archived=filter.archived if filter else None,
    )
    return connection(
        [(Item.of(r), ids.encode_cursor(r.sku)) for r in rows[:size]],
        has_next=len(rows) > size, has_previous=after_sku is not None,
    )


async def location(info: Info, code: str) -> Optional[Location]:
    found = await reads.location_by_code(info.context.ctx, code)
    return Location.of(found) if found else None


async def _by_code(info: Info, first: Optional[int], after: Optional[str], read, of
                   ) -> Connection:
    """A page of objects keyed by their code: `read(ctx, limit=, after_code=)`."""
    size = _page_size(first)
    after_code = _after(after)
    rows = await read(info.context.ctx, limit=size + 1, after_code=after_code)
    return connection(
        [(of(r), ids.encode_cursor(r.code)) for r in rows[:size]],
        has_next=len(rows) > size, has_previous=after_code is not None,
    )


async def locations(
    info: Info, first: Optional[int] = None, after: Optional[str] = None,
    filter: Optional[LocationFilter] = None,
) -> Connection[Location]:
    return await _by_code(info, first, after, functools.partial(
        reads.locations_page, archived=filter.archived if filter else None), Location.of)


async def channel(info: Info, code: str) -> Optional[Channel]:
    found = await info.context.loaders.channel.load(code)
    return Channel.of(found) if found else None


async def channels(
    info: Info, first: Optional[int] = None, after: Optional[str] = None
) -> Connection[Channel]:
    return await _by_code(info, first, after, channel_reads.channels_page, Channel.of)


async def stock_level(info: Info, sku: str, location_code: str) -> Optional[StockLevel]:
    ctx = info.context.ctx
    found = await reads.stock_level(ctx, sku, location_code)
    if found is None:
        return None
    # A level never written may be a kit's: a zero level would say it has
    # nothing, whatever its components make (the kit test is a cache lookup).
    if found.version == 0 and await kits.kits_among(ctx, [sku]):
        raise kit_has_no_stock(sku)
    return StockLevel.of(found)


async def reservation(info: Info, id: strawberry.ID) -> Optional[Reservation]:
    (reservation_id,) = _decode("Reservation", id)
    found = await reads.reservations_by_ids(info.context.ctx, [reservation_id])
    return Reservation.of(found[reservation_id]) if reservation_id in found else None


def utc(moment: Optional[datetime]) -> Optional[datetime]:
    """A time without a zone is taken as UTC (never as the server's zone)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


async def reservations(
    info: Info,
    first: Optional[int] = None,
    after: Optional[str] = None,
    filter: Optional[ReservationFilter] = None,
) -> Connection[Reservation]:
    """Reservations, newest first."""
    filter = filter or ReservationFilter()
    return await _newest_first(first, after, Reservation.of, lambda **page: reads.reservations_page(
        info.context.ctx, status=filter.status, reference=filter.reference,
        expires_before=utc(filter.expires_before), **page))


async def _newest_first(first: Optional[int], after: Optional[str], of, load) -> Connection:
    """A connection paged newest first on (createdAt, id): `load(limit, before)`
    reads the rows (one more than the page, to know whether more follow), `of`
    turns each into its type."""
    size = _page_size(first)
    before = _time_cursor_after(after)
    rows = await load(limit=size + 1, before=before)
    return connection(
        [(of(r), _time_cursor(r.created_at, r.id)) for r in rows[:size]],
        has_next=len(rows) > size, has_previous=before is not None,
    )


async def inbound_shipment(info: Info, id: strawberry.ID) -> Optional[InboundShipment]:
    (shipment_id,) = _decode("InboundShipment", id)
    found = await reads.inbound_by_ids(info.context.ctx, [shipment_id])
    return InboundShipment.of(found[shipment_id]) if shipment_id in found else None


async def inbound_shipments(
    info: Info,
    first: Optional[int] = None,
    after: Optional[str] = None,
    filter: Optional[InboundShipmentFilter] = None,
) -> Connection[InboundShipment]:
    """Inbound shipments, newest first."""
    filter = filter or InboundShipmentFilter()
    return await _newest_first(first, after, InboundShipment.of, lambda **page: reads.inbound_page(
        info.context.ctx, status=filter.status, reference=filter.reference,
        expected_before=utc(filter.expected_before), **page))


async def stock_transfer(info: Info, id: strawberry.ID) -> Optional[StockTransfer]:
    (transfer_id,) = _decode("StockTransfer", id)
    found = await reads.transfers_by_ids(info.context.ctx, [transfer_id])
    return StockTransfer.of(found[transfer_id]) if transfer_id in found else None


async def stock_transfers(
    info: Info,
    first: Optional[int] = None,
    after: Optional[str] = None,
    filter: Optional[StockTransferFilter] = None,
) -> Connection[StockTransfer]:
    """Transfers in two steps, newest first."""
    filter = filter or StockTransferFilter()
    return await _newest_first(first, after, StockTransfer.of, lambda **page: reads.transfers_page(
        info.context.ctx, status=filter.status, reference=filter.reference, **page))


def _time_cursor(created_at: datetime, row_id: UUID) -> str:
    """The cursor of newest-first connections: (created_at, id)."""
    return ids.encode_cursor(f"{created_at.isoformat()}|{row_id}")


def _time_cursor_after(after: Optional[str]) -> Optional[tuple[datetime, UUID]]:
    raw = _after(after)
    if raw is None:
        return None
    try:
        created, movement_id = raw.split("|")
        return datetime.fromisoformat(created), UUID(movement_id)
    except ValueError:
        raise invalid_argument("after", "after is not a cursor returned by this connection")


async def movements(
    info: Info,
    sku: Optional[str] = None,
    location_code: Optional[str] = None,
    first: Optional[int] = None,
    after: Optional[str] = None,
    filter: Optional[MovementFilter] = None,
) -> Connection[Movement]:
    """Ledger entries, newest first, optionally for one sku and/or location, of
    some kinds, in a time range."""
    filter = filter or MovementFilter()

    async def load(**page):
        rows = await reads.movements_page(
            info.context.ctx, sku=sku, location_code=location_code, kinds=filter.kinds,
            reason_codes=filter.reason_codes, created_after=utc(filter.created_after),
            created_before=utc(filter.created_before), **page)
        return rows or []  # None: unknown sku or location, an empty ledger as for any filter

    return await _newest_first(first, after, Movement.of, load)


async def node(info: Info, id: strawberry.ID) -> Optional[Node]:
    try:
        type_name, parts = ids.decode(id)
    except ids.MalformedId:
        raise invalid_argument("id", f"{id!r} is not a valid id")
    ctx = info.context.ctx
    if type_name == "Item" and len(parts) == 1:
        found = await reads.items_by_ids(ctx, list(parts))
        return Item.of(found[parts[0]]) if found else None
    if type_name == "Location" and len(parts) == 1:
        found = await reads.locations_by_ids(ctx, list(parts))
        return Location.of(found[parts[0]]) if found else None
    if type_name == "StockLevel" and len(parts) == 2:
        levels = await reads.levels_by_keys(ctx, [(parts[0], parts[1])])
        level = levels.get((parts[0], parts[1]))
        return StockLevel.of(level) if level else None
    if type_name == "Reservation" and len(parts) == 1:
        found = await reads.reservations_by_ids(ctx, list(parts))
        return Reservation.of(found[parts[0]]) if found else None
    if type_name == "InboundShipment" and len(parts) == 1:
        found = await reads.inbound_by_ids(ctx, list(parts))
        return InboundShipment.of(found[parts[0]]) if found else None
    if type_name == "StockTransfer" and len(parts) == 1:
        found = await reads.transfers_by_ids(ctx, list(parts))
        return StockTransfer.of(found[parts[0]]) if found else None
    if type_name == "Channel" and len(parts) == 1:
        found = await channel_reads.channels_by_ids(ctx, list(parts))
        return Channel.of(found[parts[0]]) if found else None
    if type_name == "Movement" and len(parts) == 1:
        movement = await reads.movement_by_id(ctx, parts[0])
        return Movement.of(movement) if movement else None
    raise invalid_argument("id", f"{id!r} is not a valid id")
