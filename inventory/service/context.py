"""What every use case needs: the process's database, the caller's tenant and who
the caller is (recorded on every ledger row)."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ..db.engine import Database

# The tenant of the embedded demo data and of the tests' default API key. Requests
# act for the tenant of their credential (inventory/auth), never for this default.
DEFAULT_TENANT_ID = UUID("00000000-0000-0000-0000-000000000001")


@dataclass(frozen=True)
class Ctx:
    db: Database
    tenant_id: UUID = DEFAULT_TENANT_ID
    actor: str | None = None
