"""Catalogue edits: an item's version (compare-and-swap of updateItem), archived
items and locations, the ledger's reason code, and indexes for listing
reservations.

DDL only and idempotent (IF NOT EXISTS), so it can be re-run after a partial
failure on CockroachDB, where DDL is not transactional. Existing data is
carried forward by the defaults alone, no backfill: every item starts at
version 0, nothing is archived, and ledger rows written before keep a NULL
reason code (their free-text reason is unchanged).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op

from inventory.db.dialect import time_ordered_index_ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATEMENTS = [
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS version BIGINT DEFAULT 0 NOT NULL",
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS archived_at TIMESTAMP WITH TIME ZONE",
    "ALTER TABLE locations ADD COLUMN IF NOT EXISTS archived_at TIMESTAMP WITH TIME ZONE",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS reason_code TEXT",
    "CREATE INDEX IF NOT EXISTS ix_reservations_tenant_reference "
    "ON reservations (tenant_id, reference)",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    # The reservations connection pages newest first within a tenant.
    op.execute(time_ordered_index_ddl(
        op.get_bind().dialect, "ix_reservations_tenant_created", "reservations",
        "tenant_id, created_at DESC, id DESC"))


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_reservations_tenant_created")
    op.execute("DROP INDEX IF EXISTS ix_reservations_tenant_reference")
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS reason_code")
    op.execute("ALTER TABLE locations DROP COLUMN IF EXISTS archived_at")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS archived_at")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS version")
