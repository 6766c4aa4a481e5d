"""API key rows. Only the hash of a key's secret is stored (see inventory/auth/keys.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import api_keys


@dataclass(frozen=True)
class KeyRow:
    tenant_id: UUID
    id: UUID
    name: str
    key_hash: str
    scopes: str
    created_at: datetime
    revoked_at: datetime | None


_COLUMNS = (api_keys.c.tenant_id, api_keys.c.id, api_keys.c.name, api_keys.c.key_hash,
            api_keys.c.scopes, api_keys.c.created_at, api_keys.c.revoked_at)


def insert_key(conn: Connection, tenant_id: UUID, key_id: UUID, name: str, key_hash: str,
               scopes: str) -> None:
    conn.execute(insert(api_keys).values(
        tenant_id=tenant_id, id=key_id, name=name, key_hash=key_hash, scopes=scopes))


def list_keys(conn: Connection, tenant_id: UUID | None = None) -> list[KeyRow]:
    stmt = select(*_COLUMNS).order_by(api_keys.c.tenant_id, api_keys.c.created_at)
    if tenant_id is not None:
        stmt = stmt.where(api_keys.c.tenant_id == tenant_id)
    return [KeyRow(*row) for row in conn.execute(stmt)]


def revoke_key(conn: Connection, key_id: UUID) -> int:
    """Revokes the key with this id (whatever its tenant); returns rows changed."""
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return result.rowcount


async def find_key(conn: AsyncConnection, tenant_id: UUID, key_id: UUID) -> KeyRow | None:
    row = (await conn.execute(
        select(*_COLUMNS).where(api_keys.c.tenant_id == tenant_id, api_keys.c.id == key_id)
    )).first()
    return KeyRow(*row) if row else None
