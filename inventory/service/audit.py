"""The ledger audit as a use case (the `ledgerAudit` admin query)."""
from __future__ import annotations

from dataclasses import dataclass

from ..db.audit import DEFAULT_PAGE_SIZE, AuditReport, audit
from .context import Ctx
from .reads import reading


@dataclass
class AuditStats:
    """Process-wide counters, copied into the metrics (observability/metrics.py)."""

    runs: int = 0
    failed: int = 0  # audits that found at least one discrepancy


stats = AuditStats()


async def ledger_audit(ctx: Ctx, page_size: int = DEFAULT_PAGE_SIZE) -> AuditReport:
    """Audits the caller's tenant. Runs the paged (synchronous) audit on one
    pooled connection through SQLAlchemy's greenlet bridge."""
    async with reading(ctx) as conn:
        report = await conn.run_sync(
            lambda sync_conn: audit(sync_conn, tenant_id=ctx.tenant_id, page_size=page_size)
        )
    stats.runs += 1
    if not report.ok:
        stats.failed += 1
    return report
