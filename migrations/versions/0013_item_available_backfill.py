"""Fills `items.available` (0012) from the levels: each item's available summed
over its levels (the formula of revision 0011: on hand less what is reserved,
damaged, held for quality control or kept as safety stock).

Data only, in its own revision (Alembic DDL is not transactional on
CockroachDB). Safe to re-run: it sets the column to what the levels say, so a
second run changes nothing. Run it with no writer on the old code: a level
changed by a process that does not yet keep the column would leave it behind
(the audit reports such an item, and re-running this revision repairs it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

AVAILABLE = "on_hand - reserved - damaged - quality_control - safety_stock"


def upgrade() -> None:
    op.execute(f"""
        UPDATE items SET available = totals.available
        FROM (SELECT tenant_id, item_id, SUM({AVAILABLE}) AS available
              FROM stock_levels GROUP BY tenant_id, item_id) AS totals
        WHERE items.tenant_id = totals.tenant_id AND items.id = totals.item_id
          AND items.available <> totals.available
    """)


def downgrade() -> None:
    pass  # 0012's downgrade drops the column
