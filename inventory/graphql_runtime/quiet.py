"""The product's Schema class: strawberry's, with five changes.

- Error logging is left to the HTTP view (which logs only unexpected errors,
  once, with an error id) instead of logging every error.
- Extension hooks are resolved once per extension class (strawberry_compat.py).
- No per-field directive hook while the schema's directives all belong on
  operations (strawberry_compat.py, item 9): fields stay synchronous.
- Operations run in an execution context without a reference cycle
  (execution.py), so their objects are freed when they end.
- The operationName a request gave is kept in `requested_operation_name` for
  the operation's extensions: strawberry's execution context answers
  `operation_name` with the first operation's name when none was given, and
  the document checks (documents.py) must refuse a document with
  several operations and no name, as the GraphQL spec requires. Every operation
  enters through `execute`, `execute_sync` or `stream` (`subscribe` calls
  `stream`), in the task that then runs it.
"""
from __future__ import annotations

from contextvars import ContextVar

import strawberry

from .execution import AcyclicExecutionContext
from .strawberry_compat import CachedExtensionHooks, OperationDirectivesOnly


requested_operation_name: ContextVar[str | None] = ContextVar("requested_operation_name",
                                                             default=None)


class QuietSchema(OperationDirectivesOnly, CachedExtensionHooks, strawberry.Schema):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("execution_context_class", AcyclicExecutionContext)
        super().__init__(*args, **kwargs)

    def process_errors(self, errors, execution_context=None) -> None:
        return None

    async def execute(self, query, variable_values=None, context_value=None, root_value=None,
                      operation_name=None, *args, **kwargs):
        requested_operation_name.set(operation_name)
        return await super().execute(query, variable_values, context_value, root_value,
                                     operation_name, *args, **kwargs)

    def execute_sync(self, query, variable_values=None, context_value=None, root_value=None,
                     operation_name=None, *args, **kwargs):
        requested_operation_name.set(operation_name)
        return super().execute_sync(query, variable_values, context_value, root_value,
                                    operation_name, *args, **kwargs)

    async def stream(self, query, variable_values=None, context_value=None, root_value=None,
                     operation_name=None, *args, **kwargs):
        requested_operation_name.set(operation_name)
        return await super().stream(query, variable_values, context_value, root_value,
                                    operation_name, *args, **kwargs)
