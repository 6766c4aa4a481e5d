"""Load shedding: bounds the GraphQL work one process does at once.

Each HTTP request to /graphql needs a slot (an asyncio semaphore). A request
that finds none waits at most `queue_timeout_s`, and only while fewer than
`max_queue` others wait; otherwise it is shed at once with HTTP 503, a
`Retry-After` header and a GraphQL-shaped body (extensions.code OVERLOADED,
retryAfterMs). Shedding early keeps the latency of accepted requests bounded:
without it every request queues for a pool connection, waits grow with the
offered load until they reach the pool timeout, and the database does work
for clients that have already given up.

WebSocket connections (subscriptions) are long-lived and are not counted here.

Shedding must cost little: at ten times the capacity most requests are shed,
and the CPU they take is taken from the requests being served. So the limiter
is the outermost layer of the served app (`serve_app` in inventory/web/app.py),
in front of Starlette, the metrics and tracing middleware, the body read and
authentication; its 503 answer is built once; and a shed request costs a
semaphore check, reading what is left of its body, and two sends. Shed
requests are counted here (pushed to observability/listeners.py,
inventory_requests_shed_total), not among GraphQL requests.

Even that ASGI path costs uvicorn a request scope, a task, two socket writes
and the ASGI calls for every refused request, which at 10x load was most of
the process's CPU (docs/performance.md). So `inventory serve` runs uvicorn with
`EarlyShedding` as its HTTP protocol: uvicorn's httptools protocol, which, when
the limiter is full (no free slot, no room in the queue), answers a /graphql
request straight from the HTTP parser with the same 503 in one socket write,
before any task, scope or ASGI call exists, and drops the request's body as it
arrives. Whatever it does not answer goes on to the ASGI limiter as before,
which stays the authority (it also serves apps run without `inventory serve`).
"""
from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..observability import listeners


@dataclass
class OverloadStats:
    """Process-wide: requests waiting for a slot (bounded by max_queue)."""

    waiting: int = 0


stats = OverloadStats()


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, *, max_concurrent: int, max_queue: int,
                 queue_timeout_s: float, retry_after_ms: int, path: str = "/graphql"):
        self.app = app
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_ms = retry_after_ms
        self.path = path
        self.slots = asyncio.Semaphore(max_concurrent)
        self.raw_path = path.encode()
        # Requests EarlyShedding let through whose task has not reached the
        # limiter yet: uvicorn parses every request that arrived in one event-loop
        # turn before any of their tasks runs, so without them all of a turn's
        # requests would see the queue as it was and go the costly way.
        self.pending = 0
        body = json.dumps({"data": None, "errors": [{
            "message": "the server is overloaded; retry after the time given",
            "extensions": {"code": "OVERLOADED", "retryAfterMs": retry_after_ms},
        }]}).encode()
        self._start = {"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", str(max(1, math.ceil(retry_after_ms / 1000))).encode()),
            (b"content-length", str(len(body)).encode()),
        ]}
        self._body = {"type": "http.response.body", "body": body}
        self.http_headers = [(name, value) for name, value in self._start["headers"]]
        self.http_body = body

    def sheds_now(self) -> bool:
        """Whether a request arriving now would be shed at once (what `_admit`
        decides without waiting)."""
        return self.slots.locked() and (stats.waiting + self.pending >= self.max_queue
                                        or self.queue_timeout_s <= 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(PENDING):
            scope[PENDING] = False
            self.pending -= 1
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            listeners.count(listeners.SHED)
            await _drain(receive)  # an unread body would make the server drop the connection
            await self._shed(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    async def _admit(self) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()  # free slot: returns at once
            return True
        if stats.waiting >= self.max_queue or self.queue_timeout_s <= 0:
            return False
        stats.waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await self.slots.acquire()  # a slot granted as we time out is given back
            return True
        except TimeoutError:
            return False
        finally:
            stats.waiting -= 1

    async def _shed(self, send: Send) -> None:
        await send(self._start)  # built once; the server only reads them
        await send(self._body)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


PENDING = "inventory.pending"  # in a scope: counted in the limiter's `pending`

# The limiter of the app this process serves, for EarlyShedding (one per worker
# process: each builds its app, and so its limiter, once).
serving: ConcurrencyLimit | None = None


def outermost(app, settings):
    """The app behind the limiter, unless it is disabled (max_concurrent 0)."""
    global serving
    if settings.max_concurrent <= 0:
        serving = None
        return app
    serving = ConcurrencyLimit(
        app, max_concurrent=settings.max_concurrent, max_queue=settings.max_queue,
        queue_timeout_s=settings.queue_timeout_s,
        retry_after_ms=settings.overload_retry_after_ms)
    return serving


class EarlyShedding(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), answering at the parser the
    requests the limiter would shed at once. The request is refused when its
    headers are complete if: the limiter sheds now, it targets the limited path,
    it is no WebSocket upgrade, no HEAD (answered without a body), no
    `Expect: 100-continue`, and this connection
    has no response in progress (a pipelined request must not be answered before
    the one ahead of it). Its body is then dropped as it arrives, and the
    answer written, in one write, once the request is complete; the connection
    stays open for the next request unless the client asked to close it. A
    request it lets through is counted as pending in the limiter until its task
    reaches it, so that the requests parsed in one event-loop turn see the queue
    places taken by those before them.

    This overrides the parser callbacks of uvicorn's class (the httptools
    callback names) and reads its per-request state (`url`, `cycle`,
    `expect_100_continue`); tests/test_overload.py checks, on a real server,
    that refusals take this path and that the connection serves on after one,
    so an uvicorn change that breaks it fails the suite rather than passing
    unnoticed. Anything it does not refuse continues unchanged into uvicorn and
    the ASGI limiter."""

    _refusing = False  # this connection's current request is being refused
    _refusal_keep_alive = True

    def on_headers_complete(self) -> None:
        limiter = serving
        if limiter is None or not _targets(self.url, limiter.raw_path):
            super().on_headers_complete()
            return
        if (limiter.sheds_now() and not self.expect_100_continue
                and not self.parser.should_upgrade() and self.parser.get_method() != b"HEAD"
                and (self.cycle is None or self.cycle.response_complete)):
            self._refusing = True
            self._refusal_keep_alive = (self.parser.get_http_version() != "1.0"
                                        and self.parser.should_keep_alive())
            return
        scope = self.scope
        super().on_headers_complete()
        if scope.get("method") is not None and scope.get("type") == "http" and \
                self.cycle is not None and self.cycle.scope is scope:
            scope[PENDING] = True  # its task will reach the limiter later
            limiter.pending += 1

    def on_body(self, body: bytes) -> None:
        if not self._refusing:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refusing:
            super().on_message_complete()
            return
        self._refusing = False
        listeners.count(listeners.SHED)
        listeners.count(listeners.SHED_EARLY)
        limiter = serving
        keep_alive = self._refusal_keep_alive
        self.transport.write(_refusal(limiter, self.server_state.default_headers, keep_alive))
        if keep_alive:
            self.on_response_complete()  # arms the keep-alive timer, as after any answer
        else:
            self.transport.close()


def _targets(url: bytes, path: bytes) -> bool:
    """The request target is `path`, with or without a query string (anything
    spelled differently, percent-encoded say, is left to the ASGI limiter)."""
    return url == path or (url.startswith(path) and url[len(path):len(path) + 1] == b"?")


_refusals: dict[bool, tuple] = {}  # keep-alive -> (limiter, default headers, bytes)


def _refusal(limiter: ConcurrencyLimit, default_headers: list, keep_alive: bool) -> bytes:
    """The 503 as bytes on the wire, with uvicorn's default headers (server,
    date): uvicorn replaces that list once a second, so this is rebuilt about as
    often."""
    cached = _refusals.get(keep_alive)
    if cached is not None and cached[0] is limiter and cached[1] is default_headers:
        return cached[2]
    lines = [b"HTTP/1.1 503 Service Unavailable\r\n"]
    for name, value in [*default_headers, *limiter.http_headers,
                        *([] if keep_alive else [(b"connection", b"close")])]:
        lines += [name, b": ", value, b"\r\n"]
    lines += [b"\r\n", limiter.http_body]
    answer = b"".join(lines)
    _refusals[keep_alive] = (limiter, default_headers, answer)
    return answer
