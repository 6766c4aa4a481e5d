"""A small WebSocket GraphQL client speaking graphql-transport-ws or the legacy
graphql-ws protocol, for the live stock tests and the subscriber benchmark."""
from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from .support import API_KEYS

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"

LEVEL_SUBSCRIPTION = """
subscription($skus: [String!], $codes: [String!], $since: [LevelVersionInput!]) {
  stockLevelChanged(skus: $skus, locationCodes: $codes, since: $since) {
    sku locationCode onHand reserved available version kind at
  }
}"""


async def closed_with(ws, seen: list | None = None) -> int:
    """Reads a raw websocket until the server closes it (no ack, no data may
    come first; what does come is appended to `seen`); returns the close code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            message = json.loads(await ws.recv())
            assert message["type"] not in {"connection_ack", "next", "data"}, message
            if seen is not None:
                seen.append(message)
    return closed.value.rcvd.code


class WsClient:
    def __init__(self, http_url: str, protocol: str = TRANSPORT_WS, api_key: str | None = None):
        self.http_url = http_url
        self.api_key = api_key or API_KEYS.get(http_url)
        self.url = http_url.replace("http://", "ws://", 1) + "/graphql"
        self.protocol = protocol
        self.ws = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> "WsClient":
        self.ws = await websockets.connect(self.url, subprotocols=[self.protocol],
                                           max_queue=None)
        # Sockets authenticate in connection_init (see docs/security.md).
        payload = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        await self.send({"type": "connection_init", "payload": payload})
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] not in ("ping", "pong", "ka"):
                return message

    async def subscribe(self, query: str, variables: dict | None = None) -> str:
        op_id = str(next(self._ids))
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send({"id": op_id, "type": kind,
                         "payload": {"query": query, "variables": variables or {}}})
        return op_id

    async def subscribe_ready(self, probe: tuple[str, str], variables: dict | None = None,
                              query: str = LEVEL_SUBSCRIPTION) -> str:
        """Subscribes to stockLevelChanged and returns once the server has
        registered it: the filter is widened by the `probe` level (sku, code;
        it must have a version >= 1 and no other changes), whose replay from
        `since` version 0 comes only after the live subscription exists."""
        variables = dict(variables or {})
        sku, code = probe
        for name, value in (("skus", sku), ("codes", code)):
            if variables.get(name) is not None:
                variables[name] = [*variables[name], value]
        variables["since"] = [*variables.get("since", []),
                              {"sku": sku, "locationCode": code, "version": 0}]
        op_id = await self.subscribe(query, variables)
        replayed = (await self.next_data())["stockLevelChanged"]
        assert (replayed["sku"], replayed["locationCode"]) == probe, replayed
        return op_id

    async def next_data(self, timeout: float = 10) -> dict[str, Any]:
        """The next `next`/`data` payload's data; fails on errors."""
        message = await self.receive(timeout)
        assert message["type"] in ("next", "data"), message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]

    async def changes(self, count: int, timeout: float = 10) -> list[dict]:
        return [(await self.next_data(timeout))["stockLevelChanged"] for _ in range(count)]


async def ledger_changes(reader, after: str, wanted, count: int, timeout: float = 10) -> list:
    """Changes the ledger reader yields after cursor `after` that `wanted(change)`
    accepts, once `count` of them have come (or the deadline passed)."""
    found: list = []
    deadline = asyncio.get_running_loop().time() + timeout
    cursor = after
    while len(found) < count and asyncio.get_running_loop().time() < deadline:
        batch = await reader.read(cursor, None)
        found += [c for c in batch.changes if wanted(c)]
        cursor = batch.cursor
        await asyncio.sleep(0.02)
    return found
