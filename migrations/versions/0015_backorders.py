"""Backorders: a reservation may take up to a limit beyond what is available.

- `items.backorder_limit`: the item's default limit (0: no backorders).
- `stock_levels.backorder_limit`: the limit in force at the level, copied from
  the item when the level is created and kept equal to it unless the level
  overrides it (`backorder_limit_set`). Having it on the level lets a CHECK
  hold the invariant: `backordered <= backorder_limit`.
- `stock_levels.backordered` (a quantity state, with `movements`
  `backordered_delta` and `backordered_after`): units reserved beyond stock.
- `reservation_lines.backordered`: how much of what a line holds (quantity -
  committed - released, 0009) is not yet filled, with a partial index on the
  lines that wait (a level's, read when stock arrives).

All BIGINT NOT NULL DEFAULT 0 (false for the flag): existing rows carry forward
with no backorders, which is what they had. DDL only, each statement
idempotent, each its own transaction on CockroachDB.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _check(table: str, name: str, condition: str) -> list[str]:
    return [f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{table}_{name}",
            f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_{name} CHECK ({condition})"]


STATEMENTS = [
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS backorder_limit BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE stock_levels ADD COLUMN IF NOT EXISTS backordered BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE stock_levels ADD COLUMN IF NOT EXISTS backorder_limit BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE stock_levels ADD COLUMN IF NOT EXISTS backorder_limit_set BOOLEAN NOT NULL "
    "DEFAULT false",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS backordered_delta BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS backordered_after BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE reservation_lines ADD COLUMN IF NOT EXISTS backordered BIGINT NOT NULL "
    "DEFAULT 0",
    # The backordered lines of a level, read (in arrival order) when stock arrives.
    "CREATE INDEX IF NOT EXISTS ix_reservation_lines_waiting ON reservation_lines "
    "(tenant_id, item_id, location_id) WHERE backordered > 0",
    *_check("items", "backorder_limit_non_negative", "backorder_limit >= 0"),
    *_check("stock_levels", "backordered_non_negative", "backordered >= 0"),
    *_check("stock_levels", "backordered_within_limit", "backordered <= backorder_limit"),
    *_check("reservation_lines", "backordered_within_held",
            "backordered >= 0 AND backordered <= quantity - committed - released"),
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_reservation_lines_waiting")
    for table, name in [("items", "backorder_limit_non_negative"),
                        ("stock_levels", "backordered_non_negative"),
                        ("stock_levels", "backordered_within_limit"),
                        ("reservation_lines", "backordered_within_held")]:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS ck_{table}_{name}")
    for table, column in [("items", "backorder_limit"), ("stock_levels", "backordered"),
                          ("stock_levels", "backorder_limit"),
                          ("stock_levels", "backorder_limit_set"),
                          ("movements", "backordered_delta"), ("movements", "backordered_after"),
                          ("reservation_lines", "backordered")]:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}")
