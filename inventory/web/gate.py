"""HTTP/WebSocket side of security: the gate in front of /graphql, WebSocket
authentication in connection_init, CORS and the production switches.

HTTP: a request that carries an operation (POST, or GET with ?query=) must
present a valid credential or is answered 401 {"errors": [{"extensions":
{"code": "UNAUTHENTICATED"}}]} with `WWW-Authenticate: Bearer`; the GraphiQL
page itself (GET without a query) needs none. Bodies over
INVENTORY_MAX_BODY_BYTES are answered 413 before anything parses them.
"""
from __future__ import annotations

import json
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from ..db.engine import Database
from . import media
from .body import BUFFERED_BODY
from ..db.retry import DatabaseUnavailable
from ..auth.authenticator import Authenticator
from ..auth.principal import METRICS, Principal
from ..auth.ratelimit import RateLimiter
from ..auth.settings import SecuritySettings
from ..auth.sockets import Sockets


class Security:
    """The process's authenticator and rate limiter."""

    def __init__(self, settings: SecuritySettings, db: Database):
        self.settings = settings
        self.authenticator = Authenticator(settings, db)
        self.limiter = RateLimiter(settings)
        self.sockets = Sockets(self.authenticator, settings.ws_per_credential)

    async def close(self) -> None:
        await self.limiter.close()

    def middleware(self) -> list[Middleware]:
        """CORS only for the configured origins; with none, browsers on other
        origins get no CORS headers and so cannot call the API."""
        if not self.settings.cors_origins:
            return []
        return [Middleware(
            CORSMiddleware, allow_origins=list(self.settings.cors_origins),
            allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )]

    def graphql_options(self) -> dict[str, Any]:
        """Options of the GraphQL view: the same origins may open WebSockets."""
        return {"allowed_origins": frozenset(self.settings.cors_origins)}

    async def metrics_guard(self, request: Any) -> Any:
        """/metrics with INVENTORY_METRICS_AUTH: a credential with the
        inventory:metrics scope (Prometheus: `authorization: {credentials: <key>}`
        in the scrape job); None when allowed, else the refusal to send."""
        return (await self.require(request, METRICS))[1]

    async def require(self, request: Any, scope: str) -> tuple[Any, Any]:
        """(the caller's principal, None) when the request's credential has
        `scope`, else (None, the refusal to send: 400, 401, 403 or 503)."""
        headers = request.headers.getlist("authorization")
        refusal = None
        principal = None
        if len(headers) > 1:
            refusal = (400, "BAD_REQUEST", "send one Authorization header, not several")
        else:
            try:
                principal = await self.authenticator.authenticate(headers[0] if headers else None)
            except DatabaseUnavailable:
                principal, refusal = None, (503, "UNAVAILABLE", "the database is unavailable")
            if refusal is None and principal is None:
                refusal = (401, "UNAUTHENTICATED", "authentication required")
            elif refusal is None and not principal.allows(scope):
                refusal = (403, "FORBIDDEN", f"needs the {scope} scope")
        if refusal is None:
            return principal, None
        status, code, message = refusal
        return None, JSONResponse(
            {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
            status_code=status, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)

    async def authenticate_ws(self, context: Any) -> None:
        """connection_init: `{"authorization": "Bearer <key or JWT>"}` in the payload,
        or the Authorization header of the upgrade request. Raises
        ConnectionRejectionError, which closes the socket (4403) before any
        operation can start. An accepted socket is registered with `sockets`,
        which caps sockets per credential and re-checks the credential while
        the socket is open (inventory/auth/sockets.py)."""
        from strawberry.exceptions import ConnectionRejectionError

        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = next((v for k, v in params.items()
                       if isinstance(k, str) and k.lower() == "authorization"), None)
        if header is None and context.request is not None:
            if len(context.request.headers.getlist("authorization")) > 1:
                raise ConnectionRejectionError({"code": "BAD_REQUEST"})
            header = context.request.headers.get("authorization")
        header = header if isinstance(header, str) else None
        try:
            principal = await self.authenticator.authenticate(header)
        except DatabaseUnavailable:
            # Refused, but say it is retryable rather than a bad credential.
            raise ConnectionRejectionError(
                {"code": "UNAVAILABLE", "retryAfterMs": 1000}) from None
        if principal is None:
            raise ConnectionRejectionError()
        if not await self.sockets.open(context, header, principal):
            # Closed already, with TOO_MANY_SOCKETS (inventory/auth/sockets.py).
            raise ConnectionRejectionError({"code": "TOO_MANY_SOCKETS"})
        context.act_as(principal)


def _several(scope, name: bytes) -> bool:
    return sum(1 for key, _ in scope.get("headers") or () if key == name) > 1


def _json_response(scope, status: int, code: str, message: str,
                   headers: list[tuple[bytes, bytes]], **extensions: Any):
    """A refusal in the media type the client accepts (inventory/web/media.py):
    with `"data": null` as application/json, without under the newer type."""
    accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
    answer = media.negotiate(accept)
    errors = [{"message": message, "extensions": {"code": code, **extensions}}]
    body = json.dumps({"data": None, "errors": errors} if answer == media.JSON
                      else {"errors": errors}).encode()
    return {
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", media.CONTENT_TYPES[answer].encode()),
                    (b"content-length", str(len(body)).encode()), *headers],
    }, {"type": "http.response.body", "body": body}


class HttpGate:
    """ASGI wrapper of the GraphQL endpoint for plain HTTP requests."""

    def __init__(self, app: Any, security: Security):
        self.app = app
        self.security = security

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.security.settings.max_body_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send, 413, "PAYLOAD_TOO_LARGE", "request body too large")
            return
        body = await self._buffer(receive, limit)
        if body is None:
            await self._refuse(scope, send, 413, "PAYLOAD_TOO_LARGE", "request body too large")
            return
        # Any query string may carry an operation (GET ?query=..., percent-encoded
        # or not); only the bare GraphiQL page needs no credential.
        carries_operation = scope["method"] != "GET" or bool(scope.get("query_string"))
        if carries_operation:
            raw = headers.get(b"authorization")
            if raw is not None and _several(scope, b"authorization"):
                # Which one counts would depend on the proxy in between: refused.
                await self._refuse(scope, send, 400, "BAD_REQUEST",
                                   "send one Authorization header, not several")
                return
            try:
                principal: Principal | None = await self.security.authenticator.authenticate(
                    raw.decode("latin-1") if raw else None)
            except DatabaseUnavailable:
                # The key could not be looked up: retryable, like any read during an outage.
                await self._refuse(scope, send, 503, "UNAVAILABLE",
                                   "the database is unavailable; retry shortly",
                                   [(b"retry-after", b"1")], retryAfterMs=1000)
                return
            if principal is None:
                await self._refuse(scope, send, 401, "UNAUTHENTICATED", "authentication required",
                                   [(b"www-authenticate", b"Bearer")])
                return
            scope.setdefault("state", {})["principal"] = principal
        # The view takes the body from here (it replays it to whatever reads
        # `receive`, which is the server's: the body was read from it).
        scope.setdefault("state", {})[BUFFERED_BODY] = body
        await self.app(scope, receive, send)

    @staticmethod
    async def _buffer(receive, limit: int):
        """Reads the whole body (at most `limit` bytes); returns it, or None when
        it is too large."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    async def _refuse(scope, send, status: int, code: str, message: str,
                      headers: list[tuple[bytes, bytes]] = (), **extensions: Any) -> None:
        start, body = _json_response(scope, status, code, message, list(headers),
                                     **extensions)
        await send(start)
        await send(body)
