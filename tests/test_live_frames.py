"""Subscription frames written below strawberry (web/frames.py), over a real
WebSocket: each operation gets its own `next` frames, exactly as the
graphql-transport-ws protocol words them, and nothing after `complete`.
Errors, overflow, access checks and tenant isolation on these sockets are
tested in test_live_stock.py (all of its graphql-transport-ws subscriptions
take this path)."""
from __future__ import annotations

import json

import pytest

from .live_support import LEVEL_SUBSCRIPTION, WsClient


@pytest.fixture(scope="module")
def frames_server(start_api_server):
    with start_api_server("api-frames") as server:
        yield server


@pytest.fixture(scope="module")
async def probe(stocked_level) -> tuple[str, str]:
    return await stocked_level(1)


async def raw_messages(client: WsClient, count: int) -> list[str]:
    """The next `count` messages as the server wrote them (pings left out)."""
    out = []
    while len(out) < count:
        raw = await client.ws.recv()
        if json.loads(raw)["type"] not in ("ping", "pong"):
            out.append(raw)
    return out


def next_message(raw: str) -> tuple[str, dict]:
    """(operation id, data) of a `next` frame with exactly the protocol's keys."""
    message = json.loads(raw)
    assert set(message) == {"id", "type", "payload"} and message["type"] == "next", raw
    assert set(message["payload"]) == {"data"}, raw
    return message["id"], message["payload"]["data"]["stockLevelChanged"]


async def test_each_operation_gets_its_own_frames_and_none_after_complete(
        api, probe, frames_server, stocked_level):
    sku, code = await stocked_level(0)
    narrow = "subscription($skus: [String!]) { stockLevelChanged(skus: $skus) { sku version } }"
    async with WsClient(frames_server.url) as a, WsClient(frames_server.url) as b:
        # Two operations of one selection on one socket, one on another socket,
        # and another selection: four frames of one event, two payloads.
        first = await a.subscribe_ready(probe, {"skus": [sku]})
        second = await a.subscribe_ready(probe, {"skus": [sku]})
        other = await a.subscribe(narrow, {"skus": [sku]})
        third = await b.subscribe_ready(probe, {"skus": [sku]})
        await api.receive(sku, code, 5)
        got_a = dict(next_message(raw) for raw in await raw_messages(a, 3))
        (got_b,) = [next_message(raw) for raw in await raw_messages(b, 1)]
        assert set(got_a) == {first, second, other}
        assert got_a[first] == got_a[second] == got_b[1]
        assert (got_a[first]["sku"], got_a[first]["onHand"], got_a[first]["version"]) == (sku, 5, 1)
        assert got_a[other] == {"sku": sku, "version": 1}
        assert got_b[0] == third
        await a.send({"id": first, "type": "complete"})
        # The socket handles its messages in order: once the pong is back,
        # the operation is gone.
        await a.send({"type": "ping"})
        assert json.loads(await a.ws.recv()) == {"type": "pong"}
        await api.receive(sku, code, 1)
        got_a = dict(next_message(raw) for raw in await raw_messages(a, 2))
        assert set(got_a) == {second, other}
        assert got_a[second]["version"] == got_a[other]["version"] == 2


async def test_frames_come_from_below_strawberry(api, probe, frames_server, stocked_level):
    """strawberry's messages put "type" first; the frames written below it
    put "id" first: this fails when subscriptions stop taking that path."""
    sku, code = await stocked_level(0)
    async with WsClient(frames_server.url) as ws:
        await ws.subscribe_ready(probe, {"skus": [sku]}, query=LEVEL_SUBSCRIPTION)
        await api.receive(sku, code, 2)
        (raw,) = await raw_messages(ws, 1)
    assert raw.startswith('{"id":'), raw
    assert next_message(raw)[1]["onHand"] == 2
