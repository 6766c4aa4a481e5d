"""Tables (SQLAlchemy Core). Every primary key leads with tenant_id; keys are UUIDs.

Quantities are BIGINT everywhere (INT is 4 bytes on PostgreSQL, 8 on CockroachDB).
CHECK constraints are the last line of defence for the invariants; the services
guard every update so that they never fire in normal operation.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from ..domain.quantities import NAMES, STATES, available_text

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

# An item is low on stock, or not: the predicates of the two partial indexes
# on items; `queries.items_page` filters by the same conditions, so that both
# engines match a page to its index.
LOW_STOCK, IN_STOCK = "low", "NOT low"

_uuid_pk = dict(server_default=text("gen_random_uuid()"), nullable=False)


def _states(suffix: str = "", **options) -> list[Column]:
    """A BIGINT column per quantity state (domain/quantities.py), named `<state><suffix>`."""
    return [Column(name + suffix, BigInteger, nullable=False, **options) for name in NAMES]


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False)


locations = Table(
    "locations",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    _created_at(),
    # Archived (0004): takes no new stock, keeps its levels and history.
    Column("archived_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "code", name="uq_locations_tenant_code"),
)

items = Table(
    "items",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("sku", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("reorder_point", BigInteger, nullable=False, server_default="0"),
    _created_at(),
    # 0004: bumped by every edit (updateItem's compare-and-swap); archived items
    # take no new stock.
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("archived_at", DateTime(timezone=True)),
    # 0012: the item's available summed over its levels, kept by every ledger
    # statement that changes it (db/ledger.py), so that low stock (available <=
    # reorder_point) is a row's own state, served by the partial indexes below
    # instead of a sum per item (docs/performance.md, "Low stock as indexable
    # state"). The audit checks it against the levels.
    Column("available", BigInteger, nullable=False, server_default="0"),
    # 0014: computed by the database. The indexes name only this flag, not
    # `available`, so a change of available that leaves the item on the same
    # side is a HOT update on PostgreSQL: no index entry written, hence none of
    # the false SERIALIZABLE conflicts that index-page predicate locks raise
    # between reservations of different items (docs/performance.md).
    Column("low", Boolean, Computed("available <= reorder_point", persisted=True)),
    # 0015: how many units its levels may backorder, unless a level sets its own.
    Column("backorder_limit", BigInteger, nullable=False, server_default="0"),
    # A kit (0016): made of `kit_components`, no stock of its own. Set at
    # creation and never changed, so processes may cache it.
    Column("is_kit", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "sku", name="uq_items_tenant_sku"),
    CheckConstraint("reorder_point >= 0", name="reorder_point_non_negative"),
    CheckConstraint("backorder_limit >= 0", name="backorder_limit_non_negative"),
    Index("ix_items_low", "tenant_id", "sku", postgresql_where=text(LOW_STOCK)),
    Index("ix_items_not_low", "tenant_id", "sku", postgresql_where=text(IN_STOCK)),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("item_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    *_states(server_default="0"),
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    # 0015: the limit in force (copied from the item when the level is made and
    # kept equal to the item's unless backorder_limit_set), so a CHECK can hold
    # backordered <= backorder_limit.
    Column("backorder_limit", BigInteger, nullable=False, server_default="0"),
    Column("backorder_limit_set", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("tenant_id", "item_id", "location_id"),
    ForeignKeyConstraint(["tenant_id", "item_id"], ["items.tenant_id", "items.id"]),
    ForeignKeyConstraint(["tenant_id", "location_id"], ["locations.tenant_id", "locations.id"]),
    *[CheckConstraint(f"{name} >= 0", name=f"{name}_non_negative") for name in NAMES],
    CheckConstraint(f"{available_text()} >= 0", name="available_non_negative"),
    *[CheckConstraint(f"{s.name} <= {s.limit}", name=f"{s.name}_within_limit")
      for s in STATES if s.limit],
)

reservations = Table(
    "reservations",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("status", Text, nullable=False),
    Column("reference", Text),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint(
        "status IN ('ACTIVE', 'COMMITTED', 'RELEASED', 'EXPIRED')", name="status_known"
    ),
    # The sweeper's scan: only ACTIVE rows are indexed, ordered by expiry.
    Index(
        "ix_reservations_active_expiry",
        "expires_at",
        postgresql_where=text("status = 'ACTIVE'"),
    ),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("reservation_id", UUID(as_uuid=True), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("item_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    # What partial and final commits and releases took from the line (0009); it
    # holds quantity - committed - released while its reservation is ACTIVE.
    Column("committed", BigInteger, nullable=False, server_default="0"),
    Column("released", BigInteger, nullable=False, server_default="0"),
    # 0015: of what it holds, how much is backordered (not yet filled).
    Column("backordered", BigInteger, nullable=False, server_default="0"),
    # A line reserved for a kit (0016) is one of its components: the kit, the
    # line number of the first line of its kit group (one group per kit line
    # and location) and the component's units per kit. NULL on other lines.
    Column("kit_item_id", UUID(as_uuid=True)),
    Column("kit_line", Integer),
    Column("per_kit", BigInteger),
    PrimaryKeyConstraint("tenant_id", "reservation_id", "line_no"),
    ForeignKeyConstraint(
        ["tenant_id", "reservation_id"], ["reservations.tenant_id", "reservations.id"]
    ),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("committed >= 0", name="committed_non_negative"),
    CheckConstraint("released >= 0", name="released_non_negative"),
    CheckConstraint("backordered >= 0 AND backordered <= quantity - committed - released",
                    name="backordered_within_held"),
    # A kit takes no backorders (0016): its lines hold only filled units.
    CheckConstraint("kit_item_id IS NULL OR backordered = 0", name="kit_not_backordered"),
    # The backordered lines of a level, for filling them as stock arrives.
    Index("ix_reservation_lines_waiting", "tenant_id", "item_id", "location_id",
          postgresql_where=text("backordered > 0")),
)

# Append-only: the application only ever INSERTs here.
movements = Table(
    "movements",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("item_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("kind", Text, nullable=False),
    *_states("_delta"),
    *_states("_after"),
    Column("version", BigInteger, nullable=False),
    Column("reason", Text),
    Column("reference", Text),
    Column("reservation_id", UUID(as_uuid=True)),
    Column("idempotency_key", Text),
    _created_at(),
    # Who made the change: "key:<api key id>" or "jwt:<subject>" (0002; NULL before).
    Column("actor", Text),
    # Why, as one of the domain's Reason codes (0004; NULL before, or none given);
    # `reason` keeps the free text.
    Column("reason_code", Text),
    # The inbound shipment or transfer the change belongs to (0005; NULL: none).
    Column("shipment_id", UUID(as_uuid=True)),
    # The kit whose reservation moved this component (0016; NULL: none).
    Column("kit_item_id", UUID(as_uuid=True)),
    PrimaryKeyConstraint("tenant_id", "id"),
    # One ledger row per level version: replay for subscribers and a uniqueness proof.
    UniqueConstraint(
        "tenant_id", "item_id", "location_id", "version", name="uq_movements_level_version"
    ),
)

# Inbound shipments (0005): each line expects `quantity` at one level; the
# level's `incoming` holds what is outstanding until received or cancelled.
inbound_shipments = Table(
    "inbound_shipments",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("reference", Text),
    Column("expected_at", DateTime(timezone=True)),
    Column("status", Text, nullable=False),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint(
        "status IN ('EXPECTED', 'PARTIALLY_RECEIVED', 'RECEIVED', 'CANCELLED')",
        name="status_known"),
)

inbound_lines = Table(
    "inbound_lines",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("shipment_id", UUID(as_uuid=True), nullable=False),
    Column("line_no", BigInteger, nullable=False),
    Column("item_id", UUID(as_uuid=True), nullable=False),
    Column("location_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("received", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("tenant_id", "shipment_id", "line_no"),
    ForeignKeyConstraint(
        ["tenant_id", "shipment_id"], ["inbound_shipments.tenant_id", "inbound_shipments.id"]),
    ForeignKeyConstraint(["tenant_id", "item_id"], ["items.tenant_id", "items.id"]),
    ForeignKeyConstraint(["tenant_id", "location_id"], ["locations.tenant_id", "locations.id"]),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("received >= 0", name="received_non_negative"),
)

# Transfers in transit (0006): shipped off the source's on hand; what is
# outstanding (quantity - received - lost - returned) is `incoming` at the
# destination until received, lost or returned.
stock_transfers = Table(
    "stock_transfers",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("item_id", UUID(as_uuid=True), nullable=False),
    Column("from_location_id", UUID(as_uuid=True), nullable=False),
    Column("to_location_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("received", BigInteger, nullable=False, server_default="0"),
    Column("lost", BigInteger, nullable=False, server_default="0"),
    Column("returned", BigInteger, nullable=False, server_default="0"),
    Column("status", Text, nullable=False),
    Column("expected_at", DateTime(timezone=True)),
    Column("reference", Text),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    ForeignKeyConstraint(["tenant_id", "item_id"], ["items.tenant_id", "items.id"]),
    ForeignKeyConstraint(["tenant_id", "from_location_id"], ["locations.tenant_id", "locations.id"],
                         name="fk_stock_transfers_from"),
    ForeignKeyConstraint(["tenant_id", "to_location_id"], ["locations.tenant_id", "locations.id"],
                         name="fk_stock_transfers_to"),
    CheckConstraint("status IN ('IN_TRANSIT', 'PARTIALLY_RECEIVED', 'RECEIVED', 'CANCELLED')",
                    name="status_known"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("received >= 0 AND lost >= 0 AND returned >= 0 "
                    "AND received + lost + returned <= quantity", name="accounted"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("key", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("result", JSONB, nullable=False),
    _created_at(),
    PrimaryKeyConstraint("tenant_id", "key"),
)

# API keys (0002): only a SHA-256 hash of the secret is stored. The key a client
# sends names its tenant and id, so verifying it is a primary-key lookup.
api_keys = Table(
    "api_keys",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("name", Text, nullable=False),
    Column("key_hash", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    _created_at(),
    Column("revoked_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant_id", "id"),
)

# Sales channels (0008): a channel ships from an ordered list of locations.
channels = Table(
    "channels",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    # Compare-and-swap for updateChannel: bumped by every change.
    Column("version", BigInteger, nullable=False, server_default="1"),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "code", name="uq_channels_tenant_code"),
)

channel_locations = Table(
    "channel_locations",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("channel_id", UUID(as_uuid=True), nullable=False),
    Column("position", BigInteger, nullable=False),  # PRIORITY allocation follows it
    Column("location_id", UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "channel_id", "position"),
    UniqueConstraint("tenant_id", "channel_id", "location_id",
                     name="uq_channel_locations_location"),
    ForeignKeyConstraint(["tenant_id", "channel_id"], ["channels.tenant_id", "channels.id"]),
    ForeignKeyConstraint(["tenant_id", "location_id"], ["locations.tenant_id", "locations.id"]),
)

# A kit's components (0016): plain items, each once, `quantity` units per kit.
kit_components = Table(
    "kit_components",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("kit_item_id", UUID(as_uuid=True), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("component_item_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "kit_item_id", "position"),
    UniqueConstraint("tenant_id", "kit_item_id", "component_item_id",
                     name="uq_kit_components_component"),
    ForeignKeyConstraint(["tenant_id", "kit_item_id"], ["items.tenant_id", "items.id"],
                         name="fk_kit_components_kit"),
    ForeignKeyConstraint(["tenant_id", "component_item_id"], ["items.tenant_id", "items.id"],
                         name="fk_kit_components_component"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

# Webhooks (migration 0010, see there and docs/webhooks.md).
webhooks = Table(
    "webhooks",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # comma-separated event names
    Column("description", Text),
    Column("secret", Text, nullable=False),
    # Deliveries are signed with both secrets until `previous_secret_until`.
    Column("previous_secret", Text),
    Column("previous_secret_until", DateTime(timezone=True)),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("failure_streak", BigInteger, nullable=False, server_default="0"),
    Column("next_seq", BigInteger, nullable=False, server_default="0"),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), **_uuid_pk),
    Column("webhook_id", UUID(as_uuid=True), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event", Text, nullable=False),
    Column("event_key", Text, nullable=False),
    Column("payload", Text, nullable=False),  # the exact JSON body that is signed
    Column("status", Text, nullable=False, server_default="PENDING"),
    Column("attempts", BigInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), server_default=func.now(),
           nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("last_status_code", BigInteger),
    Column("last_error", Text),
    _created_at(),
    Column("delivered_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "webhook_id", "event_key",
                     name="uq_webhook_deliveries_event"),
    CheckConstraint("status IN ('PENDING', 'DELIVERED', 'FAILED')", name="status_known"),
    Index("ix_webhook_deliveries_queue", "tenant_id", "webhook_id", "status", "seq"),
)

webhook_dispatch = Table(
    "webhook_dispatch",
    metadata,
    Column("name", Text, nullable=False),
    Column("ledger_cursor", Text),
    Column("holder", Text),
    Column("lease_until", DateTime(timezone=True)),
    PrimaryKeyConstraint("name"),
)
