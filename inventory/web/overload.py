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
requests are counted here (`stats.shed`, inventory_requests_shed_total), not
among GraphQL requests.
"""
from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class OverloadStats:
    """Process-wide counters, for metrics and benchmarks."""

    shed: int = 0
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            stats.shed += 1
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


def outermost(app, settings):
    """The app behind the limiter, unless it is disabled (max_concurrent 0)."""
    if settings.max_concurrent <= 0:
        return app
    return ConcurrencyLimit(
        app, max_concurrent=settings.max_concurrent, max_queue=settings.max_queue,
        queue_timeout_s=settings.queue_timeout_s,
        retry_after_ms=settings.overload_retry_after_ms)
