"""Initial schema: locations, items, stock levels, reservations, ledger, idempotency keys.

DDL only (no data backfill), so it is safe on CockroachDB where DDL is not
transactional: every statement is idempotent (IF NOT EXISTS) and the revision can
be re-run after a partial failure. The DDL is frozen here as SQL that both
engines accept, rather than generated from the current table definitions, so
later revisions can change the tables without changing what this one does.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
from alembic import op

from inventory.db.dialect import time_ordered_index_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATEMENTS = [
    """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant_id UUID NOT NULL,
    key TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    result JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_idempotency_keys PRIMARY KEY (tenant_id, key)
)
    """,
    """
CREATE TABLE IF NOT EXISTS items (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    reorder_point BIGINT DEFAULT '0' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_items PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_items_tenant_sku UNIQUE (tenant_id, sku),
    CONSTRAINT ck_items_reorder_point_non_negative CHECK (reorder_point >= 0)
)
    """,
    """
CREATE TABLE IF NOT EXISTS locations (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_locations PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_locations_tenant_code UNIQUE (tenant_id, code)
)
    """,
    """
CREATE TABLE IF NOT EXISTS movements (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    item_id UUID NOT NULL,
    location_id UUID NOT NULL,
    kind TEXT NOT NULL,
    on_hand_delta BIGINT NOT NULL,
    reserved_delta BIGINT NOT NULL,
    on_hand_after BIGINT NOT NULL,
    reserved_after BIGINT NOT NULL,
    version BIGINT NOT NULL,
    reason TEXT,
    reference TEXT,
    reservation_id UUID,
    idempotency_key TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_movements PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_movements_level_version UNIQUE (tenant_id, item_id, location_id, version)
)
    """,
    """
CREATE TABLE IF NOT EXISTS reservations (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    status TEXT NOT NULL,
    reference TEXT,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_reservations PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_reservations_status_known CHECK (status IN ('ACTIVE', 'COMMITTED', 'RELEASED', 'EXPIRED'))
)
    """,
    """
CREATE INDEX IF NOT EXISTS ix_reservations_active_expiry ON reservations (expires_at) WHERE status = 'ACTIVE'
    """,
    """
CREATE TABLE IF NOT EXISTS reservation_lines (
    tenant_id UUID NOT NULL,
    reservation_id UUID NOT NULL,
    line_no INTEGER NOT NULL,
    item_id UUID NOT NULL,
    location_id UUID NOT NULL,
    quantity BIGINT NOT NULL,
    CONSTRAINT pk_reservation_lines PRIMARY KEY (tenant_id, reservation_id, line_no),
    CONSTRAINT fk_reservation_lines_reservations FOREIGN KEY(tenant_id, reservation_id) REFERENCES reservations (tenant_id, id),
    CONSTRAINT ck_reservation_lines_quantity_positive CHECK (quantity > 0)
)
    """,
    """
CREATE TABLE IF NOT EXISTS stock_levels (
    tenant_id UUID NOT NULL,
    item_id UUID NOT NULL,
    location_id UUID NOT NULL,
    on_hand BIGINT DEFAULT '0' NOT NULL,
    reserved BIGINT DEFAULT '0' NOT NULL,
    version BIGINT DEFAULT '0' NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_stock_levels PRIMARY KEY (tenant_id, item_id, location_id),
    CONSTRAINT fk_stock_levels_items FOREIGN KEY(tenant_id, item_id) REFERENCES items (tenant_id, id),
    CONSTRAINT fk_stock_levels_locations FOREIGN KEY(tenant_id, location_id) REFERENCES locations (tenant_id, id),
    CONSTRAINT ck_stock_levels_on_hand_non_negative CHECK (on_hand >= 0),
    CONSTRAINT ck_stock_levels_reserved_non_negative CHECK (reserved >= 0),
    CONSTRAINT ck_stock_levels_available_non_negative CHECK (on_hand >= reserved)
)
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
    bind = op.get_bind()
    # Newest-first ledger listing per tenant: hash-sharded on CockroachDB so that
    # appends spread over ranges instead of all landing on the newest one.
    op.execute(time_ordered_index_ddl(
        bind.dialect, "ix_movements_tenant_created", "movements",
        "tenant_id, created_at DESC, id DESC",
    ))
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_movements_level_created "
        "ON movements (tenant_id, item_id, location_id, created_at DESC, id DESC)"
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "movements", "reservation_lines", "reservations",
                  "stock_levels", "items", "locations"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
