"""What every use case needs: the process's database, the caller's tenant and who
the caller is (recorded on every ledger row), and the process's hot-level path."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional
from uuid import UUID

from ..db.engine import Database
from ..domain.webhooks import WebhookSettings

if TYPE_CHECKING:
    from ..events.hub import Hub
    from .hot_levels import HotLevels

# The tenant of the embedded demo data and of the tests' default API key. Requests
# act for the tenant of their credential (inventory/auth), never for this default.
DEFAULT_TENANT_ID = UUID("00000000-0000-0000-0000-000000000001")


@dataclass(frozen=True)
class Ctx:
    db: Database
    tenant_id: UUID = DEFAULT_TENANT_ID
    hub: Optional["Hub"] = None  # live stock fan-out of this process (inventory/events)
    actor: str | None = None
    # How reservations reach the database in this process (service/hot_levels.py);
    # the app builds one per process, reserve_stock needs it.
    hot_levels: Optional["HotLevels"] = None
    # The operator's webhook settings (which target addresses are allowed, ...).
    webhooks: WebhookSettings = WebhookSettings()
