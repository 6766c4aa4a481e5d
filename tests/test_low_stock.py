"""Low stock as indexable state (issue 18, Build 5): `items(filter: {lowStock})`
reads the item's `available` kept by every ledger statement (db/ledger.py), so
after any mix of writes it must say exactly what summing the levels says, and
updateItem's reorderPoint moves an item in or out of the low set at once."""
from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from inventory.domain.quantities import available_text

from .support import unique

PAGE = """query($f: ItemFilter, $after: String) {
    items(first: 50, after: $after, filter: $f) {
      nodes { sku } pageInfo { hasNextPage endCursor } } }"""
ITEM = "... on Item { sku version reorderPoint lowStock totalAvailable }"


async def _filtered(api, prefix: str, low: bool) -> list[str]:
    skus, after = [], None
    while True:
        page = (await api.gql(PAGE, {"f": {"skuPrefix": prefix, "lowStock": low},
                                     "after": after}))["items"]
        skus += [n["sku"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return skus
        after = page["pageInfo"]["endCursor"]


def _recomputed(sync_engine, prefix: str) -> tuple[list[str], list[str]]:
    """(low, not low) by summing each item's levels afresh: the definition,
    independent of the kept column."""
    with sync_engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT i.sku, i.reorder_point, COALESCE(SUM({available_text("l.{}")}), 0) AS total
            FROM items i LEFT JOIN stock_levels l
              ON l.tenant_id = i.tenant_id AND l.item_id = i.id
            WHERE i.sku LIKE :p GROUP BY i.sku, i.reorder_point ORDER BY i.sku"""),
            {"p": prefix + "%"}).all()
    return ([r.sku for r in rows if r.total <= r.reorder_point],
            [r.sku for r in rows if r.total > r.reorder_point])


async def _agrees(api, sync_engine, prefix: str) -> tuple[list[str], list[str]]:
    low, high = _recomputed(sync_engine, prefix)
    assert await _filtered(api, prefix, True) == low
    assert await _filtered(api, prefix, False) == high
    return low, high


async def test_low_stock_filter_equals_a_recomputation_after_random_writes(api, sync_engine):
    """Rounds of concurrent random writes of every kind that moves a level
    (receive, adjust, set, move between states, reserve one line and several,
    commit and release in full and in part, one-step transfers, two-step
    transfers shipped, received and cancelled, inbound shipments created,
    received and cancelled, bulk set and adjust), many on levels of the same
    item at once; after each round the filter, both ways, equals summing the
    levels. The ledger audit after the test checks the column item by item."""
    rng = random.Random(1815)
    prefix = unique("LS")
    skus = [await api.item(f"{prefix}-{i}", reorder_point=rng.choice([0, 5, 15, 30]))
            for i in range(6)]
    codes = [await api.location() for _ in range(3)]
    reservations: list[str] = []
    transfers: list[str] = []
    shipments: list[str] = []

    def level() -> dict:
        return {"sku": rng.choice(skus), "locationCode": rng.choice(codes)}

    def two_places() -> dict:
        a, b = rng.sample(codes, 2)
        return {"sku": rng.choice(skus), "fromLocationCode": a, "toLocationCode": b}

    def write():
        """(mutation, input, selection) of one random write."""
        n = rng.randint(1, 6)
        choice = rng.randrange(16)
        if choice == 0:
            return "receiveStock", {**level(), "quantity": rng.randint(1, 12)}, ""
        if choice == 1:
            return "adjustStock", {**level(), "delta": rng.choice([-3, -1, 2, 5])}, ""
        if choice == 2:
            return "setStock", {**level(), "onHand": rng.randint(0, 20)}, ""
        if choice == 3:
            states = ["AVAILABLE", "DAMAGED", "QUALITY_CONTROL", "SAFETY_STOCK"]
            a, b = rng.sample(states, 2)
            return "moveStock", {**level(), "from": a, "to": b, "quantity": n}, ""
        if choice in (4, 5):
            lines = [{**level(), "quantity": rng.randint(1, 3)}
                     for _ in range(rng.choice([1, 1, 2, 3]))]
            return "reserveStock", {"lines": lines}, "... on Reservation { id }"
        if choice in (6, 7) and reservations:
            rid = reservations.pop(rng.randrange(len(reservations)))
            name = "commitReservation" if choice == 6 else "releaseReservation"
            part = rng.random() < 0.4
            if part:
                reservations.append(rid)
            return name, {"reservationId": rid, **(
                {"lines": [{"lineNumber": 0, "quantity": 1}]} if part else {})}, ""
        if choice == 8:
            return "transferStock", {**two_places(), "quantity": n}, ""
        if choice == 9:
            return "shipTransfer", {**two_places(), "quantity": n}, "... on StockTransfer { id }"
        if choice == 10 and transfers:
            tid = transfers.pop(rng.randrange(len(transfers)))
            if rng.random() < 0.3:
                return "cancelTransfer", {"transferId": tid}, ""
            return "receiveTransfer", {"transferId": tid, "quantity": 1, "final": True}, ""
        if choice == 11:
            lines = [{**level(), "quantity": rng.randint(1, 8)} for _ in range(2)]
            if lines[0]["sku"] == lines[1]["sku"] and \
                    lines[0]["locationCode"] == lines[1]["locationCode"]:
                lines = lines[:1]
            return "createInboundShipment", {"lines": lines}, \
                "... on InboundShipment { id lines { sku locationCode quantity } }"
        if choice == 12 and shipments:
            sid, lines = shipments.pop(rng.randrange(len(shipments)))
            if rng.random() < 0.3:
                return "cancelInbound", {"shipmentId": sid}, ""
            return "receiveInbound", {"shipmentId": sid, "allowOverReceipt": True, "lines": [
                {**line, "quantity": line["quantity"] + rng.choice([-1, 0, 2])}
                for line in lines]}, ""
        if choice == 13:
            return "bulkSetStock", {"errorPolicy": "SKIP_FAILED", "lines": [
                {**level(), "onHand": rng.randint(0, 15)} for _ in range(3)]}, ""
        if choice == 14:
            return "bulkAdjustStock", {"errorPolicy": "SKIP_FAILED", "lines": [
                {**level(), "delta": rng.choice([-2, 3])} for _ in range(3)]}, ""
        return "reserveStock", {"lines": [{**level(), "quantity": 1}]}, \
            "... on Reservation { id }"

    async def run(name: str, payload: dict, selection: str) -> None:
        result = await api.mutate(name, payload, selection)
        if result["__typename"] == "Reservation" and name == "reserveStock":
            reservations.append(result["id"])
        elif result["__typename"] == "StockTransfer" and name == "shipTransfer":
            transfers.append(result["id"])
        elif result["__typename"] == "InboundShipment" and name == "createInboundShipment":
            shipments.append((result["id"], [
                {"sku": l["sku"], "locationCode": l["locationCode"], "quantity": l["quantity"]}
                for l in result["lines"]]))

    for sku in skus:  # some stock to move
        for code in codes:
            if rng.random() < 0.7:
                await api.receive(sku, code, rng.randint(1, 10))
    await _agrees(api, sync_engine, prefix)
    kinds_seen: set[str] = set()
    rounds_with_both = 0
    for _ in range(12):
        batch = [write() for _ in range(16)]
        kinds_seen |= {name for name, _, _ in batch}
        await asyncio.gather(*(run(*w) for w in batch))
        low, high = await _agrees(api, sync_engine, prefix)
        rounds_with_both += bool(low and high)
    assert len(kinds_seen) >= 14, kinds_seen  # the mix did run every kind
    assert rounds_with_both >= 3  # both sides of the filter were exercised


async def test_update_item_reorder_point_moves_the_item_in_and_out_of_the_low_set(
        api, sync_engine):
    prefix = unique("RP")
    sku = await api.item(f"{prefix}-a", reorder_point=5)
    code = await api.location()
    await api.receive(sku, code, 8)
    assert await _filtered(api, prefix, True) == []
    item = await api.succeed("updateItem", {"sku": sku, "version": 0, "reorderPoint": 8}, ITEM)
    assert (item["lowStock"], item["totalAvailable"]) == (True, 8)
    assert await _filtered(api, prefix, True) == [sku]
    assert await _filtered(api, prefix, False) == []
    item = await api.succeed("updateItem", {"sku": sku, "version": item["version"],
                                            "reorderPoint": 7}, ITEM)
    assert item["lowStock"] is False
    assert await _filtered(api, prefix, True) == []
    assert await _filtered(api, prefix, False) == [sku]
    await _agrees(api, sync_engine, prefix)


async def test_an_item_without_levels_is_low_and_reserving_its_last_units_makes_it_low(api):
    prefix = unique("LZ")
    empty = await api.item(f"{prefix}-a", reorder_point=0)  # 0 <= 0
    sku = await api.item(f"{prefix}-b", reorder_point=2)
    code = await api.location()
    await api.receive(sku, code, 5)
    assert await _filtered(api, prefix, True) == [empty]
    await api.succeed("reserveStock", {"lines": [{"sku": sku, "locationCode": code,
                                                  "quantity": 3}]}, "... on Reservation { id }")
    assert await _filtered(api, prefix, True) == [empty, sku]
    assert await _filtered(api, prefix, False) == []


async def test_low_stock_events_follow_a_reorder_point_changed_by_update_item(
        api, stocked_level):
    """The hub (and the webhook dispatcher, the same `Names`) cached reorder
    points for good, then for Names.REORDER_POINT_TTL_S; now the feed reads
    the item's reorder point with each change, so an updateItem reaches the
    next change's event at once (no wait here)."""
    from .live_support import WsClient

    sku, code = await stocked_level(10, reorder_point=2)
    probe = await stocked_level(1)
    async with WsClient(api.url) as ws:
        await ws.subscribe("""subscription($codes: [String!]) { lowStock(locationCodes: $codes) {
            sku available reorderPoint low } }""", {"codes": [code]})
        await ws.subscribe_ready(probe, {"skus": [sku]})  # lowStock is registered too
        await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -1},
                          "... on StockLevel { version }")
        seen = await ws.next_data()  # the hub has read the item's reorder point (2)
        assert seen["stockLevelChanged"]["available"] == 9
        await api.succeed("updateItem", {"sku": sku, "version": 0, "reorderPoint": 8}, ITEM)
        await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -1},
                          "... on StockLevel { version }")
        events = [await ws.next_data(), await ws.next_data()]
    low = [e["lowStock"] for e in events if "lowStock" in e]
    assert low == [{"sku": sku, "available": 8, "reorderPoint": 8, "low": True}]
