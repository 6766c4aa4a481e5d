"""Bulk stock updates: inputs and the per-line result."""
from __future__ import annotations

from typing import Optional

import strawberry

from ..domain import bulk
from .errors import UserError, from_domain
from .scalars import Quantity
from .types import StockLevel

ErrorPolicy = strawberry.enum(bulk.ErrorPolicy, description=(
    "ALL_OR_NOTHING: any failed line and nothing is written; SKIP_FAILED: the other "
    "lines are written."))
BulkLineStatus = strawberry.enum(bulk.LineStatus, name="BulkLineStatus")
_KEY = "Makes the mutation safe to retry: a replay returns the first result."
_LINES = "At most 10,000 lines, one per stock level."


@strawberry.input
class BulkSetStockLineInput:
    sku: str
    location_code: str
    on_hand: Quantity
    reason: Optional[str] = None


@strawberry.input
class BulkAdjustStockLineInput:
    sku: str
    location_code: str
    delta: Quantity
    reason: Optional[str] = None


@strawberry.input
class BulkSetStockInput:
    lines: list[BulkSetStockLineInput] = strawberry.field(description=_LINES)
    error_policy: ErrorPolicy = bulk.ErrorPolicy.ALL_OR_NOTHING
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class BulkAdjustStockInput:
    lines: list[BulkAdjustStockLineInput] = strawberry.field(description=_LINES)
    error_policy: ErrorPolicy = bulk.ErrorPolicy.ALL_OR_NOTHING
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.type(description="One line's outcome, in the order of the input's lines.")
class BulkStockLine:
    index: int = strawberry.field(description="The line's position in the input, from 0.")
    status: BulkLineStatus
    level: Optional[StockLevel] = strawberry.field(
        description="The level after this request (APPLIED, UNCHANGED).")
    error: Optional[UserError] = strawberry.field(description="Why the line FAILED.")


@strawberry.type
class BulkStockResult:
    error_policy: ErrorPolicy
    applied: int = strawberry.field(description="Lines that changed their level (one ledger "
                                                "row each).")
    failed: int
    lines: list[BulkStockLine]

    @classmethod
    def of(cls, v: bulk.BulkResult) -> "BulkStockResult":
        return cls(error_policy=v.error_policy, applied=v.applied, failed=v.failed, lines=[
            BulkStockLine(index=r.index, status=r.status,
                          level=StockLevel.of(r.level) if r.level else None,
                          error=from_domain(r.error) if r.error else None)
            for r in v.lines])
