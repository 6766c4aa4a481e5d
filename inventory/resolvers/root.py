"""The schema: the Query, Mutation and Subscription roots, each field wired to
its resolver, and the extensions every operation passes through."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated, AsyncGenerator, Optional, Union

import strawberry

from ..auth.cost import CostLimits, CostMeasure
from ..auth.extension import AccessGuard
from ..auth.limits import limit_rules
from ..auth.principal import ADMIN, READ, WRITE
from ..auth.scopes import needs
from ..graphql_runtime.documents import document_checks
from ..graphql_runtime.observer import OperationObserver
from ..graphql_runtime.quiet import QuietSchema
from ..schema.audit import LedgerAudit
from ..schema.consistency import ReadConsistencyExtension, bounded_staleness
from ..schema.errors import ERROR_TYPES
from ..schema.shipments import InboundReceipt, InboundShipment, StockTransfer
from ..schema.subscriptions import LevelVersionInput, LowStockChange, StockLevelChange
from ..schema.types import (
    Channel, Connection, Item, Location, Movement, Node, Reservation, StockLevel, Transfer,
)
from . import audit as audit_resolvers
from . import mutations as m
from . import queries as q
from . import subscriptions as s
from . import webhooks as wh
from . import bulk as b
from ..schema.bulk import BulkStockResult
from ..schema.webhooks import DeletedWebhook, Webhook, WebhookDelivery, WebhookSecret


def _result(name: str, success: type):
    """Success type | every UserError type: clients select `... on UserError`."""
    return Annotated[Union[(success, *ERROR_TYPES)], strawberry.union(name)]


CreateLocationResult = _result("CreateLocationResult", Location)
CreateItemResult = _result("CreateItemResult", Item)
StockLevelResult = _result("StockLevelResult", StockLevel)
TransferResult = _result("TransferResult", Transfer)
ReservationResult = _result("ReservationResult", Reservation)
UpdateItemResult = _result("UpdateItemResult", Item)
ArchiveItemResult = _result("ArchiveItemResult", Item)
ArchiveLocationResult = _result("ArchiveLocationResult", Location)
InboundShipmentResult = _result("InboundShipmentResult", InboundShipment)
InboundReceiptResult = _result("InboundReceiptResult", InboundReceipt)
StockTransferResult = _result("StockTransferResult", StockTransfer)
ChannelResult = _result("ChannelResult", Channel)
BulkStockResultOrError = _result("BulkStockResultOrError", BulkStockResult)
WebhookSecretResult = _result("WebhookSecretResult", WebhookSecret)
WebhookResult = _result("WebhookResult", Webhook)
DeleteWebhookResult = _result("DeleteWebhookResult", DeletedWebhook)
WebhookDeliveryResult = _result("WebhookDeliveryResult", WebhookDelivery)


# Each root field names the scope its callers need (metadata=needs(...),
# inventory/auth/scopes.py); one that names none needs admin.
@strawberry.type
class Query:
    item: Optional[Item] = strawberry.field(resolver=q.item, metadata=needs(READ))
    items: Connection[Item] = strawberry.field(resolver=q.items, metadata=needs(READ))
    location: Optional[Location] = strawberry.field(resolver=q.location, metadata=needs(READ))
    locations: Connection[Location] = strawberry.field(resolver=q.locations, metadata=needs(READ))
    stock_level: Optional[StockLevel] = strawberry.field(resolver=q.stock_level,
                                                         metadata=needs(READ))
    reservation: Optional[Reservation] = strawberry.field(resolver=q.reservation,
                                                          metadata=needs(READ))
    reservations: Connection[Reservation] = strawberry.field(resolver=q.reservations,
                                                             metadata=needs(READ))
    movements: Connection[Movement] = strawberry.field(resolver=q.movements, metadata=needs(READ))
    inbound_shipment: Optional[InboundShipment] = strawberry.field(resolver=q.inbound_shipment,
                                                                   metadata=needs(READ))
    inbound_shipments: Connection[InboundShipment] = strawberry.field(
        resolver=q.inbound_shipments, metadata=needs(READ))
    stock_transfer: Optional[StockTransfer] = strawberry.field(resolver=q.stock_transfer,
                                                               metadata=needs(READ))
    stock_transfers: Connection[StockTransfer] = strawberry.field(resolver=q.stock_transfers,
                                                                  metadata=needs(READ))
    node: Optional[Node] = strawberry.field(resolver=q.node, metadata=needs(READ))
    channel: Optional[Channel] = strawberry.field(resolver=q.channel, metadata=needs(READ))
    channels: Connection[Channel] = strawberry.field(resolver=q.channels, metadata=needs(READ))
    ledger_audit: LedgerAudit = strawberry.field(resolver=audit_resolvers.ledger_audit,
                                                 metadata=needs(ADMIN))
    webhooks: list[Webhook] = strawberry.field(resolver=wh.list_webhooks, metadata=needs(ADMIN))
    webhook_deliveries: list[WebhookDelivery] = strawberry.field(
        resolver=wh.webhook_deliveries, metadata=needs(ADMIN))


@strawberry.type
class Mutation:
    create_location: CreateLocationResult = strawberry.mutation(resolver=m.create_location,
                                                                metadata=needs(ADMIN))
    create_item: CreateItemResult = strawberry.mutation(resolver=m.create_item,
                                                        metadata=needs(ADMIN))
    update_item: UpdateItemResult = strawberry.mutation(resolver=m.update_item,
                                                        metadata=needs(ADMIN))
    archive_item: ArchiveItemResult = strawberry.mutation(resolver=m.archive_item,
                                                          metadata=needs(ADMIN))
    archive_location: ArchiveLocationResult = strawberry.mutation(resolver=m.archive_location,
                                                                  metadata=needs(ADMIN))
    receive_stock: StockLevelResult = strawberry.mutation(resolver=m.receive_stock,
                                                          metadata=needs(WRITE))
    adjust_stock: StockLevelResult = strawberry.mutation(resolver=m.adjust_stock,
                                                         metadata=needs(WRITE))
    set_stock: StockLevelResult = strawberry.mutation(resolver=m.set_stock, metadata=needs(WRITE))
    move_stock: StockLevelResult = strawberry.mutation(resolver=m.move_stock, metadata=needs(WRITE))
    set_backorder_limit: StockLevelResult = strawberry.mutation(resolver=m.set_backorder_limit,
                                                                metadata=needs(ADMIN))
    transfer_stock: TransferResult = strawberry.mutation(resolver=m.transfer_stock,
                                                         metadata=needs(WRITE))
    reserve_stock: ReservationResult = strawberry.mutation(resolver=m.reserve_stock,
                                                           metadata=needs(WRITE))
    commit_reservation: ReservationResult = strawberry.mutation(resolver=m.commit_reservation,
                                                                metadata=needs(WRITE))
    release_reservation: ReservationResult = strawberry.mutation(resolver=m.release_reservation,
                                                                 metadata=needs(WRITE))
    create_inbound_shipment: InboundShipmentResult = strawberry.mutation(
        resolver=m.create_inbound_shipment, metadata=needs(WRITE))
    receive_inbound: InboundReceiptResult = strawberry.mutation(resolver=m.receive_inbound,
                                                                metadata=needs(WRITE))
    cancel_inbound: InboundShipmentResult = strawberry.mutation(resolver=m.cancel_inbound,
                                                                metadata=needs(WRITE))
    ship_transfer: StockTransferResult = strawberry.mutation(resolver=m.ship_transfer,
                                                             metadata=needs(WRITE))
    receive_transfer: StockTransferResult = strawberry.mutation(resolver=m.receive_transfer,
                                                                metadata=needs(WRITE))
    cancel_transfer: StockTransferResult = strawberry.mutation(resolver=m.cancel_transfer,
                                                               metadata=needs(WRITE))
    extend_reservation: ReservationResult = strawberry.mutation(resolver=m.extend_reservation,
                                                                metadata=needs(WRITE))
    create_channel: ChannelResult = strawberry.mutation(resolver=m.create_channel,
                                                        metadata=needs(ADMIN))
    update_channel: ChannelResult = strawberry.mutation(resolver=m.update_channel,
                                                        metadata=needs(ADMIN))
    bulk_set_stock: BulkStockResultOrError = strawberry.mutation(resolver=b.bulk_set_stock,
                                                                 metadata=needs(WRITE))
    bulk_adjust_stock: BulkStockResultOrError = strawberry.mutation(
        resolver=b.bulk_adjust_stock, metadata=needs(WRITE))
    # Webhooks see every stock change of the tenant: managing them needs admin.
    create_webhook: WebhookSecretResult = strawberry.mutation(resolver=wh.create_webhook,
                                                              metadata=needs(ADMIN))
    update_webhook: WebhookResult = strawberry.mutation(resolver=wh.update_webhook,
                                                        metadata=needs(ADMIN))
    delete_webhook: DeleteWebhookResult = strawberry.mutation(resolver=wh.delete_webhook,
                                                              metadata=needs(ADMIN))
    rotate_webhook_secret: WebhookSecretResult = strawberry.mutation(
        resolver=wh.rotate_webhook_secret, metadata=needs(ADMIN))
    redeliver_webhook: WebhookDeliveryResult = strawberry.mutation(
        resolver=wh.redeliver_webhook, metadata=needs(ADMIN))


@strawberry.type
class Subscription:
    @strawberry.subscription(description=(
        "Each change of a matching stock level (all when no filter is given). Pass "
        "`since` with the last version seen per level to first receive, from the ledger, "
        "what was missed. Per level, versions arrive in order and once. If the client "
        "falls too far behind, the subscription ends with SUBSCRIPTION_OVERFLOW: "
        "subscribe again with `since`."), metadata=needs(READ))
    async def stock_level_changed(
        self, info: strawberry.Info, skus: list[str] | None = None,
        location_codes: list[str] | None = None, since: list[LevelVersionInput] | None = None,
    ) -> AsyncGenerator[StockLevelChange, None]:
        async for event in s.stock_level_changed(info, skus, location_codes, since):
            yield event.view(StockLevelChange, StockLevelChange.of)

    @strawberry.subscription(description=(
        "When a level's available falls to or below its item's reorder point, and "
        "when it recovers above it."), metadata=needs(READ))
    async def low_stock(
        self, info: strawberry.Info, location_codes: list[str] | None = None,
    ) -> AsyncGenerator[LowStockChange, None]:
        async for event in s.low_stock(info, location_codes):
            yield event.view(LowStockChange, LowStockChange.of)


def build_schema(introspection: bool = True, cost: CostLimits | None = None,
                 trusted=None) -> strawberry.Schema:
    """`trusted`: the allow-list of trusted documents (inventory/web/trusted.py),
    None to run any document."""
    cost = cost or CostLimits()
    cost = replace(cost, default_page=q.DEFAULT_PAGE, max_page=q.MAX_PAGE)
    return QuietSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Item, Location, StockLevel, Reservation, Movement, InboundShipment,
               StockTransfer, Channel],
        directives=[bounded_staleness],
        extensions=[
            # Authentication, rate limits (charged before validation, so first
            # here) and scopes of every operation (docs/security.md).
            AccessGuard,
            # Parse (at most 5000 tokens), measure (size after fragments, cost) and
            # validate (depth 12, aliases 30, introspection only when allowed),
            # remembered for repeat documents; no "Did you mean" hints when
            # introspection is off.
            document_checks(max_tokens=5000, rules=limit_rules(
                max_depth=12, max_aliases=30, introspection=introspection),
                measure=CostMeasure(cost), hide_suggestions=not introspection,
                trusted=trusted),
            OperationObserver,  # a span and metrics per operation, not per field
            # @boundedStaleness and extensions.consistency (docs/distributed.md).
            ReadConsistencyExtension,
        ],
    )


def sdl() -> str:
    """The schema the code builds, as SDL (what `inventory schema` prints and
    `schema.graphql` publishes; schema/published.py compares the two)."""
    return build_schema().as_str().rstrip("\n") + "\n"
