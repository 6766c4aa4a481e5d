"""Inbound shipments (issue 15, Build 3): createInboundShipment raises
`incoming`, receiveInbound moves it on hand (partial, over- and under-receipt
reported), cancelInbound lowers it; the shipment's status follows."""
from __future__ import annotations

import asyncio

from .support import unique

SHIPMENT = """... on InboundShipment { id reference expectedAt status
  lines { sku locationCode quantity received outstanding overReceived } }"""
RECEIPT = """... on InboundReceipt { shipment { id status }
  lines { sku locationCode quantity line { received outstanding overReceived }
          level { onHand incoming } } }"""
LEVEL = """query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) {
  onHand reserved available incoming nextExpectedAt } }"""


async def level(api, sku, code):
    return (await api.gql(LEVEL, {"s": sku, "c": code}))["stockLevel"]


async def test_a_shipment_is_incoming_until_received_in_parts(api):
    sku, other, east, west = await api.item(), await api.item(), await api.location(), \
        await api.location()
    await api.receive(sku, east, 2)
    created = await api.succeed("createInboundShipment", {
        "reference": "po-1", "expectedAt": "2031-01-02T03:04:05Z",
        "lines": [{"sku": sku, "locationCode": east, "quantity": 10},
                  {"sku": other, "locationCode": west, "quantity": 4}]}, SHIPMENT)
    assert created["status"] == "EXPECTED"
    assert [l["outstanding"] for l in created["lines"]] == [10, 4]
    assert await level(api, sku, east) == {"onHand": 2, "reserved": 0, "available": 2,
                                           "incoming": 10,
                                           "nextExpectedAt": "2031-01-02T03:04:05+00:00"}
    assert (await level(api, other, west))["incoming"] == 4

    first = await api.succeed("receiveInbound", {"shipmentId": created["id"], "lines": [
        {"sku": sku, "locationCode": east, "quantity": 6}]}, RECEIPT)
    assert first["shipment"]["status"] == "PARTIALLY_RECEIVED"
    assert first["lines"] == [{"sku": sku, "locationCode": east, "quantity": 6,
                               "line": {"received": 6, "outstanding": 4, "overReceived": 0},
                               "level": {"onHand": 8, "incoming": 4}}]
    second = await api.succeed("receiveInbound", {"shipmentId": created["id"], "lines": [
        {"sku": sku, "locationCode": east, "quantity": 4},
        {"sku": other, "locationCode": west, "quantity": 4}]}, RECEIPT)
    assert second["shipment"]["status"] == "RECEIVED"
    assert await level(api, sku, east) == {"onHand": 12, "reserved": 0, "available": 12,
                                           "incoming": 0, "nextExpectedAt": None}
    kinds = await api.gql("query($s: String!) { movements(sku: $s) { nodes { kind "
                          "onHandDelta incomingDelta } } }", {"s": sku})
    assert kinds["movements"]["nodes"] == [
        {"kind": "INBOUND_RECEIVE", "onHandDelta": 4, "incomingDelta": -4},
        {"kind": "INBOUND_RECEIVE", "onHandDelta": 6, "incomingDelta": -6},
        {"kind": "INBOUND", "onHandDelta": 0, "incomingDelta": 10},
        {"kind": "RECEIVE", "onHandDelta": 2, "incomingDelta": 0}]


async def test_over_receipt_needs_saying_so_and_is_reported(api):
    sku, code = await api.item(), await api.location()
    created = await api.succeed("createInboundShipment", {
        "lines": [{"sku": sku, "locationCode": code, "quantity": 5}]}, SHIPMENT)
    refused = await api.mutate("receiveInbound", {"shipmentId": created["id"], "lines": [
        {"sku": sku, "locationCode": code, "quantity": 7}]},
        "... on OverReceiptError { expected actual }")
    assert (refused["code"], refused["field"], refused["expected"], refused["actual"]) == (
        "OVER_RECEIPT", "lines[0].quantity", 5, 7)
    over = await api.succeed("receiveInbound", {
        "shipmentId": created["id"], "allowOverReceipt": True,
        "lines": [{"sku": sku, "locationCode": code, "quantity": 7}]}, RECEIPT)
    assert over["shipment"]["status"] == "RECEIVED"
    assert over["lines"][0]["line"] == {"received": 7, "outstanding": 0, "overReceived": 2}
    assert over["lines"][0]["level"] == {"onHand": 7, "incoming": 0}
    # More still arrives on a received shipment only when said so, and never lowers
    # incoming below what other shipments expect.
    other = await api.succeed("createInboundShipment", {
        "lines": [{"sku": sku, "locationCode": code, "quantity": 3}]}, SHIPMENT)
    late = await api.succeed("receiveInbound", {
        "shipmentId": created["id"], "allowOverReceipt": True,
        "lines": [{"sku": sku, "locationCode": code, "quantity": 1}]}, RECEIPT)
    assert late["lines"][0]["level"] == {"onHand": 8, "incoming": 3}
    assert other["status"] == "EXPECTED"


async def test_cancel_lowers_incoming_by_what_is_outstanding(api):
    sku, code = await api.item(), await api.location()
    created = await api.succeed("createInboundShipment", {
        "lines": [{"sku": sku, "locationCode": code, "quantity": 5}]}, SHIPMENT)
    await api.succeed("receiveInbound", {"shipmentId": created["id"], "lines": [
        {"sku": sku, "locationCode": code, "quantity": 2}]})
    cancelled = await api.succeed("cancelInbound", {"shipmentId": created["id"]}, SHIPMENT)
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["lines"][0] | {} == {"sku": sku, "locationCode": code, "quantity": 5,
                                          "received": 2, "outstanding": 3, "overReceived": 0}
    assert await level(api, sku, code) == {"onHand": 2, "reserved": 0, "available": 2,
                                           "incoming": 0, "nextExpectedAt": None}
    again = await api.mutate("receiveInbound", {"shipmentId": created["id"], "lines": [
        {"sku": sku, "locationCode": code, "quantity": 1}]},
        "... on ShipmentClosedError { status }")
    assert (again["code"], again["status"]) == ("SHIPMENT_CLOSED", "CANCELLED")
    twice = await api.mutate("cancelInbound", {"shipmentId": created["id"]})
    assert twice["code"] == "SHIPMENT_CLOSED"


async def test_concurrent_receipts_of_one_shipment_never_receive_twice(api):
    sku, code = await api.item(), await api.location()
    created = await api.succeed("createInboundShipment", {
        "lines": [{"sku": sku, "locationCode": code, "quantity": 10}]}, SHIPMENT)
    results = await asyncio.gather(*(api.mutate("receiveInbound", {
        "shipmentId": created["id"], "lines": [{"sku": sku, "locationCode": code,
                                                "quantity": 3}]}) for _ in range(6)))
    taken = [r for r in results if r["__typename"] == "InboundReceipt"]
    assert len(taken) == 3, results  # 3 x 3 fit in 10; the fourth would over-receive
    assert {r["code"] for r in results if r not in taken} == {"OVER_RECEIPT"}
    assert await level(api, sku, code) == {"onHand": 9, "reserved": 0, "available": 9,
                                           "incoming": 1, "nextExpectedAt": None}


async def test_replay_and_queries(api):
    sku, code = await api.item(), await api.location()
    reference = unique("po")
    body = {"reference": reference, "expectedAt": "2030-05-01T00:00:00Z",
            "lines": [{"sku": sku, "locationCode": code, "quantity": 3}],
            "idempotencyKey": f"in-{reference}"}
    created = await api.succeed("createInboundShipment", body, SHIPMENT)
    assert await api.succeed("createInboundShipment", body, SHIPMENT) == created
    assert (await level(api, sku, code))["incoming"] == 3  # once
    one = await api.gql("query($id: ID!) { inboundShipment(id: $id) { id status "
                        "lines { item { sku } location { code } } } "
                        "node(id: $id) { ... on InboundShipment { reference } } }",
                        {"id": created["id"]})
    assert one["inboundShipment"]["lines"] == [{"item": {"sku": sku}, "location": {"code": code}}]
    assert one["node"] == {"reference": reference}
    listed = await api.gql("""query($r: String!) {
        open: inboundShipments(filter: {reference: $r, status: EXPECTED}) { nodes { id } }
        soon: inboundShipments(filter: {reference: $r, expectedBefore: "2030-06-01T00:00:00Z"})
          { nodes { id } }
        later: inboundShipments(filter: {reference: $r, expectedBefore: "2030-04-01T00:00:00Z"})
          { nodes { id } } }""", {"r": reference})
    assert listed == {"open": {"nodes": [{"id": created["id"]}]},
                      "soon": {"nodes": [{"id": created["id"]}]}, "later": {"nodes": []}}
