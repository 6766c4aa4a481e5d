from __future__ import annotations

from typing import Optional

from strawberry.types import Info

from ..schema.audit import AuditDiscrepancy, LedgerAudit
from ..service.audit import ledger_audit as run_audit
from .errors import invalid_argument

MAX_SHOWN = 100


async def ledger_audit(info: Info, page_size: Optional[int] = None) -> LedgerAudit:
    """Admin query: audits the caller's tenant (levels vs ledger, reserved vs
    active reservations, conservation per item)."""
    size = 500 if page_size is None else page_size
    if not 1 <= size <= 10_000:
        raise invalid_argument("pageSize", "pageSize must be between 1 and 10000")
    report = await run_audit(info.context.ctx, size)
    return LedgerAudit(
        ok=report.ok, items=report.items, levels=report.levels, ledger_rows=report.ledger_rows,
        pages=report.pages, overdue_active_reservations=report.overdue_active_reservations,
        discrepancy_count=len(report.discrepancies),
        discrepancies=[
            AuditDiscrepancy(
                check=d.check, sku=d.sku, detail=d.detail,
                item_id=str(d.item_id) if d.item_id else None,
                location_id=str(d.location_id) if d.location_id else None,
            )
            for d in report.discrepancies[:MAX_SHOWN]
        ],
    )
