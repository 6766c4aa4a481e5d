"""Quantity states beside on hand, reserved and incoming (0005): damaged,
quality_control and safety_stock, part of on hand and not sellable.

Each state is a column of `stock_levels` and a delta and an after column of
`movements`, all BIGINT NOT NULL DEFAULT 0: existing levels and ledger rows
carry forward with nothing set aside, which is what they
meant. Each state has its CHECK (>= 0), and the CHECK on available is rebuilt
to subtract the new held states (existing rows satisfy it: the new columns are
0). The state list lives in inventory/domain/quantities.py; this revision
names the columns as they were added, so it does not change when a later state
is added.

DDL only, each statement idempotent (IF [NOT] EXISTS; a CHECK is dropped if
present and added again), so the revision can be re-run after a partial
failure, and on CockroachDB each statement runs in its own transaction.
Adding a column with a constant default rewrites nothing on PostgreSQL 11+.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATES = ("damaged", "quality_control", "safety_stock")
AVAILABLE_BEFORE = "on_hand - reserved"
AVAILABLE = "on_hand - reserved - damaged - quality_control - safety_stock"


def _check(name: str, condition: str) -> list[str]:
    return [f"ALTER TABLE stock_levels DROP CONSTRAINT IF EXISTS ck_stock_levels_{name}",
            f"ALTER TABLE stock_levels ADD CONSTRAINT ck_stock_levels_{name} CHECK ({condition})"]


def upgrade() -> None:
    statements = []
    for state in STATES:
        statements.append(f"ALTER TABLE stock_levels ADD COLUMN IF NOT EXISTS {state} "
                          "BIGINT NOT NULL DEFAULT 0")
        for part in ("delta", "after"):
            statements.append(f"ALTER TABLE movements ADD COLUMN IF NOT EXISTS {state}_{part} "
                              "BIGINT NOT NULL DEFAULT 0")
    for state in STATES:
        statements += _check(f"{state}_non_negative", f"{state} >= 0")
    statements += _check("available_non_negative", f"{AVAILABLE} >= 0")
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for statement in _check("available_non_negative", f"{AVAILABLE_BEFORE} >= 0"):
        op.execute(statement)
    for state in STATES:
        op.execute(f"ALTER TABLE stock_levels DROP CONSTRAINT IF EXISTS "
                   f"ck_stock_levels_{state}_non_negative")
        op.execute(f"ALTER TABLE stock_levels DROP COLUMN IF EXISTS {state}")
        for part in ("delta", "after"):
            op.execute(f"ALTER TABLE movements DROP COLUMN IF EXISTS {state}_{part}")
