"""Types of the `ledgerAudit` admin query."""
from __future__ import annotations

from typing import Optional

import strawberry


@strawberry.type(description="One invariant the ledger audit found broken.")
class AuditDiscrepancy:
    check: str
    sku: Optional[str]
    item_id: Optional[str]
    location_id: Optional[str]
    detail: str


@strawberry.type(description="Result of checking every stock level against the ledger.")
class LedgerAudit:
    ok: bool
    items: int
    levels: int
    ledger_rows: int
    pages: int
    overdue_active_reservations: int = strawberry.field(
        description="ACTIVE reservations past their expiry (the sweeper releases them)")
    discrepancy_count: int
    discrepancies: list[AuditDiscrepancy] = strawberry.field(
        description="The first 100 discrepancies")
