"""Transfers in transit (issue 15, Build 4): a transfer shipped from one
location and received, lost or returned over time at another.

DDL only and idempotent (IF NOT EXISTS), so it can be re-run after a partial
failure on CockroachDB, where DDL is not transactional. No existing data
changes: one-step transfers (transferStock) stay ledger rows only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from alembic import op

from inventory.db.dialect import time_ordered_index_ddl

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
CREATE TABLE IF NOT EXISTS stock_transfers (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    item_id UUID NOT NULL,
    from_location_id UUID NOT NULL,
    to_location_id UUID NOT NULL,
    quantity BIGINT NOT NULL,
    received BIGINT DEFAULT 0 NOT NULL,
    lost BIGINT DEFAULT 0 NOT NULL,
    returned BIGINT DEFAULT 0 NOT NULL,
    status TEXT NOT NULL,
    expected_at TIMESTAMP WITH TIME ZONE,
    reference TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_stock_transfers PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_stock_transfers_items FOREIGN KEY (tenant_id, item_id)
        REFERENCES items (tenant_id, id),
    CONSTRAINT fk_stock_transfers_from FOREIGN KEY (tenant_id, from_location_id)
        REFERENCES locations (tenant_id, id),
    CONSTRAINT fk_stock_transfers_to FOREIGN KEY (tenant_id, to_location_id)
        REFERENCES locations (tenant_id, id),
    CONSTRAINT ck_stock_transfers_status_known CHECK (
        status IN ('IN_TRANSIT', 'PARTIALLY_RECEIVED', 'RECEIVED', 'CANCELLED')),
    CONSTRAINT ck_stock_transfers_quantity_positive CHECK (quantity > 0),
    CONSTRAINT ck_stock_transfers_accounted CHECK (
        received >= 0 AND lost >= 0 AND returned >= 0 AND received + lost + returned <= quantity)
)
    """,
    # StockLevel.nextExpectedAt: the transfers on their way to one level.
    "CREATE INDEX IF NOT EXISTS ix_stock_transfers_destination "
    "ON stock_transfers (tenant_id, item_id, to_location_id)",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    op.execute(time_ordered_index_ddl(
        op.get_bind().dialect, "ix_stock_transfers_tenant_created", "stock_transfers",
        "tenant_id, created_at DESC, id DESC"))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS stock_transfers")
