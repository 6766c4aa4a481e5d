"""Which scope each root field needs.

Queries and subscriptions need inventory:read; stock mutations need
inventory:write; catalogue changes (locations, items), keys and the ledger audit
need inventory:admin. A root field missing from these tables needs admin: a new
operation is closed until someone decides who may call it.
"""
from __future__ import annotations


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

from ..graphql_runtime.document_cache import PerDocument
from .principal import ADMIN, READ, WRITE

ADMIN_QUERIES = {"ledgerAudit", "apiKeys"}
WRITE_MUTATIONS = {
    "receiveStock", "adjustStock", "setStock", "transferStock", "reserveStock",
    "commitReservation", "releaseReservation",
}
ADMIN_MUTATIONS = {"createLocation", "createItem"}
ANY_AUTHENTICATED = {"__typename", "__schema", "__type"}


def required_scope(operation: OperationType, field: str) -> str | None:
    """The scope a root field needs (None: any authenticated caller)."""
    if field in ANY_AUTHENTICATED:
        return None
    if operation is OperationType.MUTATION:
        if field in WRITE_MUTATIONS:
            return WRITE
        return ADMIN
    if field in ADMIN_QUERIES:
        return ADMIN
    return READ  # queries and subscriptions


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
