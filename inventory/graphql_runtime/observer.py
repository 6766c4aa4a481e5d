"""One observation per GraphQL operation: a span (when tracing is on) and the
request metrics (always).

The span is named `<type> <operation name>` (or the root fields when the
operation has no name) and carries the operation's type and name, its root
fields, the tenant, a SHA-256 of the document and the error codes it produced.
Variables' values are never recorded: they hold customer data.
"""
from __future__ import annotations

import contextvars
import hashlib
import time
from typing import Any

from graphql import FieldNode, OperationDefinitionNode
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension

from ..observability import metrics, tracing
from .document_cache import PerDocument
from .errors import error_code
from .strawberry_compat import REQUEST_ERRORS as REFUSED_BY_SCHEMA

# User errors (typed results) noted by the resolvers during this operation.
_user_errors: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "inventory_user_errors", default=None)
# Set by RefusalCounter for each /graphql HTTP request; the observer appends to
# it, so an empty list after the response means no operation ran.
_operations_seen: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "inventory_operations_seen", default=None)

# User error codes that mean the server, not the request, failed.
SERVER_SIDE_CODES = frozenset({"INTERNAL", "UNAVAILABLE", "TRANSACTION_CONFLICT", "RESULT_UNKNOWN"})
MAX_LABELLED_ROOT_FIELDS = 3
REFUSED_BEFORE_VALIDATION = frozenset({"RATE_LIMITED", "UNAUTHENTICATED"})
# Raised out of the operation (strawberry answers them HTTP 400 with a plain
# text reason, e.g. a mutation sent with GET): rejected requests, code BAD_REQUEST.
REQUEST_ERRORS = (MissingQueryError, *REFUSED_BY_SCHEMA)


def note_user_error(code: str) -> None:
    """Called for each typed error result (`UserError`) a resolver returns."""
    codes = _user_errors.get()
    if codes is not None:
        codes.append(code)


def _operation(document, name: str | None) -> OperationDefinitionNode | None:
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for op in operations:
        if name is None or (op.name and op.name.value == name):
            return op
    return None


def _root_fields(op: OperationDefinitionNode | None) -> list[str]:
    if op is None:
        return []
    return sorted({s.name.value for s in op.selection_set.selections if isinstance(s, FieldNode)})


def _describe(document, name: str | None) -> tuple[OperationDefinitionNode | None, list[str],
                                                  str, str]:
    """(the operation, its root fields, its type, its metrics label when valid)."""
    op = _operation(document, name)
    fields = _root_fields(op)
    # strawberry's ExecutionContext.operation_type, which walks the document each time
    op_type = op.operation.value if op is not None else "unknown"
    if len(fields) > MAX_LABELLED_ROOT_FIELDS:
        label = f"{op_type} (multiple)"
    else:
        label = f"{op_type} {','.join(fields)}"
    return op, fields, op_type, label


# The selected operation and its root fields, remembered per parsed document.
_described = PerDocument(_describe)


def outcome_of(graphql_codes: list[str], user_codes: list[str]) -> str:
    """ok | user_error (a business rejection) | rejected (bad request) | error (server side)."""
    codes = graphql_codes + user_codes
    if any(c in SERVER_SIDE_CODES for c in codes):
        return "error"
    if graphql_codes:
        return "rejected"
    if user_codes:
        return "user_error"
    return "ok"


class Observation:
    """One operation's observation under way (begun by `begin`, ended by `end`)."""

    __slots__ = ("started", "user_codes", "codes_token", "span", "context_token")


def begin() -> Observation:
    """Starts observing an operation: its clock, its user errors, its span
    (current until `end`)."""
    observation = Observation()
    observation.started = time.perf_counter()
    seen = _operations_seen.get()
    if seen is not None:
        seen.append(True)
    observation.user_codes = []
    observation.codes_token = _user_errors.set(observation.user_codes)
    observation.span = observation.context_token = None
    if tracing.enabled():
        span = observation.span = tracing.tracer().start_span("graphql", kind=SpanKind.INTERNAL)
        observation.context_token = otel_context.attach(trace.set_span_in_context(span))
    return observation


def end(observation: Observation, ec: Any, raised: Exception | None = None) -> None:
    """Records the operation `ec` describes (strawberry's execution context, or
    an object with its attributes: query, context, graphql_document,
    operation_name, pre_execution_errors, result): the metrics and the span."""
    _user_errors.reset(observation.codes_token)
    if observation.context_token is not None:
        otel_context.detach(observation.context_token)
    _finish(ec, observation.span, observation.user_codes,
            time.perf_counter() - observation.started, raised)


class OperationObserver(SchemaExtension):
    def on_operation(self):
        observation = begin()
        raised: Exception | None = None
        try:
            yield
        except Exception as error:  # strawberry's HTTP 400s (see REQUEST_ERRORS)
            raised = error
            raise
        finally:
            end(observation, self.execution_context, raised)


def _finish(ec: Any, span, user_codes: list[str], elapsed: float,
            raised: Exception | None = None) -> None:
    errors = list(ec.pre_execution_errors or [])
    result = ec.result
    if not errors and result is not None and getattr(result, "errors", None):
        errors = list(result.errors)
    graphql_codes = [error_code(e) for e in errors]
    if isinstance(raised, REQUEST_ERRORS):
        graphql_codes.append("BAD_REQUEST")
    elif raised is not None:
        graphql_codes.append("INTERNAL")
    # Refused before validation (the access guard charges first): still
    # counted under the operation it was.
    valid = ec.graphql_document is not None and all(
        code in REFUSED_BEFORE_VALIDATION
        for code in graphql_codes[:len(ec.pre_execution_errors or ())])
    if ec.graphql_document is None:
        op, fields, op_type, label = None, [], "unknown", "invalid"
    else:
        op, fields, op_type, label = _described(ec.graphql_document, ec.operation_name)
    if not valid:
        fields = []
        label = "invalid"
    outcome = outcome_of(graphql_codes, user_codes)
    metrics.observe_operation(label, outcome, elapsed, graphql_codes + user_codes)
    if span is None:
        return
    name = ec.operation_name or (op.name.value if op is not None and op.name else None)
    span.update_name(f"{op_type} {name or ','.join(fields) or 'graphql'}")
    attributes: dict[str, Any] = {
        "graphql.operation.type": op_type,
        "graphql.root_fields": fields,
        "inventory.outcome": outcome,
    }
    if name:
        attributes["graphql.operation.name"] = name
    if isinstance(ec.query, str):
        attributes["graphql.document.hash"] = hashlib.sha256(ec.query.encode()).hexdigest()
    tenant = getattr(getattr(ec.context, "ctx", None), "tenant_id", None)
    if tenant is not None:
        attributes["inventory.tenant_id"] = str(tenant)
    if graphql_codes:
        attributes["graphql.error.codes"] = graphql_codes
    if user_codes:
        attributes["inventory.user_error.codes"] = user_codes
    span.set_attributes(attributes)
    for error, code in zip(errors, graphql_codes):
        if code == "INTERNAL" and error.original_error is not None:
            span.record_exception(error.original_error)
    if raised is not None and not isinstance(raised, REQUEST_ERRORS):
        span.record_exception(raised)
    if outcome in ("error", "rejected"):
        span.set_status(Status(StatusCode.ERROR, ", ".join(graphql_codes + user_codes)))
    span.end()


class RefusalCounter:
    """ASGI middleware for /graphql over HTTP: a request answered with an error
    status before any GraphQL operation ran still counts in the request metrics
    (operation "refused"). These are the HTTP gate's refusals (401 without a
    valid credential, 413 for an oversized body; inventory/web/gate.py) and
    strawberry's before parsing (400 for an unreadable body). Operations refused
    once GraphQL runs (429 RATE_LIMITED, a mutation over GET) are counted by
    OperationObserver under their operation. Cost per request: one context
    variable and one wrapped `send`."""

    def __init__(self, app, path: str = "/graphql"):
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != self.path:
            return await self.app(scope, receive, send)
        seen: list[bool] = []
        status = 0

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = _operations_seen.set(seen)
        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            _operations_seen.reset(token)
            if status >= 400 and not seen:
                metrics.observe_refusal(status)
