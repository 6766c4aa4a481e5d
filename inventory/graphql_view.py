"""The GraphQL HTTP/WebSocket endpoint: request context and error shaping.

Errors that reach clients always carry `extensions.code`. Expected failures keep
their message; anything unexpected is masked (with an error id that is in the
log) so no stack trace or internal detail leaks.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from typing import Any

import orjson
import strawberry.http.async_base_view as strawberry_view
from cross_web import HTTPException  # what strawberry's view raises for a bad request
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from .apq import ApqError, PersistedQueries
from .db.retry import DatabaseUnavailable
from .http_body import replaying
from .observability.tracing import add_trace_id
from .resolvers.context import make_context
from .service.context import Ctx

log = logging.getLogger(__name__)


def shape_error(error: GraphQLError) -> dict[str, Any]:
    formatted = error.formatted
    original = error.original_error
    extensions = dict(formatted.get("extensions") or {})
    if isinstance(original, DatabaseUnavailable):
        formatted["message"] = "the database is unavailable; retry shortly"
        extensions.update(code="UNAVAILABLE", retryAfterMs=1000)
    elif original is None or isinstance(original, GraphQLError) or error.path is None:
        # Parse/validation errors (no path; a scalar's own ValueError explains the
        # bad literal) and our own argument errors.
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    else:
        error_id = uuid.uuid4().hex[:12]
        log.error("unexpected error %s in %s", error_id, error.path, exc_info=original)
        formatted["message"] = f"internal error (id {error_id})"
        extensions.update(code="INTERNAL", errorId=error_id)
    formatted["extensions"] = extensions
    return formatted


@functools.lru_cache(maxsize=64)
def _parse_content_type(header: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    mime, params = _strawberry_parse_content_type(header)
    return mime, tuple(params.items())


def _cached_parse_content_type(header: str) -> tuple[str, dict[str, str]]:
    mime, params = _parse_content_type(header)
    return mime, dict(params)


# strawberry parses every request's Content-Type with the email package, about 4%
# of a stockLevel request's CPU (bench/profile.py); clients send the same few
# headers, so the answer is remembered (bounded; the same result, a fresh dict).
_strawberry_parse_content_type = strawberry_view.parse_content_type
strawberry_view.parse_content_type = _cached_parse_content_type


def _plain_json_post(scope) -> bool:
    """A POST of one JSON document that wants one JSON answer: no streaming
    transport asked for in Accept (multipart/mixed, text/event-stream)."""
    if scope["method"] != "POST":
        return False
    content_type = accept = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"accept":
            accept = value
    return (content_type.split(b";", 1)[0].strip().lower() == b"application/json"
            and b"multipart" not in accept.lower() and b"event-stream" not in accept.lower())


class InventoryGraphQL(GraphQL):
    def __init__(self, schema, ctx: Ctx, security=None, **kwargs):
        super().__init__(schema, **kwargs)
        self.ctx = ctx
        self.security = security  # inventory.auth.http.Security
        self.persisted_queries = PersistedQueries()
        # @defer/@stream answers are multipart: only strawberry's own path sends them.
        self.lean_posts = not schema.config.enable_experimental_incremental_execution

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.lean_posts and _plain_json_post(scope):
            await self._post(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _post(self, scope, receive, send) -> None:
        """strawberry's HTTP path for the common request: one JSON operation by
        POST, one JSON answer. The same hooks in the same order (context, APQ,
        execution, process_result), minus the generality this request does not
        need: header parsing for streaming transports, request adapters, two
        Response objects per request. About 8% of a stockLevel request's CPU
        (docs/performance.md). Anything unusual (not an object, a batch, a field
        of the wrong type) goes to strawberry's own path with the body replayed,
        so its answers stay exactly strawberry's."""
        request = Request(scope, receive)
        body = await request.body()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not (isinstance(data, dict) and isinstance(data.get("query"), (str, type(None)))
                and isinstance(data.get("variables"), (dict, type(None)))
                and isinstance(data.get("extensions"), (dict, type(None)))
                and isinstance(data.get("operationName"), (str, type(None)))):
            await super().__call__(scope, replaying(body, receive), send)
            return
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        request_data = GraphQLRequestData(
            query=data.get("query"), variables=data.get("variables"),
            operation_name=data.get("operationName"), extensions=data.get("extensions"),
            protocol="http")
        try:
            result = await self.execute_single(request, self.request_adapter_class(request),
                                               sub_response, context, None, request_data)
        except HTTPException as error:
            await PlainTextResponse(error.reason, status_code=error.status_code)(
                scope, receive, send)
            return
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        payload = orjson.dumps(response_data)
        await send({"type": "http.response.start", "status": sub_response.status_code or 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                *sub_response.headers.raw]})
        await send({"type": "http.response.body", "body": payload})
        if sub_response.background:
            await sub_response.background()

    def encode_json(self, data: object) -> str:
        # orjson: ~27x faster than json.dumps on a 50-item page. Returned as
        # str because strawberry sends bytes over WebSocket as binary frames, which
        # graphql-ws clients do not read.
        return orjson.dumps(data).decode()

    async def execute_single(self, request, request_adapter, sub_response, context,
                             root_value, request_data):
        """Resolves automatic persisted queries (see inventory/apq.py) first."""
        query = self.persisted_queries.resolve(request_data.query, request_data.extensions)
        if isinstance(query, ApqError):
            return ExecutionResult(
                data=None, errors=[GraphQLError(query.message, extensions={"code": query.code})]
            )
        if query is not request_data.query:
            request_data = dataclasses.replace(request_data, query=query)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def get_context(self, request, response):
        # HTTP requests were authenticated by the gate (inventory/auth/http.py);
        # WebSocket connections authenticate in connection_init (on_ws_connect).
        principal = request.scope.get("state", {}).get("principal")
        limiter = self.security.limiter if self.security else None
        return make_context(self.ctx, request, response, principal, limiter)

    async def on_ws_connect(self, context):
        if self.security is not None:
            await self.security.authenticate_ws(context)
        return await super().on_ws_connect(context)

    async def process_result(self, request, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [shape_error(e) for e in result.errors]
        if result.extensions:
            data["extensions"] = result.extensions
        add_trace_id(data)
        return data
