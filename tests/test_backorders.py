"""Backorders and preorders: reservations beyond available up to the backorder
limit (the item's default or the level's own), `backordered` per line, commit
refused while units wait, lines filled in arrival order as stock arrives (with
a subscription event), and the database's CHECK against going beyond the limit."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from .live_support import WsClient
from .support import RESERVATION_FIELDS, unique

LEVEL = ("... on StockLevel { onHand reserved backordered available backorderLimit version }")
LINES = "... on Reservation { id status lines { quantity backordered } }"
SHORT = "... on InsufficientStockError { shortages { requested available backorderable } }"


async def _item(api, backorder_limit: int) -> str:
    sku = unique("SKU")
    made = await api.mutate("createItem", {"sku": sku, "name": "Preorder " + sku,
                                           "backorderLimit": backorder_limit},
                            "... on Item { backorderLimit }")
    assert made["backorderLimit"] == backorder_limit, made
    return sku


async def _reserve(api, sku, code, quantity, **extra):
    return await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "locationCode": code, "quantity": quantity}], **extra},
        LINES + " " + SHORT)


async def _level(api, sku, code):
    data = await api.gql("""query($sku: String!, $code: String!) { stockLevel(sku: $sku,
        locationCode: $code) { onHand reserved backordered available backorderLimit version } }""",
                         {"sku": sku, "code": code})
    return data["stockLevel"]


async def test_reservations_backorder_up_to_the_limit_then_are_refused(api):
    sku, code = await _item(api, 3), await api.location()
    await api.receive(sku, code, 2)
    first = await _reserve(api, sku, code, 4)
    assert first["lines"] == [{"quantity": 4, "backordered": 2}], first
    assert await _level(api, sku, code) == {
        "onHand": 2, "reserved": 2, "backordered": 2, "available": 0, "backorderLimit": 3,
        "version": 2}
    refused = await _reserve(api, sku, code, 2)
    assert (refused["code"], refused["shortages"]) == ("INSUFFICIENT_STOCK", [
        {"requested": 2, "available": 0, "backorderable": 1}])
    second = await _reserve(api, sku, code, 1)
    assert second["lines"] == [{"quantity": 1, "backordered": 1}]


async def test_commit_is_refused_while_units_are_backordered_and_ships_nothing(api):
    sku, code = await _item(api, 5), await api.location()
    await api.receive(sku, code, 1)
    reservation = await _reserve(api, sku, code, 3)
    before = await _level(api, sku, code)
    refused = await api.mutate("commitReservation", {"reservationId": reservation["id"]},
                               "... on ReservationBackorderedError { backordered }")
    assert (refused["__typename"], refused["code"], refused["backordered"]) == (
        "ReservationBackorderedError", "RESERVATION_BACKORDERED", 2)
    assert await _level(api, sku, code) == before
    released = await api.mutate("releaseReservation", {"reservationId": reservation["id"]},
                                RESERVATION_FIELDS)
    assert released["status"] == "RELEASED"
    assert await _level(api, sku, code) == {**before, "reserved": 0, "backordered": 0,
                                            "available": 1, "version": 3}


async def test_arrivals_fill_backorders_in_arrival_order_and_say_so(api, api_server):
    sku, code = await _item(api, 10), await api.location()
    await api.receive(sku, code, 1)
    first = await _reserve(api, sku, code, 3)     # 1 reserved, 2 backordered
    second = await _reserve(api, sku, code, 2)    # 2 backordered
    async with WsClient(api_server.url) as ws:
        await ws.subscribe_ready((sku, code), {"skus": [sku]}, query="""
            subscription($skus: [String!], $since: [LevelVersionInput!]) {
              stockLevelChanged(skus: $skus, since: $since) {
                sku locationCode kind reserved backordered available version reservationId } }""")
        # (the probe replays this level's first change: the subscription is live)
        received = await api.mutate("receiveStock", {"sku": sku, "locationCode": code,
                                                     "quantity": 3}, LEVEL)
        fills = []
        while len(fills) < 2:  # the reservations' versions are replayed first
            change = (await ws.next_data())["stockLevelChanged"]
            if change["kind"] == "BACKORDER_FILLED":
                fills.append(change)
    # 3 arrive: the first reservation's 2 are filled, then 1 of the second's 2.
    assert (received["reserved"], received["backordered"], received["available"]) == (4, 1, 0)
    assert [(c["reservationId"], c["reserved"], c["backordered"]) for c in fills] == [
        (first["id"], 3, 2), (second["id"], 4, 1)]
    committed = await api.mutate("commitReservation", {"reservationId": first["id"]},
                                 RESERVATION_FIELDS)
    assert committed["status"] == "COMMITTED"
    still = await api.mutate("commitReservation", {"reservationId": second["id"]})
    assert still["code"] == "RESERVATION_BACKORDERED"
    view = await api.gql("query($id: ID!) { reservation(id: $id) { lines { backordered } } }",
                         {"id": second["id"]})
    assert view["reservation"]["lines"] == [{"backordered": 1}]


async def test_a_level_overrides_its_items_limit_and_preorders_need_no_stock(api):
    sku, code, other = await _item(api, 2), await api.location(), await api.location()
    preorder = await _reserve(api, sku, code, 2)   # never stocked: a preorder
    assert preorder["lines"] == [{"quantity": 2, "backordered": 2}], preorder
    own = await api.mutate("setBackorderLimit", {"sku": sku, "locationCode": other,
                                                 "backorderLimit": 0}, LEVEL)
    assert (own["backorderLimit"], own["version"]) == (0, 0)
    assert (await _reserve(api, sku, other, 1))["code"] == "INSUFFICIENT_STOCK"
    below = await api.mutate("setBackorderLimit", {"sku": sku, "locationCode": code,
                                                   "backorderLimit": 1})
    assert (below["code"], below["field"]) == ("INVALID_INPUT", "backorderLimit")
    more = await api.mutate("setBackorderLimit", {"sku": sku, "locationCode": code,
                                                  "backorderLimit": 5}, LEVEL)
    assert more["backorderLimit"] == 5
    back = await api.mutate("setBackorderLimit", {"sku": sku, "locationCode": other}, LEVEL)
    assert back["backorderLimit"] == 2  # the item's default again


async def test_the_database_refuses_backorders_beyond_the_limit(api, sync_engine):
    sku, code = await _item(api, 1), await api.location()
    await _reserve(api, sku, code, 1)
    with pytest.raises(IntegrityError, match="backordered_within_limit"):
        with sync_engine.begin() as conn:
            conn.execute(text(
                "UPDATE stock_levels SET backordered = backordered + 1 FROM items "
                "WHERE items.id = stock_levels.item_id AND items.sku = :sku"), {"sku": sku})


async def test_a_release_frees_units_for_the_next_backorder(api):
    sku, code = await _item(api, 4), await api.location()
    await api.receive(sku, code, 2)
    holder = await _reserve(api, sku, code, 2)        # takes both
    waiting = await _reserve(api, sku, code, 2)       # backordered
    assert waiting["lines"] == [{"quantity": 2, "backordered": 2}]
    await api.mutate("releaseReservation", {"reservationId": holder["id"]})
    assert (await _level(api, sku, code))[
        "reserved"] == 2 and (await _level(api, sku, code))["backordered"] == 0
    done = await api.mutate("commitReservation", {"reservationId": waiting["id"]},
                            RESERVATION_FIELDS)
    assert done["status"] == "COMMITTED"


PARTIAL = ("... on Reservation { status lines { lineNumber heldQuantity backordered "
           "committedQuantity releasedQuantity } } "
           "... on ReservationBackorderedError { field backordered }")


async def test_a_partial_commit_ships_filled_units_and_a_release_drops_backorders_first(api):
    """Decision: a partial commit may take a line's filled units while the rest
    waits; asking for one unit more is RESERVATION_BACKORDERED and ships
    nothing. A release gives back backordered units before filled ones."""
    sku, code = await _item(api, 5), await api.location()
    await api.receive(sku, code, 3)
    reservation = await _reserve(api, sku, code, 7)       # 3 filled, 4 backordered
    assert reservation["lines"] == [{"quantity": 7, "backordered": 4}]
    before = await _level(api, sku, code)
    too_many = await api.mutate("commitReservation", {
        "reservationId": reservation["id"], "lines": [{"lineNumber": 0, "quantity": 4}]},
        PARTIAL)
    assert (too_many["code"], too_many["field"], too_many["backordered"]) == (
        "RESERVATION_BACKORDERED", "lines[0].quantity", 4)
    whole_line = await api.mutate("commitReservation", {
        "reservationId": reservation["id"], "lines": [{"lineNumber": 0}]}, PARTIAL)
    assert whole_line["code"] == "RESERVATION_BACKORDERED"
    assert await _level(api, sku, code) == before  # nothing shipped, nothing written
    shipped = await api.succeed("commitReservation", {
        "reservationId": reservation["id"], "lines": [{"lineNumber": 0, "quantity": 3}]},
        PARTIAL)
    assert shipped["status"] == "ACTIVE" and shipped["lines"] == [
        {"lineNumber": 0, "heldQuantity": 4, "backordered": 4, "committedQuantity": 3,
         "releasedQuantity": 0}]
    assert await _level(api, sku, code) == {
        "onHand": 0, "reserved": 0, "backordered": 4, "available": 0, "backorderLimit": 5,
        "version": 3}
    await api.receive(sku, code, 1)                      # fills 1 of the 4
    released = await api.succeed("releaseReservation", {
        "reservationId": reservation["id"], "lines": [{"lineNumber": 0, "quantity": 2}]},
        PARTIAL)
    # 3 held backordered and 1 filled: the release of 2 takes 2 backordered.
    assert released["lines"][0] | {} == {"lineNumber": 0, "heldQuantity": 2, "backordered": 1,
                                         "committedQuantity": 3, "releasedQuantity": 2}
    level = await _level(api, sku, code)
    assert (level["onHand"], level["reserved"], level["backordered"]) == (1, 1, 1)
    done = await api.succeed("releaseReservation", {"reservationId": reservation["id"]},
                             PARTIAL)
    assert done["status"] == "RELEASED"
    level = await _level(api, sku, code)
    assert (level["reserved"], level["backordered"], level["available"]) == (0, 0, 1)


@pytest.mark.parametrize("arrival", ["adjustStock", "moveStock", "receiveInbound",
                                     "receiveTransfer", "setStock"])
async def test_every_way_stock_arrives_fills_the_oldest_backorder_first(api, arrival):
    sku, code, source = await _item(api, 4), await api.location(), await api.location()
    await api.receive(sku, code, 2)
    if arrival == "moveStock":  # 2 on hand set aside as damaged, later moved back
        await api.succeed("moveStock", {"sku": sku, "locationCode": code, "from": "AVAILABLE",
                                        "to": "DAMAGED", "quantity": 2})
    else:
        await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -2})
    first = await _reserve(api, sku, code, 1)
    second = await _reserve(api, sku, code, 2)
    assert [first["lines"][0]["backordered"], second["lines"][0]["backordered"]] == [1, 2]
    if arrival == "adjustStock":
        await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": 2})
    elif arrival == "moveStock":
        await api.succeed("moveStock", {"sku": sku, "locationCode": code, "from": "DAMAGED",
                                        "to": "AVAILABLE", "quantity": 2})
    elif arrival == "setStock":
        await api.succeed("setStock", {"sku": sku, "locationCode": code, "onHand": 2})
    elif arrival == "receiveInbound":
        shipment = await api.succeed("createInboundShipment", {"reference": unique("PO"), "lines": [
            {"sku": sku, "locationCode": code, "quantity": 2}]}, "... on InboundShipment { id }")
        await api.succeed("receiveInbound", {"shipmentId": shipment["id"], "lines": [
            {"sku": sku, "locationCode": code, "quantity": 2}]})
    else:
        await api.receive(sku, source, 2)
        transfer = await api.succeed("shipTransfer", {
            "sku": sku, "fromLocationCode": source, "toLocationCode": code, "quantity": 2},
            "... on StockTransfer { id }")
        await api.succeed("receiveTransfer", {"transferId": transfer["id"], "quantity": 2})
    level = await _level(api, sku, code)
    assert (level["reserved"], level["backordered"], level["available"]) == (2, 1, 0), level
    waits = await api.gql("query($a: ID!, $b: ID!) { a: reservation(id: $a) { lines { "
                          "backordered } } b: reservation(id: $b) { lines { backordered } } }",
                          {"a": first["id"], "b": second["id"]})
    assert (waits["a"]["lines"], waits["b"]["lines"]) == ([{"backordered": 0}],
                                                          [{"backordered": 1}])


async def test_by_channel_a_backorder_lands_at_the_first_location_with_room(api):
    """Available stock first (as without backorders); the rest is backordered at
    the first location, in the channel's order, whose limit covers it."""
    from .test_api_channels import make_channel
    sku, a, b = await _item(api, 0), await api.location(), await api.location()
    await api.receive(sku, a, 1)
    await api.receive(sku, b, 2)
    await api.succeed("setBackorderLimit", {"sku": sku, "locationCode": b, "backorderLimit": 3})
    channel = await make_channel(api, [a, b])
    fields = ("... on Reservation { lines { locationCode quantity backordered } } " + SHORT)
    line = {"sku": sku, "channelCode": channel, "quantity": 4}
    whole = await api.succeed("reserveStock", {"lines": [line]}, fields)
    assert whole["lines"] == [{"locationCode": b, "quantity": 4, "backordered": 2}]
    split = await api.succeed("reserveStock", {"lines": [{**line, "quantity": 2}],
                                               "allocation": {"allowSplit": True}}, fields)
    assert split["lines"] == [{"locationCode": a, "quantity": 1, "backordered": 0},
                              {"locationCode": b, "quantity": 1, "backordered": 1}]
    short = await api.mutate("reserveStock", {"lines": [{**line, "quantity": 1}]}, fields)
    assert (short["code"], short["shortages"]) == ("INSUFFICIENT_STOCK", [
        {"requested": 1, "available": 0, "backorderable": 0}])


async def test_update_item_changes_the_limit_of_levels_that_follow_it(api):
    sku, code, own = await _item(api, 1), await api.location(), await api.location()
    await api.succeed("setBackorderLimit", {"sku": sku, "locationCode": own,
                                            "backorderLimit": 0})
    assert (await _reserve(api, sku, code, 3))["code"] == "INSUFFICIENT_STOCK"
    item = "... on Item { version backorderLimit }"
    raised = await api.succeed("updateItem", {"sku": sku, "version": 0, "backorderLimit": 3},
                               item)
    assert raised == {"__typename": "Item", "version": 1, "backorderLimit": 3}
    assert (await _reserve(api, sku, code, 3))["lines"] == [{"quantity": 3, "backordered": 3}]
    assert (await _level(api, sku, own))["backorderLimit"] == 0  # its own limit stays
    below = await api.mutate("updateItem", {"sku": sku, "version": 1, "backorderLimit": 2},
                             "... on UserError { field }")
    assert (below["code"], below["field"]) == ("INVALID_INPUT", "backorderLimit")
    stale = await api.mutate("updateItem", {"sku": sku, "version": 0, "backorderLimit": 9})
    assert stale["code"] == "VERSION_MISMATCH"
    after = await api.gql("query($s: String!) { item(sku: $s) { version backorderLimit } }",
                          {"s": sku})
    assert after["item"] == {"version": 1, "backorderLimit": 3}  # the refusals wrote nothing


async def test_racing_reservers_never_backorder_beyond_the_limit(api, sync_engine):
    """60 reservers of 1 unit race for 5 units on hand and 7 backorderable:
    exactly 12 get a reservation, 5 filled and 7 backordered, in whichever path
    (one statement, a batch, the use case) they took; then arrivals fill them."""
    from .test_concurrency import _until_final
    sku, code = await _item(api, 7), await api.location()
    await api.receive(sku, code, 5)
    body = {"lines": [{"sku": sku, "locationCode": code, "quantity": 1}]}
    results = await asyncio.gather(*[
        _until_final(api, "reserveStock", body, LINES + " " + SHORT) for _ in range(60)])
    made = [r for r in results if r["__typename"] == "Reservation"]
    assert len(made) == 12, [r["__typename"] for r in results]
    assert sum(r["lines"][0]["backordered"] for r in made) == 7
    assert all(r["shortages"] == [{"requested": 1, "available": 0, "backorderable": 0}]
               for r in results if r["__typename"] != "Reservation")
    assert await _level(api, sku, code) == {
        "onHand": 5, "reserved": 5, "backordered": 7, "available": 0, "backorderLimit": 7,
        "version": 13}
    await asyncio.gather(*[api.receive(sku, code, 1) for _ in range(9)])
    level = await _level(api, sku, code)
    assert (level["onHand"], level["reserved"], level["backordered"], level["available"]) == (
        14, 12, 0, 2)
    with sync_engine.connect() as conn:
        fills = conn.execute(text(
            "SELECT count(*) FROM movements m JOIN items i ON i.id = m.item_id "
            "WHERE i.sku = :s AND m.kind = 'BACKORDER_FILLED'"), {"s": sku}).scalar()
    assert fills == 7
