"""The schema extension that guards every operation (HTTP and WebSocket alike).

Between parsing and validation (so that invalid, unreadable and refused
documents are charged like any other request, and before graphql-core's
validation does any work): an authenticated caller (on a WebSocket, its
credential checked again: inventory/auth/sockets.py), then the rate limit. A
read takes the operation's calculated cost from the read budget (at least 1;
inventory/auth/cost.py, measured right after parsing; 1 for a document refused
before running), a write one token per root mutation field from the write budget.

Before any resolver: the scopes every root field needs, and no text PostgreSQL
cannot store (NUL, lone surrogates) in strings. A refused operation reads and
writes nothing. Refusals are GraphQL errors with extensions.code
UNAUTHENTICATED, FORBIDDEN or RATE_LIMITED (with retryAfterMs; over HTTP also
status 429 and Retry-After) and no other detail.

Before parsing: a credential that had too many documents refused lately
(INVENTORY_RATE_REFUSED) gets RATE_LIMITED without its document being parsed.

It must come before DocumentChecks in the schema's extension list: parsing and
validation hooks run in that order, and the checks must precede the work.
"""
from __future__ import annotations

import math
from typing import Any

from graphql import GraphQLError, OperationType
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from .cost import charge
from .limits import contains_unstorable_text
from .scopes import required_scope, root_fields


def refusal(code: str, **extensions: Any) -> GraphQLError:
    messages = {
        "UNAUTHENTICATED": "authentication required",
        "FORBIDDEN": "not allowed",
        "RATE_LIMITED": "too many requests; retry later",
    }
    return GraphQLError(messages[code], extensions={"code": code, **extensions})


def _rate_limited(context: Any, wait_ms: int) -> GraphQLError:
    response = getattr(context, "response", None)
    if isinstance(response, Response):  # HTTP; on a WebSocket only the error
        response.status_code = 429
        response.headers["Retry-After"] = str(max(1, math.ceil(wait_ms / 1000)))
    return refusal("RATE_LIMITED", retryAfterMs=wait_ms)


class AccessGuard(SchemaExtension):
    def on_parse(self):
        # A credential whose documents keep being refused (too costly, too
        # complex, invalid) is refused before its next document is parsed:
        # parsing new text is the one cost a cache cannot save.
        ec = self.execution_context
        context = ec.context
        principal = getattr(context, "principal", None)
        limiter = getattr(context, "limiter", None)
        if principal is not None and limiter is not None:
            wait_ms = limiter.refusal_wait_ms(principal)
            if wait_ms:
                ec.pre_execution_errors = [_rate_limited(context, wait_ms)]
        yield

    async def on_validate(self):
        if self.execution_context.pre_execution_errors is None:  # not refused unparsed
            error = await self._admit()
            if error is not None:
                self.execution_context.pre_execution_errors = [error]
        yield

    def on_execute(self):  # nothing to await: a plain generator costs less to step
        error = self._check()
        if error is not None:
            # execution_context.operation_type is strawberry's OperationType,
            # not graphql-core's: compare by value.
            if self.execution_context.operation_type.value == OperationType.SUBSCRIPTION.value:
                # The subscription path ignores a preset result but reports an
                # exception raised here as the operation's error, before subscribing.
                raise error
            self.execution_context.result = ExecutionResult(data=None, errors=[error])
        yield

    async def _admit(self) -> GraphQLError | None:
        ec = self.execution_context
        context = ec.context
        principal = getattr(context, "principal", None)
        if principal is None:
            return refusal("UNAUTHENTICATED")
        socket = getattr(context, "socket", None)
        if socket is not None and not await socket.still_valid():
            return refusal("UNAUTHENTICATED")  # and the socket is closed (4403)
        limiter = getattr(context, "limiter", None)
        if limiter is None:
            return None
        write = ec.operation_type.value == OperationType.MUTATION.value
        if write:
            # One token per root mutation field: aliases cannot multiply work
            # past the budget.
            found = root_fields(ec.graphql_document, ec.operation_name)
            cost = max(1, len(found[1])) if found else 1
        else:
            cost = charge(ec)
        wait_ms = await limiter.check(principal, write, cost)
        return _rate_limited(context, wait_ms) if wait_ms else None

    def _check(self) -> GraphQLError | None:
        return operation_refusal(self.execution_context)


def operation_refusal(ec: Any) -> GraphQLError | None:
    """What AccessGuard checks before any resolver runs: the scopes of the
    operation's root fields, and no text PostgreSQL cannot store. `ec` is
    strawberry's execution context or an object with its attributes (context,
    graphql_document, operation_name, schema, variables, query)."""
    principal = ec.context.principal
    found = root_fields(ec.graphql_document, ec.operation_name) if ec.graphql_document else None
    if found is None:
        return refusal("FORBIDDEN")
    operation, fields = found
    for field in fields:
        scope = required_scope(ec.schema, operation, field)
        if scope is not None and not principal.allows(scope):
            return refusal("FORBIDDEN")
    if contains_unstorable_text(ec):
        # PostgreSQL text cannot hold NUL; refuse before it reaches the driver.
        return GraphQLError("strings must be valid Unicode text without NUL characters",
                            extensions={"code": "INVALID_INPUT"})
    return None
