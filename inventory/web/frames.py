"""Subscription frames whose payload is encoded once per event and selection.

On graphql-transport-ws sockets the subscriptions write their frames
themselves (`FramingHandler`, below). On the legacy graphql-ws protocol an event goes to all the subscribers of one selection as one shared result
(graphql_runtime/execution.py): strawberry puts the same `data` object in each
subscriber's `next` (graphql-transport-ws) or `data` (graphql-ws) message. Its
JSON is made for the first of them and kept while the fan-out lasts (the most
recent payloads, by object identity); every socket's frame is then that JSON
with the socket's own operation id around it.
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from graphql import DocumentNode, ExecutionResult, parse
from graphql.execution import Executor, execute_subscription_event
from starlette.websockets import WebSocketState
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from ..graphql_runtime.strawberry_compat import graphql_core_schema
from ..resolvers.subscriptions import direct_frames

RESULT_TYPES = frozenset({"next", "data"})  # graphql-transport-ws, graphql-ws


class SharedPayloads:
    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        # id(data) -> (data, its payload's JSON). Holding `data` keeps its id
        # from being reused by another object while the entry lives.
        self._encoded: dict[int, tuple[Any, str]] = {}

    def frame(self, message: Any) -> str | None:
        """The JSON frame of `message` when it is a subscription result with
        data only (no errors, no extensions); None for any other message."""
        if type(message) is not dict or message.get("type") not in RESULT_TYPES:
            return None
        payload = message.get("payload")
        if type(payload) is not dict or len(payload) != 1 or "data" not in payload:
            return None
        data = payload["data"]
        found = self._encoded.get(id(data))
        if found is None or found[0] is not data:
            found = (data, orjson.dumps(payload).decode())
            if len(self._encoded) >= self.capacity:
                del self._encoded[next(iter(self._encoded))]  # the oldest
            self._encoded[id(data)] = found
        op_id = orjson.dumps(message["id"]).decode()
        return f'{{"type":"{message["type"]}","id":{op_id},"payload":{found[1]}}}'


# --- graphql-transport-ws: frames written below strawberry ------------------
#
# strawberry runs each operation of a socket as a task of its handler
# (`run_operation`); a subscription's results then pass, one by one and per
# subscriber, through graphql-core's per-event executor, strawberry's
# per-result handling and its extensions' hooks, and the socket's JSON
# encoder. `FramingHandler` (the view's `graphql_transport_ws_handler_class`)
# gives each operation task an `OperationFrames` (the context variable of
# resolvers/subscriptions.py), with which the subscription writes each event
# itself: the selection is executed and its payload encoded once per event
# (kept on the event's shared payload object), and each socket's frame is that
# JSON with its own operation id. A result with errors (none is expected: the
# fields read the event only) goes out as strawberry would send it. What this
# uses of strawberry beyond its documented API is checked by
# tests/unit/test_frames.py: the handler's `run_operation(operation)`,
# `websocket.ws` (the starlette WebSocket), `context` and `schema`, and the
# operation's `id`, `query`, `variables`, `operation_name`, `completed` and
# `send_next`.


@functools.lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode:
    return parse(query)


class OperationFrames:
    """Sends one subscription operation's events on its socket."""

    __slots__ = ("handler", "operation", "_key", "_executor", "_head")

    def __init__(self, handler: BaseGraphQLTransportWSHandler, operation: Operation):
        self.handler = handler
        self.operation = operation
        self._key: tuple | None = None
        self._executor: Executor | None = None
        self._head = ""

    def _prepare(self) -> None:
        op = self.operation
        variables = orjson.dumps(op.variables or {}, option=orjson.OPT_SORT_KEYS)
        # Distinct from graphql_runtime/execution.py's keys (three entries).
        self._key = ("frame", op.query, op.operation_name, variables)
        built = Executor.build(graphql_core_schema(self.handler.schema), _document(op.query),
                               context_value=self.handler.context,
                               raw_variable_values=op.variables,
                               operation_name=op.operation_name)
        if isinstance(built, list):  # strawberry accepted the same arguments: not expected
            raise RuntimeError(f"subscription arguments refused: {built[0].message}")
        self._executor = built
        self._head = f'{{"id":{orjson.dumps(op.id).decode()},"type":"next","payload":'

    async def send(self, payload: Any) -> None:
        if self._executor is None:
            self._prepare()
        shared = payload.shared_results  # one dict per event, shared by its subscribers
        found = shared.get(self._key)
        if found is None:
            result = execute_subscription_event(self._executor.build_per_event_executor(payload))
            if self._executor.is_awaitable(result):
                found = asyncio.ensure_future(self._encoded_later(result))
            else:
                found = self._encoded(result)
            shared[self._key] = found
        if isinstance(found, asyncio.Future):
            found = await asyncio.shield(found)
        if self.operation.completed:
            return
        if isinstance(found, str):
            ws = self.handler.websocket.ws
            if ws.application_state != WebSocketState.DISCONNECTED:
                await ws.send_text(self._head + found + "}")
        else:
            await self.operation.send_next(found)

    def _encoded(self, result: ExecutionResult) -> str | ExecutionResult:
        """The payload's JSON, or the result itself when it carries errors."""
        if result.errors or result.extensions:
            if result.errors:
                self.handler.schema.process_errors(result.errors)
            return result
        return orjson.dumps({"data": result.data}).decode()

    async def _encoded_later(self, result) -> str | ExecutionResult:
        return self._encoded(await result)


class FramingHandler(BaseGraphQLTransportWSHandler):
    """strawberry's graphql-transport-ws handler, whose operations may send
    their frames themselves (above)."""

    async def run_operation(self, operation: Operation) -> None:
        # The operation's own task: the variable is seen by its resolvers only.
        direct_frames.set(OperationFrames(self, operation))
        await super().run_operation(operation)
