"""Types of stock on its way: inbound shipments and their receipts, and
transfers in transit."""
from __future__ import annotations

from datetime import datetime
from typing import Optional
from uuid import UUID

import strawberry
from strawberry.types import Info

from ..domain import ids
from ..domain.models import StockLevelView
from ..domain.shipments import (
    InboundLineView,
    InboundReceiptView,
    InboundShipmentView,
    InboundStatus as DomainInboundStatus,
    StockTransferView,
    TransferStatus as DomainTransferStatus,
)
from .inputs import _KEY, Reason, reason_code
from .scalars import Quantity
from .types import Item, Location, Node, StockLevel

InboundStatus = strawberry.enum(DomainInboundStatus, description=(
    "EXPECTED: nothing received yet; PARTIALLY_RECEIVED; RECEIVED: every line in full (or "
    "more); CANCELLED: what was outstanding will not come."))


@strawberry.type(description="What one inbound line expects at one stock level.")
class InboundLine:
    sku: str
    location_code: str
    quantity: Quantity = strawberry.field(description="Expected.")
    received: Quantity = strawberry.field(description="Received so far.")
    outstanding: Quantity = strawberry.field(
        description="Still expected (what an under-receipt lacks); part of the level's "
                    "`incoming` while the shipment is open.")
    over_received: Quantity = strawberry.field(description="Received beyond what was expected.")
    item_id: strawberry.Private[UUID]
    location_id: strawberry.Private[UUID]

    @classmethod
    def of(cls, v: InboundLineView) -> "InboundLine":
        return cls(sku=v.sku, location_code=v.location_code, quantity=v.quantity,
                   received=v.received, outstanding=v.outstanding,
                   over_received=v.over_received, item_id=v.item_id, location_id=v.location_id)

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return Item.of(await info.context.loaders.item.load(self.item_id))

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return Location.of(await info.context.loaders.location.load(self.location_id))


@strawberry.type(description="Stock on its way from a supplier: while open, each line's "
                             "outstanding units count as `incoming` at its level.")
class InboundShipment(Node):
    reference: Optional[str]
    expected_at: Optional[datetime]
    status: InboundStatus
    created_at: datetime
    updated_at: datetime
    lines: list[InboundLine]

    @classmethod
    def of(cls, v: InboundShipmentView) -> "InboundShipment":
        return cls(id=strawberry.ID(ids.encode("InboundShipment", v.id)), reference=v.reference,
                   expected_at=v.expected_at, status=v.status, created_at=v.created_at,
                   updated_at=v.updated_at, lines=[InboundLine.of(line) for line in v.lines])


@strawberry.type(description="One line of a receipt: what it received, and where its "
                             "shipment line and level stand now.")
class InboundReceiptLine:
    sku: str
    location_code: str
    quantity: Quantity = strawberry.field(description="Received by this receipt.")
    line: InboundLine
    level: StockLevel


@strawberry.type(description="The result of `receiveInbound`: over- and under-receipt are "
                             "each line's `overReceived` and `outstanding`.")
class InboundReceipt:
    shipment: InboundShipment
    lines: list[InboundReceiptLine]

    @classmethod
    def of(cls, v: InboundReceiptView) -> "InboundReceipt":
        return cls(shipment=InboundShipment.of(v.shipment), lines=[
            InboundReceiptLine(sku=r.line.sku, location_code=r.line.location_code,
                               quantity=r.quantity, line=InboundLine.of(r.line),
                               level=StockLevel.of(r.level))
            for r in v.lines])


@strawberry.input
class InboundLineInput:
    sku: str
    location_code: str
    quantity: Quantity


@strawberry.input
class CreateInboundShipmentInput:
    lines: list[InboundLineInput]
    reference: Optional[str] = None
    expected_at: Optional[datetime] = strawberry.field(
        default=None, description="When it should arrive (StockLevel.nextExpectedAt).")
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReceiveInboundInput:
    shipment_id: strawberry.ID
    lines: list[InboundLineInput]
    allow_over_receipt: bool = strawberry.field(
        default=False, description="Receive more than is outstanding on a line (else "
                                   "OVER_RECEIPT).")
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class CancelInboundInput:
    shipment_id: strawberry.ID
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class InboundShipmentFilter:
    status: Optional[InboundStatus] = None
    reference: Optional[str] = strawberry.field(default=None, description="Exactly this reference.")
    expected_before: Optional[datetime] = strawberry.field(
        default=None, description="Only shipments whose expectedAt is before this time.")


TransferStatus = strawberry.enum(DomainTransferStatus, description=(
    "IN_TRANSIT: nothing received yet; PARTIALLY_RECEIVED; RECEIVED: every unit received or "
    "recorded as lost; CANCELLED: what was not received went back to the source."))


@strawberry.type(description="A transfer in two steps (shipTransfer, then receiveTransfer): "
                             "shipped off the source's on hand, in transit (`incoming` at the "
                             "destination) until received, lost or returned.")
class StockTransfer(Node):
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: Quantity = strawberry.field(description="Shipped.")
    received: Quantity
    lost: Quantity = strawberry.field(description="Recorded as lost in transit.")
    returned: Quantity = strawberry.field(description="Returned to the source by cancelTransfer.")
    in_transit: Quantity = strawberry.field(description="Neither received, lost nor returned.")
    status: TransferStatus
    expected_at: Optional[datetime]
    reference: Optional[str]
    created_at: datetime
    updated_at: datetime
    view: strawberry.Private[StockTransferView]

    @classmethod
    def of(cls, v: StockTransferView) -> "StockTransfer":
        return cls(id=strawberry.ID(ids.encode("StockTransfer", v.id)), sku=v.sku,
                   from_location_code=v.from_location_code, to_location_code=v.to_location_code,
                   quantity=v.quantity, received=v.received, lost=v.lost, returned=v.returned,
                   in_transit=v.outstanding, status=v.status, expected_at=v.expected_at,
                   reference=v.reference, created_at=v.created_at, updated_at=v.updated_at,
                   view=v)

    @strawberry.field(name="from", description="The source's level (as this change left it, "
                                                "in a mutation's result).")
    async def from_(self, info: Info) -> Optional[StockLevel]:
        v = self.view
        return await _level(info, v.source, v.item_id, v.from_location_id)

    @strawberry.field(description="The destination's level (as this change left it, in a "
                                  "mutation's result).")
    async def to(self, info: Info) -> Optional[StockLevel]:
        v = self.view
        return await _level(info, v.destination, v.item_id, v.to_location_id)


async def _level(info: Info, known: StockLevelView | None, item_id: UUID,
                 location_id: UUID) -> Optional[StockLevel]:
    if known is None:
        known = await info.context.loaders.level.load((item_id, location_id))
    return StockLevel.of(known) if known is not None else None


@strawberry.input
class ShipTransferInput:
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: Quantity
    expected_at: Optional[datetime] = strawberry.field(
        default=None, description="When it should arrive (StockLevel.nextExpectedAt).")
    reason: Optional[str] = None
    reference: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReceiveTransferInput:
    transfer_id: strawberry.ID
    quantity: Quantity = strawberry.field(description="Received now (0 only with `final`).")
    final: bool = strawberry.field(
        default=False, description="The last receipt: what is still in transit after it is "
                                   "recorded as lost (a TRANSFER_LOSS ledger row with `reason`).")
    reason: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class CancelTransferInput:
    transfer_id: strawberry.ID
    reason: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class StockTransferFilter:
    status: Optional[TransferStatus] = None
    reference: Optional[str] = strawberry.field(default=None, description="Exactly this reference.")
