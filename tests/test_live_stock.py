"""Live stock across processes: subscribe on one API process, write through
another (both on one database), over real WebSockets."""
from __future__ import annotations

import asyncio
import json
import uuid

import psycopg
import pytest
import websockets

from inventory.db.changes import READER_NAME

from .live_support import LEGACY_WS, LEVEL_SUBSCRIPTION, TRANSPORT_WS, WsClient, closed_with
from .support import ADMIN, ALL_SCOPES, READ, WRITE, create_api_key, unique


@pytest.fixture(scope="module")
def second_server(start_api_server):
    with start_api_server("api2") as server:
        yield server


@pytest.fixture(scope="module")
def small_server(start_api_server):
    """Tiny subscriber buffers and few subscriptions per connection."""
    with start_api_server("api-small", INVENTORY_SUBSCRIBER_BUFFER="3",
                          INVENTORY_WS_MAX_SUBSCRIPTIONS="2") as server:
        yield server


@pytest.fixture(scope="module")
async def probe(stocked_level) -> tuple[str, str]:
    """A level that changes once, used to know a subscription is registered."""
    return await stocked_level(1)


async def test_write_on_one_process_reaches_subscriber_on_another(
        api, probe, second_server, stocked_level):
    sku, code = await stocked_level(0)
    async with WsClient(second_server.url) as ws:
        await ws.subscribe_ready(probe, {"skus": [sku]})
        await api.receive(sku, code, 7)
        await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -2})
        first, second = await ws.changes(2)
    assert {k: first[k] for k in ("sku", "locationCode", "onHand", "reserved", "available",
                                   "version", "kind")} == {
        "sku": sku, "locationCode": code, "onHand": 7, "reserved": 0, "available": 7,
        "version": 1, "kind": "RECEIVE"}
    assert (second["onHand"], second["version"], second["kind"]) == (5, 2, "ADJUST")
    assert first["at"]


async def test_rolled_back_and_retried_writes_announce_nothing_extra(
        api, probe, second_server, stocked_level):
    sku, code = await stocked_level(100)
    short = await api.item()
    await api.receive(short, code, 1)
    async with WsClient(second_server.url) as ws:
        await ws.subscribe_ready(probe, {"skus": [sku, short]})
        # The first line is written, the second is short: the whole transaction
        # rolls back, so the first line's change must never be announced.
        result = await api.mutate("reserveStock", {"lines": [
            {"sku": sku, "locationCode": code, "quantity": 5},
            {"sku": short, "locationCode": code, "quantity": 5},
        ]})
        assert result["__typename"] == "InsufficientStockError", result
        # Concurrent writes to one level conflict and retry; each committed
        # version arrives once, in order. They are also the marker for the
        # rollback: an announced rolled-back change would come before them.
        await asyncio.gather(*(
            api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 1})
            for _ in range(15)))
        got = await ws.changes(15)
    assert [c["version"] for c in got] == list(range(2, 17))
    assert [c["onHand"] for c in got] == list(range(101, 116))


async def test_reconnect_with_last_versions_replays_what_was_missed(
        api, probe, second_server, stocked_level):
    sku, code = await stocked_level(10)
    other_sku = await api.item()
    await api.receive(other_sku, code, 1)
    async with WsClient(second_server.url) as ws:
        await ws.subscribe_ready(probe, {"skus": [sku]})
        await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 1})
        (seen,) = await ws.changes(1)
    assert seen["version"] == 2
    for _ in range(3):  # missed while disconnected
        await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 1})
    async with WsClient(second_server.url) as ws:
        await ws.subscribe(LEVEL_SUBSCRIPTION, {"skus": [sku, other_sku], "since": [
            {"sku": sku, "locationCode": code, "version": seen["version"]},
            {"sku": other_sku, "locationCode": code, "version": 1},
        ]})
        replayed = await ws.changes(3)
        await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 1})
        (live,) = await ws.changes(1)
        # A marker: nothing (no duplicate of a replayed version) comes before it.
        await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 1})
        (marker,) = await ws.changes(1)
    assert [(c["version"], c["onHand"]) for c in replayed] == [(3, 12), (4, 13), (5, 14)]
    assert (live["version"], live["onHand"]) == (6, 15)
    assert (marker["version"], marker["onHand"]) == (7, 16)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_low_stock_announces_falling_low_and_recovering(api, probe, second_server,
                                                              stocked_level, protocol):
    sku, code = await stocked_level(10, reorder_point=5)
    async with WsClient(second_server.url, protocol) as ws:
        await ws.subscribe("""subscription($codes: [String!]) { lowStock(locationCodes: $codes) {
            sku locationCode available reorderPoint low version } }""", {"codes": [code]})
        # Subscribed after lowStock on the same socket: once this one is
        # registered, the lowStock one (started first) is too.
        await ws.subscribe_ready(probe, {"skus": []})
        reserved = await api.mutate(
            "reserveStock", {"lines": [{"sku": sku, "locationCode": code, "quantity": 6}]},
            "... on Reservation { id }")
        await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -1})
        await api.mutate("releaseReservation", {"reservationId": reserved["id"]})
        fell = (await ws.next_data())["lowStock"]
        recovered = (await ws.next_data())["lowStock"]
    # The -1 adjust kept it low: no event for it.
    assert (fell["available"], fell["low"], fell["version"]) == (4, True, 2)
    assert (recovered["available"], recovered["low"], recovered["version"]) == (9, False, 4)


async def test_sweeper_expiry_is_announced(api, probe, second_server, stocked_level):
    sku, code = await stocked_level(4)
    async with WsClient(second_server.url) as ws:
        await ws.subscribe_ready(probe, {"skus": [sku]})
        await api.mutate("reserveStock", {
            "lines": [{"sku": sku, "locationCode": code, "quantity": 3}], "ttlSeconds": 1})
        reserved, expired = await ws.changes(2)
    assert (reserved["kind"], reserved["reserved"], reserved["version"]) == ("RESERVE", 3, 2)
    assert (expired["kind"], expired["reserved"], expired["version"]) == ("EXPIRE", 0, 3)


async def _drop_feed_connections(database_url: str) -> int:
    """Terminates the change feeds' backends once there are some (a feed dropped
    a moment ago may still be reconnecting); how many were terminated."""
    libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    deadline = asyncio.get_running_loop().time() + 10
    async with await psycopg.AsyncConnection.connect(libpq, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()", (READER_NAME,))
            dropped = (await cur.fetchone())[0]
            if dropped or asyncio.get_running_loop().time() > deadline:
                return dropped
            await asyncio.sleep(0.05)


async def test_feed_reconnects_and_resumes_from_its_cursor(
        api, probe, second_server, database_url, stocked_level):
    """The feed's connections are dropped twice (as in a failover) while writes
    commit; the feed reconnects by itself and resumes from its cursor: every
    version arrives once, in order (the last one is the marker: nothing twice
    before it)."""
    sku, code = await stocked_level(0)
    async with WsClient(second_server.url) as ws:
        await ws.subscribe_ready(probe, {"skus": [sku]})
        await api.receive(sku, code, 1)
        assert [c["version"] for c in await ws.changes(1)] == [1]
        for _ in range(2):
            assert await _drop_feed_connections(database_url) >= 1
            for _ in range(3):  # while the feed reconnects, or after
                await api.receive(sku, code, 1)
        got = await ws.changes(6)
    assert [(c["version"], c["onHand"]) for c in got] == [(v, v) for v in range(2, 8)]


async def test_a_commit_of_the_subscribers_process_wakes_its_feed(
        graphql, probe, start_api_server, stocked_level):
    """The feed of this server polls once a minute: only the wake-up by a
    commit of the same process brings the changes before the client's deadline."""
    sku, code = await stocked_level(0)
    with start_api_server("api-slow-poll", INVENTORY_CHANGE_POLL_INTERVAL="60") as server:
        writer = graphql(server)
        async with WsClient(server.url) as ws:
            await ws.subscribe_ready(probe, {"skus": [sku]})
            for _ in range(3):
                await writer.receive(sku, code, 1)
            got = await ws.changes(3, timeout=15)
    assert [(c["sku"], c["onHand"], c["version"]) for c in got] == [
        (sku, 1, 1), (sku, 2, 2), (sku, 3, 3)]


async def test_subscribers_with_the_same_or_other_selections_each_get_their_fields(
        api, probe, second_server, stocked_level):
    """Subscribers of one selection share its result per event; another
    selection of the same event gets its own fields, not theirs."""
    sku, code = await stocked_level(0)
    narrow = """subscription($skus: [String!], $codes: [String!], $since: [LevelVersionInput!]) {
      stockLevelChanged(skus: $skus, locationCodes: $codes, since: $since) {
        sku locationCode low } }"""
    async with WsClient(second_server.url) as a, WsClient(second_server.url) as b, \
            WsClient(second_server.url) as c:
        await a.subscribe_ready(probe, {"skus": [sku]})
        await b.subscribe_ready(probe, {"skus": [sku]})
        await c.subscribe_ready(probe, {"skus": [sku]}, query=narrow)
        await api.receive(sku, code, 5)
        (got_a,), (got_b,) = await a.changes(1), await b.changes(1)
        got_c = (await c.next_data())["stockLevelChanged"]
    assert got_a == got_b and (got_a["sku"], got_a["onHand"], got_a["version"]) == (sku, 5, 1)
    assert got_c == {"sku": sku, "locationCode": code, "low": False}


async def test_overflow_closes_the_subscription_with_a_clear_error(api, probe, small_server):
    code = await api.location()
    skus = [await api.item() for _ in range(6)]
    for sku in skus:
        await api.receive(sku, code, 5)
    async with WsClient(small_server.url) as ws:
        await ws.subscribe_ready(probe, {"codes": [code]})
        # Six changes in one transaction arrive at once; the buffer holds three.
        await api.mutate("reserveStock", {"lines": [
            {"sku": sku, "locationCode": code, "quantity": 1} for sku in skus]})
        messages = []
        while not messages or messages[-1]["type"] != "complete":
            messages.append(await ws.receive())
    # Some events may be sent before the buffer overflows; then the error, then
    # complete.
    failure = messages[-2]
    errors = failure["payload"] if failure["type"] == "error" else failure["payload"].get("errors")
    assert errors and errors[0]["extensions"]["code"] == "SUBSCRIPTION_OVERFLOW", messages
    assert "since" in errors[0]["message"]


async def test_subscription_limit_per_connection(api, small_server):
    quiet = {"skus": [await api.item()]}  # no traffic: nothing ends these early
    async with WsClient(small_server.url) as ws:
        for _ in range(2):
            await ws.subscribe(LEVEL_SUBSCRIPTION, quiet)
        await ws.subscribe(LEVEL_SUBSCRIPTION, quiet)
        message = await ws.receive()
    assert message["type"] == "error"
    assert "limit" in message["payload"][0]["message"]


LOW_STOCK = "subscription($codes: [String!]) { lowStock(locationCodes: $codes) { sku } }"
# (subscription, variables, the error code). In variables, "<sku>" and "<code>"
# name a real level (the probe's) and "<nope>" a name that exists nowhere.
BAD_SUBSCRIPTIONS = [
    pytest.param(LEVEL_SUBSCRIPTION, {"skus": ["<nope>"]}, "NOT_FOUND", id="unknown-sku"),
    pytest.param(LEVEL_SUBSCRIPTION, {"codes": ["<nope>"]}, "NOT_FOUND",
                 id="unknown-location-code"),
    pytest.param(LEVEL_SUBSCRIPTION, {"skus": ["<sku>"], "since": [
        {"sku": "<nope>", "locationCode": "<code>", "version": 0}]}, "NOT_FOUND",
        id="unknown-sku-in-since"),
    pytest.param(LEVEL_SUBSCRIPTION, {"skus": ["<sku>"], "since": [
        {"sku": "<sku>", "locationCode": "<code>", "version": -1}]}, "INVALID_INPUT",
        id="negative-since-version"),
    pytest.param(LEVEL_SUBSCRIPTION, {"skus": [f"S-{n}" for n in range(501)]},
                 "INVALID_INPUT", id="501-skus"),
    pytest.param(LEVEL_SUBSCRIPTION, {"codes": [f"L-{n}" for n in range(501)]},
                 "INVALID_INPUT", id="501-location-codes"),
    pytest.param(LEVEL_SUBSCRIPTION, {"skus": ["<sku>"], "since": [
        {"sku": "<sku>", "locationCode": "<code>", "version": n} for n in range(5001)]},
        "INVALID_INPUT", id="5001-since-entries"),
    pytest.param(LOW_STOCK, {"codes": ["<nope>"]}, "NOT_FOUND", id="low-stock-unknown-code"),
    pytest.param(LOW_STOCK, {"codes": [f"L-{n}" for n in range(501)]}, "INVALID_INPUT",
                 id="low-stock-501-location-codes"),
]


def _named(value, names: dict[str, str]):
    if isinstance(value, dict):
        return {k: _named(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_named(v, names) for v in value]
    return names.get(value, value)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("query, variables, code", BAD_SUBSCRIPTIONS)
async def test_bad_subscription_input_is_a_typed_error(second_server, probe, protocol, query,
                                                       variables, code):
    names = {"<sku>": probe[0], "<code>": probe[1], "<nope>": unique("NOPE")}
    async with WsClient(second_server.url, protocol) as ws:
        op_id = await ws.subscribe(query, _named(variables, names))
        message = await ws.receive()
    assert message["id"] == op_id and message["type"] in ("error", "next", "data"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code], message


# Access checks on subscriptions (see docs/security.md). Each test first shows
# that its subscribe message does start a subscription for a good credential
# (the `since` replay answers at once), so the refusals below are meaningful.

def replaying(sku: str, code: str) -> dict:
    return {"skus": [sku], "since": [{"sku": sku, "locationCode": code, "version": 0}]}


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("payload", [
    None, {}, {"authorization": "Bearer inv_" + "0" * 64 + "_guess"}])
async def test_socket_without_credential_is_closed_before_subscribing(
        second_server, protocol, payload, stocked_level):
    sku, code = await stocked_level(1)  # version 1: replayed to a subscription since 0
    async with WsClient(second_server.url, protocol) as ws:  # control: the test key
        await ws.subscribe(LEVEL_SUBSCRIPTION, replaying(sku, code))
        assert (await ws.changes(1))[0]["version"] == 1
    url = second_server.url.replace("http://", "ws://", 1) + "/graphql"
    async with websockets.connect(url, subprotocols=[protocol]) as ws:
        init = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await ws.send(json.dumps(init))
        # Sent right behind the init: it must not start (no replay, no data).
        await ws.send(json.dumps({
            "id": "1", "type": "subscribe" if protocol == TRANSPORT_WS else "start",
            "payload": {"query": LEVEL_SUBSCRIPTION, "variables": replaying(sku, code)}}))
        seen: list[dict] = []
        code_ = await closed_with(ws, seen)
    if protocol == TRANSPORT_WS:
        assert (code_, seen) == (4403, [])
    else:  # graphql-ws has no close code of its own: an error message, then 1011
        assert code_ == 1011 and [m["type"] for m in seen] == ["connection_error"], seen


@pytest.mark.parametrize("protocol, scopes", [
    (TRANSPORT_WS, (WRITE,)), (TRANSPORT_WS, (ADMIN,)), (LEGACY_WS, (WRITE, ADMIN))])
async def test_key_without_read_scope_cannot_subscribe(
        api, second_server, database_url, protocol, scopes, stocked_level):
    sku, code = await stocked_level(1)  # version 1: replayed to a subscription since 0
    key = create_api_key(database_url, scopes, name="no read")

    async def refused(ws, query: str, variables: dict) -> None:
        """The next messages are this operation's, and only FORBIDDEN."""
        op_id = await ws.subscribe(query, variables)
        messages = []
        while not messages or messages[-1]["type"] not in ("complete", "error"):
            messages.append(await ws.receive())
            # No data (a started subscription would replay version 1), only FORBIDDEN.
            payload = messages[-1].get("payload")
            assert not isinstance(payload, dict) or payload.get("data") is None, messages
        assert all(m["id"] == op_id for m in messages), messages
        payloads = [m["payload"] for m in messages if m["type"] in ("next", "data")]
        errors = (messages[-1]["payload"] if messages[-1]["type"] == "error"
                  else [e for p in payloads for e in p.get("errors", [])])
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], messages

    async with WsClient(second_server.url, protocol, api_key=key) as ws, \
            WsClient(second_server.url) as control:  # a valid key: acked
        await refused(ws, LEVEL_SUBSCRIPTION, replaying(sku, code))
        await refused(ws, "subscription { lowStock { sku } }", {})
        await control.subscribe(LEVEL_SUBSCRIPTION, replaying(sku, code))
        assert (await control.changes(1))[0]["version"] == 1
        # A live change, delivered by this process (the control socket gets it):
        # nothing may arrive for it on the refused socket, whose next message is
        # the answer to the marker operation sent after it.
        await api.receive(sku, code, 1)
        assert (await control.changes(1))[0]["version"] == 2
        await refused(ws, "subscription { lowStock { sku } }", {})


async def test_subscriptions_see_only_the_tenant_of_their_credential(
        api, probe, second_server, database_url, stocked_level):
    other = create_api_key(database_url, ALL_SCOPES, tenant_id=uuid.uuid4(), name="tenant B")
    other_api = api.with_key(other)
    other_probe = await stocked_level(1, client=other_api)
    sku, code = await stocked_level(1)
    async with WsClient(second_server.url, api_key=other) as ws:
        await ws.subscribe_ready(other_probe)  # no filter: every level of tenant B
        await api.receive(sku, code, 5)  # tenant A
        # B's next change is the marker: had A's been delivered, it would come first.
        await other_api.receive(*other_probe, 2)
        (seen,) = await ws.changes(1)
        assert (seen["sku"], seen["version"], seen["onHand"]) == (other_probe[0], 2, 3)
        # A's sku by name answers like an unknown one.
        await ws.subscribe(LEVEL_SUBSCRIPTION, {"skus": [sku]})
        message = await ws.receive()
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND", message
    async with WsClient(second_server.url, api_key=create_api_key(
            database_url, (READ,), name="read only")) as ws:  # read alone is enough
        await ws.subscribe_ready(probe, {"skus": [sku]})
