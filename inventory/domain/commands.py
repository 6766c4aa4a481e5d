"""Commands: validated intent, checked before any I/O.

Each command knows how to validate itself (returning the first `UserError`)
and how to describe itself canonically, which is what an idempotency key is
bound to: the same key with a different canonical form is a reuse error.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from .allocation import Allocation
from .errors import ErrorCode, UserError, invalid
from .kits import takes_no_backorders
from .reasons import Reason
from .quantities import AVAILABLE, StockState

# Per-operation ceiling; far below BIGINT so sums of many operations cannot overflow.
MAX_QUANTITY = 1_000_000_000_000
MAX_LINES = 100
MAX_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_TTL_SECONDS = 15 * 60
MAX_TEXT = 200
MAX_IDEMPOTENCY_KEY = 200
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")


def _code(field_name: str, value: str, what: str) -> UserError | None:
    if not isinstance(value, str) or not _CODE.match(value):
        return invalid(
            field_name,
            f"{what} must be 1-64 characters of letters, digits, '.', '_', '-' or '/', "
            "starting with a letter or digit",
        )
    return None


def _name(field_name: str, value: str) -> UserError | None:
    if not value or not value.strip():
        return invalid(field_name, f"{field_name} must not be empty")
    if len(value) > MAX_TEXT:
        return invalid(field_name, f"{field_name} must be at most {MAX_TEXT} characters")
    return None


def _optional_text(field_name: str, value: str | None) -> UserError | None:
    if value is not None and len(value) > MAX_TEXT:
        return invalid(field_name, f"{field_name} must be at most {MAX_TEXT} characters")
    return None


def _positive(field_name: str, value: int) -> UserError | None:
    if value <= 0:
        return invalid(field_name, f"{field_name} must be greater than zero (got {value})")
    if value > MAX_QUANTITY:
        return invalid(field_name, f"{field_name} must be at most {MAX_QUANTITY} (got {value})")
    return None


def _non_negative(field_name: str, value: int) -> UserError | None:
    if value < 0:
        return invalid(field_name, f"{field_name} must not be negative (got {value})")
    if value > MAX_QUANTITY:
        return invalid(field_name, f"{field_name} must be at most {MAX_QUANTITY} (got {value})")
    return None


def _stock_state(field_name: str, value: str) -> UserError | None:
    if value not in StockState.__members__:
        return invalid(field_name, f"{field_name} must be one of {', '.join(StockState.__members__)}")
    return None


def first_error(*checks: UserError | None) -> UserError | None:
    return next((c for c in checks if c is not None), None)


def validate_idempotency_key(key: str | None) -> UserError | None:
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        return invalid(
            "idempotencyKey",
            f"idempotencyKey must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return None


# A field added to a command after keys were stored for it: left out of the
# canonical form while unset, so those keys still match their requests.
ADDED_LATER = "added_later"


def _added_later(default: Any = None):
    return dataclasses.field(default=default, metadata={ADDED_LATER: True})


class Command:
    """Base: the operation name plus a canonical description for idempotency."""

    operation: str = ""

    def validate(self) -> UserError | None:  # pragma: no cover - overridden
        return None

    def canonical(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, (UUID, datetime)):
                return str(v) if isinstance(v, UUID) else v.isoformat()
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if dataclasses.is_dataclass(v):
                # A field added later is left out at its default, so keys stored
                # before it keep matching the same request.
                return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                        if not (f.metadata.get(ADDED_LATER) and getattr(v, f.name) == f.default)}
            if isinstance(v, Reason):
                return v.value
            return v

        return {"operation": self.operation, "input": plain(self)}


@dataclass(frozen=True)
class CreateLocation(Command):
    code: str
    name: str
    operation = "createLocation"

    def validate(self) -> UserError | None:
        return first_error(_code("code", self.code, "code"), _name("name", self.name))


@dataclass(frozen=True)
class KitComponent:
    """`quantity` units of the item `sku` in each kit."""

    sku: str
    quantity: int


MAX_KIT_COMPONENTS = 50


@dataclass(frozen=True)
class CreateItem(Command):
    sku: str
    name: str
    reorder_point: int = 0
    backorder_limit: int = _added_later(0)
    # Given: the item is a kit of these (plain) items, for life; it holds no stock.
    components: tuple[KitComponent, ...] = _added_later(())
    operation = "createItem"

    def validate(self) -> UserError | None:
        return first_error(
            _code("sku", self.sku, "sku"),
            _name("name", self.name),
            _non_negative("reorderPoint", self.reorder_point),
            _non_negative("backorderLimit", self.backorder_limit),
            _components(self.sku, self.components),
            takes_no_backorders() if self.components and self.backorder_limit else None,
        )


@dataclass(frozen=True)
class SetBackorderLimit(Command):
    """A level's own backorder limit; None: the item's default again."""

    sku: str
    location_code: str
    backorder_limit: int | None
    operation = "setBackorderLimit"

    def validate(self) -> UserError | None:
        return first_error(
            _level_address(self.sku, self.location_code),
            None if self.backorder_limit is None
            else _non_negative("backorderLimit", self.backorder_limit),
        )


def _level_address(sku: str, location_code: str) -> UserError | None:
    """The sku and location code that name a stock level."""
    return first_error(_code("sku", sku, "sku"),
                       _code("locationCode", location_code, "locationCode"))


def _components(kit_sku: str, components: tuple[KitComponent, ...]) -> UserError | None:
    """Each component once, not the kit itself, a positive quantity; at most
    MAX_KIT_COMPONENTS. (Unknown, archived and kit components are the
    database's to say: service/kits.py.)"""
    if len(components) > MAX_KIT_COMPONENTS:
        return invalid("components", f"a kit has at most {MAX_KIT_COMPONENTS} components")
    seen: set[str] = set()
    for i, c in enumerate(components):
        error = first_error(_code(f"components[{i}].sku", c.sku, "sku"),
                            _positive(f"components[{i}].quantity", c.quantity))
        if error:
            return error
        if c.sku == kit_sku:
            return UserError(ErrorCode.KIT_CYCLE, f"kit {kit_sku!r} cannot contain itself",
                             field=f"components[{i}].sku")
        if c.sku in seen:
            return invalid(f"components[{i}].sku", f"component {c.sku!r} is named twice: "
                                                   "give its quantity per kit once")
        seen.add(c.sku)
    return None


@dataclass(frozen=True)
class ReceiveStock(Command):
    sku: str
    location_code: str
    quantity: int
    reason: str | None = None
    reference: str | None = None
    reason_code: Reason | None = _added_later()
    operation = "receiveStock"

    def validate(self) -> UserError | None:
        return first_error(
            _level_address(self.sku, self.location_code),
            _positive("quantity", self.quantity),
            _optional_text("reason", self.reason),
            _optional_text("reference", self.reference),
        )


@dataclass(frozen=True)
class AdjustStock(Command):
    sku: str
    location_code: str
    delta: int
    reason: str | None = None
    reason_code: Reason | None = _added_later()
    # AVAILABLE: the sellable rest of on hand; a movable state (DAMAGED, ...):
    # on hand changes with that state (e.g. scrapping damaged units).
    state: str = _added_later(AVAILABLE)
    operation = "adjustStock"

    def validate(self) -> UserError | None:
        if self.delta == 0:
            return invalid("delta", "delta must not be zero")
        return first_error(
            _level_address(self.sku, self.location_code),
            _positive("delta", abs(self.delta)),
            _optional_text("reason", self.reason),
            _stock_state("state", self.state),
        )


@dataclass(frozen=True)
class MoveStock(Command):
    """Units from one state of a level to another; on hand does not change."""

    sku: str
    location_code: str
    from_state: str
    to_state: str
    quantity: int
    reason: str | None = None
    reason_code: Reason | None = None
    operation = "moveStock"

    def validate(self) -> UserError | None:
        return first_error(
            _level_address(self.sku, self.location_code),
            _stock_state("from", self.from_state),
            _stock_state("to", self.to_state),
            invalid("to", "from and to must differ") if self.from_state == self.to_state
            else None,
            _positive("quantity", self.quantity),
            _optional_text("reason", self.reason),
        )


@dataclass(frozen=True)
class SetStock(Command):
    sku: str
    location_code: str
    on_hand: int
    compare_quantity: int | None = None
    reason: str | None = None
    reason_code: Reason | None = _added_later()
    operation = "setStock"

    def validate(self) -> UserError | None:
        return first_error(
            _level_address(self.sku, self.location_code),
            _non_negative("onHand", self.on_hand),
            None if self.compare_quantity is None
            else _non_negative("compareQuantity", self.compare_quantity),
            _optional_text("reason", self.reason),
        )


@dataclass(frozen=True)
class TransferStock(Command):
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: int
    reason: str | None = None
    reference: str | None = None
    reason_code: Reason | None = _added_later()
    operation = "transferStock"

    def validate(self) -> UserError | None:
        error = first_error(
            _code("sku", self.sku, "sku"),
            _code("fromLocationCode", self.from_location_code, "fromLocationCode"),
            _code("toLocationCode", self.to_location_code, "toLocationCode"),
            _positive("quantity", self.quantity),
            _optional_text("reason", self.reason),
            _optional_text("reference", self.reference),
        )
        if error is None and self.from_location_code == self.to_location_code:
            return invalid("toLocationCode", "toLocationCode must differ from fromLocationCode")
        return error


@dataclass(frozen=True)
class StockLine:
    """A line of stock at a level: (sku, location code, quantity)."""

    sku: str
    location_code: str
    quantity: int


@dataclass(frozen=True)
class ReserveLine(StockLine):
    """A reservation line: at `location_code`, or (location_code None) by
    `channel_code`, allocated over the channel's locations."""

    location_code: str | None
    channel_code: str | None = None


def _lines(lines: tuple[StockLine, ...]) -> UserError | None:
    """1 to MAX_LINES lines of (sku, location code or, for a reservation,
    channel code, positive quantity), each place at most once."""
    if not lines:
        return invalid("lines", "lines must contain at least one line")
    if len(lines) > MAX_LINES:
        return invalid("lines", f"lines must contain at most {MAX_LINES} lines")
    seen: set[tuple[str, str | None, str | None]] = set()
    for i, line in enumerate(lines):
        channel = getattr(line, "channel_code", None)
        if (line.location_code is None) == (channel is None):
            return invalid(f"lines[{i}]", "give either locationCode or channelCode (not both)")
        error = first_error(
            _code(f"lines[{i}].sku", line.sku, "sku"),
            None if line.location_code is None
            else _code(f"lines[{i}].locationCode", line.location_code, "locationCode"),
            None if channel is None else _code(f"lines[{i}].channelCode", channel, "channelCode"),
            _positive(f"lines[{i}].quantity", line.quantity),
        )
        if error:
            return error
        key = (line.sku, line.location_code, channel)
        if key in seen:
            where = line.location_code or f"channel {channel}"
            return invalid(
                f"lines[{i}]",
                f"duplicate line for sku {line.sku!r} at {where!r}: "
                "combine the quantities into one line",
            )
        seen.add(key)
    return None


@dataclass(frozen=True)
class ReserveStock(Command):
    lines: tuple[ReserveLine, ...]
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    reference: str | None = None
    allocation: Allocation = Allocation()  # for the lines given by channel
    operation = "reserveStock"

    def canonical(self) -> dict[str, Any]:
        """Without the channel fields when no line is by channel: keys stored
        before channels existed still match their requests."""
        described = super().canonical()
        if not any(line.channel_code for line in self.lines):
            del described["input"]["allocation"]
            for line in described["input"]["lines"]:
                del line["channel_code"]
        return described

    def validate(self) -> UserError | None:
        error = _lines(self.lines)
        if error:
            return error
        if not 1 <= self.ttl_seconds <= MAX_TTL_SECONDS:
            return invalid("ttlSeconds", f"ttlSeconds must be between 1 and {MAX_TTL_SECONDS}")
        return _optional_text("reference", self.reference)


@dataclass(frozen=True)
class LinePart:
    """Part of a reservation line: `quantity` units of line `line_number`
    (None: all it still holds)."""

    line_number: int
    quantity: int | None = None


def _line_parts(parts: tuple[LinePart, ...] | None) -> UserError | None:
    if parts is None:
        return None
    if not parts:
        return invalid("lines", "lines must name at least one line (leave it out for all)")
    if len(parts) > MAX_LINES:
        return invalid("lines", f"lines must name at most {MAX_LINES} lines")
    seen: set[int] = set()
    for i, part in enumerate(parts):
        if part.line_number < 0:
            return invalid(f"lines[{i}].lineNumber", "lineNumber must not be negative")
        if part.line_number in seen:
            return invalid(f"lines[{i}].lineNumber", f"line {part.line_number} is named twice")
        seen.add(part.line_number)
        if part.quantity is not None:
            error = _positive(f"lines[{i}].quantity", part.quantity)
            if error:
                return error
    return None


@dataclass(frozen=True)
class _Finish(Command):
    """Commit or release: the whole reservation, or with `lines` only those
    parts (the rest stays ACTIVE)."""

    reservation_id: UUID
    lines: tuple[LinePart, ...] | None = None

    def validate(self) -> UserError | None:
        return _line_parts(self.lines)

    def canonical(self) -> dict[str, Any]:
        described = super().canonical()
        if self.lines is None:  # as before partial commits: stored keys still match
            del described["input"]["lines"]
        return described


@dataclass(frozen=True)
class CommitReservation(_Finish):
    operation = "commitReservation"


@dataclass(frozen=True)
class ReleaseReservation(_Finish):
    operation = "releaseReservation"


@dataclass(frozen=True)
class ExtendReservation(Command):
    """The reservation then expires `ttl_seconds` from now."""

    reservation_id: UUID
    ttl_seconds: int
    operation = "extendReservation"

    def validate(self) -> UserError | None:
        if not 1 <= self.ttl_seconds <= MAX_TTL_SECONDS:
            return invalid("ttlSeconds", f"ttlSeconds must be between 1 and {MAX_TTL_SECONDS}")
        return None


@dataclass(frozen=True)
class UpdateItem(Command):
    """Compare-and-swap: applies only if the item's version is still `version`.
    A field left None keeps its value."""

    sku: str
    version: int
    name: str | None = None
    reorder_point: int | None = None
    backorder_limit: int | None = _added_later()
    operation = "updateItem"

    def validate(self) -> UserError | None:
        if self.name is None and self.reorder_point is None and self.backorder_limit is None:
            return invalid("input", "give at least one field to change (name, reorderPoint, "
                                    "backorderLimit)")
        return first_error(
            _code("sku", self.sku, "sku"),
            _non_negative("version", self.version),
            None if self.name is None else _name("name", self.name),
            None if self.reorder_point is None
            else _non_negative("reorderPoint", self.reorder_point),
            None if self.backorder_limit is None
            else _non_negative("backorderLimit", self.backorder_limit),
        )


@dataclass(frozen=True)
class ArchiveItem(Command):
    sku: str
    operation = "archiveItem"

    def validate(self) -> UserError | None:
        return _code("sku", self.sku, "sku")


@dataclass(frozen=True)
class ArchiveLocation(Command):
    code: str
    operation = "archiveLocation"

    def validate(self) -> UserError | None:
        return _code("code", self.code, "code")


@dataclass(frozen=True)
class CreateInboundShipment(Command):
    lines: tuple[StockLine, ...]
    reference: str | None = None
    expected_at: datetime | None = None
    operation = "createInboundShipment"

    def validate(self) -> UserError | None:
        return first_error(_lines(self.lines), _optional_text("reference", self.reference))


@dataclass(frozen=True)
class ReceiveInbound(Command):
    shipment_id: UUID
    lines: tuple[StockLine, ...]
    allow_over_receipt: bool = False
    operation = "receiveInbound"

    def validate(self) -> UserError | None:
        return _lines(self.lines)


@dataclass(frozen=True)
class CancelInbound(Command):
    shipment_id: UUID
    operation = "cancelInbound"


@dataclass(frozen=True)
class ShipTransfer(Command):
    sku: str
    from_location_code: str
    to_location_code: str
    quantity: int
    expected_at: datetime | None = None
    reason: str | None = None
    reference: str | None = None
    reason_code: Reason | None = _added_later()
    operation = "shipTransfer"

    def validate(self) -> UserError | None:
        return TransferStock.validate(self)  # type: ignore[arg-type]  # the same fields


@dataclass(frozen=True)
class ReceiveTransfer(Command):
    """Receives `quantity` of a transfer in transit; `final`: the rest will not
    come and is recorded as lost (with `reason`)."""

    transfer_id: UUID
    quantity: int
    final: bool = False
    reason: str | None = None
    reason_code: Reason | None = _added_later()
    operation = "receiveTransfer"

    def validate(self) -> UserError | None:
        if self.quantity == 0 and self.final:
            return _optional_text("reason", self.reason)  # all of it lost
        return first_error(_positive("quantity", self.quantity),
                           _optional_text("reason", self.reason))


@dataclass(frozen=True)
class CancelTransfer(Command):
    transfer_id: UUID
    reason: str | None = None
    reason_code: Reason | None = _added_later()
    operation = "cancelTransfer"

    def validate(self) -> UserError | None:
        return _optional_text("reason", self.reason)
