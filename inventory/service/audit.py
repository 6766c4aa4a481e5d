"""The ledger audit as a use case (the `ledgerAudit` admin query)."""
from __future__ import annotations

from ..db.audit import DEFAULT_PAGE_SIZE, AuditReport, audit
from ..observability import listeners
from .context import Ctx
from .reads import reading


async def ledger_audit(ctx: Ctx, page_size: int = DEFAULT_PAGE_SIZE) -> AuditReport:
    """Audits the caller's tenant. Runs the paged (synchronous) audit on one
    pooled connection through SQLAlchemy's greenlet bridge."""
    async with reading(ctx) as conn:
        report = await conn.run_sync(
            lambda sync_conn: audit(sync_conn, tenant_id=ctx.tenant_id, page_size=page_size)
        )
    listeners.count(listeners.AUDIT)
    if not report.ok:
        listeners.count(listeners.AUDIT_FAILED)
    return report
