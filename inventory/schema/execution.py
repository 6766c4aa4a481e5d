"""The execution context the schema runs operations with: strawberry's, minus
one reference cycle.

graphql-core's executor keeps helpers for resolvers built from its own bound
methods (executor -> helpers -> bound method -> executor). That cycle kept every
operation's executor, and with it the variables, collected fields, resolver
context, request and response, alive after the answer was sent, until the cycle
collector found them: 61 objects per `stockLevel` read, and about 17 us of
collector time per request (docs/performance.md). Here the helpers reach the
executor through a weak reference, so reference counting frees an operation's
objects as soon as it ends. A resolver only calls the helpers while its
executor runs, and the running executor is held by its own frames.
"""
from __future__ import annotations

import weakref

from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: executor().gather_async_work(values),
            track=lambda values: executor().track_async_work(values),
        )
