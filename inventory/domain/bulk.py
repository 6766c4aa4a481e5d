"""Bulk stock updates: many set or adjust lines in one request, each answered
on its own (the new level or a typed error), under an error policy.

Pure: what a line asks for, how it is checked, and what the request answers.
The use case (service/bulk.py) locks the levels in key order and decides each
line with `decide` against the level's current quantities.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .commands import Command, _code, _non_negative, _optional_text, _positive, first_error
from .errors import ErrorCode, Shortage, UserError, invalid
from .models import StockLevelView

MAX_BULK_LINES = 10_000


class ErrorPolicy(str, enum.Enum):
    ALL_OR_NOTHING = "ALL_OR_NOTHING"  # any failed line: nothing is written
    SKIP_FAILED = "SKIP_FAILED"  # failed lines are skipped, the others written


class LineStatus(str, enum.Enum):
    APPLIED = "APPLIED"  # changed: one ledger row
    UNCHANGED = "UNCHANGED"  # already as asked: no ledger row
    FAILED = "FAILED"  # `error` says why
    NOT_APPLIED = "NOT_APPLIED"  # fine, but another line failed under ALL_OR_NOTHING


@dataclass(frozen=True)
class BulkLine:
    """Set on hand to `quantity` (bulkSetStock) or add `quantity` to it
    (bulkAdjustStock, negative to take away)."""

    sku: str
    location_code: str
    quantity: int
    reason: str | None = None


@dataclass(frozen=True)
class BulkStock(Command):
    lines: tuple[BulkLine, ...]
    error_policy: ErrorPolicy = ErrorPolicy.ALL_OR_NOTHING
    adjust: bool = False  # False: set on hand; True: add to it

    @property
    def operation(self) -> str:  # type: ignore[override]
        return "bulkAdjustStock" if self.adjust else "bulkSetStock"

    def validate(self) -> UserError | None:
        """The request as a whole; each line is checked by `check_line`."""
        if not self.lines:
            return invalid("lines", "lines must not be empty")
        if len(self.lines) > MAX_BULK_LINES:
            return invalid("lines", f"at most {MAX_BULK_LINES} lines per request "
                                    f"(got {len(self.lines)}); split it")
        return None

    def check_line(self, line: BulkLine) -> UserError | None:
        if self.adjust and line.quantity == 0:
            return invalid("delta", "delta must not be zero")
        return first_error(
            _code("sku", line.sku, "sku"),
            _code("locationCode", line.location_code, "locationCode"),
            _positive("delta", abs(line.quantity)) if self.adjust
            else _non_negative("onHand", line.quantity),
            _optional_text("reason", line.reason),
        )


@dataclass(frozen=True)
class Decision:
    """What a line does to its level: the new on hand, or the error."""

    on_hand: int | None = None
    error: UserError | None = None


def decide(cmd: BulkStock, line: BulkLine, on_hand: int, available: int) -> Decision:
    """The line against its level's current on hand and available (0 and 0 for
    a level never stocked). Lowering on hand may not take it below what is
    held (available stays >= 0)."""
    new = on_hand + line.quantity if cmd.adjust else line.quantity
    if new - on_hand < -available:
        requested = on_hand - new
        return Decision(error=UserError(
            ErrorCode.INSUFFICIENT_STOCK,
            f"{requested} of {line.sku!r} at {line.location_code!r} to take away, "
            f"{available} available", shortages=(Shortage(
                line.sku, line.location_code, requested, available),)))
    return Decision(on_hand=new)


@dataclass(frozen=True)
class BulkLineResult:
    index: int
    status: LineStatus
    level: StockLevelView | None = None
    error: UserError | None = None


@dataclass(frozen=True)
class BulkResult:
    error_policy: ErrorPolicy
    lines: tuple[BulkLineResult, ...]

    @property
    def applied(self) -> int:
        return sum(1 for r in self.lines if r.status is LineStatus.APPLIED)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.lines if r.status is LineStatus.FAILED)
