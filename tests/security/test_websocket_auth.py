"""WebSocket connections authenticate in connection_init; anything else is closed
before an operation can start (graphql-transport-ws and legacy graphql-ws)."""
from __future__ import annotations

import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from ..live_support import closed_with
from .support import token

QUERY = "query($c: String!) { location(code: $c) { code } }"


def _ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


@pytest.mark.parametrize("payload", [
    None,
    {},
    {"authorization": "Bearer not-a-key"},
    {"authorization": "Bearer inv_" + "0" * 64 + "_guess"},
    {"authorization": "Basic dXNlcjpwYXNz"},
])
async def test_transport_ws_without_valid_credential_is_closed(secure_server, tenants, payload):
    async with websockets.connect(_ws_url(secure_server),
                                  subprotocols=["graphql-transport-ws"]) as ws:
        message = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await ws.send(json.dumps(message))
        # A subscribe right behind the init must not run either.
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": QUERY, "variables": {"c": tenants[0].data["code"]}}}))
        assert await closed_with(ws) == 4403


async def test_transport_ws_subscribe_before_init_is_closed(secure_server, tenants):
    async with websockets.connect(_ws_url(secure_server),
                                  subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": QUERY, "variables": {"c": tenants[0].data["code"]}}}))
        assert await closed_with(ws) == 4401


async def _run(ws, query, variables) -> dict:
    await ws.send(json.dumps({"id": "q", "type": "subscribe",
                              "payload": {"query": query, "variables": variables}}))
    message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    assert json.loads(await ws.recv())["type"] == "complete"
    return message["payload"]


@pytest.mark.parametrize("how", ["payload key", "payload jwt", "upgrade header"])
async def test_transport_ws_with_credential_acts_for_its_tenant(secure_server, tenants, how):
    a, b = tenants
    headers, payload = {}, {}
    if how == "payload key":
        payload = {"Authorization": f"Bearer {a.keys['read']}"}
    elif how == "payload jwt":
        payload = {"authorization": f"Bearer {token(a.id, ['inventory:read'])}"}
    else:
        headers = {"Authorization": f"Bearer {a.keys['read']}"}
    async with websockets.connect(_ws_url(secure_server), subprotocols=["graphql-transport-ws"],
                                  additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        result = await _run(ws, QUERY, {"c": a.data["code"]})
        assert result["data"] == {"location": {"code": a.data["code"]}}
        assert result["extensions"]["cost"] == {"requested": 1, "maximum": 10_000, "actual": 1}
        # Scopes are checked per operation on the socket too.
        denied = await _run(ws, "mutation { createLocation(input: {code: \"X\", name: \"X\"}) "
                                "{ __typename } }", {})
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Another tenant's socket sees nothing of A.
    async with websockets.connect(_ws_url(secure_server),
                                  subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"authorization": f"Bearer {b.keys['all']}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        assert (await _run(ws, QUERY, {"c": a.data["code"]}))["data"] == {"location": None}


async def test_legacy_graphql_ws_checks_connection_init(secure_server, tenants):
    a, _ = tenants
    async with websockets.connect(_ws_url(secure_server), subprotocols=["graphql-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.send(json.dumps({"id": "1", "type": "start", "payload": {
            "query": QUERY, "variables": {"c": a.data["code"]}}}))
        with pytest.raises(ConnectionClosed):
            while True:
                message = json.loads(await ws.recv())
                assert message["type"] in {"connection_error"}, message
    async with websockets.connect(_ws_url(secure_server), subprotocols=["graphql-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"authorization": f"Bearer {a.keys['read']}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
