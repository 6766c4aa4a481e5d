"""Who is calling: the tenant and scopes come from the credential, never from input."""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

READ = "inventory:read"
WRITE = "inventory:write"
ADMIN = "inventory:admin"
METRICS = "inventory:metrics"  # scrape /metrics (every tenant's counts), nothing else
ALL_SCOPES = (READ, WRITE, ADMIN, METRICS)


@dataclass(frozen=True)
class Principal:
    tenant_id: UUID
    scopes: frozenset[str]
    actor: str  # what the ledger records: "key:<id>" or "jwt:<subject>"
    credential: str  # the rate-limit bucket of this credential

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def parse_scopes(raw: str | list | tuple | None) -> frozenset[str]:
    """Known scopes from a space/comma separated string or a list; unknown ones are dropped."""
    if raw is None:
        return frozenset()
    parts = raw.replace(",", " ").split() if isinstance(raw, str) else [str(p) for p in raw]
    return frozenset(p for p in parts if p in ALL_SCOPES)
