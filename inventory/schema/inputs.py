from __future__ import annotations

from typing import Optional

import strawberry

from .scalars import Quantity

_KEY = "Makes the mutation safe to retry: a replay returns the first result."


@strawberry.input
class CreateLocationInput:
    code: str
    name: str
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class CreateItemInput:
    sku: str
    name: str
    reorder_point: Quantity = 0
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReceiveStockInput:
    sku: str
    location_code: str
    quantity: Quantity
    reason: Optional[str] = None
    reference: Optional[str] = None
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class AdjustStockInput:
    sku: str
    location_code: str
    delta: Quantity
    reason: Optional[str] = None
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
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class TransferStockInput:
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: Quantity
    reason: Optional[str] = None
    reference: Optional[str] = None
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReserveLineInput:
    sku: str
    location_code: str
    quantity: Quantity


@strawberry.input
class ReserveStockInput:
    lines: list[ReserveLineInput]
    ttl_seconds: int = 900
    reference: Optional[str] = None
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class CommitReservationInput:
    reservation_id: strawberry.ID
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ReleaseReservationInput:
    reservation_id: strawberry.ID
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class ItemFilter:
    sku_prefix: Optional[str] = None
    low_stock: Optional[bool] = strawberry.field(
        default=None, description="true: totalAvailable <= reorderPoint; false: above it."
    )
