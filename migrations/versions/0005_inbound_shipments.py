"""Inbound shipments (issue 15, Build 3): the `incoming` quantity state (a
level's column, the ledger's delta and after columns), a shipment and its
lines, each line what is expected at one level and what has been received
there; and the ledger row's shipment, so that each shipment's movements can be
audited against it.

DDL only and idempotent (IF NOT EXISTS), so it can be re-run after a partial
failure on CockroachDB, where DDL is not transactional. Existing data is
carried forward by the defaults: nothing is incoming anywhere, every earlier
ledger row moved no incoming (delta and after 0), and has no shipment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op

from inventory.db.dialect import time_ordered_index_ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATEMENTS = [
    "ALTER TABLE stock_levels ADD COLUMN IF NOT EXISTS incoming BIGINT DEFAULT 0 NOT NULL "
    "CONSTRAINT ck_stock_levels_incoming_non_negative CHECK (incoming >= 0)",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS incoming_delta BIGINT DEFAULT 0 NOT NULL",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS incoming_after BIGINT DEFAULT 0 NOT NULL",
    """
CREATE TABLE IF NOT EXISTS inbound_shipments (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    reference TEXT,
    expected_at TIMESTAMP WITH TIME ZONE,
    status TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_inbound_shipments PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_inbound_shipments_status_known CHECK (
        status IN ('EXPECTED', 'PARTIALLY_RECEIVED', 'RECEIVED', 'CANCELLED'))
)
    """,
    """
CREATE TABLE IF NOT EXISTS inbound_lines (
    tenant_id UUID NOT NULL,
    shipment_id UUID NOT NULL,
    line_no BIGINT NOT NULL,
    item_id UUID NOT NULL,
    location_id UUID NOT NULL,
    quantity BIGINT NOT NULL,
    received BIGINT DEFAULT 0 NOT NULL,
    CONSTRAINT pk_inbound_lines PRIMARY KEY (tenant_id, shipment_id, line_no),
    CONSTRAINT fk_inbound_lines_inbound_shipments FOREIGN KEY (tenant_id, shipment_id)
        REFERENCES inbound_shipments (tenant_id, id),
    CONSTRAINT fk_inbound_lines_items FOREIGN KEY (tenant_id, item_id)
        REFERENCES items (tenant_id, id),
    CONSTRAINT fk_inbound_lines_locations FOREIGN KEY (tenant_id, location_id)
        REFERENCES locations (tenant_id, id),
    CONSTRAINT ck_inbound_lines_quantity_positive CHECK (quantity > 0),
    CONSTRAINT ck_inbound_lines_received_non_negative CHECK (received >= 0)
)
    """,
    # StockLevel.nextExpectedAt: the open lines of one level.
    "CREATE INDEX IF NOT EXISTS ix_inbound_lines_level "
    "ON inbound_lines (tenant_id, item_id, location_id)",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS shipment_id UUID",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    # inboundShipments pages newest first within a tenant.
    op.execute(time_ordered_index_ddl(
        op.get_bind().dialect, "ix_inbound_shipments_tenant_created", "inbound_shipments",
        "tenant_id, created_at DESC, id DESC"))


def downgrade() -> None:
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS shipment_id")
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS incoming_after")
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS incoming_delta")
    op.execute("ALTER TABLE stock_levels DROP COLUMN IF EXISTS incoming")
    op.execute("DROP TABLE IF EXISTS inbound_lines")
    op.execute("DROP TABLE IF EXISTS inbound_shipments")
