"""Reservation lifecycle: what each line has shipped and released.

A line keeps the quantity it reserved; `committed` and `released` count what
partial (and final) commits and releases took from it, so it still holds
quantity - committed - released while the reservation is ACTIVE. Existing lines
start at 0 and 0, which is what they were. DDL only and idempotent (IF NOT
EXISTS), safe to re-run on CockroachDB.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STATEMENTS = [
    "ALTER TABLE reservation_lines ADD COLUMN IF NOT EXISTS committed BIGINT DEFAULT '0' "
    "NOT NULL CONSTRAINT ck_reservation_lines_committed_non_negative CHECK (committed >= 0)",
    "ALTER TABLE reservation_lines ADD COLUMN IF NOT EXISTS released BIGINT DEFAULT '0' "
    "NOT NULL CONSTRAINT ck_reservation_lines_released_non_negative CHECK (released >= 0)",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE reservation_lines DROP COLUMN IF EXISTS released")
    op.execute("ALTER TABLE reservation_lines DROP COLUMN IF EXISTS committed")
