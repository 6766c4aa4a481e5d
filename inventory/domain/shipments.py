"""Stock on its way: inbound shipments from suppliers and transfers in transit
between locations. Both raise `incoming` at their destination until their units
are received (on hand), lost or cancelled; the rules of what a receipt may do,
and the status a shipment or transfer is in, live here."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from .errors import ErrorCode, UserError, invalid
from .models import StockLevelView


class InboundStatus(str, enum.Enum):
    EXPECTED = "EXPECTED"  # nothing received yet
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"  # every line received in full (or more)
    CANCELLED = "CANCELLED"  # what was outstanding will not come


class TransferStatus(str, enum.Enum):
    IN_TRANSIT = "IN_TRANSIT"  # nothing received yet
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"  # every unit received or recorded as lost
    CANCELLED = "CANCELLED"  # what was not received went back to the source


@dataclass(frozen=True)
class InboundLineView:
    item_id: UUID
    location_id: UUID
    sku: str
    location_code: str
    quantity: int  # expected
    received: int = 0

    @property
    def outstanding(self) -> int:
        """Still expected (an under-receipt, until it arrives)."""
        return max(self.quantity - self.received, 0)

    @property
    def over_received(self) -> int:
        """Received beyond what was expected."""
        return max(self.received - self.quantity, 0)


@dataclass(frozen=True)
class InboundShipmentView:
    id: UUID
    reference: str | None
    expected_at: datetime | None
    status: InboundStatus
    created_at: datetime
    updated_at: datetime
    lines: tuple[InboundLineView, ...]


@dataclass(frozen=True)
class ReceiptLineView:
    line: InboundLineView  # after this receipt
    quantity: int  # received by this receipt
    level: StockLevelView  # after this receipt


@dataclass(frozen=True)
class InboundReceiptView:
    shipment: InboundShipmentView
    lines: tuple[ReceiptLineView, ...]


def inbound_status(lines: tuple[InboundLineView, ...] | list[InboundLineView]) -> InboundStatus:
    """The status an open shipment is in, from what its lines have received."""
    if all(line.outstanding == 0 for line in lines):
        return InboundStatus.RECEIVED
    if any(line.received > 0 for line in lines):
        return InboundStatus.PARTIALLY_RECEIVED
    return InboundStatus.EXPECTED


@dataclass(frozen=True)
class ReceiptStep:
    """One line of a receipt, decided: `line_no` of the shipment receives
    `quantity` on hand, of which `incoming` were expected (incoming drops by it)."""

    line_no: int
    quantity: int
    incoming: int


def shipment_closed(what: str, status: str) -> UserError:
    return UserError(ErrorCode.SHIPMENT_CLOSED, f"{what} is {status}: it receives nothing more",
                     status=status)


def plan_receipt(
    shipment: InboundShipmentView, receipt: list[tuple[str, str, int]], allow_over_receipt: bool,
) -> list[ReceiptStep] | UserError:
    """Decides a receipt of (sku, location code, quantity) lines against the
    shipment: a cancelled shipment receives nothing (SHIPMENT_CLOSED); a line
    must be on the shipment; receiving more than is outstanding needs
    `allow_over_receipt` (else OVER_RECEIPT)."""
    if shipment.status is InboundStatus.CANCELLED:
        return shipment_closed("the shipment", shipment.status.value)
    by_key = {(line.sku, line.location_code): (n, line) for n, line in enumerate(shipment.lines)}
    steps = []
    for i, (sku, code, quantity) in enumerate(receipt):
        if (sku, code) not in by_key:
            return invalid(f"lines[{i}]", f"{sku!r} at {code!r} is not on this shipment")
        line_no, line = by_key[(sku, code)]
        if quantity > line.outstanding and not allow_over_receipt:
            return UserError(
                ErrorCode.OVER_RECEIPT,
                f"{quantity} of {sku!r} at {code!r} received, {line.outstanding} outstanding: "
                "set allowOverReceipt to receive more than was shipped",
                field=f"lines[{i}].quantity", expected=line.outstanding, actual=quantity)
        steps.append(ReceiptStep(line_no, quantity, min(quantity, line.outstanding)))
    return steps


@dataclass(frozen=True)
class StockTransferView:
    """A transfer in two steps: `quantity` left the source's on hand when it was
    shipped; what is outstanding is in transit, `incoming` at the destination."""

    id: UUID
    item_id: UUID
    sku: str
    from_location_id: UUID
    from_location_code: str
    to_location_id: UUID
    to_location_code: str
    quantity: int
    received: int
    lost: int
    returned: int
    status: TransferStatus
    expected_at: datetime | None
    reference: str | None
    created_at: datetime
    updated_at: datetime
    # The two levels as this change left them (mutation results); None when read.
    source: StockLevelView | None = None
    destination: StockLevelView | None = None

    @property
    def outstanding(self) -> int:
        """In transit: neither received, lost nor returned."""
        return self.quantity - self.received - self.lost - self.returned


def transfer_status(quantity: int, received: int, lost: int) -> TransferStatus:
    """The status of a transfer that is not cancelled."""
    if received + lost >= quantity:
        return TransferStatus.RECEIVED
    if received + lost > 0:
        return TransferStatus.PARTIALLY_RECEIVED
    return TransferStatus.IN_TRANSIT


def plan_transfer_receipt(transfer: StockTransferView, quantity: int,
                          final: bool) -> tuple[int, int] | UserError:
    """(received, lost) by a receipt of `quantity`: a closed transfer receives
    nothing (SHIPMENT_CLOSED); at most what is in transit (OVER_RECEIPT); with
    `final`, the rest of what was in transit is lost."""
    if transfer.status in (TransferStatus.CANCELLED, TransferStatus.RECEIVED):
        return shipment_closed("the transfer", transfer.status.value)
    if quantity > transfer.outstanding:
        return UserError(
            ErrorCode.OVER_RECEIPT,
            f"{quantity} received, {transfer.outstanding} in transit: a transfer cannot "
            "deliver more than was shipped", field="quantity", expected=transfer.outstanding,
            actual=quantity)
    return quantity, (transfer.outstanding - quantity) if final else 0
