"""Typed errors that reach clients as GraphQL `UserError` results.

A `UserError` is a value, not an exception: services return it so that the
transaction can still commit an idempotency record for it. `Rejected` wraps
one when it has to unwind through code that cannot return it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorCode(str, enum.Enum):
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_INPUT = "INVALID_INPUT"
    QUANTITY_MISMATCH = "QUANTITY_MISMATCH"
    RESERVATION_NOT_ACTIVE = "RESERVATION_NOT_ACTIVE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    # A named state (DAMAGED, ...) holds fewer units than asked to take out of it.
    INSUFFICIENT_QUANTITY = "INSUFFICIENT_QUANTITY"
    # commitReservation of a reservation with units still backordered: nothing ships.
    RESERVATION_BACKORDERED = "RESERVATION_BACKORDERED"
    VERSION_MISMATCH = "VERSION_MISMATCH"  # an edit compared a version that moved on
    ARCHIVED = "ARCHIVED"  # stock into an archived item or location
    OVER_RECEIPT = "OVER_RECEIPT"  # receiving more than was shipped without saying so
    SHIPMENT_CLOSED = "SHIPMENT_CLOSED"  # a cancelled (or finished) shipment or transfer
    # A kit among its own components (kits hold plain items only, so only directly).
    KIT_CYCLE = "KIT_CYCLE"
    # Stock into a kit: a kit holds no stock of its own, its components do.
    KIT_HAS_NO_STOCK = "KIT_HAS_NO_STOCK"
    # A webhook URL whose host is a private, loopback or link-local address.
    FORBIDDEN_ADDRESS = "FORBIDDEN_ADDRESS"
    # Retryable: the client may send the same request again (same idempotency key).
    TRANSACTION_CONFLICT = "TRANSACTION_CONFLICT"
    UNAVAILABLE = "UNAVAILABLE"
    RESULT_UNKNOWN = "RESULT_UNKNOWN"


@dataclass(frozen=True)
class Shortage:
    """One reservation or shipment line that could not be satisfied."""

    sku: str
    location_code: str  # the channel's code for a line given by channel
    requested: int
    available: int
    channel_code: str | None = None
    backorderable: int = 0  # what could still be backordered beyond available


@dataclass(frozen=True)
class UserError:
    code: ErrorCode
    message: str
    field: str | None = None
    shortages: tuple[Shortage, ...] = ()
    expected: int | None = None
    actual: int | None = None
    status: str | None = None
    retry_after_ms: int | None = None
    state: str | None = None  # INSUFFICIENT_QUANTITY: the StockState, what was asked, held
    requested: int | None = None
    held: int | None = None
    backordered: int | None = None  # RESERVATION_BACKORDERED: units not yet filled


class Rejected(Exception):
    """Raised to abandon a unit of work with a typed error (the transaction rolls back)."""

    def __init__(self, error: UserError):
        super().__init__(error.message)
        self.error = error


def invalid(field_name: str, message: str) -> UserError:
    return UserError(ErrorCode.INVALID_INPUT, message, field=field_name)


def not_found(field_name: str, message: str) -> UserError:
    return UserError(ErrorCode.NOT_FOUND, message, field=field_name)


def insufficient_quantity(field_name: str, sku: str, location_code: str, state: str,
                          requested: int, held: int) -> UserError:
    return UserError(
        ErrorCode.INSUFFICIENT_QUANTITY,
        f"{requested} of {sku!r} at {location_code!r} asked of {state}, which holds {held}",
        field=field_name, state=state, requested=requested, held=held)


def insufficient_stock(shortages: list[Shortage]) -> UserError:
    """INSUFFICIENT_STOCK listing every short line with what was available."""
    detail = ", ".join(
        f"{s.sku!r} at {s.location_code!r}: {s.requested} requested, {s.available} available"
        + (f" and {s.backorderable} backorderable" if s.backorderable else "")
        for s in shortages
    )
    return UserError(
        ErrorCode.INSUFFICIENT_STOCK, f"not enough stock for {detail}",
        shortages=tuple(shortages),
    )
