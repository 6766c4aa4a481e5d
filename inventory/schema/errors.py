"""Typed mutation errors: every one implements `UserError`."""
from __future__ import annotations

from typing import Optional

import strawberry

from ..domain import errors as domain
from ..domain.models import ReservationStatus as DomainReservationStatus
from ..domain.quantities import StockState as DomainStockState
from .scalars import Quantity
from .states import StockState

ErrorCode = strawberry.enum(domain.ErrorCode, description="Why a mutation did not take effect.")
ReservationStatus = strawberry.enum(DomainReservationStatus)


@strawberry.interface(description="A reason a mutation did not take effect; nothing was written.")
class UserError:
    code: ErrorCode
    message: str
    field: Optional[str] = strawberry.field(
        default=None, description="The input field at fault, when there is one."
    )


@strawberry.type
class StockShortage:
    sku: str
    location_code: str = strawberry.field(
        description="For a line given by channel, the channel's code.")
    requested: Quantity
    available: Quantity = strawberry.field(description=(
        "For a line given by channel: summed over its locations with allowSplit, else the "
        "most one location had."))
    channel_code: Optional[str] = None
    backorderable: Quantity = strawberry.field(
        default=0, description="What could still be backordered beyond available (for a line "
                               "given by channel: where its backorder would land).")


@strawberry.type
class InsufficientStockError(UserError):
    shortages: list[StockShortage]


@strawberry.type
class NotFoundError(UserError):
    pass


@strawberry.type
class AlreadyExistsError(UserError):
    pass


@strawberry.type
class InvalidInputError(UserError):
    pass


@strawberry.type
class QuantityMismatchError(UserError):
    expected: Quantity
    actual: Quantity


@strawberry.type
class ReservationNotActiveError(UserError):
    status: ReservationStatus


@strawberry.type
class IdempotencyKeyReusedError(UserError):
    pass


@strawberry.type(description="The reservation still has backordered units: nothing was shipped. "
                             "Commit it once they are filled (a stockLevelChanged event of kind "
                             "BACKORDER_FILLED names it), or release it.")
class ReservationBackorderedError(UserError):
    backordered: Quantity


@strawberry.type(description="A named state holds fewer units than were to be taken out of it.")
class InsufficientQuantityError(UserError):
    state: StockState = strawberry.field(description="The state asked of.")
    requested: Quantity
    held: Quantity = strawberry.field(description="What the state holds.")


@strawberry.type(description="An edit compared a version that has moved on: re-read and "
                             "decide again.")
class VersionMismatchError(UserError):
    expected: Quantity
    actual: Quantity


@strawberry.type(description="Stock into an archived item or location (`field` says which).")
class ArchivedError(UserError):
    pass


@strawberry.type(description="A receipt of more than is outstanding, without allowOverReceipt.")
class OverReceiptError(UserError):
    expected: Quantity = strawberry.field(description="Outstanding on the line.")
    actual: Quantity = strawberry.field(description="What the receipt would have received.")


@strawberry.type(description="The shipment or transfer is CANCELLED (or finished): it "
                             "receives nothing more.")
class ShipmentClosedError(UserError):
    status: str


@strawberry.type(description="Contention, an unreachable database, or an unknown commit "
                             "outcome: nothing is known to have been written; retry with the "
                             "same idempotencyKey.")
class TransientError(UserError):
    retry_after_ms: Optional[int] = None


ERROR_TYPES = (
    InsufficientStockError, NotFoundError, AlreadyExistsError, InvalidInputError,
    QuantityMismatchError, ReservationNotActiveError, IdempotencyKeyReusedError, TransientError,
    VersionMismatchError, ArchivedError, OverReceiptError, ShipmentClosedError,
    InsufficientQuantityError, ReservationBackorderedError,
)


def from_domain(error: domain.UserError) -> UserError:
    common = dict(code=error.code, message=error.message, field=error.field)
    match error.code:
        case domain.ErrorCode.INSUFFICIENT_STOCK:
            return InsufficientStockError(**common, shortages=[
                StockShortage(sku=s.sku, location_code=s.location_code, requested=s.requested,
                              available=s.available, channel_code=s.channel_code,
                              backorderable=s.backorderable)
                for s in error.shortages
            ])
        case domain.ErrorCode.NOT_FOUND:
            return NotFoundError(**common)
        case domain.ErrorCode.ALREADY_EXISTS:
            return AlreadyExistsError(**common)
        case (domain.ErrorCode.INVALID_INPUT | domain.ErrorCode.FORBIDDEN_ADDRESS
              | domain.ErrorCode.KIT_CYCLE | domain.ErrorCode.KIT_HAS_NO_STOCK):
            return InvalidInputError(**common)
        case domain.ErrorCode.QUANTITY_MISMATCH:
            return QuantityMismatchError(**common, expected=error.expected, actual=error.actual)
        case domain.ErrorCode.RESERVATION_NOT_ACTIVE:
            return ReservationNotActiveError(
                **common, status=DomainReservationStatus(error.status)
            )
        case domain.ErrorCode.IDEMPOTENCY_KEY_REUSED:
            return IdempotencyKeyReusedError(**common)
        case domain.ErrorCode.RESERVATION_BACKORDERED:
            return ReservationBackorderedError(**common, backordered=error.backordered)
        case domain.ErrorCode.INSUFFICIENT_QUANTITY:
            return InsufficientQuantityError(**common, state=DomainStockState(error.state),
                                             requested=error.requested, held=error.held)
        case domain.ErrorCode.VERSION_MISMATCH:
            return VersionMismatchError(**common, expected=error.expected, actual=error.actual)
        case domain.ErrorCode.ARCHIVED:
            return ArchivedError(**common)
        case domain.ErrorCode.OVER_RECEIPT:
            return OverReceiptError(**common, expected=error.expected, actual=error.actual)
        case domain.ErrorCode.SHIPMENT_CLOSED:
            return ShipmentClosedError(**common, status=error.status)
        case _:
            return TransientError(**common, retry_after_ms=error.retry_after_ms)
