from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry

from ..domain.allocation import AllocationStrategy as DomainAllocationStrategy

from .errors import ReservationStatus
from ..domain.quantities import StockState as DomainStockState
from .scalars import Quantity
from .states import StockState
from .types import MovementKind, Reason

_KEY = "Makes the mutation safe to retry: a replay returns the first result."


def reason_code():
    return strawberry.field(default=None, description="Why, as a code; `reason` is free text.")


@strawberry.input
class CreateLocationInput:
    code: str
    name: str
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input(description="One component of a kit: `quantity` units of `sku` per kit.")
class KitComponentInput:
    sku: str
    quantity: Quantity


@strawberry.input
class CreateItemInput:
    sku: str
    name: str
    reorder_point: Quantity = 0
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)
    backorder_limit: Quantity = strawberry.field(
        default=0, description="How many units its levels may backorder beyond available "
                               "(each level may set its own: setBackorderLimit). A kit takes "
                               "no backorders: 0 only.")
    components: Optional[list[KitComponentInput]] = strawberry.field(
        default=None, description=(
            "Given (non-empty): the item is a kit of these plain items, for life. A kit holds "
            "no stock of its own (stock into it: KIT_HAS_NO_STOCK); reserving it reserves its "
            "components, never beyond what they have available (a kit takes no backorders). "
            "Each sku once, quantity > 0, not the kit itself (KIT_CYCLE), not a "
            "kit (kits do not nest), known (NOT_FOUND) and not archived (ARCHIVED)."))


@strawberry.input
class SetBackorderLimitInput:
    sku: str
    location_code: str
    backorder_limit: Optional[Quantity] = strawberry.field(
        default=None, description="This level's own limit; null: the item's backorderLimit.")
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReceiveStockInput:
    sku: str
    location_code: str
    quantity: Quantity
    reason: Optional[str] = None
    reference: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class AdjustStockInput:
    sku: str
    location_code: str
    delta: Quantity
    reason: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)
    state: StockState = strawberry.field(
        default=DomainStockState.AVAILABLE,
        description="AVAILABLE changes onHand alone; a named state (e.g. DAMAGED, to scrap "
                    "damaged units) changes onHand and that state together.")


@strawberry.input(description="Moves units between AVAILABLE and the named states of one "
                              "level: onHand does not change (one ledger row, kind MOVE).")
class MoveStockInput:
    sku: str
    location_code: str
    from_: StockState = strawberry.field(name="from")
    to: StockState
    quantity: Quantity
    reason: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class SetStockInput:
    sku: str
    location_code: str
    on_hand: Quantity
    compare_quantity: Optional[Quantity] = strawberry.field(
        default=None,
        description="If given, the set happens only if the current onHand equals it "
                    "(else QUANTITY_MISMATCH).",
    )
    reason: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class TransferStockInput:
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: Quantity
    reason: Optional[str] = None
    reference: Optional[str] = None
    reason_code: Optional[Reason] = reason_code()
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input(description="Give locationCode, or channelCode to let the service "
                              "allocate the line over the channel's locations.")
class ReserveLineInput:
    sku: str
    location_code: Optional[str] = None
    quantity: Quantity
    channel_code: Optional[str] = None


AllocationStrategy = strawberry.enum(DomainAllocationStrategy, description=(
    "PRIORITY: the channel's location order; MOST_AVAILABLE: the location with the most "
    "available first (ties in the channel's order)."))


@strawberry.input(description="How lines given by channelCode are allocated.")
class AllocationInput:
    strategy: AllocationStrategy = AllocationStrategy.PRIORITY
    allow_split: bool = strawberry.field(
        default=False, description="May one line take units from several locations.")


@strawberry.input
class ReserveStockInput:
    lines: list[ReserveLineInput]
    ttl_seconds: int = 900
    reference: Optional[str] = None
    allocation: Optional[AllocationInput] = strawberry.field(
        default=None, description="For lines given by channelCode (PRIORITY, no split).")
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReservationLinePartInput:
    line_number: int = strawberry.field(description="The line's lineNumber.")
    quantity: Optional[Quantity] = strawberry.field(
        default=None, description="At most what the line holds; left out: all of it.")


_PARTS = ("Only these lines (or parts of them); the rest stays ACTIVE. Left out: "
          "everything the reservation still holds.")


@strawberry.input
class CommitReservationInput:
    reservation_id: strawberry.ID
    lines: Optional[list[ReservationLinePartInput]] = strawberry.field(default=None,
                                                                      description=_PARTS)
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReleaseReservationInput:
    reservation_id: strawberry.ID
    lines: Optional[list[ReservationLinePartInput]] = strawberry.field(default=None,
                                                                      description=_PARTS)
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ExtendReservationInput:
    reservation_id: strawberry.ID
    ttl_seconds: int = strawberry.field(
        description="The reservation then expires this many seconds from now (1 to 7 days).")
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input(description="Compare-and-swap: the edit applies only if the item is still "
                              "at `version` (else VERSION_MISMATCH). Fields left out keep "
                              "their value.")
class UpdateItemInput:
    sku: str
    version: Quantity
    name: Optional[str] = None
    reorder_point: Optional[Quantity] = None
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)
    backorder_limit: Optional[Quantity] = strawberry.field(
        default=None, description="The default backorder limit of its levels (those without "
                                  "their own: setBackorderLimit); refused below what one of "
                                  "them has backordered.")


@strawberry.input(description="An archived item takes no new stock and keeps its history; "
                              "archiving again changes nothing.")
class ArchiveItemInput:
    sku: str
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input(description="An archived location takes no new stock and keeps its "
                              "history; archiving again changes nothing.")
class ArchiveLocationInput:
    code: str
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


_ARCHIVED_FILTER = "true: only archived; false: only active; unset: both."


@strawberry.input
class CreateChannelInput:
    code: str
    name: str
    location_codes: list[str] = strawberry.field(
        description="The locations the channel ships from, in priority order (at least one).")
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input(description="Compare-and-swap: applies only if the channel is still at "
                              "expectedVersion (else VERSION_MISMATCH). Fields left out keep "
                              "their value.")
class UpdateChannelInput:
    code: str
    expected_version: Quantity
    name: Optional[str] = None
    location_codes: Optional[list[str]] = None
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ItemFilter:
    sku_prefix: Optional[str] = None
    low_stock: Optional[bool] = strawberry.field(
        default=None, description="true: totalAvailable <= reorderPoint; false: above it. "
                                   "Plain items only: kits are not listed by it (read a "
                                   "kit's lowStock)."
    )
    archived: Optional[bool] = strawberry.field(default=None, description=_ARCHIVED_FILTER)


@strawberry.input
class LocationFilter:
    archived: Optional[bool] = strawberry.field(default=None, description=_ARCHIVED_FILTER)


@strawberry.input
class ReservationFilter:
    status: Optional[ReservationStatus] = None
    reference: Optional[str] = strawberry.field(default=None, description="Exactly this reference.")
    expires_before: Optional[datetime] = strawberry.field(
        default=None, description="Only reservations whose expiresAt is before this time.")


@strawberry.input
class MovementFilter:
    kinds: Optional[list[MovementKind]] = strawberry.field(
        default=None, description="Only entries of these kinds.")
    reason_codes: Optional[list[Reason]] = strawberry.field(
        default=None, description="Only entries with one of these reason codes.")
    created_after: Optional[datetime] = strawberry.field(
        default=None, description="Only entries created after this time (exclusive).")
    created_before: Optional[datetime] = strawberry.field(
        default=None, description="Only entries created before this time (exclusive).")
