"""Query limits beyond the depth/alias/token limiters in inventory/schema/root.py.

Limits in place, and where:
- depth 12, aliases 30, tokens 5000: strawberry limiters in schema/root.py;
- page size: `first` between 0 and 500 (resolvers/queries.py MAX_PAGE);
- list lengths in inputs: reserveStock lines <= 100, texts <= 200 characters
  (domain/commands.py);
- request body: INVENTORY_MAX_BODY_BYTES (auth/http.py HttpGate);
- operations per request: one. Batching (a JSON array of operations) is not
  enabled and is answered 400; a document with several operations runs only the
  one named by operationName;
- writes: each root mutation field costs one rate-limit token (auth/extension.py);
- introspection: off in production unless INVENTORY_INTROSPECTION=1;
- strings: no NUL characters anywhere in arguments (PostgreSQL text cannot hold
  them, so they would otherwise fail deep in the driver).
"""
from __future__ import annotations

from typing import Any

from graphql import GraphQLError, OperationType, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.types import ExecutionResult


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


class _NulFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_args):
        if "\x00" in node.value:
            self.found = True


class RejectNulCharacters(SchemaExtension):
    def on_execute(self):
        ec = self.execution_context
        if ec.result is None and self._found(ec):
            error = GraphQLError("strings must not contain NUL characters",
                                 extensions={"code": "INVALID_INPUT"})
            if ec.operation_type is OperationType.SUBSCRIPTION:
                raise error  # see AccessGuard: subscriptions ignore a preset result
            ec.result = ExecutionResult(data=None, errors=[error])
        yield

    @staticmethod
    def _found(ec) -> bool:
        if _has_nul(ec.variables):
            return True
        query = ec.query or ""
        # Only documents that could hold a NUL (raw or escaped) are walked.
        if ec.graphql_document is None or ("\x00" not in query and "\\u" not in query):
            return False
        finder = _NulFinder()
        visit(ec.graphql_document, finder)
        return finder.found


def query_limit_extensions(introspection: bool) -> list:
    return [RejectNulCharacters] + ([] if introspection else [DisableIntrospection])
