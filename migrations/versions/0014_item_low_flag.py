"""Low stock as a computed flag: `items.low` (available <= reorder_point,
stored, computed by the database) and the two partial indexes of 0012 rebuilt
on it (`WHERE low`, `WHERE NOT low`).

Why: an index whose definition names `available` (0012's predicates) makes
every change of an item's available a non-HOT update on PostgreSQL, which
writes new entries into every index of items; under SERIALIZABLE, index scans
hold predicate locks on whole btree pages, so those inserts raised
serialization failures between reservations of unrelated items that share a
page (docs/performance.md, "Low stock as indexable state"). Naming only the
flag, which changes when an item crosses its reorder point, leaves the other
updates HOT. updateItem's reorder point moves the flag with it, computed.

DDL only, each statement idempotent, so the revision can be re-run.
Adding a stored computed column rewrites the table once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD = {"ix_items_low_stock": "available <= reorder_point",
       "ix_items_in_stock": "available > reorder_point"}
NEW = {"ix_items_low": "low", "ix_items_not_low": "NOT low"}


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN IF NOT EXISTS low BOOLEAN "
               "GENERATED ALWAYS AS (available <= reorder_point) STORED")
    for name, predicate in NEW.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON items (tenant_id, sku) "
                   f"WHERE {predicate}")
    for name in OLD:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    for name, predicate in OLD.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON items (tenant_id, sku) "
                   f"WHERE {predicate}")
    for name in NEW:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS low")
