"""Mutation resolvers: input -> command -> service -> payload (success or typed error)."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from strawberry.types import Info

from ..domain import commands, ids
from ..domain.allocation import Allocation, AllocationStrategy as DomainAllocationStrategy
from ..domain.channels import ChannelView, CreateChannel, UpdateChannel
from ..domain.errors import UserError, invalid
from ..domain.webhooks import DeliveryView, WebhookSecretView, WebhookView
from ..domain.models import (
    ItemView,
    LocationView,
    ReservationView,
    StockLevelView,
    TransferView,
)
from ..domain.shipments import InboundReceiptView, InboundShipmentView, StockTransferView
from ..graphql_runtime.observer import note_user_error
from ..schema import errors as error_types
from ..schema import inputs
from ..schema import shipments as shipment_types
from ..schema.shipments import InboundReceipt, InboundShipment, StockTransfer
from ..schema.types import Channel, Item, Location, Reservation, StockLevel, Transfer
from ..service import catalog, channels, inbound, reservations, stock, transfers
from .queries import utc
from ..schema.webhooks import DeletedWebhook, Webhook, WebhookDelivery, WebhookSecret
from ..schema.bulk import BulkStockResult
from ..domain.bulk import BulkResult

_PAYLOADS = {
    ItemView: Item.of,
    LocationView: Location.of,
    StockLevelView: StockLevel.of,
    ReservationView: Reservation.of,
    TransferView: Transfer.of,
    InboundShipmentView: InboundShipment.of,
    InboundReceiptView: InboundReceipt.of,
    StockTransferView: StockTransfer.of,
    ChannelView: Channel.of,
    WebhookView: Webhook.of,
    WebhookSecretView: WebhookSecret.of,
    DeliveryView: WebhookDelivery.of,
    UUID: DeletedWebhook.of,  # what deleteWebhook answers: the id it deleted
    BulkResult: BulkStockResult.of,
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
    cmd = commands.CreateItem(
        sku=input.sku, name=input.name, reorder_point=input.reorder_point,
        backorder_limit=input.backorder_limit,
        components=tuple(commands.KitComponent(c.sku, c.quantity)
                         for c in input.components or ()))
    return payload(await catalog.create_item(info.context.ctx, cmd, input.idempotency_key))


async def update_item(info: Info, input: inputs.UpdateItemInput):
    cmd = commands.UpdateItem(sku=input.sku, version=input.version, name=input.name,
                              reorder_point=input.reorder_point,
                              backorder_limit=input.backorder_limit)
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
        reason=input.reason, reference=input.reference, reason_code=input.reason_code,
    )
    return payload(await stock.receive_stock(info.context.ctx, cmd, input.idempotency_key))


async def adjust_stock(info: Info, input: inputs.AdjustStockInput):
    cmd = commands.AdjustStock(
        sku=input.sku, location_code=input.location_code, delta=input.delta, reason=input.reason,
        reason_code=input.reason_code,
        state=input.state.value,
    )
    return payload(await stock.adjust_stock(info.context.ctx, cmd, input.idempotency_key))


async def set_backorder_limit(info: Info, input: inputs.SetBackorderLimitInput):
    cmd = commands.SetBackorderLimit(sku=input.sku, location_code=input.location_code,
                                     backorder_limit=input.backorder_limit)
    return payload(await stock.set_backorder_limit(info.context.ctx, cmd, input.idempotency_key))


async def move_stock(info: Info, input: inputs.MoveStockInput):
    cmd = commands.MoveStock(
        sku=input.sku, location_code=input.location_code, from_state=input.from_.value,
        to_state=input.to.value, quantity=input.quantity, reason=input.reason,
        reason_code=input.reason_code,
    )
    return payload(await stock.move_stock(info.context.ctx, cmd, input.idempotency_key))


async def set_stock(info: Info, input: inputs.SetStockInput):
    cmd = commands.SetStock(
        sku=input.sku, location_code=input.location_code, on_hand=input.on_hand,
        compare_quantity=input.compare_quantity, reason=input.reason,
        reason_code=input.reason_code,
    )
    return payload(await stock.set_stock(info.context.ctx, cmd, input.idempotency_key))


async def transfer_stock(info: Info, input: inputs.TransferStockInput):
    cmd = commands.TransferStock(
        sku=input.sku, from_location_code=input.from_location_code,
        to_location_code=input.to_location_code, quantity=input.quantity,
        reason=input.reason, reference=input.reference, reason_code=input.reason_code,
    )
    return payload(await stock.transfer_stock(info.context.ctx, cmd, input.idempotency_key))


async def reserve_stock(info: Info, input: inputs.ReserveStockInput):
    allocation = input.allocation
    cmd = commands.ReserveStock(
        lines=tuple(
            commands.ReserveLine(sku=l.sku, location_code=l.location_code, quantity=l.quantity,
                                 channel_code=l.channel_code)
            for l in input.lines
        ),
        ttl_seconds=input.ttl_seconds, reference=input.reference,
        allocation=Allocation() if allocation is None else Allocation(
            DomainAllocationStrategy(allocation.strategy.value), allocation.allow_split),
    )
    return payload(await reservations.reserve_stock(info.context.ctx, cmd, input.idempotency_key))


def _id(type_name: str, global_id: str):
    """The uuid of a global id of `type_name`; None when it is not one."""
    try:
        return ids.decode_as(type_name, global_id)[0]
    except ids.MalformedId:
        return None


def _reservation_id(input):
    return _id("Reservation", input.reservation_id)


def _parts(input) -> tuple[commands.LinePart, ...] | None:
    if input.lines is None:
        return None
    return tuple(commands.LinePart(line_number=p.line_number, quantity=p.quantity)
                 for p in input.lines)


_MALFORMED = invalid("reservationId", "reservationId is not a Reservation id")
_MALFORMED_SHIPMENT = invalid("shipmentId", "shipmentId is not an InboundShipment id")
_MALFORMED_TRANSFER = invalid("transferId", "transferId is not a StockTransfer id")


def _stock_lines(lines) -> tuple[commands.StockLine, ...]:
    return tuple(commands.StockLine(sku=l.sku, location_code=l.location_code,
                                    quantity=l.quantity) for l in lines)


async def create_inbound_shipment(info: Info, input: shipment_types.CreateInboundShipmentInput):
    cmd = commands.CreateInboundShipment(lines=_stock_lines(input.lines),
                                         reference=input.reference,
                                         expected_at=utc(input.expected_at))
    return payload(await inbound.create_inbound_shipment(info.context.ctx, cmd,
                                                         input.idempotency_key))


async def receive_inbound(info: Info, input: shipment_types.ReceiveInboundInput):
    shipment_id = _id("InboundShipment", input.shipment_id)
    if shipment_id is None:
        return payload(_MALFORMED_SHIPMENT)
    cmd = commands.ReceiveInbound(shipment_id=shipment_id, lines=_stock_lines(input.lines),
                                  allow_over_receipt=input.allow_over_receipt)
    return payload(await inbound.receive_inbound(info.context.ctx, cmd, input.idempotency_key))


async def cancel_inbound(info: Info, input: shipment_types.CancelInboundInput):
    shipment_id = _id("InboundShipment", input.shipment_id)
    if shipment_id is None:
        return payload(_MALFORMED_SHIPMENT)
    cmd = commands.CancelInbound(shipment_id=shipment_id)
    return payload(await inbound.cancel_inbound(info.context.ctx, cmd, input.idempotency_key))


async def commit_reservation(info: Info, input: inputs.CommitReservationInput):
    reservation_id = _reservation_id(input)
    if reservation_id is None:
        return payload(_MALFORMED)
    cmd = commands.CommitReservation(reservation_id=reservation_id, lines=_parts(input))
    return payload(
        await reservations.commit_reservation(info.context.ctx, cmd, input.idempotency_key)
    )


async def release_reservation(info: Info, input: inputs.ReleaseReservationInput):
    reservation_id = _reservation_id(input)
    if reservation_id is None:
        return payload(_MALFORMED)
    cmd = commands.ReleaseReservation(reservation_id=reservation_id, lines=_parts(input))
    return payload(
        await reservations.release_reservation(info.context.ctx, cmd, input.idempotency_key)
    )


async def ship_transfer(info: Info, input: shipment_types.ShipTransferInput):
    cmd = commands.ShipTransfer(
        sku=input.sku, from_location_code=input.from_location_code,
        to_location_code=input.to_location_code, quantity=input.quantity,
        expected_at=utc(input.expected_at), reason=input.reason, reference=input.reference,
        reason_code=input.reason_code,
    )
    return payload(await transfers.ship_transfer(info.context.ctx, cmd, input.idempotency_key))


async def receive_transfer(info: Info, input: shipment_types.ReceiveTransferInput):
    transfer_id = _id("StockTransfer", input.transfer_id)
    if transfer_id is None:
        return payload(_MALFORMED_TRANSFER)
    cmd = commands.ReceiveTransfer(transfer_id=transfer_id, quantity=input.quantity,
                                   final=input.final, reason=input.reason,
                                   reason_code=input.reason_code)
    return payload(await transfers.receive_transfer(info.context.ctx, cmd,
                                                    input.idempotency_key))


async def cancel_transfer(info: Info, input: shipment_types.CancelTransferInput):
    transfer_id = _id("StockTransfer", input.transfer_id)
    if transfer_id is None:
        return payload(_MALFORMED_TRANSFER)
    cmd = commands.CancelTransfer(transfer_id=transfer_id, reason=input.reason,
                                  reason_code=input.reason_code)
    return payload(await transfers.cancel_transfer(info.context.ctx, cmd, input.idempotency_key))


async def extend_reservation(info: Info, input: inputs.ExtendReservationInput):
    reservation_id = _reservation_id(input)
    if reservation_id is None:
        return payload(_MALFORMED)
    cmd = commands.ExtendReservation(reservation_id=reservation_id,
                                     ttl_seconds=input.ttl_seconds)
    return payload(
        await reservations.extend_reservation(info.context.ctx, cmd, input.idempotency_key)
    )


async def create_channel(info: Info, input: inputs.CreateChannelInput):
    cmd = CreateChannel(code=input.code, name=input.name,
                        location_codes=tuple(input.location_codes))
    return payload(await channels.create_channel(info.context.ctx, cmd, input.idempotency_key))


async def update_channel(info: Info, input: inputs.UpdateChannelInput):
    cmd = UpdateChannel(
        code=input.code, expected_version=input.expected_version, name=input.name,
        location_codes=None if input.location_codes is None else tuple(input.location_codes))
    return payload(await channels.update_channel(info.context.ctx, cmd, input.idempotency_key))
