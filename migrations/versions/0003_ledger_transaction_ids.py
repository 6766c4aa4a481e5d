"""The ledger records which transaction wrote each row (PostgreSQL).

The change feed on PostgreSQL reads ledger rows below the oldest transaction
still running (`pg_snapshot_xmin(pg_current_snapshot())`): a row whose writer's
id is below that horizon can no longer be joined by an earlier, still-running
writer. Each row therefore stores `pg_current_xact_id()`, indexed for the
feed's range scan. See docs/live-stock.md.

DDL only, each statement idempotent, so the revision can be re-run after a
partial failure. The column is added without a default first (no table rewrite;
rows already in the ledger keep NULL: they are history, served by replay from
level versions, never by the live reader, which starts at the current horizon),
then the default applies to new rows. No backfill revision is needed.

CockroachDB has neither xid8 nor `pg_current_xact_id()`; its change feed is a
changefeed on the table (inventory/db/changes.py), so nothing is added there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from alembic import op

from inventory.db.dialect import is_cockroach

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

POSTGRESQL_STATEMENTS = [
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS xact_id xid8",
    "ALTER TABLE movements ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id()",
    "CREATE INDEX IF NOT EXISTS ix_movements_xact_id ON movements (xact_id)",
]


def upgrade() -> None:
    if is_cockroach(op.get_bind().dialect):
        return
    for statement in POSTGRESQL_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if is_cockroach(op.get_bind().dialect):
        return
    op.execute("DROP INDEX IF EXISTS ix_movements_xact_id")
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS xact_id")
