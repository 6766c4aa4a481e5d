"""An embedded PostgreSQL of a benchmark's own, migrated, with an all-scopes API
key for the default tenant (bench/bulk.py, bench/export_memory.py)."""
from __future__ import annotations

from pathlib import Path
from uuid import UUID

TENANT = "00000000-0000-0000-0000-000000000001"


def private_database(root: Path) -> tuple[str, str, object]:
    """(database URL, API key, the embedded server to keep alive)."""
    from sqlalchemy import create_engine

    from inventory.auth.keys import create_key
    from inventory.auth.principal import ALL_SCOPES
    from inventory.db import embedded, migrate

    url, server = embedded.start(root / "db")
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            key = create_key(conn, UUID(TENANT), list(ALL_SCOPES), "bench")[1]
    finally:
        engine.dispose()
    return url, key, server
