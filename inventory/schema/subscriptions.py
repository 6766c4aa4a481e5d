"""Subscription root and its types (served over WebSocket on /graphql)."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import AsyncGenerator

import strawberry

from ..auth.principal import READ
from ..auth.scopes import needs
from ..resolvers import subscriptions as s
from .scalars import Quantity
from .types import MovementKind


@strawberry.type(description="A new version of one stock level.")
class StockLevelChange:
    sku: str
    location_code: str
    on_hand: Quantity
    reserved: Quantity
    available: Quantity
    version: Quantity
    reorder_point: Quantity
    low: bool = strawberry.field(description="available <= the item's reorder point")
    kind: MovementKind = strawberry.field(description="The movement that made this version.")
    at: datetime = strawberry.field(description="When its transaction started.")
    # One object per event, yielded to every subscriber: results of the same
    # selection are shared (see inventory/graphql_runtime/execution.py).
    shared_results: strawberry.Private[dict] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, event) -> "StockLevelChange":
        c = event.change
        return cls(sku=event.sku, location_code=event.location_code, on_hand=c.on_hand,
                   reserved=c.reserved, available=event.available, version=c.version,
                   reorder_point=event.reorder_point, low=event.is_low,
                   kind=MovementKind(c.kind), at=c.at)


@strawberry.type(description="A stock level crossed its item's reorder point.")
class LowStockChange:
    sku: str
    location_code: str
    available: Quantity
    reorder_point: Quantity
    low: bool = strawberry.field(description="true: available <= reorderPoint; false: recovered")
    on_hand: Quantity
    reserved: Quantity
    version: Quantity
    kind: MovementKind
    at: datetime
    shared_results: strawberry.Private[dict] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, event) -> "LowStockChange":
        c = event.change
        return cls(sku=event.sku, location_code=event.location_code, available=event.available,
                   reorder_point=event.reorder_point, low=event.is_low, on_hand=c.on_hand,
                   reserved=c.reserved, version=c.version, kind=MovementKind(c.kind), at=c.at)


@strawberry.input(description="The last version a client saw of one level.")
class LevelVersionInput:
    sku: str
    location_code: str
    version: Quantity


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Each change of a matching stock level (all when no filter is given). Pass "
        "`since` with the last version seen per level to first receive, from the ledger, "
        "what was missed. Per level, versions arrive in order and once. If the client "
        "falls too far behind, the subscription ends with SUBSCRIPTION_OVERFLOW: "
        "subscribe again with `since`."), metadata=needs(READ))
    async def stock_level_changed(
        self, info: strawberry.Info, skus: list[str] | None = None,
        location_codes: list[str] | None = None, since: list[LevelVersionInput] | None = None,
    ) -> AsyncGenerator[StockLevelChange, None]:
        async for event in s.stock_level_changed(info, skus, location_codes, since):
            yield event.view(StockLevelChange, StockLevelChange.of)

    @strawberry.subscription(description=(
        "When a level's available falls to or below its item's reorder point, and "
        "when it recovers above it."), metadata=needs(READ))
    async def low_stock(
        self, info: strawberry.Info, location_codes: list[str] | None = None,
    ) -> AsyncGenerator[LowStockChange, None]:
        async for event in s.low_stock(info, location_codes):
            yield event.view(LowStockChange, LowStockChange.of)
