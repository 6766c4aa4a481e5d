"""Subscription frames: a shared result's payload is encoded once, each frame
carries its own operation id (web/frames.py)."""
from __future__ import annotations

import json

from inventory.web.frames import SharedPayloads


def test_a_shared_payload_is_encoded_once_and_framed_per_operation():
    frames = SharedPayloads()
    data = {"stockLevelChanged": {"sku": 'SKU "1"', "version": 2}}
    first = frames.frame({"id": "1", "type": "next", "payload": {"data": data}})
    data["stockLevelChanged"]["version"] = 3  # not done by strawberry: shows the reuse
    second = frames.frame({"id": 'op "2"', "type": "next", "payload": {"data": data}})
    legacy = frames.frame({"type": "data", "id": "3", "payload": {"data": data}})
    payload = {"data": {"stockLevelChanged": {"sku": 'SKU "1"', "version": 2}}}
    assert json.loads(first) == {"id": "1", "type": "next", "payload": payload}
    assert json.loads(second) == {"id": 'op "2"', "type": "next", "payload": payload}
    assert json.loads(legacy) == {"id": "3", "type": "data", "payload": payload}
    # Another object with equal content is encoded afresh.
    fresh = frames.frame({"id": "4", "type": "next", "payload": {"data": dict(data)}})
    assert json.loads(fresh)["payload"]["data"]["stockLevelChanged"]["version"] == 3


def test_other_messages_are_left_to_the_plain_encoder():
    frames = SharedPayloads()
    data = {"x": 1}
    assert frames.frame({"id": "1", "type": "next",
                         "payload": {"data": data, "errors": [{"message": "m"}]}}) is None
    assert frames.frame({"type": "connection_ack"}) is None
    assert frames.frame({"id": "1", "type": "complete"}) is None
    assert frames.frame([1, 2]) is None


def test_only_the_most_recent_payloads_are_kept():
    frames = SharedPayloads(capacity=2)
    kept = [{"n": n} for n in range(5)]
    for n, data in enumerate(kept):
        frames.frame({"id": str(n), "type": "next", "payload": {"data": data}})
    kept[0]["n"] = 100  # evicted long ago: encoded again, as it is now
    again = frames.frame({"id": "0", "type": "next", "payload": {"data": kept[0]}})
    assert json.loads(again)["payload"]["data"] == {"n": 100}


# What FramingHandler and OperationFrames use of strawberry beyond its
# documented API: a release that changes one fails here by name.

def test_the_strawberry_handler_internals_the_frames_rely_on():
    import inspect

    from strawberry.asgi import GraphQL
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
        BaseGraphQLTransportWSHandler,
        Operation,
    )

    from inventory.web.frames import FramingHandler
    from inventory.web.view import InventoryGraphQL

    assert InventoryGraphQL.graphql_transport_ws_handler_class is FramingHandler
    default = GraphQL.graphql_transport_ws_handler_class  # a generic alias of the class
    assert getattr(default, "__origin__", default) is BaseGraphQLTransportWSHandler, \
        "strawberry changed its graphql-transport-ws handler"
    run = BaseGraphQLTransportWSHandler.run_operation
    assert inspect.iscoroutinefunction(run), "strawberry changed run_operation"
    assert list(inspect.signature(run).parameters) == ["self", "operation"], \
        "strawberry changed run_operation(operation)"
    # The operation task runs run_operation itself, so a context variable set
    # there is seen by its resolvers only.
    assert "create_task(self.run_operation(operation))" in inspect.getsource(
        BaseGraphQLTransportWSHandler.handle_subscribe), "strawberry changed its operation task"
    init = list(inspect.signature(BaseGraphQLTransportWSHandler.__init__).parameters)
    assert {"websocket", "context", "schema"} <= set(init), "strawberry changed its handler"
    for name in ("id", "query", "variables", "operation_name", "completed"):
        assert name in Operation.__slots__, f"strawberry changed Operation.{name}"
    assert list(inspect.signature(Operation.send_next).parameters) == [
        "self", "execution_result"], "strawberry changed Operation.send_next"
    from strawberry.asgi import ASGIWebSocketAdapter
    assert "self.ws" in inspect.getsource(ASGIWebSocketAdapter.__init__), \
        "strawberry changed ASGIWebSocketAdapter.ws"
