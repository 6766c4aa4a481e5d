"""Indexes for the list filters that had none.

- `items(filter: {skuPrefix})`: `sku LIKE 'prefix%'` can use a btree on
  PostgreSQL only in the "C" collation or with `text_pattern_ops`; the unique
  index on (tenant_id, sku) follows the database's collation, so PostgreSQL
  gets a pattern index. CockroachDB compares strings byte-wise and serves the
  prefix from the unique index: nothing to add there.
- `movements(sku)` and `movements(locationCode)` alone: newest first within an
  item, or within a location (the level's index, 0001, serves both together).

DDL only, each statement idempotent, so the revision can be re-run.

Revision ID: list_indexes
Revises: 0006
Create Date: 2026-11-29
"""
from alembic import op

from inventory.db.dialect import is_cockroach

revision = "list_indexes"
down_revision = "0006"
branch_labels = None
depends_on = None

BOTH = [
    "CREATE INDEX IF NOT EXISTS ix_movements_item_created "
    "ON movements (tenant_id, item_id, created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS ix_movements_location_created "
    "ON movements (tenant_id, location_id, created_at DESC, id DESC)",
]
POSTGRESQL = [
    "CREATE INDEX IF NOT EXISTS ix_items_tenant_sku_pattern "
    "ON items (tenant_id, sku text_pattern_ops)",
]


def upgrade() -> None:
    statements = BOTH if is_cockroach(op.get_bind().dialect) else BOTH + POSTGRESQL
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for name in ("ix_items_tenant_sku_pattern", "ix_movements_location_created",
                 "ix_movements_item_created"):
        op.execute(f"DROP INDEX IF EXISTS {name}")
