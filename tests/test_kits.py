"""Kits (bundles, issue 16 Build 3): an item made of components, with no stock
of its own. Its availability is what its components make, per location and
per channel; reserving it reserves its components (summed with every other
line on the same levels, so nothing oversells), and the reservation lines and
ledger rows keep the kit. Through the real HTTP server and PostgreSQL; the
ledger audit runs after each test (tests/conftest.py)."""
from __future__ import annotations

import asyncio
from uuid import uuid4

from sqlalchemy import text

from inventory.domain.kits import Part, kits_available, kits_by_location

from .support import create_api_key, in_process_app, unique
from .test_api_channels import make_channel
from .test_concurrency import _until_final

KIT_FIELDS = "... on Item { sku isKit components { sku quantity item { sku } } }"
LINES = ("... on Reservation { id status lines { lineNumber sku locationCode quantity "
         "committedQuantity releasedQuantity heldQuantity kitSku kitLineNumber perKit } } "
         "... on InsufficientStockError { shortages { sku locationCode channelCode requested "
         "available } }")
AVAILABILITY = """query($sku: String!, $channel: String!) { item(sku: $sku) {
  isKit totalAvailable availableByLocation { locationCode available }
  availability(channelCode: $channel) { available locations { locationCode available } } } }"""


def test_kits_made_is_the_minimum_of_whole_kits_per_component():
    x, y = Part("x", "X", 2), Part("y", "Y", 3)  # item ids stand in as strings
    assert kits_available([x, y], {"x": 7, "y": 9}) == 3
    assert kits_available([x, y], {"x": 7, "y": 8}) == 2
    assert kits_available([x, y], {"x": 7}) == 0
    assert kits_available([x, y], {"x": -1, "y": 9}) == 0
    assert kits_by_location((x, y), {("x", "a"): 4, ("y", "a"): 3, ("x", "b"): 9}) == {"a": 1}


async def make_kit(api, *components: tuple[str, int], sku: str | None = None) -> str:
    sku = sku or unique("KIT")
    made = await api.succeed("createItem", {"sku": sku, "name": f"Kit {sku}", "components": [
        {"sku": c, "quantity": q} for c, q in components]}, KIT_FIELDS)
    assert made["isKit"] and [(c["sku"], c["quantity"]) for c in made["components"]] == \
        list(components)
    return sku


async def stocked(api, codes: list[str], quantities: list[int]) -> str:
    sku = await api.item()
    for code, quantity in zip(codes, quantities):
        if quantity:
            await api.receive(sku, code, quantity)
    return sku


def lines(reservation: dict) -> list[tuple]:
    return [(l["sku"], l["locationCode"], l["quantity"], l["kitSku"], l["kitLineNumber"],
             l["perKit"]) for l in reservation["lines"]]


async def test_availability_per_location_and_per_channel(api):
    a, b, c = await api.location(), await api.location(), await api.location()
    x = await stocked(api, [a, b, c], [5, 4, 10])
    y = await stocked(api, [a, b], [3, 1])  # none at c
    kit = await make_kit(api, (x, 2), (y, 1))
    channel = await make_channel(api, [b, c, a])
    got = (await api.gql(AVAILABILITY, {"sku": kit, "channel": channel}))["item"]
    assert got["isKit"] is True
    # a: min(5 // 2, 3 // 1) = 2; b: min(4 // 2, 1) = 1; c: y has no level there.
    assert got["availableByLocation"] == sorted(
        [{"locationCode": a, "available": 2}, {"locationCode": b, "available": 1}],
        key=lambda l: l["locationCode"])
    assert got["totalAvailable"] == 3
    assert got["availability"] == {"available": 3, "locations": [
        {"locationCode": b, "available": 1}, {"locationCode": c, "available": 0},
        {"locationCode": a, "available": 2}]}
    # A page of items answers the same (the fast read path's batches know kits).
    page = await api.gql("""query($p: String!) { items(first: 5, filter: {skuPrefix: $p}) {
        edges { node { sku totalAvailable lowStock } } } }""", {"p": kit})
    assert [e["node"] for e in page["items"]["edges"]] == [
        {"sku": kit, "totalAvailable": 3, "lowStock": False}]
    # Reserving a component alone lowers what the kit has.
    await api.succeed("reserveStock", {"lines": [{"sku": x, "locationCode": a, "quantity": 2}]})
    got = (await api.gql(AVAILABILITY, {"sku": kit, "channel": channel}))["item"]
    assert got["availability"]["available"] == 2
    plain = (await api.gql(AVAILABILITY, {"sku": x, "channel": channel}))["item"]
    assert plain["isKit"] is False and plain["availability"]["available"] == 17


async def test_reserving_a_kit_reserves_its_components_and_the_ledger_keeps_the_kit(api):
    a = await api.location()
    x, y = await stocked(api, [a], [10]), await stocked(api, [a], [10])
    kit = await make_kit(api, (x, 2), (y, 1))
    made = await api.succeed("reserveStock", {"lines": [
        {"sku": y, "locationCode": a, "quantity": 1},
        {"sku": kit, "locationCode": a, "quantity": 3}]}, LINES)
    assert lines(made) == [(y, a, 1, None, None, None), (x, a, 6, kit, 1, 2),
                           (y, a, 3, kit, 1, 1)]
    assert (await api.level(x, a))["reserved"] == 6
    assert (await api.level(y, a))["reserved"] == 4
    # A part naming any line of the kit group counts kits: 1 kit = 2 x + 1 y.
    part = await api.succeed("commitReservation", {"reservationId": made["id"], "lines": [
        {"lineNumber": 2, "quantity": 1}]}, LINES)
    assert [(l["lineNumber"], l["committedQuantity"], l["heldQuantity"])
            for l in part["lines"]] == [(0, 0, 1), (1, 2, 4), (2, 1, 2)]
    assert await api.level(x, a) == {"onHand": 8, "reserved": 4, "available": 4, "version": 3}
    twice = await api.mutate("releaseReservation", {"reservationId": made["id"], "lines": [
        {"lineNumber": 1, "quantity": 1}, {"lineNumber": 2, "quantity": 1}]})
    assert (twice["code"], twice["field"]) == ("INVALID_INPUT", "lines[1].lineNumber")
    too_many = await api.mutate("releaseReservation", {"reservationId": made["id"], "lines": [
        {"lineNumber": 1, "quantity": 3}]})
    assert (too_many["code"], too_many["field"]) == ("INVALID_INPUT", "lines[0].quantity")
    rest = await api.succeed("releaseReservation", {"reservationId": made["id"], "lines": [
        {"lineNumber": 1}]}, LINES)  # both kits left: 4 x and 2 y
    assert rest["status"] == "ACTIVE"  # line 0 (y alone) still holds 1
    assert await api.level(x, a) == {"onHand": 8, "reserved": 0, "available": 8, "version": 4}
    ledger = await api.gql("""query($sku: String!, $a: String!) {
        movements(sku: $sku, locationCode: $a) { nodes { kind onHandDelta reservedDelta
          reservationId version kit { sku } } } }""", {"sku": y, "a": a})
    nodes = sorted(ledger["movements"]["nodes"], key=lambda m: -m["version"])
    assert [(m["kind"], m["onHandDelta"], m["reservedDelta"], m["kit"] and m["kit"]["sku"])
            for m in nodes] == [
        ("RELEASE", 0, -2, kit), ("COMMIT", -1, -1, kit), ("RESERVE", 0, 3, kit),
        ("RESERVE", 0, 1, None), ("RECEIVE", 10, 0, None)]
    assert {m["reservationId"] for m in nodes[:4]} == {made["id"]}


async def test_a_kit_by_channel_takes_whole_kits_from_one_location_unless_split(api):
    a, b = await api.location(), await api.location()
    x = await stocked(api, [a, b], [4, 6])
    y = await stocked(api, [a, b], [5, 1])
    kit = await make_kit(api, (x, 2), (y, 1))  # a makes 2, b makes 1
    channel = await make_channel(api, [b, a])
    line = {"sku": kit, "channelCode": channel, "quantity": 2}
    made = await api.succeed("reserveStock", {"lines": [line]}, LINES)
    assert lines(made) == [(x, a, 4, kit, 0, 2), (y, a, 2, kit, 0, 1)]  # b makes only 1
    await api.succeed("releaseReservation", {"reservationId": made["id"]})
    short = await api.mutate("reserveStock", {"lines": [{**line, "quantity": 3}]}, LINES)
    assert short["code"] == "INSUFFICIENT_STOCK"
    assert short["shortages"] == [{"sku": kit, "locationCode": channel, "channelCode": channel,
                                   "requested": 3, "available": 2}]
    split = await api.succeed("reserveStock", {"lines": [{**line, "quantity": 3}],
                                               "allocation": {"allowSplit": True}}, LINES)
    assert lines(split) == [(x, b, 2, kit, 0, 2), (y, b, 1, kit, 0, 1),
                            (x, a, 4, kit, 2, 2), (y, a, 2, kit, 2, 1)]
    for sku, code, reserved in ((x, a, 4), (x, b, 2), (y, a, 2), (y, b, 1)):
        assert (await api.level(sku, code))["reserved"] == reserved


async def test_a_keyed_kit_reservation_replays(api):
    a = await api.location()
    x = await stocked(api, [a], [3])
    kit = await make_kit(api, (x, 3))
    body = {"lines": [{"sku": kit, "locationCode": a, "quantity": 1}],
            "idempotencyKey": unique("k")}
    first = await api.succeed("reserveStock", body, LINES)
    assert await api.succeed("reserveStock", body, LINES) == first
    assert (await api.level(x, a))["reserved"] == 3


async def _race(api, sync_engine, scrape_metrics, by_channel: bool, x_stock: list[int]):
    """100 orders for the last 10 units of x: kits of 2 x + 1 y, kits of 3 x, and
    x alone, in turn. Exactly the 10 units go (no oversell, none left over: some
    x-alone order is refused, so availability reached 0), and PostgreSQL never
    broke a deadlock."""
    codes = [await api.location() for _ in x_stock]
    x = await stocked(api, codes, x_stock)
    y = await stocked(api, codes, [100] * len(codes))
    pair, triple = await make_kit(api, (x, 2), (y, 1)), await make_kit(api, (x, 3))
    at = ({"channelCode": await make_channel(api, codes)} if by_channel
          else {"locationCode": codes[0]})
    orders = [(pair, 2), (triple, 3), (x, 1)]
    before = scrape_metrics(api.url)
    results = await asyncio.gather(*[
        _until_final(api, "reserveStock", {
            "lines": [{"sku": orders[n % 3][0], "quantity": 1, **at}]}, LINES)
        for n in range(100)])
    after = scrape_metrics(api.url)
    won = [orders[n % 3] for n, r in enumerate(results) if r["__typename"] == "Reservation"]
    refused = [orders[n % 3] for n, r in enumerate(results) if r["__typename"] != "Reservation"]
    assert all(r["__typename"] in ("Reservation", "InsufficientStockError") for r in results)
    assert sum(units for _, units in won) == 10, won
    assert (x, 1) in refused
    x_levels = [await api.level(x, code) for code in codes]
    y_levels = [await api.level(y, code) for code in codes]
    assert sum(l["reserved"] for l in x_levels) == 10
    assert [l["available"] for l in x_levels] == [0] * len(codes)
    assert sum(l["reserved"] for l in y_levels) == won.count((pair, 2))
    retries = "inventory_tx_retries_total"
    assert after.count(retries, sqlstate="40P01") == before.count(retries, sqlstate="40P01")
    with sync_engine.connect() as conn:
        kit_rows = conn.execute(text(
            "SELECT k.sku, SUM(m.reserved_delta) FROM movements m "
            "JOIN items i ON i.id = m.item_id JOIN items k ON k.id = m.kit_item_id "
            "WHERE i.sku = :x AND m.kind = 'RESERVE' GROUP BY k.sku"), {"x": x}).all()
    assert dict(kit_rows) == {k: units * won.count((k, units))
                              for k, units in orders[:2] if (k, units) in won}


async def test_kits_and_a_component_alone_race_for_the_last_units_at_a_location(
        api, sync_engine, scrape_metrics):
    await _race(api, sync_engine, scrape_metrics, False, [10])


async def test_kits_and_a_component_alone_race_for_the_last_units_by_channel(
        api, sync_engine, scrape_metrics):
    await _race(api, sync_engine, scrape_metrics, True, [4, 3, 3])


async def test_the_audit_reports_a_kit_with_a_level_of_its_own(api, database_url, sync_engine):
    """No mutation can stock a kit (KIT_HAS_NO_STOCK); a level written behind
    the API's back is reported. Put back afterwards."""
    client = api.with_key(create_api_key(database_url, tenant_id=uuid4(), name="kit auditor"))
    a = await client.location()
    kit = await make_kit(client, (await stocked(client, [a], [2]), 1))
    audit = """{ ledgerAudit { ok discrepancies { check } } }"""
    assert (await client.gql(audit))["ledgerAudit"] == {"ok": True, "discrepancies": []}
    level = {"s": kit, "c": a}
    with sync_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO stock_levels (tenant_id, item_id, location_id, version) "
            "SELECT i.tenant_id, i.id, l.id, 0 FROM items i JOIN locations l "
            "ON l.tenant_id = i.tenant_id WHERE i.sku = :s AND l.code = :c"), level)
    try:
        broken = (await client.gql(audit))["ledgerAudit"]
    finally:
        with sync_engine.begin() as conn:
            conn.execute(text(
                "DELETE FROM stock_levels sl USING items i WHERE i.id = sl.item_id "
                "AND i.sku = :s"), {"s": kit})
    assert broken == {"ok": False, "discrepancies": [
        {"check": "a kit with stock levels of its own"}]}


SHORT = ("... on InsufficientStockError { shortages { sku requested available "
         "backorderable } }")


async def test_a_kit_takes_no_backorders_though_its_component_does(api):
    """A kit line takes only what its components have available: beyond that
    it is INSUFFICIENT_STOCK with nothing backorderable, even where the
    component's levels take backorders (by location and by channel), while
    the component reserved alone backorders there."""
    a = await api.location()
    x = await stocked(api, [a], [3])
    await api.succeed("updateItem", {"sku": x, "version": 0, "backorderLimit": 10})
    kit = await make_kit(api, (x, 2))
    channel = await make_channel(api, [a])
    for at in ({"locationCode": a}, {"channelCode": channel}):
        short = await api.mutate("reserveStock", {"lines": [
            {"sku": kit, "quantity": 2, **at}]}, SHORT)
        assert short["code"] == "INSUFFICIENT_STOCK", short
        assert short["shortages"] == [
            {"sku": kit, "requested": 2, "available": 1, "backorderable": 0}]
    assert (await api.level(x, a))["reserved"] == 0
    # In one request: the component alone backorders, the kit still may not.
    both = await api.mutate("reserveStock", {"lines": [
        {"sku": x, "locationCode": a, "quantity": 5},
        {"sku": kit, "locationCode": a, "quantity": 1}]}, SHORT)
    assert both["shortages"] == [{"sku": kit, "requested": 1, "available": 0,
                                  "backorderable": 0}]
    alone = await api.succeed("reserveStock", {"lines": [
        {"sku": x, "locationCode": a, "quantity": 5}]},
        "... on Reservation { lines { quantity backordered kitSku } }")
    assert alone["lines"] == [{"quantity": 5, "backordered": 2, "kitSku": None}]
    kit_line = await api.mutate("reserveStock", {"lines": [
        {"sku": kit, "locationCode": a, "quantity": 1}]}, SHORT)
    assert kit_line["shortages"] == [{"sku": kit, "requested": 1, "available": 0,
                                      "backorderable": 0}]
    # Stock arriving fills the backorder first; then the kit may have what is left.
    await api.receive(x, a, 4)
    made = await api.succeed("reserveStock", {"lines": [
        {"sku": kit, "locationCode": a, "quantity": 1}]}, LINES)
    assert lines(made) == [(x, a, 2, kit, 0, 2)]
    assert (await api.level(x, a))["available"] == 0


async def test_a_kit_is_not_listed_by_the_low_stock_filter(api):
    """A kit's lowStock is computed from its components when read; the
    low-stock filter lists plain items only (a kit's stored flag would say
    nothing), whichever way it is asked."""
    prefix = unique("KLS")
    a = await api.location()
    x = await api.item(f"{prefix}-X", reorder_point=5)
    await api.receive(x, a, 4)  # low
    y = await api.item(f"{prefix}-Y", reorder_point=1)
    await api.receive(y, a, 9)  # not low
    kit = await make_kit(api, (y, 1), sku=f"{prefix}-KIT")  # 9 kits: not low
    query = """query($f: ItemFilter) { items(first: 10, filter: $f) {
        nodes { sku lowStock } } }"""
    for low, plain in ((True, x), (False, y)):
        got = await api.gql(query, {"f": {"skuPrefix": prefix, "lowStock": low}})
        assert got["items"]["nodes"] == [{"sku": plain, "lowStock": low}]
    every = await api.gql(query, {"f": {"skuPrefix": prefix}})
    assert {n["sku"]: n["lowStock"] for n in every["items"]["nodes"]} == {
        x: True, y: False, kit: False}


async def test_stock_level_of_a_kit_is_kit_has_no_stock(api):
    """A kit has no level of its own: stockLevel answers KIT_HAS_NO_STOCK and
    points to what it has (a zero level would say it has nothing); a plain
    item never stocked there still reads as a zero level."""
    a = await api.location()
    x = await stocked(api, [a], [5])
    kit = await make_kit(api, (x, 2))
    query = """query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) {
        onHand available } }"""
    body = await api.raw(query, {"s": kit, "c": a})
    assert body["data"] == {"stockLevel": None}, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "KIT_HAS_NO_STOCK", error
    assert error["extensions"]["field"] == "sku", error
    assert "availableByLocation" in error["message"], error
    plain = await api.item()
    assert (await api.gql(query, {"s": plain, "c": a}))["stockLevel"] == {
        "onHand": 0, "available": 0}
    got = (await api.gql("""query($s: String!) { item(sku: $s) {
        availableByLocation { locationCode available } } }""", {"s": kit}))["item"]
    assert got["availableByLocation"] == [{"locationCode": a, "available": 2}]


async def test_a_kit_line_reads_no_backorder_limits(database_url, monkeypatch, graphql):
    """Kits take no backorders, so a kit line whose component was never stocked
    at a location it could take from reads no item's backorder limit (a plain
    line there reads its item's: a preorder)."""
    from inventory.db import queries

    app, key = in_process_app(database_url, monkeypatch)
    api = graphql(app=app, api_key=key, database_url=database_url)
    a, b = await api.location(), await api.location()
    x = await stocked(api, [a], [3])  # never stocked at b
    y = await stocked(api, [a, b], [3, 3])
    kit = await make_kit(api, (x, 1), (y, 1))
    channel = await make_channel(api, [b, a])
    asked: list = []
    limits = queries.item_backorder_limits

    async def spy(conn, tenant_id, item_ids):
        asked.append(item_ids)
        return await limits(conn, tenant_id, item_ids)

    monkeypatch.setattr(queries, "item_backorder_limits", spy)
    made = await api.succeed("reserveStock", {"lines": [
        {"sku": kit, "channelCode": channel, "quantity": 2}]}, LINES)
    assert {l["locationCode"] for l in made["lines"]} == {a}
    short = await api.mutate("reserveStock", {"lines": [
        {"sku": kit, "locationCode": b, "quantity": 1}]})
    assert short["code"] == "INSUFFICIENT_STOCK", short
    assert asked == []
    plain = await api.mutate("reserveStock", {"lines": [
        {"sku": x, "channelCode": channel, "quantity": 2}]})
    assert plain["code"] == "INSUFFICIENT_STOCK", plain  # 1 left at a, no backorders
    assert len(asked) == 1, asked
