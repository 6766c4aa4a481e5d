"""Read models returned by services: plain immutable values."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from .quantities import NAMES, MovementKind, Quantities
from .reasons import Reason

__all__ = ["MovementKind", "Quantities"]  # MovementKind lives with the states it moves


class ReservationStatus(str, enum.Enum):
    ACTIVE = "ACTIVE"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class LocationView:
    id: UUID
    code: str
    name: str
    created_at: datetime
    archived_at: datetime | None = None  # archived: takes no new stock, keeps its history


@dataclass(frozen=True)
class ItemView:
    id: UUID
    sku: str
    name: str
    reorder_point: int
    created_at: datetime
    version: int = 0  # bumped by every edit (updateItem compares it)
    archived_at: datetime | None = None  # archived: takes no new stock, keeps its history
    backorder_limit: int = 0  # the default of its levels (a level may override it)
    is_kit: bool = False  # made of components (domain/kits.py), no stock of its own


@dataclass(frozen=True)
class StockLevelView:
    item_id: UUID
    location_id: UUID
    sku: str
    location_code: str
    quantities: Quantities
    version: int
    updated_at: datetime | None
    backorder_limit: int = 0  # how many units may be backordered here (item default or own)

    def __getattr__(self, name: str) -> int:
        """Each state (`level.on_hand`) and `available`, from `quantities`."""
        if name in NAMES or name == "available":
            return getattr(self.quantities, name)
        raise AttributeError(name)


@dataclass(frozen=True)
class ReservationLineView:
    item_id: UUID
    location_id: UUID
    sku: str
    location_code: str
    quantity: int  # reserved by the line
    line_no: int = 0
    committed: int = 0  # shipped by commits (partial or final)
    released: int = 0  # given back by releases (partial or final)
    backordered: int = 0  # of what it holds, not yet filled (reserved beyond stock)
    # A component line of a kit: the kit, the line number of the first line of
    # its kit group (one per kit line and location: they move together) and
    # this component's units per kit. None on a plain line.
    kit_item_id: UUID | None = None
    kit_sku: str | None = None
    kit_line: int | None = None
    per_kit: int | None = None

    @property
    def held(self) -> int:
        """What the line still holds while its reservation is ACTIVE (filled
        and backordered units alike)."""
        return self.quantity - self.committed - self.released

    @property
    def filled(self) -> int:
        """What it holds of stock on hand: what a commit may ship."""
        return self.held - self.backordered


@dataclass(frozen=True)
class ReservationView:
    id: UUID
    status: ReservationStatus
    reference: str | None
    expires_at: datetime
    created_at: datetime
    lines: tuple[ReservationLineView, ...]


@dataclass(frozen=True)
class TransferView:
    sku: str
    quantity: int
    source: StockLevelView
    destination: StockLevelView


@dataclass(frozen=True)
class MovementView:
    id: UUID
    item_id: UUID
    location_id: UUID
    sku: str
    location_code: str
    kind: MovementKind
    delta: Quantities
    after: Quantities
    version: int
    reason: str | None
    reference: str | None
    reservation_id: UUID | None
    created_at: datetime
    actor: str | None = None  # "key:<id>", "jwt:<subject>", "system:sweeper"; None before 0002
    reason_code: Reason | None = None  # None: none given (or before 0004)
    shipment_id: UUID | None = None  # the inbound shipment or transfer (0005)
    kit_item_id: UUID | None = None  # the kit whose reservation moved this component (0016)
