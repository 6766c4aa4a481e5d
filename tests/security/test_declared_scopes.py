"""Scopes are declared on the root fields themselves (inventory/auth/scopes.py):
every Query, Mutation and Subscription field of the served schema names one,
and a field that names none needs admin rather than being open."""
from __future__ import annotations

import graphql
import strawberry
from graphql import OperationType

from inventory.auth.principal import ADMIN, ALL_SCOPES, READ, WRITE
from inventory.auth.scopes import declared_scopes, needs, required_scope
from inventory.resolvers.root import build_schema


def test_every_root_field_of_the_schema_declares_a_known_scope():
    schema = build_schema()
    declared = declared_scopes(schema)
    printed = graphql.build_schema(schema.as_str())  # the SDL clients see
    root_fields = {(operation, name)
                   for operation, root in ((OperationType.QUERY, printed.query_type),
                                           (OperationType.MUTATION, printed.mutation_type),
                                           (OperationType.SUBSCRIPTION, printed.subscription_type))
                   for name in root.fields}
    assert len(root_fields) > 15
    assert set(declared) == root_fields
    undeclared = sorted(f"{op.value} {name}" for (op, name), scope in declared.items()
                        if scope is None)
    assert not undeclared, f"root fields without a declared scope: {undeclared}"
    assert set(declared.values()) <= set(ALL_SCOPES)
    # The scopes the API documents (docs/security.md).
    assert declared[(OperationType.QUERY, "stockLevel")] == READ
    assert declared[(OperationType.QUERY, "ledgerAudit")] == ADMIN
    assert declared[(OperationType.MUTATION, "reserveStock")] == WRITE
    assert declared[(OperationType.MUTATION, "createItem")] == ADMIN
    assert declared[(OperationType.SUBSCRIPTION, "stockLevelChanged")] == READ


def test_a_root_field_without_a_declared_scope_needs_admin_and_is_reported():
    @strawberry.type
    class Query:
        listed: int = strawberry.field(resolver=lambda: 1, metadata=needs(READ))
        forgotten: int = strawberry.field(resolver=lambda: 2)

    schema = strawberry.Schema(query=Query)
    assert declared_scopes(schema) == {(OperationType.QUERY, "listed"): READ,
                                       (OperationType.QUERY, "forgotten"): None}
    assert required_scope(schema, OperationType.QUERY, "listed") == READ
    assert required_scope(schema, OperationType.QUERY, "forgotten") == ADMIN
    assert required_scope(schema, OperationType.QUERY, "__typename") is None
