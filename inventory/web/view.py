"""The GraphQL HTTP/WebSocket endpoint: request context, the lean path for
plain JSON POSTs, persisted queries, and the answers' errors (shaped by
inventory/graphql_runtime/errors.py: always an `extensions.code`, nothing
internal leaked)."""
from __future__ import annotations

import json

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from . import media
from .apq import ApqError, PersistedQueries
from .direct import DirectQueries
from ..auth.cost import BAD_REQUEST
from ..graphql_runtime.errors import bounded, formatted
from ..graphql_runtime.strawberry_compat import (
    REQUEST_ERRORS,
    HTTPException,
    ViewHooks,
    WebSocketAdapter,
    allowed_operation_types,
    refused_request_reason,
)
from .body import (BadRequest, buffered_body, decode_json, error_body, graphql_request,
                   replaying)
from .frames import FramingHandler, SharedPayloads
from ..observability.tracing import add_trace_id
from ..resolvers.context import CallerContexts, make_context


def _json_post(scope) -> tuple[bool, bool, str]:
    """(a POST with a JSON body, that wants one JSON answer: no streaming
    transport asked for in Accept: multipart/mixed, text/event-stream; the
    media type of the answer, inventory/web/media.py)."""
    content_type = accept = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"accept":
            accept = value
    answer = media.negotiate(accept.decode("latin-1"))
    if (scope["method"] != "POST"
            or content_type.split(b";", 1)[0].strip().lower() != b"application/json"):
        return False, False, answer
    accept = accept.lower()
    return True, b"multipart" not in accept and b"event-stream" not in accept, answer


def _answer_media(request: Request) -> str:
    return media.negotiate(request.headers.get("accept", ""))


def _reason(error: HTTPException) -> str:
    """strawberry's reason for a refused request, without the request's own text."""
    return bounded(error.reason)


async def _send_json(send, status: int, payload: bytes, headers=(),
                     answer: str = media.JSON) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", media.CONTENT_TYPES[answer].encode()),
                            (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})


def _request_error(result: ExecutionResult) -> bool:
    """A result refused because the request itself is wrong (HTTP 400)."""
    return bool(result.errors) and result.data is None and any(
        (e.extensions or {}).get("code") == BAD_REQUEST for e in result.errors)


class _SubResponse(Response):
    """The response whose status and headers the operation may set, as
    strawberry's view makes it (`Response()` with no status yet and its
    content-length removed: no headers), without rendering an empty body and
    its headers only to delete them."""

    def __init__(self) -> None:  # noqa: D107 - starlette's attributes, set directly
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.body = b""
        self.raw_headers = []


def _bounded_errors(message: dict) -> None:
    """Cuts the error messages of a graphql-transport-ws `error` or `next`
    message (or graphql-ws `error` / `data`) in place (see `bounded`)."""
    payload = message.get("payload")
    errors = payload if isinstance(payload, list) else (
        payload.get("errors") if isinstance(payload, dict) else None)
    for error in errors or ():
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            error["message"] = bounded(error["message"])


class _BoundedWebSocketAdapter(WebSocketAdapter):
    """Error messages and close reasons sent on a socket are bounded like
    HTTP ones (`bounded`): strawberry's WebSocket handlers format errors
    themselves, and quote an unknown operationName in the close reason."""

    async def send_json(self, message) -> None:
        if isinstance(message, dict) and message.get("type") in ("error", "next", "data"):
            _bounded_errors(message)
        await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        await super().close(code, bounded(reason)[:120])  # a close reason fits 123 bytes


class InventoryGraphQL(ViewHooks, GraphQL):
    """strawberry's ASGI view; strawberry's own HTTP path reaches
    `execute_request` through ViewHooks (inventory/graphql_runtime/strawberry_compat.py)."""

    websocket_adapter_class = _BoundedWebSocketAdapter
    # Subscriptions write their frames below strawberry's per-result handling (web/frames.py).
    graphql_transport_ws_handler_class = FramingHandler

    def __init__(self, schema, ctx, security=None, trusted=None, **kwargs):
        super().__init__(schema, **kwargs)
        self.ctx = ctx  # the service context each request's resolvers start from
        self.callers = CallerContexts(ctx)  # ctx bound to each recent caller
        self.security = security  # inventory.web.gate.Security
        self.persisted_queries = PersistedQueries()
        self.trusted = trusted  # inventory.web.trusted.TrustedDocuments, or None
        self.shared_payloads = SharedPayloads()
        # @defer/@stream answers are multipart: only strawberry's own path sends them.
        self.lean_posts = not schema.config.enable_experimental_incremental_execution
        # Known, valid queries by POST skip strawberry's operation machinery
        # (inventory/web/direct.py); None: every operation through Schema.execute.
        self.direct = DirectQueries.of(schema)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":
            try:
                await super().__call__(scope, receive, send)
            finally:
                if self.security is not None:
                    await self.security.sockets.release(scope)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        json_post, one_answer, answer = _json_post(scope)
        with_data = answer == media.JSON  # a request error has no `data` in the newer type
        body = buffered_body(scope)  # read by the gate (inventory/web/gate.py)
        if json_post:
            # Every JSON body is read and checked here, whichever path answers it:
            # a malformed one is a 400 with a GraphQL error, never a 500.
            if body is None:
                body = await Request(scope, receive).body()
            try:
                data = graphql_request(decode_json(body))
            except BadRequest as error:
                await _send_json(send, 400, error_body(BAD_REQUEST, error.message, with_data),
                                 answer=answer)
                return
            if self.lean_posts and one_answer:
                await self._post(scope, receive, send, data, answer)
                return
        if body is not None:
            receive = replaying(body, receive)
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as error:  # strawberry's refusals, as GraphQL JSON
            response = Response(error_body(BAD_REQUEST, _reason(error), with_data),
                                status_code=error.status_code,
                                media_type=media.CONTENT_TYPES[answer])
        if answer != media.JSON and response.headers.get("content-type") == media.JSON:
            response.headers["content-type"] = media.CONTENT_TYPES[answer]
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        """strawberry's JSON reading (GET parameters, streaming POSTs, WebSocket
        messages), with the same limits as bodies; strawberry answers the
        JSONDecodeError (HTTP 400, or the protocol's close code)."""
        try:
            return decode_json(data)
        except BadRequest as error:
            raise json.JSONDecodeError(error.message, "", 0) from None

    async def _post(self, scope, receive, send, data: dict, answer: str) -> None:
        """The common request: one JSON operation by POST, one JSON answer. The
        same documented hooks in the same order as strawberry's own HTTP path
        (get_context, get_root_value, execute_request, process_result), minus
        the generality this request does not need: header parsing for
        streaming transports, request adapters, two Response objects per
        request (docs/performance.md, item 23)."""
        request = Request(scope, receive)
        sub_response = _SubResponse()
        context = await self.get_context(request, response=sub_response)
        root_value = await self.get_root_value(request)
        try:
            result = await self.execute_request(
                request, sub_response, context, root_value, query=data.get("query"),
                variables=data.get("variables"), operation_name=data.get("operationName"),
                extensions=data.get("extensions"), method="POST")
        except HTTPException as error:
            await _send_json(send, error.status_code, error_body(
                BAD_REQUEST, _reason(error), answer == media.JSON), answer=answer)
            return
        response_data = await self.process_result(request, result)
        await _send_json(send, sub_response.status_code or 200, orjson.dumps(response_data),
                         sub_response.headers.raw, answer)
        if sub_response.background:
            await sub_response.background()

    def encode_json(self, data: object) -> str:
        # orjson (docs/performance.md, item 5). Returned as
        # str because strawberry sends bytes over WebSocket as binary frames, which
        # graphql-ws clients do not read. A subscription event's payload is
        # encoded once for all the subscribers of its selection (web/frames.py).
        frame = self.shared_payloads.frame(data)
        return frame if frame is not None else orjson.dumps(data).decode()

    async def execute_request(self, request, sub_response, context, root_value, *,
                              query, variables, operation_name, extensions,
                              method: str) -> ExecutionResult:
        """One operation of an HTTP request, by either path. Resolves persisted
        queries first: from the trusted documents when they are on
        (inventory/web/trusted.py), else automatic ones (inventory/web/apq.py).
        A request the schema refuses before running it (no query, a mutation
        by GET, an unknown operationName) raises HTTPException 400, as
        strawberry's view does."""
        if self.trusted is not None:
            query = self.trusted.resolve(query, extensions)
        else:
            principal = getattr(context, "principal", None)
            query = self.persisted_queries.resolve(
                query, extensions, principal.tenant_id if principal is not None else None)
        if isinstance(query, ApqError):
            return ExecutionResult(
                data=None, errors=[GraphQLError(query.message, extensions={"code": query.code})]
            )
        result = None
        if self.direct is not None and method == "POST":
            result = await self.direct.execute(query, variables, context, root_value,
                                               operation_name, extensions)
        if result is None:
            try:
                result = await self.schema.execute(
                    query, variable_values=variables, context_value=context,
                    root_value=root_value, operation_name=operation_name,
                    allowed_operation_types=allowed_operation_types(
                        method, self.allow_queries_via_get),
                    operation_extensions=extensions)
            except (MissingQueryError, *REQUEST_ERRORS) as error:
                raise HTTPException(400, refused_request_reason(error, method)) from error
        if _request_error(result):
            sub_response.status_code = 400
        elif (media.request_error(result.data, result.errors)
              and _answer_media(request) == media.GRAPHQL_RESPONSE
              and (sub_response.status_code or 200) < 400):
            sub_response.status_code = media.request_error_status(result.errors)
        return result

    async def get_context(self, request, response):
        # HTTP requests were authenticated by the gate (inventory/web/gate.py);
        # WebSocket connections authenticate in connection_init (on_ws_connect).
        principal = request.scope.get("state", {}).get("principal")
        limiter = self.security.limiter if self.security else None
        return make_context(self.ctx, request, response, principal, limiter, self.callers)

    async def on_ws_connect(self, context):
        if self.security is not None:
            await self.security.authenticate_ws(context)
        return await super().on_ws_connect(context)

    async def process_result(self, request, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = {"data": result.data}
        if (result.errors and result.data is None
                and _answer_media(request) == media.GRAPHQL_RESPONSE
                and media.request_error(result.data, result.errors)):
            del data["data"]  # the request failed before execution: no data entry
        if result.errors:
            data["errors"] = [formatted(e) for e in result.errors]
        if result.extensions:
            data["extensions"] = result.extensions
        add_trace_id(data)
        return data
