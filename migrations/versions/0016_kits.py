"""Kits (bundles): an item made of other items, with no stock of its own.

- `items.is_kit`: set when the item is created with components and never
  changed afterwards (an item is a kit or not for life), so processes may cache
  it. Existing items are not kits (DEFAULT false).
- `kit_components`: a kit's components, in the order given, each once, with the
  units of it one kit takes (> 0). Components are plain items (no nested kits).
- `reservation_lines.kit_item_id`, `kit_line`, `per_kit`: a line reserved for a
  kit is one of its components; `kit_line` is the line number of the first line
  of the same kit unit group (one group per kit line and location), `per_kit`
  the component's units per kit. NULL on every other line, and on every line
  reserved before kits existed, which is what they were.
- `reservation_lines` CHECK `kit_item_id IS NULL OR backordered = 0`: a kit
  takes no backorders (0015), so a kit's lines hold only filled units.
- `movements.kit_item_id`: the kit whose reservation, commit, release or expiry
  moved this component (NULL: none, and on every earlier ledger row).

DDL only, each statement idempotent (IF NOT EXISTS), safe to re-run; on
CockroachDB each statement runs in its own transaction. Adding a nullable
column or one with a constant default rewrites nothing on PostgreSQL 11+.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

STATEMENTS = [
    "ALTER TABLE items ADD COLUMN IF NOT EXISTS is_kit BOOLEAN DEFAULT false NOT NULL",
    "CREATE TABLE IF NOT EXISTS kit_components ("
    " tenant_id UUID NOT NULL,"
    " kit_item_id UUID NOT NULL,"
    " position BIGINT NOT NULL,"
    " component_item_id UUID NOT NULL,"
    " quantity BIGINT NOT NULL,"
    " CONSTRAINT pk_kit_components PRIMARY KEY (tenant_id, kit_item_id, position),"
    " CONSTRAINT uq_kit_components_component UNIQUE"
    " (tenant_id, kit_item_id, component_item_id),"
    " CONSTRAINT fk_kit_components_kit FOREIGN KEY (tenant_id, kit_item_id)"
    " REFERENCES items (tenant_id, id),"
    " CONSTRAINT fk_kit_components_component FOREIGN KEY (tenant_id, component_item_id)"
    " REFERENCES items (tenant_id, id),"
    " CONSTRAINT ck_kit_components_quantity_positive CHECK (quantity > 0))",
    "ALTER TABLE reservation_lines ADD COLUMN IF NOT EXISTS kit_item_id UUID",
    "ALTER TABLE reservation_lines ADD COLUMN IF NOT EXISTS kit_line INTEGER",
    "ALTER TABLE reservation_lines ADD COLUMN IF NOT EXISTS per_kit BIGINT",
    "ALTER TABLE movements ADD COLUMN IF NOT EXISTS kit_item_id UUID",
    # A kit takes no backorders (0015's backordered): its lines hold only filled units.
    "ALTER TABLE reservation_lines DROP CONSTRAINT IF EXISTS "
    "ck_reservation_lines_kit_not_backordered",
    "ALTER TABLE reservation_lines ADD CONSTRAINT ck_reservation_lines_kit_not_backordered "
    "CHECK (kit_item_id IS NULL OR backordered = 0)",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE reservation_lines DROP CONSTRAINT IF EXISTS "
               "ck_reservation_lines_kit_not_backordered")
    op.execute("ALTER TABLE movements DROP COLUMN IF EXISTS kit_item_id")
    for column in ("per_kit", "kit_line", "kit_item_id"):
        op.execute(f"ALTER TABLE reservation_lines DROP COLUMN IF EXISTS {column}")
    op.execute("DROP TABLE IF EXISTS kit_components")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS is_kit")
