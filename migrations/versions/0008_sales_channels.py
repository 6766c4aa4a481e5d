"""Sales channels: a channel ships from an ordered list of locations.

DDL only and idempotent (IF NOT EXISTS), so it can be re-run after a partial
failure on CockroachDB, where DDL is not transactional. `position` orders a
channel's locations (PRIORITY allocation follows it); a location appears at
most once per channel.

Revision ID: 0008
Revises: list_indexes
Create Date: 2026-11-29
"""
from alembic import op

revision = "0008"
down_revision = "list_indexes"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
CREATE TABLE IF NOT EXISTS channels (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT DEFAULT '1' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_channels PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_channels_tenant_code UNIQUE (tenant_id, code)
)
    """,
    """
CREATE TABLE IF NOT EXISTS channel_locations (
    tenant_id UUID NOT NULL,
    channel_id UUID NOT NULL,
    position BIGINT NOT NULL,
    location_id UUID NOT NULL,
    CONSTRAINT pk_channel_locations PRIMARY KEY (tenant_id, channel_id, position),
    CONSTRAINT uq_channel_locations_location UNIQUE (tenant_id, channel_id, location_id),
    CONSTRAINT fk_channel_locations_channels FOREIGN KEY (tenant_id, channel_id)
        REFERENCES channels (tenant_id, id),
    CONSTRAINT fk_channel_locations_locations FOREIGN KEY (tenant_id, location_id)
        REFERENCES locations (tenant_id, id)
)
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS channel_locations")
    op.execute("DROP TABLE IF EXISTS channels")
