"""Transfers in two steps (issue 15, Build 4): shipTransfer takes units off the
source's on hand, in transit they are `incoming` at the destination;
receiveTransfer lands them (partial receipts, a final one records the
shortfall as a loss), cancelTransfer returns what was not received."""
from __future__ import annotations

import asyncio
import uuid

TRANSFER = """... on StockTransfer { id sku fromLocationCode toLocationCode quantity received
  lost returned inTransit status expectedAt
  from { onHand incoming } to { onHand incoming } }"""
LEVEL = """query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) {
  onHand available incoming nextExpectedAt } }"""


async def level(api, sku, code):
    return (await api.gql(LEVEL, {"s": sku, "c": code}))["stockLevel"]


async def _shipped(api, quantity=10, shipped=6):
    sku, source, dest = await api.item(), await api.location(), await api.location()
    await api.receive(sku, source, quantity)
    transfer = await api.succeed("shipTransfer", {
        "sku": sku, "fromLocationCode": source, "toLocationCode": dest, "quantity": shipped,
        "expectedAt": "2031-02-03T00:00:00Z", "reference": "truck-7"}, TRANSFER)
    return sku, source, dest, transfer


async def test_ship_then_receive_in_parts(api):
    sku, source, dest, transfer = await _shipped(api)
    assert (transfer["status"], transfer["inTransit"]) == ("IN_TRANSIT", 6)
    assert transfer["from"] == {"onHand": 4, "incoming": 0}
    assert transfer["to"] == {"onHand": 0, "incoming": 6}
    assert await level(api, sku, dest) == {"onHand": 0, "available": 0, "incoming": 6,
                                           "nextExpectedAt": "2031-02-03T00:00:00+00:00"}
    part = await api.succeed("receiveTransfer", {"transferId": transfer["id"], "quantity": 2},
                             TRANSFER)
    assert (part["status"], part["received"], part["inTransit"]) == ("PARTIALLY_RECEIVED", 2, 4)
    assert part["to"] == {"onHand": 2, "incoming": 4}
    rest = await api.succeed("receiveTransfer", {"transferId": transfer["id"], "quantity": 4},
                             TRANSFER)
    assert (rest["status"], rest["received"], rest["inTransit"]) == ("RECEIVED", 6, 0)
    assert await level(api, sku, dest) == {"onHand": 6, "available": 6, "incoming": 0,
                                           "nextExpectedAt": None}
    closed = await api.mutate("receiveTransfer", {"transferId": transfer["id"], "quantity": 1},
                              "... on ShipmentClosedError { status }")
    assert (closed["code"], closed["status"]) == ("SHIPMENT_CLOSED", "RECEIVED")


async def test_a_final_short_receipt_records_the_shortfall_as_lost(api):
    sku, source, dest, transfer = await _shipped(api)
    done = await api.succeed("receiveTransfer", {
        "transferId": transfer["id"], "quantity": 5, "final": True,
        "reason": "pallet damaged in transit"}, TRANSFER)
    assert (done["status"], done["received"], done["lost"], done["inTransit"]) == (
        "RECEIVED", 5, 1, 0)
    assert await level(api, sku, dest) == {"onHand": 5, "available": 5, "incoming": 0,
                                           "nextExpectedAt": None}
    rows = await api.gql("query($s: String!, $c: String!) { movements(sku: $s, locationCode: $c)"
                         " { nodes { kind onHandDelta incomingDelta reason reasonCode version }"
                         " } }", {"s": sku, "c": dest})
    # One transaction wrote the last two: in version order, not time order.
    nodes = sorted(rows["movements"]["nodes"], key=lambda n: -n.pop("version"))
    assert nodes == [
        {"kind": "TRANSFER_LOSS", "onHandDelta": 0, "incomingDelta": -1,
         "reason": "pallet damaged in transit", "reasonCode": "THEFT_OR_LOSS"},
        {"kind": "TRANSFER_RECEIVE", "onHandDelta": 5, "incomingDelta": -5,
         "reason": "pallet damaged in transit", "reasonCode": None},
        {"kind": "TRANSFER_INCOMING", "onHandDelta": 0, "incomingDelta": 6, "reason": None,
         "reasonCode": None}]


async def test_cancel_returns_what_was_not_received(api):
    sku, source, dest, transfer = await _shipped(api)
    await api.succeed("receiveTransfer", {"transferId": transfer["id"], "quantity": 2})
    cancelled = await api.succeed("cancelTransfer", {"transferId": transfer["id"]}, TRANSFER)
    assert (cancelled["status"], cancelled["received"], cancelled["returned"]) == (
        "CANCELLED", 2, 4)
    assert cancelled["from"] == {"onHand": 8, "incoming": 0}
    assert cancelled["to"] == {"onHand": 2, "incoming": 0}
    again = await api.mutate("cancelTransfer", {"transferId": transfer["id"]})
    assert again["code"] == "SHIPMENT_CLOSED"


async def test_ship_needs_available_stock_and_receipts_never_exceed_what_was_shipped(api):
    sku, source, dest, transfer = await _shipped(api)
    short = await api.mutate("shipTransfer", {"sku": sku, "fromLocationCode": source,
                                              "toLocationCode": dest, "quantity": 5})
    assert short["code"] == "INSUFFICIENT_STOCK"
    over = await api.mutate("receiveTransfer", {"transferId": transfer["id"], "quantity": 7})
    assert (over["code"], over["field"]) == ("OVER_RECEIPT", "quantity")
    results = await asyncio.gather(*(api.mutate("receiveTransfer", {
        "transferId": transfer["id"], "quantity": 2}) for _ in range(5)))
    assert sum(r["__typename"] == "StockTransfer" for r in results) == 3, results
    assert (await level(api, sku, dest))["onHand"] == 6


async def test_replay_and_queries(api):
    sku, source, dest = await api.item(), await api.location(), await api.location()
    await api.receive(sku, source, 5)
    body = {"sku": sku, "fromLocationCode": source, "toLocationCode": dest, "quantity": 3,
            "reference": f"ref-{sku}", "idempotencyKey": f"ship-{sku}"}
    first = await api.succeed("shipTransfer", body, TRANSFER)
    assert await api.succeed("shipTransfer", body, TRANSFER) == first
    assert (await level(api, sku, source))["onHand"] == 2  # shipped once
    data = await api.gql("""query($id: ID!, $r: String!) {
        stockTransfer(id: $id) { status from { onHand } to { incoming } }
        node(id: $id) { ... on StockTransfer { quantity } }
        stockTransfers(filter: {reference: $r, status: IN_TRANSIT}) { nodes { id } } }""",
        {"id": first["id"], "r": f"ref-{sku}"})
    assert data == {"stockTransfer": {"status": "IN_TRANSIT", "from": {"onHand": 2},
                                      "to": {"incoming": 3}},
                    "node": {"quantity": 3}, "stockTransfers": {"nodes": [{"id": first["id"]}]}}


async def test_concurrent_two_step_transfers_both_ways_conserve_the_total(api, sync_engine):
    """Transfers shipped both ways at once, then received, lost and cancelled
    at once: on hand plus in transit stays the total, less what was lost, and
    no level goes negative (the autouse audit checks every ledger row)."""
    sku, east, west = await api.item(), await api.location(), await api.location()
    await api.receive(sku, east, 40)
    await api.receive(sku, west, 40)

    async def settled(name: str, body: dict, selection: str = "") -> dict:
        """The answer once contention let it through (TRANSACTION_CONFLICT is
        retried with the same key, as clients are told to)."""
        body = {**body, "idempotencyKey": str(uuid.uuid4())}
        for _ in range(30):
            answer = await api.mutate(name, body, selection)
            if answer.get("code") != "TRANSACTION_CONFLICT":
                return answer
        raise AssertionError(f"{name} still conflicting: {answer}")

    shipped = await asyncio.gather(*(settled("shipTransfer", {
        "sku": sku, "fromLocationCode": a, "toLocationCode": b, "quantity": 3},
        "... on StockTransfer { id }") for a, b in [(east, west), (west, east)] * 15))
    ids = [r["id"] for r in shipped if r["__typename"] == "StockTransfer"]
    assert len(ids) == 26, shipped  # 13 of 3 fit in 40 each way
    answers = await asyncio.gather(*(
        settled(*[("receiveTransfer", {"transferId": i, "quantity": 2, "final": True}),
                  ("receiveTransfer", {"transferId": i, "quantity": 1}),
                  ("cancelTransfer", {"transferId": i})][n % 3])
        for n, i in enumerate(ids) for _ in range(2)))  # each twice, as two requests
    assert {a.get("code") for a in answers} <= {None, "SHIPMENT_CLOSED", "OVER_RECEIPT"}
    levels = [await api.gql("query($s: String!, $c: String!) { stockLevel(sku: $s, "
                            "locationCode: $c) { onHand incoming } }", {"s": sku, "c": c})
              for c in (east, west)]
    lost = (await api.gql("query($s: String!) { movements(sku: $s, first: 500, filter: "
                          "{kinds: [TRANSFER_LOSS]}) { nodes { incomingDelta } } }",
                          {"s": sku}))["movements"]["nodes"]
    held = sum(l["stockLevel"]["onHand"] + l["stockLevel"]["incoming"] for l in levels)
    assert held == 80 + sum(n["incomingDelta"] for n in lost)
    assert lost  # the final receipts of 2 out of 3 lost one each


SHORT = "... on InsufficientStockError { shortages { sku locationCode requested available } }"


async def test_both_transfers_refuse_alike_and_write_nothing(api):
    """shipTransfer and transferStock take the units off the source the same
    way (service/stock.py `depart`): a short source says what was available,
    an archived destination is refused by its field, and neither writes."""
    sku, source, dest, transfer = await _shipped(api)  # 4 left at the source
    await api.succeed("reserveStock", {"lines": [{"sku": sku, "locationCode": source,
                                                  "quantity": 1}]})
    for name in ("shipTransfer", "transferStock"):
        short = await api.mutate(name, {"sku": sku, "fromLocationCode": source,
                                        "toLocationCode": dest, "quantity": 4}, SHORT)
        assert short["code"] == "INSUFFICIENT_STOCK", short
        assert short["shortages"] == [{"sku": sku, "locationCode": source, "requested": 4,
                                       "available": 3}]
    closed = await api.location()
    await api.succeed("archiveLocation", {"code": closed})
    for name in ("shipTransfer", "transferStock"):
        into = await api.mutate(name, {"sku": sku, "fromLocationCode": source,
                                       "toLocationCode": closed, "quantity": 1})
        assert (into["code"], into["field"]) == ("ARCHIVED", "toLocationCode"), into
    assert await level(api, sku, source) == {"onHand": 4, "available": 3, "incoming": 0,
                                             "nextExpectedAt": None}
    assert (await level(api, sku, dest))["incoming"] == 6
    history = await api.gql("query($s: String!, $c: String!) { movements(sku: $s, "
                            "locationCode: $c) { nodes { kind } } }", {"s": sku, "c": source})
    assert [n["kind"] for n in history["movements"]["nodes"]] == [
        "RESERVE", "TRANSFER_SHIP", "RECEIVE"]
