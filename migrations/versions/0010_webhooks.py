"""Webhooks: endpoints, their deliveries, and the dispatcher's place in the ledger.

DDL only and idempotent (IF NOT EXISTS), so it can be re-run after a partial
failure on CockroachDB, where DDL is not transactional.

- `webhooks`: one endpoint of a tenant. `secret` signs deliveries (HMAC needs it
  in clear; it is shown to the client once). `next_seq` numbers its deliveries,
  which go out in that order; `failure_streak` counts deliveries that failed in
  a row (the endpoint is disabled past a threshold).
- `webhook_deliveries`: one event for one endpoint, written by the dispatcher in
  the transaction that moves its ledger cursor. `event_key` makes a re-read of
  the ledger harmless (unique per endpoint).
- `webhook_dispatch`: the dispatcher's ledger cursor and its lease (which
  process dispatches and sends). A system row, not a tenant's.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
CREATE TABLE IF NOT EXISTS webhooks (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until TIMESTAMP WITH TIME ZONE,
    enabled BOOLEAN DEFAULT true NOT NULL,
    failure_streak BIGINT DEFAULT '0' NOT NULL,
    next_seq BIGINT DEFAULT '0' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_webhooks PRIMARY KEY (tenant_id, id)
)
    """,
    """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    tenant_id UUID NOT NULL,
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    webhook_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    event_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT DEFAULT 'PENDING' NOT NULL,
    attempts BIGINT DEFAULT '0' NOT NULL,
    next_attempt_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deadline TIMESTAMP WITH TIME ZONE NOT NULL,
    last_status_code BIGINT,
    last_error TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    delivered_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_webhook_deliveries PRIMARY KEY (tenant_id, id),
    CONSTRAINT uq_webhook_deliveries_event UNIQUE (tenant_id, webhook_id, event_key),
    CONSTRAINT ck_webhook_deliveries_status_known
        CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED'))
)
    """,
    # The sender's question: each endpoint's oldest pending delivery.
    """
CREATE INDEX IF NOT EXISTS ix_webhook_deliveries_queue
    ON webhook_deliveries (tenant_id, webhook_id, status, seq)
    """,
    """
CREATE TABLE IF NOT EXISTS webhook_dispatch (
    name TEXT NOT NULL,
    ledger_cursor TEXT,
    holder TEXT,
    lease_until TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_webhook_dispatch PRIMARY KEY (name)
)
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS webhook_dispatch")
    op.execute("DROP TABLE IF EXISTS webhook_deliveries")
    op.execute("DROP TABLE IF EXISTS webhooks")
