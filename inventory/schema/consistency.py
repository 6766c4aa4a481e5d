"""`@boundedStaleness(maxMs: Int!)` on a query operation, and
`extensions.consistency` on every query's response.

    query @boundedStaleness(maxMs: 500) { stockLevel(sku: "A", locationCode: "B") { onHand } }

Strong reads (the leader) stay the default. With the directive, reads may be
served by a standby whose data is at most `maxMs` old, else by the leader.
Mutations and subscriptions ignore it. Every query's response says what served
its reads: `extensions.consistency = {servedBy: "leader" | "replica", stalenessMs}`.
"""
from __future__ import annotations

import strawberry
from graphql import DirectiveLocation, GraphQLError, OperationDefinitionNode, OperationType
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.language import VariableNode
from strawberry.extensions import SchemaExtension

from ..graphql_runtime.document_cache import PerDocument
from ..service import consistency

DIRECTIVE = "boundedStaleness"


@strawberry.directive(
    # Allowed on mutations too, which ignore it: a client may send one document shape.
    locations=[DirectiveLocation.QUERY, DirectiveLocation.MUTATION], name=DIRECTIVE,
    description="Serve this query's reads from a replica whose data is at most maxMs "
                "milliseconds old, or else from the leader. Mutations ignore it.")
def bounded_staleness(max_ms: int) -> None:  # pragma: no cover - operations never call it
    return None


def _directive_argument(document, operation_name: str | None):
    """(is a query, the directive's maxMs node or None) of the selected operation."""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name is not None and (definition.name is None
                                           or definition.name.value != operation_name):
            continue
        is_query = definition.operation == OperationType.QUERY
        for directive in definition.directives or ():
            if directive.name.value == DIRECTIVE:
                for argument in directive.arguments or ():
                    if argument.name.value == "maxMs":
                        return is_query, argument.value
        return is_query, None
    return False, None


_arguments = PerDocument(_directive_argument)


def _invalid(message: str) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(data=None, errors=[GraphQLError(
        f"@{DIRECTIVE}: {message}", extensions={"code": "INVALID_INPUT", "field": "maxMs"})])


class ReadConsistencyExtension(SchemaExtension):
    def on_execute(self):
        ec = self.execution_context
        is_query, node = _arguments(ec.graphql_document, ec.operation_name)
        if not is_query:
            yield
            return
        bound = None
        if node is not None:
            if isinstance(node, VariableNode):
                bound = (ec.variables or {}).get(node.name.value)
            else:
                bound = int(node.value)  # an Int literal: validation checked its type
            problem = consistency.check_bound(bound)
            if problem:
                ec.result = _invalid(problem)  # nothing is executed
                yield
                return
        chosen = consistency.ReadConsistency(max_staleness_ms=bound)
        token = consistency.current.set(chosen)
        try:
            yield
        finally:
            consistency.current.reset(token)
        self._consistency = chosen

    def get_results(self) -> dict:
        chosen = getattr(self, "_consistency", None)
        return {"consistency": chosen.report()} if chosen is not None else {}
