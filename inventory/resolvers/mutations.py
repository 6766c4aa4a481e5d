"""Mutation resolvers: input -> command -> service -> payload (success or typed error)."""
from __future__ import annotations

from typing import Any

from strawberry.types import Info

from ..domain import commands, ids
from ..domain.errors import UserError, invalid
from ..domain.models import (
    ItemView,
    LocationView,
    ReservationView,
    StockLevelView,
    TransferView,
)
from ..graphql_runtime.observer import note_user_error
from ..schema import errors as error_types
from ..schema import inputs
from ..schema.types import Item, Location, Reservation, StockLevel, Transfer
from ..service import catalog, reservations, stock

_PAYLOADS = {
    ItemView: Item.of,
    LocationView: Location.of,
    StockLevelView: StockLevel.of,
    ReservationView: Reservation.of,
    TransferView: Transfer.of,
}


def payload(result: Any) -> Any:
    if isinstance(result, UserError):
        note_user_error(result.code.value)
        return error_types.from_domain(result)
    return _PAYLOADS[type(result)](result)


async def create_location(info: Info, input: inputs.CreateLocationInput):
    cmd = commands.CreateLocation(code=input.code, name=input.name)
    return payload(await catalog.create_location(info.context.ctx, cmd, input.idempotency_key))


async def create_item(info: Info, input: inputs.CreateItemInput):
    cmd = commands.CreateItem(sku=input.sku, name=input.name, reorder_point=input.reorder_point)
    return payload(await catalog.create_item(info.context.ctx, cmd, input.idempotency_key))


async def update_item(info: Info, input: inputs.UpdateItemInput):
    cmd = commands.UpdateItem(sku=input.sku, version=input.version, name=input.name,
                              reorder_point=input.reorder_point)
    return payload(await catalog.update_item(info.context.ctx, cmd, input.idempotency_key))


async def archive_item(info: Info, input: inputs.ArchiveItemInput):
    cmd = commands.ArchiveItem(sku=input.sku)
    return payload(await catalog.archive_item(info.context.ctx, cmd, input.idempotency_key))


async def archive_location(info: Info, input: inputs.ArchiveLocationInput):
    cmd = commands.ArchiveLocation(code=input.code)
    return payload(await catalog.archive_location(info.context.ctx, cmd, input.idempotency_key))


async def receive_stock(info: Info, input: inputs.ReceiveStockInput):
    cmd = commands.ReceiveStock(
        sku=input.sku, location_code=input.location_code, quantity=input.quantity,
        reason=input.reason, reference=input.reference,
    )
    return payload(await stock.receive_stock(info.context.ctx, cmd, input.idempotency_key))


async def adjust_stock(info: Info, input: inputs.AdjustStockInput):
    cmd = commands.AdjustStock(
        sku=input.sku, location_code=input.location_code, delta=input.delta, reason=input.reason
    )
    return payload(await stock.adjust_stock(info.context.ctx, cmd, input.idempotency_key))


async def set_stock(info: Info, input: inputs.SetStockInput):
    cmd = commands.SetStock(
        sku=input.sku, location_code=input.location_code, on_hand=input.on_hand,
        compare_quantity=input.compare_quantity, reason=input.reason,
    )
    return payload(await stock.set_stock(info.context.ctx, cmd, input.idempotency_key))


async def transfer_stock(info: Info, input: inputs.TransferStockInput):
    cmd = commands.TransferStock(
        sku=input.sku, from_location_code=input.from_location_code,
        to_location_code=input.to_location_code, quantity=input.quantity,
        reason=input.reason, reference=input.reference,
    )
    return payload(await stock.transfer_stock(info.context.ctx, cmd, input.idempotency_key))


async def reserve_stock(info: Info, input: inputs.ReserveStockInput):
    cmd = commands.ReserveStock(
        lines=tuple(
            commands.ReserveLine(sku=l.sku, location_code=l.location_code, quantity=l.quantity)
            for l in input.lines
        ),
        ttl_seconds=input.ttl_seconds, reference=input.reference,
    )
    return payload(await reservations.reserve_stock(info.context.ctx, cmd, input.idempotency_key))


def _reservation_id(input: inputs.CommitReservationInput | inputs.ReleaseReservationInput):
    try:
        return ids.decode_as("Reservation", input.reservation_id)[0]
    except ids.MalformedId:
        return None


_MALFORMED = invalid("reservationId", "reservationId is not a Reservation id")


async def commit_reservation(info: Info, input: inputs.CommitReservationInput):
    reservation_id = _reservation_id(input)
    if reservation_id is None:
        return payload(_MALFORMED)
    cmd = commands.CommitReservation(reservation_id=reservation_id)
    return payload(
        await reservations.commit_reservation(info.context.ctx, cmd, input.idempotency_key)
    )


async def release_reservation(info: Info, input: inputs.ReleaseReservationInput):
    reservation_id = _reservation_id(input)
    if reservation_id is None:
        return payload(_MALFORMED)
    cmd = commands.ReleaseReservation(reservation_id=reservation_id)
    return payload(
        await reservations.release_reservation(info.context.ctx, cmd, input.idempotency_key)
    )
