"""Migrations from an empty database, re-runnable, and reversible."""
from __future__ import annotations

from sqlalchemy import create_engine, inspect

from inventory.db import migrate

from .support import ROOT, create_database

REVISIONS = sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py"))

TABLES = {"locations", "items", "stock_levels", "reservations", "reservation_lines",
          "movements", "idempotency_keys", "alembic_version", "api_keys", "inbound_shipments",
          "inbound_lines", "stock_transfers", "channels", "channel_locations", "webhooks",
          "webhook_deliveries", "webhook_dispatch", "kit_components"}


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


def test_statement_per_transaction_writes_each_version_after_its_statements(pg_base_url):
    """The CockroachDB way, run here on PostgreSQL: every statement in
    autocommit (no transaction around DDL), each revision's version written after
    its own statements; and it re-runs cleanly."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    url = create_database(pg_base_url, "inventory_migrations_autocommit")
    sent: list[tuple[str, bool]] = []

    def note(conn, cursor, statement, *rest):
        sent.append((statement, conn.connection.driver_connection.autocommit))

    event.listen(Engine, "before_cursor_execute", note)
    try:
        migrate.upgrade(url, statement_per_transaction=True)
        migrate.upgrade(url, statement_per_transaction=True)
    finally:
        event.remove(Engine, "before_cursor_execute", note)
    assert _tables(url) == TABLES
    assert sent and all(autocommit for _, autocommit in sent), sent
    ddl = [n for n, (s, _) in enumerate(sent) if s.lstrip().upper().startswith(("CREATE", "ALTER"))
           and "alembic_version" not in s]
    versions = [n for n, (s, _) in enumerate(sent)
                if s.lstrip().upper().startswith(("INSERT INTO ALEMBIC_VERSION",
                                                 "UPDATE ALEMBIC_VERSION"))]
    assert len(versions) == len(REVISIONS) and ddl, sent  # one version write per revision
    assert ddl[-1] < versions[-1]  # the last revision's DDL before its version
    # Each revision's version comes after at least one statement of its own.
    assert all(b - a > 1 for a, b in zip([-1, *versions], versions)), sent
