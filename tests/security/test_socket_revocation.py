"""Credentials are checked again on open WebSockets: a revoked key or an expired
JWT stops working on its socket (the next operation is refused, the socket is
closed with 4403, also when it only receives events), sockets per credential
are capped with a clear close code, messages are bounded in size (1009), and
error messages on a socket do not echo unbounded input."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import pytest
import websockets
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed

from inventory.auth import keys
from inventory.auth.tokens import LEEWAY_S
from inventory.db import api_keys

from inventory.auth.principal import ADMIN, READ, WRITE

from ..support import create_api_key, unique
from .support import ALL, SECURE_ENV, token

RECEIVE = ("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
           "{ __typename ... on StockLevel { onHand } } }")
CHANGES = ("subscription($s: [String!], $since: [LevelVersionInput!]) "
           "{ stockLevelChanged(skus: $s, since: $since) { sku onHand } }")


def _ws_url(server) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


async def _connect(server, key: str):
    ws = await websockets.connect(_ws_url(server), subprotocols=["graphql-transport-ws"])
    await ws.send(json.dumps({"type": "connection_init",
                              "payload": {"authorization": f"Bearer {key}"}}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply["type"] == "connection_ack", reply
    return ws


def _revoke(sync_engine, key: str) -> None:
    with sync_engine.begin() as conn:
        assert api_keys.revoke_key(conn, keys.parse_key(key).key_id) == 1


def _movements_by(sync_engine, key: str) -> int:
    with sync_engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM movements WHERE actor = :a"),
                            {"a": f"key:{keys.parse_key(key).key_id}"}).scalar_one()


async def _until_closed(ws, timeout: float = 20) -> tuple[int, list[dict]]:
    """Reads until the server closes the socket: (close code, messages seen)."""
    seen = []
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                seen.append(json.loads(await ws.recv()))
    return closed.value.rcvd.code, seen


async def _stock(graphql, server, admin: str) -> tuple[str, str]:
    api = graphql(server, api_key=admin)
    return await api.item(unique("WS-SKU")), await api.location(unique("WS-LOC"))


async def test_revoked_key_is_refused_on_its_open_socket(secure_server, database_url,
                                                         sync_engine, graphql):
    """The probe's steps: a read+write key subscribes, is revoked, then sends a
    receiveStock on the same socket (INVENTORY_AUTH_CACHE_SECONDS is 0 here)."""
    tenant = uuid.uuid4()
    admin = create_api_key(database_url, ALL, tenant, "admin")
    key = create_api_key(database_url, (READ, WRITE), tenant, "socket")
    sku, code = await _stock(graphql, secure_server, admin)
    ws = await _connect(secure_server, key)
    try:
        # The socket runs its operations concurrently, so the write may commit
        # before the subscription has started: `since` (the level's version 0)
        # has it replay what it missed, and the write's event arrives either way.
        await ws.send(json.dumps({"id": "sub", "type": "subscribe", "payload": {
            "query": CHANGES, "variables": {"s": [sku], "since": [
                {"sku": sku, "locationCode": code, "version": 0}]}}}))
        await ws.send(json.dumps({"id": "m1", "type": "subscribe", "payload": {
            "query": RECEIVE, "variables": {"i": {"sku": sku, "locationCode": code,
                                                  "quantity": 5}}}}))
        seen = set()
        async with asyncio.timeout(20):  # the write and its event both arrive
            while seen != {"m1", "sub"}:
                message = json.loads(await ws.recv())
                if message["type"] == "next":
                    assert "errors" not in message["payload"], message
                    seen.add(message["id"])
        assert _movements_by(sync_engine, key) == 1
        _revoke(sync_engine, key)
        # The watcher (every second here) may close the socket first.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"id": "m2", "type": "subscribe", "payload": {
                "query": RECEIVE, "variables": {"i": {"sku": sku, "locationCode": code,
                                                      "quantity": 7}}}}))
        code_, messages = await _until_closed(ws)
        assert code_ == 4403
        assert not [m for m in messages if m.get("id") == "m2" and m["type"] == "next"
                    and "errors" not in m["payload"]], messages
        assert _movements_by(sync_engine, key) == 1  # the refused write wrote nothing
    finally:
        await ws.close()
    # A new socket with the revoked key is refused at connection_init.
    ws = await websockets.connect(_ws_url(secure_server), subprotocols=["graphql-transport-ws"])
    await ws.send(json.dumps({"type": "connection_init",
                              "payload": {"authorization": f"Bearer {key}"}}))
    assert (await _until_closed(ws))[0] == 4403


@pytest.fixture(scope="module")
def capped(start_api_server):
    """Verified credentials (keys and JWTs) cached for 2 s; at most 2 sockets per
    credential; WebSocket messages of at most 8 KiB."""
    with start_api_server("capped", **{**SECURE_ENV, "INVENTORY_AUTH_CACHE_SECONDS": "2"},
                          INVENTORY_WS_PER_CREDENTIAL="2",
                          INVENTORY_WS_MAX_MESSAGE_BYTES="8192") as server:
        yield server


async def test_a_socket_that_only_listens_is_closed_when_its_key_is_revoked(
        capped, database_url, sync_engine):
    tenant = uuid.uuid4()
    key = create_api_key(database_url, (READ,), tenant, "listener")
    other = create_api_key(database_url, (READ,), tenant, "other listener")
    listening, unaffected = await _connect(capped, key), await _connect(capped, other)
    try:
        for ws in (listening, unaffected):
            await ws.send(json.dumps({"id": "sub", "type": "subscribe", "payload": {
                "query": CHANGES, "variables": {"s": None}}}))
        _revoke(sync_engine, key)
        # Closed by the server once the cached answer (2 s) runs out; the deadline
        # is generous for a loaded machine.
        assert (await _until_closed(listening, timeout=30))[0] == 4403
        # The other key's socket still works.
        await unaffected.send(json.dumps({"id": "q", "type": "subscribe", "payload": {
            "query": "{ __typename }"}}))
        async with asyncio.timeout(10):
            while (message := json.loads(await unaffected.recv())).get("id") != "q":
                pass
        assert message["payload"]["data"] == {"__typename": "Query"}, message
    finally:
        await listening.close()
        await unaffected.close()


async def test_sockets_per_credential_are_capped(capped, database_url):
    tenant = uuid.uuid4()
    key = create_api_key(database_url, (READ,), tenant, "many sockets")
    other = create_api_key(database_url, (READ, ADMIN), tenant, "another key")
    first, second = await _connect(capped, key), await _connect(capped, key)
    try:
        third = await websockets.connect(_ws_url(capped), subprotocols=["graphql-transport-ws"])
        await third.send(json.dumps({"type": "connection_init",
                                     "payload": {"authorization": f"Bearer {key}"}}))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    assert json.loads(await third.recv())["type"] != "connection_ack"
        assert closed.value.rcvd.code == 4029
        assert "INVENTORY_WS_PER_CREDENTIAL" in closed.value.rcvd.reason
        # Another credential of the same tenant has its own count.
        await (await _connect(capped, other)).close()
        # A closed socket frees its place.
        await first.close()
        async with asyncio.timeout(20):
            while True:
                try:
                    replacement = await _connect(capped, key)
                    break
                except (ConnectionClosed, AssertionError):
                    await asyncio.sleep(0.1)  # the server has not seen the close yet
        await replacement.close()
    finally:
        await first.close()
        await second.close()


async def test_an_expired_jwt_is_refused_on_its_open_socket(capped):
    """A JWT valid for 5 more seconds (exp is checked with LEEWAY_S of grace):
    the socket works; once the token has expired and the cached answer (2 s)
    with it, the socket is closed with 4403, by the watcher or at the next
    operation, which is refused; a new socket with the token is refused at
    connection_init."""
    exp = int(time.time()) + 5 - LEEWAY_S
    jwt = token(uuid.uuid4(), (READ,), exp=exp)
    ws = await _connect(capped, jwt)
    try:
        await ws.send(json.dumps({"id": "before", "type": "subscribe",
                                  "payload": {"query": "{ __typename }"}}))
        async with asyncio.timeout(10):
            while (message := json.loads(await ws.recv())).get("id") != "before":
                pass
        assert message["payload"]["data"] == {"__typename": "Query"}, message
        # Past expiry plus the cache time nothing may be answered any more.
        refused_by = exp + LEEWAY_S + 2 + 0.5
        seen = []
        try:
            async with asyncio.timeout(max(0.0, refused_by - time.time())):
                while True:
                    seen.append(json.loads(await ws.recv()))
        except TimeoutError:  # still open: the next operation must be refused
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"id": "after", "type": "subscribe",
                                          "payload": {"query": "{ __typename }"}}))
            code, more = await _until_closed(ws)
            seen += more
        except ConnectionClosed as closed:  # the watcher closed it
            code = closed.rcvd.code
        assert code == 4403, (code, seen)
        assert not [m for m in seen if m.get("id") == "after" and m["type"] == "next"
                    and "errors" not in m["payload"]], seen
    finally:
        await ws.close()
    fresh = await websockets.connect(_ws_url(capped), subprotocols=["graphql-transport-ws"])
    await fresh.send(json.dumps({"type": "connection_init",
                                 "payload": {"authorization": f"Bearer {jwt}"}}))
    assert (await _until_closed(fresh))[0] == 4403


async def test_a_message_over_the_size_limit_closes_the_socket_with_1009(capped, database_url):
    key = create_api_key(database_url, (READ,), uuid.uuid4(), "big messages")
    ws = await _connect(capped, key)
    try:
        padding = "#" + "x" * 6000 + "\n"  # a comment: within the limit, it is answered
        await ws.send(json.dumps({"id": "ok", "type": "subscribe",
                                  "payload": {"query": padding + "{ __typename }"}}))
        async with asyncio.timeout(10):
            while (message := json.loads(await ws.recv())).get("id") != "ok":
                pass
        assert message["payload"]["data"] == {"__typename": "Query"}, message
        await ws.send(json.dumps({"id": "big", "type": "subscribe",
                                  "payload": {"query": padding * 2 + "{ __typename }"}}))
        code, seen = await _until_closed(ws)
        assert code == 1009, (code, seen)
        assert not [m for m in seen if m.get("id") == "big"], seen
    finally:
        await ws.close()


async def test_errors_on_a_socket_do_not_echo_the_input(capped, database_url):
    """A 5,000-character value for an Int variable: a typed error that does not
    quote it, and the socket answers on. A 5,000-character unknown
    operationName: graphql-transport-ws closes the socket (4400), with a reason
    that does not quote it."""
    key = create_api_key(database_url, (READ,), uuid.uuid4(), "echo")
    ws = await _connect(capped, key)
    try:
        await ws.send(json.dumps({"id": "value", "type": "subscribe", "payload": {
            "query": "query($n: Int) { items(first: $n) { nodes { sku } } }",
            "variables": {"n": "C" * 5000}}}))
        async with asyncio.timeout(10):
            while (message := json.loads(await ws.recv())).get("id") != "value":
                pass
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors and len(json.dumps(errors)) < 600 and "C" * 300 not in json.dumps(errors), \
            message
        await ws.send(json.dumps({"id": "q", "type": "subscribe",
                                  "payload": {"query": "{ __typename }"}}))
        async with asyncio.timeout(10):
            while (message := json.loads(await ws.recv())).get("id") != "q":
                pass
        assert message["payload"]["data"] == {"__typename": "Query"}
        await ws.send(json.dumps({"id": "name", "type": "subscribe", "payload": {
            "query": "query A { __typename }", "operationName": "B" * 5000}}))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    message = json.loads(await ws.recv())
                    assert "BBBBBBBBBB" not in json.dumps(message), message
        assert closed.value.rcvd.code == 4400
        assert "BBBBBBBBBB" not in closed.value.rcvd.reason, closed.value.rcvd.reason
    finally:
        await ws.close()
