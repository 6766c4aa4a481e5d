"""Alembic environment. The URL comes from the caller (inventory migrate) or
INVENTORY_DATABASE_URL; DDL that differs by engine is chosen in each revision
through inventory.db.dialect."""
from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from inventory.db.engine import normalize_url
from inventory.db.tables import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("INVENTORY_DATABASE_URL")
    if not url:
        raise SystemExit("set INVENTORY_DATABASE_URL (or run `inventory migrate`)")
    return normalize_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # One statement per transaction (CockroachDB; see inventory.db.migrate):
        # the connection is in autocommit and Alembic opens no transaction.
        context.configure(
            connection=connection, target_metadata=target_metadata,
            transactional_ddl=not config.attributes.get("statement_per_transaction", False))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
