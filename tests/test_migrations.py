"""Migrations from an empty database, re-runnable, and reversible."""
from __future__ import annotations

from sqlalchemy import create_engine, inspect

from inventory.db import migrate

from .support import create_database

TABLES = {"locations", "items", "stock_levels", "reservations", "reservation_lines",
          "movements", "idempotency_keys", "alembic_version", "api_keys"}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_rerun_and_downgrade(pg_base_url):
    url = create_database(pg_base_url, "inventory_migrations")
    assert _tables(url) == set()
    migrate.upgrade(url)
    assert _tables(url) == TABLES
    migrate.upgrade(url)  # at head already: a no-op, not an error
    engine = create_engine(url)
    try:
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("movements")}
        checks = {c["name"] for c in inspect(engine).get_check_constraints("stock_levels")}
    finally:
        engine.dispose()
    assert {"ix_movements_tenant_created", "ix_movements_level_created"} <= indexes
    assert "ck_stock_levels_available_non_negative" in checks
    from alembic import command
    command.downgrade(migrate.alembic_config(url), "base")
    assert _tables(url) == {"alembic_version"}
    migrate.upgrade(url)
    assert _tables(url) == TABLES
