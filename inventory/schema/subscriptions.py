"""The types subscriptions yield (served over WebSocket on /graphql); the
Subscription root is in resolvers/root.py."""
from __future__ import annotations

import dataclasses
from datetime import datetime

from typing import Optional

import strawberry

from ..domain import ids

from .scalars import Quantity
from .states import state_values, with_states
from .types import MovementKind


def _fields_of(event) -> dict:
    """The fields both change types carry, from one hub event."""
    c = event.change
    return dict(sku=event.sku, location_code=event.location_code, **state_values(c.after),
                available=event.available, version=c.version,
                reservation_id=strawberry.ID(ids.encode("Reservation", c.reservation_id))
                if c.reservation_id else None,
                reorder_point=event.reorder_point, low=event.is_low,
                kind=MovementKind(c.kind), at=c.at)


@strawberry.type(description="A new version of one stock level.")
@with_states(after="location_code")
class StockLevelChange:
    sku: str
    location_code: str
    available: Quantity
    version: Quantity
    reorder_point: Quantity
    low: bool = strawberry.field(description="available <= the item's reorder point")
    kind: MovementKind = strawberry.field(description="The movement that made this version.")
    at: datetime = strawberry.field(description="When its transaction started.")
    reservation_id: Optional[strawberry.ID] = strawberry.field(
        default=None, description="The reservation it was made for (kind RESERVE, COMMIT, "
                                  "RELEASE, EXPIRE, BACKORDER_FILLED: that reservation's "
                                  "backordered units were filled).")
    # One object per event, yielded to every subscriber: results of the same
    # selection are shared (see inventory/graphql_runtime/execution.py).
    shared_results: strawberry.Private[dict] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, event) -> "StockLevelChange":
        return cls(**_fields_of(event))


@strawberry.type(description="A stock level crossed its item's reorder point.")
@with_states(after="low")
class LowStockChange:
    sku: str
    location_code: str
    available: Quantity
    reorder_point: Quantity
    low: bool = strawberry.field(description="true: available <= reorderPoint; false: recovered")
    version: Quantity
    kind: MovementKind
    at: datetime
    reservation_id: Optional[strawberry.ID] = None
    shared_results: strawberry.Private[dict] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, event) -> "LowStockChange":
        return cls(**_fields_of(event))


@strawberry.input(description="The last version a client saw of one level.")
class LevelVersionInput:
    sku: str
    location_code: str
    version: Quantity
