"""API keys and the ledger's actor column.

DDL only and idempotent (IF NOT EXISTS), so it can be re-run after a partial
failure on CockroachDB, where DDL is not transactional. No backfill: movements
written before this revision keep actor NULL (unknown).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
CREATE TABLE IF NOT EXISTS api_keys (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    revoked_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_api_keys PRIMARY KEY (tenant_id, id)
)
    """,
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS actor TEXT",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS actor")
    op.execute("DROP TABLE IF EXISTS api_keys")
