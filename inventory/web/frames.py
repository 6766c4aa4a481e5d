"""Subscription frames whose payload is encoded once per event and selection.

An event goes to all the subscribers of one selection as one shared result
(graphql_runtime/execution.py): strawberry puts the same `data` object in each
subscriber's `next` (graphql-transport-ws) or `data` (graphql-ws) message. Its
JSON is made for the first of them and kept while the fan-out lasts (the most
recent payloads, by object identity); every socket's frame is then that JSON
with the socket's own operation id around it.
"""
from __future__ import annotations

from typing import Any

import orjson

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
