"""Queries answered without strawberry's operation machinery, when nothing
about them is uncertain (docs/performance.md, "The fixed cost of an
operation").

For every operation strawberry's `Schema.execute` builds an execution context
and four extension objects, steps their hooks through four steps, and turns
graphql-core's result into its own: a large share of a `stockLevel` read,
whatever the document (measured in docs/performance.md). For a query whose document was
parsed, measured and validated before (all remembered per document), this
module runs only what the four extensions do per request, in one function,
and graphql-core's execution (with the schema's executor: the plans of
fast_reads.py) between them:

- the access guard (inventory/auth/extension.py): the refusal budget, the
  scopes of the root fields, no unstorable text, the rate limit charged the
  operation's cost;
- the document checks (inventory/graphql_runtime/documents.py): the parsed
  document, its cost analysis (`extensions.cost`, requested and actual) and
  its validation, all looked up;
- the observer (inventory/graphql_runtime/observer.py): the span and the
  metrics, by the same functions;
- read consistency (inventory/schema/consistency.py): `extensions.consistency`.

The answer is the `ExecutionResult` strawberry would return (data, errors,
extensions in its order); the view turns it into the HTTP answer as for any
other. Whatever this cannot be sure of goes to strawberry's path before
anything happened (`execute` returns None): a document not parsed before, one
that is invalid, too costly or refused by the guard's checks, a mutation or
subscription, @boundedStaleness (its bound is checked per request), a rate
limit that refuses (nothing was taken: the normal path asks again and answers
it), trusted documents (their own refusals), a WebSocket, and a schema whose
extensions are not exactly these four. Once the rate limit has been charged
this path finishes the operation itself, errors included (variables that do
not coerce, a resolver's error), with the same effects as strawberry's path.
tests/test_direct_queries.py sends the same documents through both paths
over HTTP and compares status, headers and body.
"""
from __future__ import annotations

from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationType, print_ast, specified_rules
from strawberry.types import ExecutionResult

from ..auth.cost import charge
from ..auth.extension import AccessGuard
from ..auth.limits import unstorable_literals, unstorable_values
from ..auth.scopes import required_scope, root_fields
from ..graphql_runtime import observer
from ..graphql_runtime.document_cache import PerDocument
from ..graphql_runtime.documents import (
    DocumentChecks,
    HintlessDocumentChecks,
    validation_errors,
    without_suggestions,
)
from ..graphql_runtime.strawberry_compat import (
    graphql_core_schema,
    is_awaitable,
    schema_extensions,
)
from ..schema.consistency import DIRECTIVE, ReadConsistencyExtension
from ..service import consistency

# strawberry's ExecutionContext.validation_rules, which the document checks
# add their rules to (the same tuple: the same validation cache entry).
_SPECIFIED_RULES = tuple(specified_rules)


class _Operation:
    """The attributes of strawberry's ExecutionContext that the extensions'
    functions read and write, for one operation of this path."""

    __slots__ = ("query", "schema", "context", "variables", "graphql_document",
                 "operation_name", "pre_execution_errors", "result", "extensions_results")

    def __init__(self, query, schema, context, variables, document, operation_name) -> None:
        self.query = query
        self.schema = schema
        self.context = context
        self.variables = variables
        self.graphql_document = document
        self.operation_name = operation_name
        self.pre_execution_errors = None
        self.result = None
        self.extensions_results: dict[str, Any] = {}


class _Known:
    """What a (document, operationName) needs checked per request, found once:
    the cost analysis (the cost depends on the variables), the operation's
    name as strawberry gives it, the scopes its root fields need, and whether
    its string literals hold unstorable text. None instead: strawberry's path
    answers every request of it (not a query, invalid, ...)."""

    __slots__ = ("analysis", "name", "scopes", "unstorable")

    def __init__(self, analysis: Any, name: str | None, scopes: frozenset,
                 unstorable: bool) -> None:
        self.analysis = analysis
        self.name = name
        self.scopes = scopes
        self.unstorable = unstorable


class DirectQueries:
    def __init__(self, schema: Any, checks: DocumentChecks) -> None:
        self.schema = schema
        self.core = graphql_core_schema(schema)
        self.documents = checks.documents
        self.rules = _SPECIFIED_RULES + checks.rules
        self.hints_removed = isinstance(checks, HintlessDocumentChecks)
        self.executor_class = schema.execution_context_class
        self._known = PerDocument(self._know)

    @classmethod
    def of(cls, schema: Any) -> DirectQueries | None:
        """The direct path for this schema, or None when its extensions are not
        the four this module stands in for (then strawberry runs everything)."""
        extensions = schema_extensions(schema)
        kinds = [type(extension) for extension in extensions]
        if (len(kinds) != 4 or kinds[0] is not AccessGuard
                or kinds[1] not in (DocumentChecks, HintlessDocumentChecks)
                or kinds[2] is not observer.OperationObserver
                or kinds[3] is not ReadConsistencyExtension
                or schema.config.enable_experimental_incremental_execution):
            return None
        return cls(schema, extensions[1])

    def _know(self, document: Any, operation_name: str | None) -> _Known | None:
        analysis = self.documents.analyses(document, operation_name, self.core)
        operation = getattr(analysis, "operation", None)
        if (operation is None or getattr(analysis, "error", None) is not None
                or operation.operation is not OperationType.QUERY
                or any(d.name.value == DIRECTIVE for d in operation.directives or ())
                or validation_errors(document, self.core, self.rules)):
            return None
        # strawberry's operation_name: the one asked for, else the document's
        # (only) operation's.
        name = operation_name if operation_name is not None else (
            operation.name.value if operation.name is not None else None)
        found = root_fields(document, name)
        if found is None:
            return None
        scopes = {required_scope(self.schema, found[0], field) for field in found[1]}
        scopes.discard(None)
        return _Known(analysis, name, frozenset(scopes),
                      unstorable_literals(document, print_ast(document)
                                          if document.loc is None else document.loc.source.body))

    async def execute(self, query: Any, variables: Any, context: Any, root_value: Any,
                      operation_name: Any, operation_extensions: Any) -> ExecutionResult | None:
        """The operation's result, as `Schema.execute` gives it; None when
        strawberry's path must run it (nothing was done)."""
        documents = self.documents
        if (not isinstance(query, str) or documents.trusted is not None
                or not (variables is None or isinstance(variables, dict))
                or not (operation_name is None or isinstance(operation_name, str))):
            return None
        principal = getattr(context, "principal", None)
        if principal is None or getattr(context, "socket", None) is not None:
            return None
        limiter = context.limiter
        if limiter is not None and limiter.refusal_wait_ms(principal):
            return None
        document = documents.parsed.known(query)
        if document is None:
            return None
        known = self._known(document, operation_name)
        if known is None or known.unstorable or unstorable_values(variables):
            return None
        for scope in known.scopes:
            if not principal.allows(scope):
                return None  # FORBIDDEN, once charged
        op = _Operation(query, self.schema, context, variables, document, known.name)
        if documents.measure.refusal(known.analysis, op) is not None:
            return None
        if limiter is not None and await limiter.check(principal, False, charge(op)):
            return None  # refused, nothing taken: the normal path answers it
        return await self._run(op, known.analysis, root_value, operation_extensions)

    async def _run(self, op: _Operation, analysis: Any, root_value: Any,
                   operation_extensions: Any) -> ExecutionResult:
        observation = observer.begin()
        try:
            chosen = consistency.ReadConsistency(max_staleness_ms=None)
            token = consistency.current.set(chosen)
            try:
                # What graphql-core's execute does, without its wrappers:
                # the executor built (variables coerced), then the operation.
                executor = self.executor_class.build(
                    self.core, op.graphql_document, root_value, op.context, op.variables,
                    op.operation_name, is_awaitable=is_awaitable,
                    operation_extensions=operation_extensions)
                if isinstance(executor, list):
                    result = GraphQLExecutionResult(None, errors=executor)
                else:
                    result = executor.execute_operation()
                    if is_awaitable(result):
                        result = await result
            finally:
                consistency.current.reset(token)
        except Exception as error:  # noqa: BLE001 - as Schema.execute answers it
            # (after the operation's hooks have ended: no hints removed)
            observer.end(observation, op, error)
            return ExecutionResult(data=None, errors=[_coerced(error)],
                                   extensions=dict(op.extensions_results))
        op.result = result
        if result.errors:
            op.pre_execution_errors = result.errors
        documents = self.documents
        documents.measure.ran(analysis, op)
        answer = ExecutionResult(data=result.data, errors=result.errors)
        answer.extensions = {"consistency": chosen.report(), **op.extensions_results}
        op.result = answer
        observer.end(observation, op)
        self._without_hints(op)
        return answer

    def _without_hints(self, op: _Operation) -> None:
        if self.hints_removed:
            for errors in (op.pre_execution_errors, op.result.errors):
                for error in errors or ():
                    without_suggestions(error)


def _coerced(error: Exception) -> GraphQLError:
    return error if isinstance(error, GraphQLError) else GraphQLError(
        str(error), original_error=error)
