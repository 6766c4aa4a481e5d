"""The schema: Query and Mutation roots wired to the resolvers."""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Optional, Union

import strawberry

from ..auth.cost import CostLimits, CostMeasure
from ..auth.extension import AccessGuard
from ..auth.limits import limit_rules
from ..observability.graphql import OperationObserver
from ..resolvers import mutations as m
from ..resolvers import queries as q
from ..resolvers import audit as audit_resolvers
from .audit import LedgerAudit
from .consistency import ReadConsistencyExtension, bounded_staleness
from .errors import ERROR_TYPES
from ..graphql_runtime.quiet import QuietSchema
from .subscriptions import Subscription
from ..graphql_runtime.documents import document_checks
from .types import Connection, Item, Location, Movement, Node, Reservation, StockLevel, Transfer


def _result(name: str, success: type):
    """Success type | every UserError type: clients select `... on UserError`."""
    return Annotated[Union[(success, *ERROR_TYPES)], strawberry.union(name)]


CreateLocationResult = _result("CreateLocationResult", Location)
CreateItemResult = _result("CreateItemResult", Item)
StockLevelResult = _result("StockLevelResult", StockLevel)
TransferResult = _result("TransferResult", Transfer)
ReservationResult = _result("ReservationResult", Reservation)


@strawberry.type
class Query:
    item: Optional[Item] = strawberry.field(resolver=q.item)
    items: Connection[Item] = strawberry.field(resolver=q.items)
    location: Optional[Location] = strawberry.field(resolver=q.location)
    locations: Connection[Location] = strawberry.field(resolver=q.locations)
    stock_level: Optional[StockLevel] = strawberry.field(resolver=q.stock_level)
    reservation: Optional[Reservation] = strawberry.field(resolver=q.reservation)
    movements: Connection[Movement] = strawberry.field(resolver=q.movements)
    node: Optional[Node] = strawberry.field(resolver=q.node)
    ledger_audit: LedgerAudit = strawberry.field(resolver=audit_resolvers.ledger_audit)


@strawberry.type
class Mutation:
    create_location: CreateLocationResult = strawberry.mutation(resolver=m.create_location)
    create_item: CreateItemResult = strawberry.mutation(resolver=m.create_item)
    receive_stock: StockLevelResult = strawberry.mutation(resolver=m.receive_stock)
    adjust_stock: StockLevelResult = strawberry.mutation(resolver=m.adjust_stock)
    set_stock: StockLevelResult = strawberry.mutation(resolver=m.set_stock)
    transfer_stock: TransferResult = strawberry.mutation(resolver=m.transfer_stock)
    reserve_stock: ReservationResult = strawberry.mutation(resolver=m.reserve_stock)
    commit_reservation: ReservationResult = strawberry.mutation(resolver=m.commit_reservation)
    release_reservation: ReservationResult = strawberry.mutation(resolver=m.release_reservation)


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
        types=[Item, Location, StockLevel, Reservation, Movement],
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
