"""The execution context the schema runs operations with: strawberry's, minus
one reference cycle, plus the fast path for queries.

Queries that a plan covers are answered by fast_reads.py instead of
graphql-core's field-by-field execution (docs/performance.md, item 39); when
the plan cannot give the complete answer, graphql-core's execution answers
instead (`fast_reads = False` on the class: always graphql-core's).

graphql-core's executor keeps helpers for resolvers built from its own bound
methods (executor -> helpers -> bound method -> executor). That cycle kept every
operation's executor, and with it the variables, collected fields, resolver
context, request and response, alive after the answer was sent, until the cycle
collector found them, and collector time with them on every request
(docs/performance.md, item 29). Here the helpers reach the
executor through a weak reference, so reference counting frees an operation's
objects as soon as it ends. A resolver only calls the helpers while its
executor runs, and the running executor is held by its own frames.

Subscriptions: an event is one payload object yielded to every subscriber it
goes to. A payload that carries a `shared_results` dict has each distinct
selection (document, operation and variables) executed once per event: the
first subscriber's execution is stored there, the others get its result. The
result depends on nothing else (subscription fields read the payload only, and
access is checked when a subscription starts), so sharing it changes no answer.
Execution is asynchronous whenever a field is (strawberry's directive support
makes every field so), and the subscribers of one selection are woken by the
same event together: what is stored is therefore the execution under way, as a
task, which every one of them awaits (shielded: a subscriber that leaves
meanwhile does not cancel it for the others).
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

import orjson
from graphql import print_ast
from graphql.type.definition import GraphQLResolveInfoHelpers

from . import fast_reads
from .strawberry_compat import ExecutionContextBase

SHARED_RESULTS = "shared_results"


class AcyclicExecutionContext(ExecutionContextBase):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: executor().gather_async_work(values),
            track=lambda values: executor().track_async_work(values),
        )

    # A subscription's selection, computed once on its executor and copied to
    # each per-event executor.
    _selection: tuple | None = None

    def build_per_event_executor(self, payload: Any):
        if self._selection is None:
            self._selection = self._selection_key()
        return super().build_per_event_executor(payload)

    def _selection_key(self) -> tuple:
        loc = self.operation.loc
        document = loc.source.body if loc is not None else "".join(
            print_ast(node) for node in (self.operation, *self.fragment_definitions.values()))
        name = self.operation.name.value if self.operation.name else None
        variables = orjson.dumps(self.variable_values.coerced, default=str,
                                 option=orjson.OPT_SORT_KEYS)
        return (document, name, variables)

    # Queries the schema's plans answer (fast_reads.py); off for the normal path alone.
    fast_reads = True

    def execute_operation(self, serially: bool | None = None):
        shared = getattr(self.root_value, SHARED_RESULTS, None)
        if shared is None or self._selection is None:
            plan = fast_reads.plan_for(self) if self.fast_reads else None
            if plan is not None:
                return self._execute_plan(plan, serially)
            return super().execute_operation(serially)
        found = shared.get(self._selection)
        if found is None:
            result = super().execute_operation(serially)
            if not self.is_awaitable(result):
                shared[self._selection] = result
                return result
            found = shared[self._selection] = asyncio.ensure_future(result)
            found.add_done_callback(_retrieve)
        if isinstance(found, asyncio.Future):
            return asyncio.shield(found)
        return found

    async def _execute_plan(self, plan, serially: bool | None):
        try:
            data = await fast_reads.run(plan, self)
        except Exception:  # noqa: BLE001 - the normal path answers, errors and all
            result = super().execute_operation(serially)
            return await result if self.is_awaitable(result) else result
        return self.build_response(data)


def _retrieve(execution: asyncio.Future) -> None:
    """Its outcome counts as seen even if every subscriber left before it ended."""
    if not execution.cancelled():
        execution.exception()
