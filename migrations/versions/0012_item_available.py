"""Low stock as indexable state (issue 18, Build 5): `items.available`, the
item's available summed over its levels, and two partial indexes on (tenant_id,
sku), one for the items at or below their reorder point and one for the rest,
which serve `items(filter: {lowStock})` a page at a time whatever the size of
the catalogue. The ledger statements keep the column (inventory/db/ledger.py);
revision 0013 fills it for existing data.

DDL only, each statement idempotent, so the revision can be re-run after a
partial failure, and on CockroachDB each statement runs in its own transaction.
Adding a column with a constant default rewrites nothing on PostgreSQL 11+.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# As in inventory/db/tables.py (LOW_STOCK, IN_STOCK), which may change later;
# this revision keeps what it created.
INDEXES = {"ix_items_low_stock": "available <= reorder_point",
           "ix_items_in_stock": "available > reorder_point"}


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN IF NOT EXISTS available BIGINT NOT NULL DEFAULT 0")
    for name, predicate in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON items (tenant_id, sku) "
                   f"WHERE {predicate}")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS available")
