"""API keys for server-to-server callers.

A key reads `inv_<tenant hex><key id hex>_<secret>`: the secret is 32 random
bytes (256 bits), shown once when the key is created; the database keeps only
its SHA-256. A fast unsalted hash is enough for a high-entropy random secret (no
dictionary to try) and keeps verification cheap. Naming the tenant and id in the
key makes the lookup a primary-key read; the secret is then compared in
constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.engine import Connection

from ..db import api_keys as rows
from .principal import ALL_SCOPES, Principal, parse_scopes

PREFIX = "inv_"


@dataclass(frozen=True)
class ParsedKey:
    tenant_id: UUID
    key_id: UUID
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_key(tenant_id: UUID, key_id: UUID, secret: str) -> str:
    return f"{PREFIX}{tenant_id.hex}{key_id.hex}_{secret}"


# The one form `format_key` writes: lowercase hex ids, a token_urlsafe(32) secret.
# Any other spelling (uppercase hex, braces, other lengths) is refused, so one
# key has exactly one accepted text.
CANONICAL = re.compile(r"inv_([0-9a-f]{32})([0-9a-f]{32})_([A-Za-z0-9_-]{43})")


def parse_key(text: str) -> ParsedKey | None:
    match = CANONICAL.fullmatch(text)
    if match is None:
        return None
    tenant, key_id, secret = match.groups()
    return ParsedKey(UUID(hex=tenant), UUID(hex=key_id), secret)


def create_key(conn: Connection, tenant_id: UUID, scopes: list[str], name: str) -> tuple[UUID, str]:
    """Stores a new key; returns (id, the full key). The key is not recoverable later."""
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(ALL_SCOPES)} (got {scopes})")
    if not name or len(name) > 200:
        raise ValueError("name must be 1-200 characters")
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    rows.insert_key(conn, tenant_id, key_id, name, hash_secret(secret), " ".join(sorted(scopes)))
    return key_id, format_key(tenant_id, key_id, secret)


def principal_for(row: rows.KeyRow | None, parsed: ParsedKey) -> Principal | None:
    """The key's principal if the secret matches and the key is not revoked."""
    if row is None:
        # Compare anyway so unknown ids and wrong secrets take about the same time.
        hmac.compare_digest(hash_secret(parsed.secret), "0" * 64)
        return None
    if not hmac.compare_digest(hash_secret(parsed.secret), row.key_hash):
        return None
    if row.revoked_at is not None:
        return None
    return Principal(
        tenant_id=row.tenant_id, scopes=parse_scopes(row.scopes), actor=f"key:{row.id}",
        credential=f"key:{row.id}",
    )
