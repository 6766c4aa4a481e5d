"""Catalogue edits and queries (issue 15, Build 6): updateItem with
compare-and-swap on a version, archived items and locations, the reservations
connection and its filters, and the movements filters."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from .support import RESERVATION_FIELDS

ITEM_FIELDS = "... on Item { sku name reorderPoint version archived archivedAt }"
VERSION_ERROR = "... on VersionMismatchError { expected actual }"


async def test_update_item_compares_and_swaps_the_version(api):
    sku = await api.item(reorder_point=3)
    first = await api.succeed("updateItem", {"sku": sku, "version": 0, "name": "Renamed"},
                              ITEM_FIELDS)
    assert (first["name"], first["reorderPoint"], first["version"]) == ("Renamed", 3, 1)
    second = await api.succeed("updateItem", {"sku": sku, "version": 1, "reorderPoint": 8},
                               ITEM_FIELDS)
    assert (second["name"], second["reorderPoint"], second["version"]) == ("Renamed", 8, 2)
    stale = await api.mutate("updateItem", {"sku": sku, "version": 1, "name": "Lost"},
                             VERSION_ERROR)
    assert (stale["__typename"], stale["code"], stale["field"]) == (
        "VersionMismatchError", "VERSION_MISMATCH", "version")
    assert (stale["expected"], stale["actual"]) == (1, 2)
    data = await api.gql("query($s: String!) { item(sku: $s) { name reorderPoint version } }",
                         {"s": sku})
    assert data["item"] == {"name": "Renamed", "reorderPoint": 8, "version": 2}


async def test_concurrent_updates_of_one_version_exactly_one_wins(api):
    sku = await api.item()
    results = await asyncio.gather(*(
        api.mutate("updateItem", {"sku": sku, "version": 0, "name": f"Name {n}"}, ITEM_FIELDS)
        for n in range(8)))
    winners = [r for r in results if r["__typename"] == "Item"]
    assert len(winners) == 1, results
    assert {r["code"] for r in results if r not in winners} == {"VERSION_MISMATCH"}
    data = await api.gql("query($s: String!) { item(sku: $s) { name version } }", {"s": sku})
    assert data["item"] == {"name": winners[0]["name"], "version": 1}


async def test_update_item_replays_with_its_key(api):
    sku = await api.item()
    body = {"sku": sku, "version": 0, "name": "Once", "idempotencyKey": f"upd-{sku}"}
    first = await api.succeed("updateItem", body, ITEM_FIELDS)
    again = await api.succeed("updateItem", body, ITEM_FIELDS)
    assert again == first and first["version"] == 1


async def test_archived_item_takes_no_new_stock_and_keeps_its_history(api):
    sku, east, west = await api.item(), await api.location(), await api.location()
    await api.receive(sku, east, 10)
    archived = await api.succeed("archiveItem", {"sku": sku}, ITEM_FIELDS)
    assert archived["archived"] is True and archived["archivedAt"] and archived["version"] == 1
    again = await api.succeed("archiveItem", {"sku": sku}, ITEM_FIELDS)
    assert again == archived  # archiving again changes nothing
    refused = [
        await api.mutate("receiveStock", {"sku": sku, "locationCode": east, "quantity": 1}),
        await api.mutate("adjustStock", {"sku": sku, "locationCode": east, "delta": 1}),
        await api.mutate("setStock", {"sku": sku, "locationCode": east, "onHand": 11}),
        await api.mutate("transferStock", {"sku": sku, "fromLocationCode": east,
                                           "toLocationCode": west, "quantity": 1}),
    ]
    assert [(r["__typename"], r["code"]) for r in refused] == [("ArchivedError", "ARCHIVED")] * 4
    assert [r["field"] for r in refused] == ["sku"] * 4
    # What is there can still be sold, counted down and written off.
    reservation = await api.succeed("reserveStock", {
        "lines": [{"sku": sku, "locationCode": east, "quantity": 2}]}, RESERVATION_FIELDS)
    await api.succeed("commitReservation", {"reservationId": reservation["id"]})
    await api.succeed("adjustStock", {"sku": sku, "locationCode": east, "delta": -1})
    await api.succeed("setStock", {"sku": sku, "locationCode": east, "onHand": 5})
    assert (await api.level(sku, east))["onHand"] == 5
    history = await api.gql("query($s: String!) { movements(sku: $s) { nodes { kind } } }",
                            {"s": sku})
    assert [n["kind"] for n in history["movements"]["nodes"]] == [
        "SET", "ADJUST", "COMMIT", "RESERVE", "RECEIVE"]


async def test_archived_location_takes_no_new_stock(api):
    sku, east, west = await api.item(), await api.location(), await api.location()
    await api.receive(sku, east, 10)
    archived = await api.succeed("archiveLocation", {"code": west},
                                 "... on Location { locationCode: code archived archivedAt }")
    assert archived["archived"] is True and archived["archivedAt"]
    into = await api.mutate("transferStock", {"sku": sku, "fromLocationCode": east,
                                              "toLocationCode": west, "quantity": 1})
    assert (into["code"], into["field"]) == ("ARCHIVED", "toLocationCode")
    received = await api.mutate("receiveStock", {"sku": sku, "locationCode": west, "quantity": 1})
    assert (received["code"], received["field"]) == ("ARCHIVED", "locationCode")
    # Out of an archived location is allowed: archive the source, move the rest out.
    await api.succeed("archiveLocation", {"code": east})
    moved = await api.succeed("transferStock", {"sku": sku, "fromLocationCode": east,
                                                "toLocationCode": await api.location(),
                                                "quantity": 10})
    assert moved["__typename"] == "Transfer"


async def test_archived_filters_on_items_and_locations(api):
    prefix = f"ARCH-{datetime.now().timestamp():.0f}"
    active, gone = await api.item(f"{prefix}-a"), await api.item(f"{prefix}-b")
    await api.succeed("archiveItem", {"sku": gone})
    query = """query($p: String!, $a: Boolean) { items(filter: {skuPrefix: $p, archived: $a})
               { nodes { sku archived } } }"""
    page = lambda a: api.gql(query, {"p": prefix, "a": a})  # noqa: E731
    assert [n["sku"] for n in (await page(None))["items"]["nodes"]] == [active, gone]
    assert [n["sku"] for n in (await page(True))["items"]["nodes"]] == [gone]
    assert [n["sku"] for n in (await page(False))["items"]["nodes"]] == [active]
    code = await api.location()
    await api.succeed("archiveLocation", {"code": code})
    data = await api.gql("{ locations(first: 500, filter: {archived: true}) { nodes { code } } }")
    assert code in [n["code"] for n in data["locations"]["nodes"]]
    data = await api.gql("{ locations(first: 500, filter: {archived: false}) { nodes { code } } }")
    assert code not in [n["code"] for n in data["locations"]["nodes"]]


async def test_unknown_item_or_location_cannot_be_edited_or_archived(api):
    assert (await api.mutate("updateItem", {"sku": "NOPE-x", "version": 0, "name": "x"}))[
        "code"] == "NOT_FOUND"
    assert (await api.mutate("archiveItem", {"sku": "NOPE-x"}))["code"] == "NOT_FOUND"
    assert (await api.mutate("archiveLocation", {"code": "NOPE-x"}))["field"] == "code"


RESERVATIONS = """query($first: Int, $after: String, $f: ReservationFilter) {
  reservations(first: $first, after: $after, filter: $f) {
    edges { cursor node { id status reference expiresAt lines { sku quantity } } }
    pageInfo { hasNextPage hasPreviousPage } } }"""


async def test_reservations_connection_filters_and_pages(api):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 100)
    reference = f"order-{sku}"
    made = []
    for ttl in (60, 600, 6000):
        made.append(await api.succeed("reserveStock", {
            "lines": [{"sku": sku, "locationCode": code, "quantity": 1}], "ttlSeconds": ttl,
            "reference": reference}, RESERVATION_FIELDS))
    await api.succeed("releaseReservation", {"reservationId": made[0]["id"]})
    mine = {"reference": reference}
    seen, after = [], None
    while True:
        page = (await api.gql(RESERVATIONS, {"first": 2, "after": after, "f": mine}))[
            "reservations"]
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["edges"][-1]["cursor"]
    assert seen == [r["id"] for r in reversed(made)]  # newest first
    active = (await api.gql(RESERVATIONS, {"f": {**mine, "status": "ACTIVE"}}))["reservations"]
    assert [e["node"]["id"] for e in active["edges"]] == [made[2]["id"], made[1]["id"]]
    soon = (datetime.now(timezone.utc) + timedelta(seconds=3000)).isoformat()
    expiring = (await api.gql(RESERVATIONS, {"f": {**mine, "expiresBefore": soon}}))[
        "reservations"]
    assert [e["node"]["id"] for e in expiring["edges"]] == [made[1]["id"], made[0]["id"]]
    assert expiring["edges"][0]["node"]["lines"] == [{"sku": sku, "quantity": 1}]
    none = await api.gql(RESERVATIONS, {"f": {"reference": f"none-{sku}"}})
    assert none["reservations"]["edges"] == []


async def test_reservations_bad_cursor_is_invalid_input(api):
    body = await api.raw(RESERVATIONS, {"after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


MOVEMENTS = """query($s: String!, $f: MovementFilter) {
  movements(sku: $s, filter: $f) { nodes { kind createdAt } } }"""


async def test_movements_filter_by_kind_and_time(api):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 5)
    await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -1})
    everything = (await api.gql(MOVEMENTS, {"s": sku}))["movements"]["nodes"]
    assert [n["kind"] for n in everything] == ["ADJUST", "RECEIVE"]
    kinds = lambda f: api.gql(MOVEMENTS, {"s": sku, "f": f})  # noqa: E731
    only = (await kinds({"kinds": ["RECEIVE"]}))["movements"]["nodes"]
    assert [n["kind"] for n in only] == ["RECEIVE"]
    none = (await kinds({"kinds": []}))["movements"]["nodes"]
    assert none == []
    adjusted_at = everything[0]["createdAt"]
    before = (await kinds({"createdBefore": adjusted_at}))["movements"]["nodes"]
    assert [n["kind"] for n in before] == ["RECEIVE"]
    after = (await kinds({"createdAfter": everything[1]["createdAt"],
                          "kinds": ["ADJUST", "RECEIVE"]}))["movements"]["nodes"]
    assert [n["kind"] for n in after] == ["ADJUST"]


async def test_reason_codes_beside_free_text_on_the_ledger(api):
    sku, code, other = await api.item(), await api.location(), await api.location()
    await api.succeed("receiveStock", {"sku": sku, "locationCode": code, "quantity": 5,
                                       "reasonCode": "RECEIVED", "reason": "PO 17"})
    await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -1,
                                      "reasonCode": "DAMAGED"})
    await api.succeed("setStock", {"sku": sku, "locationCode": code, "onHand": 3,
                                   "reasonCode": "CYCLE_COUNT"})
    await api.succeed("transferStock", {"sku": sku, "fromLocationCode": code,
                                        "toLocationCode": other, "quantity": 1})  # none given
    query = """query($s: String!, $f: MovementFilter) { movements(sku: $s, filter: $f) {
               nodes { kind reason reasonCode } } }"""
    rows = (await api.gql(query, {"s": sku}))["movements"]["nodes"]
    assert sorted((r["kind"], r["reason"], r["reasonCode"]) for r in rows) == [
        ("ADJUST", None, "DAMAGED"), ("RECEIVE", "PO 17", "RECEIVED"), ("SET", None, "CYCLE_COUNT"),
        ("TRANSFER_IN", None, None), ("TRANSFER_OUT", None, None)]
    damaged = (await api.gql(query, {"s": sku, "f": {"reasonCodes": ["DAMAGED", "RETURN"]}}))
    assert [r["kind"] for r in damaged["movements"]["nodes"]] == ["ADJUST"]
    bad = await api.raw("""mutation { receiveStock(input: {sku: "x", locationCode: "y",
        quantity: 1, reasonCode: STOLEN_BY_ELVES}) { __typename } }""")
    assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
