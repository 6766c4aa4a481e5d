"""Which scope each root field needs, declared where the field is declared.

Every Query, Mutation and Subscription field names its scope with
`metadata=needs(...)` (inventory/resolvers/root.py):
queries and subscriptions need inventory:read, stock mutations inventory:write,
catalogue changes (locations, items) and the ledger audit inventory:admin. A
root field that declares no scope needs admin, so a new operation is closed
until someone decides who may call it, and tests/security/test_declared_scopes.py
fails for it.
"""
from __future__ import annotations

import weakref
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from strawberry.types import get_object_definition

from ..graphql_runtime.document_cache import PerDocument
from .principal import ADMIN

SCOPE = "inventory.scope"  # the key of a field's metadata that names its scope
ANY_AUTHENTICATED = frozenset({"__typename", "__schema", "__type"})


def needs(scope: str) -> dict[str, str]:
    """`metadata=needs(READ)` on a root field: callers need `scope` to select it."""
    return {SCOPE: scope}


def declared_scopes(schema: Any) -> dict[tuple[OperationType, str], str | None]:
    """(operation, root field name) -> the scope its declaration names, or None
    when it names none, for every root field of a strawberry schema."""
    declared: dict[tuple[OperationType, str], str | None] = {}
    for operation, root in ((OperationType.QUERY, schema.query),
                            (OperationType.MUTATION, schema.mutation),
                            (OperationType.SUBSCRIPTION, schema.subscription)):
        if root is None:
            continue
        for field in get_object_definition(root, strict=True).fields:
            name = schema.config.name_converter.get_graphql_name(field)
            declared[(operation, name)] = (field.metadata or {}).get(SCOPE)
    return declared


_declared: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


def required_scope(schema: Any, operation: OperationType, field: str) -> str | None:
    """The scope a root field needs (None: any authenticated caller)."""
    if field in ANY_AUTHENTICATED:
        return None
    declared = _declared.get(schema)
    if declared is None:
        declared = _declared[schema] = declared_scopes(schema)
    return declared.get((operation, field)) or ADMIN


def _walk_root_fields(document: DocumentNode, operation_name: str | None) -> tuple[OperationType, list[str]] | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    names: list[str] = []
    seen: set[str] = set()

    def collect(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                names.append(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                collect(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    collect(fragments[name].selection_set)

    collect(operations[0].selection_set)
    return operations[0].operation, names


# The selected operation's type and root field names (through fragments), or
# None when no single operation is selected. Remembered per parsed document, so
# repeat requests skip the walk.
root_fields = PerDocument(_walk_root_fields)
