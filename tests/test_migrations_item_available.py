"""Revisions 0012-0014: existing items get their `available` from their
levels and their computed `low` flag, so the low-stock filter is right from the
first request after the upgrade; the backfill re-runs without changing
anything."""
from __future__ import annotations

import uuid

from alembic import command
from sqlalchemy import create_engine, text

from inventory.db import migrate

from .support import create_database

TENANT = uuid.UUID(int=7)


def test_backfill_sums_each_items_levels(pg_base_url):
    url = create_database(pg_base_url, "inventory_item_available")
    config = migrate.alembic_config(url)
    command.upgrade(config, "0011")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO locations (tenant_id, code, name) VALUES "
                              "(:t, 'A', 'A'), (:t, 'B', 'B')"), {"t": TENANT})
            conn.execute(text("INSERT INTO items (tenant_id, sku, name, reorder_point) VALUES "
                              "(:t, 'two', 'x', 5), (:t, 'one', 'x', 5), (:t, 'none', 'x', 5)"),
                         {"t": TENANT})
            conn.execute(text("""
                INSERT INTO stock_levels (tenant_id, item_id, location_id, on_hand, reserved,
                                          damaged, quality_control, safety_stock, incoming)
                SELECT i.tenant_id, i.id, l.id, 10, 1, 2, 0, 1, 50
                FROM items i, locations l
                WHERE i.sku = 'two' OR (i.sku = 'one' AND l.code = 'A')"""))
        migrate.upgrade(url)
        command.downgrade(config, "0012")  # 0014's flag dropped, then computed again
        command.upgrade(config, "head")  # the backfill again: nothing changes
        with engine.connect() as conn:
            found = dict(conn.execute(text("SELECT sku, available FROM items")).all())
            low = conn.execute(text("SELECT sku FROM items WHERE low ORDER BY sku")
                               ).scalars().all()
        assert found == {"two": 12, "one": 6, "none": 0}  # 10 - 1 - 2 - 1 per level
        assert low == ["none"]
    finally:
        engine.dispose()
