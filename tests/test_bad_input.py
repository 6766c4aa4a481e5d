"""Every kind of bad input gets a typed error and writes nothing: one table,
one test case per row."""
from __future__ import annotations

import uuid

import pytest

from inventory.domain import ids

from .support import snapshot

# Placeholders for the module's stocked level (`stocked` below): sku SKU with
# 10 units at location A, none at location B. `fill` swaps them for real names.
SKU, A, B = "<sku>", "<a>", "<b>"
# An archived item (no stock) and an archived location (issue 15, Build 6).
ARCHIVED_SKU, ARCHIVED_LOC = "<archived sku>", "<archived location>"
# Stock on its way (issue 15, Builds 3 and 4): an inbound shipment of 5 of SKU at
# A, a cancelled one, a transfer of 1 of SKU from B to A in transit (B holds
# none), a cancelled one (from A: A holds 10 again).
SHIPMENT, CANCELLED_SHIPMENT = "<shipment>", "<cancelled shipment>"
TRANSFER, CANCELLED_TRANSFER = "<transfer>", "<cancelled transfer>"
UNKNOWN_SHIPMENT = ids.encode("InboundShipment", uuid.uuid4())
LINE = {"sku": SKU, "locationCode": A, "quantity": 1}
BIG = 10 ** 13
UNKNOWN_RESERVATION = ids.encode("Reservation", uuid.uuid4())
HELD = "<held reservation>"  # ACTIVE, one line (number 0) holding 1 unit of SKU at A
# Backorders (issue 15, Build 5): location C holds none of SKU and may backorder
# 2 (its own limit); WAITING is an ACTIVE reservation of 1 there, backordered.
C, WAITING = "<c>", "<backordered reservation>"
KIT = "<kit>"  # a kit of 2 SKU (issue 16, Build 3)


def _kit(sku: str, *components: tuple[str, int]) -> dict:
    return {"sku": sku, "name": "A kit", "components": [
        {"sku": c, "quantity": q} for c, q in components]}


# (mutation, input, the error code it must answer). Add a row per new case; its
# id names the case in the test report.
BAD_INPUT = [
    pytest.param("receiveStock", {"sku": SKU, "locationCode": A, "quantity": 0},
                 "INVALID_INPUT", id="receive-zero"),
    pytest.param("receiveStock", {"sku": SKU, "locationCode": A, "quantity": -3},
                 "INVALID_INPUT", id="receive-negative"),
    pytest.param("receiveStock", {"sku": SKU, "locationCode": A, "quantity": BIG},
                 "INVALID_INPUT", id="receive-above-10^12"),
    pytest.param("receiveStock", {"sku": "NOPE-1", "locationCode": A, "quantity": 1},
                 "NOT_FOUND", id="receive-unknown-sku"),
    pytest.param("receiveStock", {"sku": "", "locationCode": A, "quantity": 1},
                 "INVALID_INPUT", id="receive-empty-sku"),
    pytest.param("receiveStock", {"sku": SKU, "locationCode": A, "quantity": 1, "reason": "x" * 500},
                 "INVALID_INPUT", id="receive-reason-too-long"),
    pytest.param("receiveStock", {"sku": SKU, "locationCode": A, "quantity": 1, "idempotencyKey": ""},
                 "INVALID_INPUT", id="receive-empty-idempotency-key"),
    pytest.param("adjustStock", {"sku": SKU, "locationCode": A, "delta": 0},
                 "INVALID_INPUT", id="adjust-zero"),
    pytest.param("adjustStock", {"sku": SKU, "locationCode": A, "delta": -BIG},
                 "INVALID_INPUT", id="adjust-below-minus-10^12"),
    pytest.param("adjustStock", {"sku": SKU, "locationCode": A, "delta": -11},
                 "INSUFFICIENT_STOCK", id="adjust-below-zero"),
    pytest.param("adjustStock", {"sku": "NOPE-1", "locationCode": A, "delta": 1},
                 "NOT_FOUND", id="adjust-unknown-sku"),
    pytest.param("adjustStock", {"sku": SKU, "locationCode": "NOPE-1", "delta": 1},
                 "NOT_FOUND", id="adjust-unknown-location"),
    pytest.param("moveStock", {"sku": SKU, "locationCode": A, "from": "DAMAGED",
                               "to": "AVAILABLE", "quantity": 1},
                 "INSUFFICIENT_QUANTITY", id="move-more-than-a-state-holds"),
    pytest.param("moveStock", {"sku": SKU, "locationCode": A, "from": "AVAILABLE",
                               "to": "QUALITY_CONTROL", "quantity": 11},
                 "INSUFFICIENT_STOCK", id="move-more-than-available"),
    pytest.param("moveStock", {"sku": SKU, "locationCode": A, "from": "DAMAGED",
                               "to": "DAMAGED", "quantity": 1},
                 "INVALID_INPUT", id="move-to-the-same-state"),
    pytest.param("moveStock", {"sku": SKU, "locationCode": A, "from": "AVAILABLE",
                               "to": "DAMAGED", "quantity": 0},
                 "INVALID_INPUT", id="move-zero"),
    pytest.param("moveStock", {"sku": SKU, "locationCode": "NOPE-1", "from": "AVAILABLE",
                               "to": "DAMAGED", "quantity": 1},
                 "NOT_FOUND", id="move-unknown-location"),
    pytest.param("adjustStock", {"sku": SKU, "locationCode": A, "delta": -1, "state": "DAMAGED"},
                 "INSUFFICIENT_QUANTITY", id="adjust-out-of-a-state-below-zero"),
    pytest.param("setStock", {"sku": "NOPE-1", "locationCode": A, "onHand": 1},
                 "NOT_FOUND", id="set-unknown-sku"),
    pytest.param("setStock", {"sku": SKU, "locationCode": "NOPE-1", "onHand": 1},
                 "NOT_FOUND", id="set-unknown-location"),
    pytest.param("setStock", {"sku": SKU, "locationCode": A, "onHand": -1},
                 "INVALID_INPUT", id="set-negative"),
    pytest.param("setStock", {"sku": SKU, "locationCode": A, "onHand": 1, "compareQuantity": 9},
                 "QUANTITY_MISMATCH", id="set-compare-differs"),
    pytest.param("transferStock", {"sku": SKU, "fromLocationCode": A, "toLocationCode": B, "quantity": 0},
                 "INVALID_INPUT", id="transfer-zero"),
    pytest.param("transferStock", {"sku": SKU, "fromLocationCode": A, "toLocationCode": B, "quantity": 11},
                 "INSUFFICIENT_STOCK", id="transfer-more-than-available"),
    pytest.param("transferStock", {"sku": SKU, "fromLocationCode": "NOPE-1", "toLocationCode": B, "quantity": 1},
                 "NOT_FOUND", id="transfer-unknown-location"),
    pytest.param("reserveStock", {"lines": []},
                 "INVALID_INPUT", id="reserve-no-lines"),
    pytest.param("reserveStock", {"lines": [LINE, LINE]},
                 "INVALID_INPUT", id="reserve-duplicate-lines"),
    pytest.param("reserveStock", {"lines": [{**LINE, "quantity": 0}]},
                 "INVALID_INPUT", id="reserve-zero"),
    pytest.param("reserveStock", {"lines": [{**LINE, "quantity": BIG}]},
                 "INVALID_INPUT", id="reserve-above-10^12"),
    pytest.param("reserveStock", {"lines": [{**LINE, "sku": "NOPE-1"}]},
                 "NOT_FOUND", id="reserve-unknown-sku"),
    pytest.param("reserveStock", {"lines": [LINE], "ttlSeconds": 0},
                 "INVALID_INPUT", id="reserve-ttl-zero"),
    pytest.param("reserveStock", {"lines": [LINE], "ttlSeconds": 10 ** 8},
                 "INVALID_INPUT", id="reserve-ttl-too-long"),
    pytest.param("reserveStock", {"lines": [LINE, {**LINE, "locationCode": B}]},
                 "INSUFFICIENT_STOCK", id="reserve-one-line-short"),
    # The stocked item takes no backorders at A (limit 0): 10 of 9 available.
    pytest.param("reserveStock", {"lines": [{**LINE, "quantity": 10}]},
                 "INSUFFICIENT_STOCK", id="reserve-beyond-available-without-backorders"),
    # C may backorder 2 and 1 is backordered already: 2 more is beyond the limit.
    pytest.param("reserveStock", {"lines": [{**LINE, "locationCode": C, "quantity": 2}]},
                 "INSUFFICIENT_STOCK", id="reserve-backorder-beyond-the-limit"),
    pytest.param("reserveStock", {"lines": [LINE, {**LINE, "locationCode": C, "quantity": 2}]},
                 "INSUFFICIENT_STOCK", id="reserve-backorder-beyond-the-limit-one-line-of-two"),
    pytest.param("commitReservation", {"reservationId": WAITING},
                 "RESERVATION_BACKORDERED", id="commit-backordered-units"),
    pytest.param("commitReservation", {"reservationId": WAITING,
                                       "lines": [{"lineNumber": 0, "quantity": 1}]},
                 "RESERVATION_BACKORDERED", id="commit-part-backordered-units"),
    pytest.param("setBackorderLimit", {"sku": SKU, "locationCode": C, "backorderLimit": 0},
                 "INVALID_INPUT", id="backorder-limit-below-backordered"),
    pytest.param("updateItem", {"sku": SKU, "version": 0, "backorderLimit": -1},
                 "INVALID_INPUT", id="update-item-negative-backorder-limit"),
    pytest.param("setBackorderLimit", {"sku": SKU, "locationCode": A, "backorderLimit": -1},
                 "INVALID_INPUT", id="backorder-limit-negative"),
    pytest.param("setBackorderLimit", {"sku": SKU, "locationCode": "NOPE-1", "backorderLimit": 1},
                 "NOT_FOUND", id="backorder-limit-unknown-location"),
    pytest.param("createItem", {"sku": "OK-SKU-3", "name": "x", "backorderLimit": -1},
                 "INVALID_INPUT", id="item-negative-backorder-limit"),
    pytest.param("commitReservation", {"reservationId": "not-an-id"},
                 "INVALID_INPUT", id="commit-malformed-id"),
    pytest.param("releaseReservation", {"reservationId": UNKNOWN_RESERVATION},
                 "NOT_FOUND", id="release-unknown-reservation"),
    pytest.param("commitReservation", {"reservationId": UNKNOWN_RESERVATION},
                 "NOT_FOUND", id="commit-unknown-reservation"),
    pytest.param("releaseReservation", {"reservationId": ""},
                 "INVALID_INPUT", id="release-empty-id"),
    pytest.param("createItem", {"sku": "bad sku", "name": "x"},
                 "INVALID_INPUT", id="item-sku-with-space"),
    pytest.param("createItem", {"sku": "OK-SKU-1", "name": ""},
                 "INVALID_INPUT", id="item-empty-name"),
    pytest.param("createItem", {"sku": "OK-SKU-2", "name": "x", "reorderPoint": -1},
                 "INVALID_INPUT", id="item-negative-reorder-point"),
    pytest.param("createLocation", {"code": "x" * 100, "name": "x"},
                 "INVALID_INPUT", id="location-code-too-long"),
    pytest.param("updateItem", {"sku": SKU, "version": 99, "name": "x"},
                 "VERSION_MISMATCH", id="update-item-stale-version"),
    pytest.param("updateItem", {"sku": SKU, "version": 0},
                 "INVALID_INPUT", id="update-item-nothing-to-change"),
    pytest.param("updateItem", {"sku": SKU, "version": 0, "reorderPoint": -1},
                 "INVALID_INPUT", id="update-item-negative-reorder-point"),
    pytest.param("archiveItem", {"sku": "NOPE-1"},
                 "NOT_FOUND", id="archive-unknown-item"),
    pytest.param("receiveStock", {"sku": ARCHIVED_SKU, "locationCode": A, "quantity": 1},
                 "ARCHIVED", id="receive-into-archived-item"),
    pytest.param("receiveStock", {"sku": SKU, "locationCode": ARCHIVED_LOC, "quantity": 1},
                 "ARCHIVED", id="receive-into-archived-location"),
    pytest.param("adjustStock", {"sku": SKU, "locationCode": ARCHIVED_LOC, "delta": 1},
                 "ARCHIVED", id="adjust-up-into-archived-location"),
    pytest.param("transferStock", {"sku": SKU, "fromLocationCode": A,
                                   "toLocationCode": ARCHIVED_LOC, "quantity": 1},
                 "ARCHIVED", id="transfer-into-archived-location"),
    pytest.param("createInboundShipment", {"lines": []},
                 "INVALID_INPUT", id="inbound-no-lines"),
    pytest.param("createInboundShipment", {"lines": [{**LINE, "locationCode": ARCHIVED_LOC}]},
                 "ARCHIVED", id="inbound-into-archived-location"),
    pytest.param("receiveInbound", {"shipmentId": SHIPMENT, "lines": [{**LINE, "quantity": 6}]},
                 "OVER_RECEIPT", id="receive-inbound-more-than-shipped"),
    pytest.param("receiveInbound", {"shipmentId": CANCELLED_SHIPMENT, "lines": [LINE]},
                 "SHIPMENT_CLOSED", id="receive-inbound-cancelled"),
    pytest.param("receiveInbound", {"shipmentId": SHIPMENT,
                                    "lines": [{**LINE, "locationCode": B}]},
                 "INVALID_INPUT", id="receive-inbound-line-not-on-shipment"),
    pytest.param("receiveInbound", {"shipmentId": SHIPMENT, "lines": [LINE, LINE]},
                 "INVALID_INPUT", id="receive-inbound-duplicate-lines"),
    pytest.param("receiveInbound", {"shipmentId": UNKNOWN_SHIPMENT, "lines": [LINE]},
                 "NOT_FOUND", id="receive-inbound-unknown-shipment"),
    pytest.param("receiveInbound", {"shipmentId": "not-an-id", "lines": [LINE]},
                 "INVALID_INPUT", id="receive-inbound-malformed-id"),
    pytest.param("cancelInbound", {"shipmentId": CANCELLED_SHIPMENT},
                 "SHIPMENT_CLOSED", id="cancel-inbound-cancelled"),
    pytest.param("shipTransfer", {"sku": SKU, "fromLocationCode": A, "toLocationCode": B,
                                  "quantity": 11},
                 "INSUFFICIENT_STOCK", id="ship-transfer-more-than-available"),
    pytest.param("shipTransfer", {"sku": SKU, "fromLocationCode": A,
                                  "toLocationCode": ARCHIVED_LOC, "quantity": 1},
                 "ARCHIVED", id="ship-transfer-into-archived-location"),
    pytest.param("shipTransfer", {"sku": SKU, "fromLocationCode": A, "toLocationCode": A,
                                  "quantity": 1},
                 "INVALID_INPUT", id="ship-transfer-to-itself"),
    pytest.param("receiveTransfer", {"transferId": TRANSFER, "quantity": 2},
                 "OVER_RECEIPT", id="receive-transfer-more-than-shipped"),
    pytest.param("receiveTransfer", {"transferId": TRANSFER, "quantity": 0},
                 "INVALID_INPUT", id="receive-transfer-zero-not-final"),
    pytest.param("receiveTransfer", {"transferId": CANCELLED_TRANSFER, "quantity": 1},
                 "SHIPMENT_CLOSED", id="receive-transfer-cancelled"),
    pytest.param("receiveTransfer", {"transferId": SHIPMENT, "quantity": 1},
                 "INVALID_INPUT", id="receive-transfer-given-a-shipment-id"),
    pytest.param("cancelTransfer", {"transferId": CANCELLED_TRANSFER},
                 "SHIPMENT_CLOSED", id="cancel-transfer-cancelled"),
    pytest.param("createChannel", {"code": "CH-BAD-1", "name": "x", "locationCodes": []},
                 "INVALID_INPUT", id="channel-no-locations"),
    pytest.param("createChannel", {"code": "CH-BAD-2", "name": "x", "locationCodes": [A, A]},
                 "INVALID_INPUT", id="channel-location-twice"),
    pytest.param("createChannel", {"code": "CH-BAD-3", "name": "x", "locationCodes": ["NOPE-1"]},
                 "NOT_FOUND", id="channel-unknown-location"),
    pytest.param("updateChannel", {"code": "NOPE-1", "expectedVersion": 1, "name": "x"},
                 "NOT_FOUND", id="update-unknown-channel"),
    pytest.param("updateChannel", {"code": "NOPE-1", "expectedVersion": 1, "locationCodes": []},
                 "INVALID_INPUT", id="update-channel-no-locations"),
    pytest.param("updateChannel", {"code": "NOPE-1", "expectedVersion": 1},
                 "INVALID_INPUT", id="update-channel-nothing"),
    pytest.param("commitReservation", {"reservationId": HELD,
                                       "lines": [{"lineNumber": 0, "quantity": 2}]},
                 "INVALID_INPUT", id="commit-more-than-the-line-holds"),
    pytest.param("releaseReservation", {"reservationId": HELD,
                                        "lines": [{"lineNumber": 0, "quantity": 2}]},
                 "INVALID_INPUT", id="release-more-than-the-line-holds"),
    pytest.param("commitReservation", {"reservationId": HELD, "lines": [{"lineNumber": 9}]},
                 "INVALID_INPUT", id="commit-unknown-line"),
    pytest.param("commitReservation", {"reservationId": HELD,
                                       "lines": [{"lineNumber": 0, "quantity": 0}]},
                 "INVALID_INPUT", id="commit-zero-of-a-line"),
    pytest.param("extendReservation", {"reservationId": HELD, "ttlSeconds": -60},
                 "INVALID_INPUT", id="extend-negative-ttl"),
    pytest.param("extendReservation", {"reservationId": HELD, "ttlSeconds": 10 ** 8},
                 "INVALID_INPUT", id="extend-absurd-ttl"),
    pytest.param("extendReservation", {"reservationId": UNKNOWN_RESERVATION, "ttlSeconds": 60},
                 "NOT_FOUND", id="extend-unknown-reservation"),
    pytest.param("extendReservation", {"reservationId": "not-an-id", "ttlSeconds": 60},
                 "INVALID_INPUT", id="extend-malformed-id"),
    pytest.param("reserveStock", {"lines": [{"sku": SKU, "channelCode": "NOPE-1", "quantity": 1}]},
                 "NOT_FOUND", id="reserve-unknown-channel"),
    pytest.param("reserveStock", {"lines": [{"sku": SKU, "quantity": 1}]},
                 "INVALID_INPUT", id="reserve-line-without-location-or-channel"),
    pytest.param("reserveStock", {"lines": [{**LINE, "channelCode": "NOPE-1"}]},
                 "INVALID_INPUT", id="reserve-line-with-location-and-channel"),
    # Kits (issue 16, Build 3): bad definitions create no item; a kit holds no stock.
    pytest.param("createItem", _kit("KIT-SELF-1", (SKU, 1), ("KIT-SELF-1", 1)),
                 "KIT_CYCLE", id="kit-contains-itself"),
    pytest.param("createItem", _kit("KIT-NEW-1", (SKU, 1), (KIT, 1)),
                 "INVALID_INPUT", id="kit-contains-a-kit"),
    pytest.param("createItem", _kit("KIT-NEW-1", (SKU, 0)),
                 "INVALID_INPUT", id="kit-component-quantity-zero"),
    pytest.param("createItem", _kit("KIT-NEW-1", (SKU, -2)),
                 "INVALID_INPUT", id="kit-component-quantity-negative"),
    pytest.param("createItem", _kit("KIT-NEW-1", (SKU, 1), ("NOPE-1", 1)),
                 "NOT_FOUND", id="kit-unknown-component"),
    pytest.param("createItem", _kit("KIT-NEW-1", (SKU, 1), (ARCHIVED_SKU, 1)),
                 "ARCHIVED", id="kit-archived-component"),
    pytest.param("createItem", _kit("KIT-NEW-1", (SKU, 1), (SKU, 2)),
                 "INVALID_INPUT", id="kit-component-twice"),
    pytest.param("receiveStock", {"sku": KIT, "locationCode": A, "quantity": 1},
                 "KIT_HAS_NO_STOCK", id="receive-into-a-kit"),
    pytest.param("setStock", {"sku": KIT, "locationCode": A, "onHand": 3},
                 "KIT_HAS_NO_STOCK", id="set-stock-of-a-kit"),
    pytest.param("adjustStock", {"sku": KIT, "locationCode": A, "delta": 2},
                 "KIT_HAS_NO_STOCK", id="adjust-a-kit-up"),
    pytest.param("reserveStock", {"lines": [{"sku": KIT, "locationCode": A, "quantity": 5}]},
                 "INSUFFICIENT_STOCK", id="reserve-more-kits-than-components-make"),
    pytest.param("reserveStock", {"lines": [{"sku": KIT, "locationCode": A, "quantity": 4},
                                            {"sku": SKU, "locationCode": A, "quantity": 2}]},
                 "INSUFFICIENT_STOCK", id="reserve-a-kit-and-its-component-beyond-stock"),
    # Kits take no backorders (tests/test_kits.py shows a component's room unused).
    pytest.param("reserveStock", {"lines": [{"sku": KIT, "locationCode": C, "quantity": 1}]},
                 "INSUFFICIENT_STOCK", id="reserve-a-kit-where-its-component-backorders"),
    pytest.param("createItem", {**_kit("KIT-NEW-1", (SKU, 1)), "backorderLimit": 1},
                 "INVALID_INPUT", id="kit-with-a-backorder-limit"),
    pytest.param("updateItem", {"sku": KIT, "version": 0, "backorderLimit": 1},
                 "INVALID_INPUT", id="update-kit-backorder-limit"),
    pytest.param("setBackorderLimit", {"sku": KIT, "locationCode": A, "backorderLimit": 1},
                 "KIT_HAS_NO_STOCK", id="backorder-limit-of-a-kit"),
    # Webhooks (the shared server allows no private network: its defaults).
    pytest.param("createWebhook", {"url": "not a url", "events": ["stock_level.changed"]},
                 "INVALID_INPUT", id="webhook-malformed-url"),
    pytest.param("createWebhook", {"url": "ftp://example.com/x", "events": ["stock_level.changed"]},
                 "INVALID_INPUT", id="webhook-not-http"),
    pytest.param("createWebhook", {"url": "https://user:pw@example.com/", "events": ["stock_level.changed"]},
                 "INVALID_INPUT", id="webhook-credentials-in-url"),
    pytest.param("createWebhook", {"url": "https://example.com/", "events": ["stock_level.exploded"]},
                 "INVALID_INPUT", id="webhook-unknown-event"),
    pytest.param("createWebhook", {"url": "https://example.com/", "events": []},
                 "INVALID_INPUT", id="webhook-no-events"),
    pytest.param("createWebhook", {"url": "http://127.0.0.1:9/hook", "events": ["stock_level.changed"]},
                 "FORBIDDEN_ADDRESS", id="webhook-loopback"),
    pytest.param("createWebhook", {"url": "http://localhost/hook", "events": ["stock_level.changed"]},
                 "FORBIDDEN_ADDRESS", id="webhook-localhost-name"),
    pytest.param("createWebhook", {"url": "http://[::1]/hook", "events": ["stock_level.changed"]},
                 "FORBIDDEN_ADDRESS", id="webhook-loopback-ipv6"),
    pytest.param("createWebhook", {"url": "http://169.254.169.254/latest/meta-data", "events": ["stock_level.changed"]},
                 "FORBIDDEN_ADDRESS", id="webhook-link-local-metadata"),
    pytest.param("createWebhook", {"url": "http://10.1.2.3/hook", "events": ["stock_level.changed"]},
                 "FORBIDDEN_ADDRESS", id="webhook-private"),
    pytest.param("createWebhook", {"url": "http://[::ffff:192.168.0.1]/hook", "events": ["stock_level.changed"]},
                 "FORBIDDEN_ADDRESS", id="webhook-ipv4-mapped-private"),
    pytest.param("bulkSetStock", {"lines": []},
                 "INVALID_INPUT", id="bulk-no-lines"),
    pytest.param("updateWebhook", {"id": "not-an-id"},
                 "INVALID_INPUT", id="webhook-update-malformed-id"),
    pytest.param("redeliverWebhook", {"deliveryId": ids.encode("WebhookDelivery", uuid.uuid4())},
                 "NOT_FOUND", id="webhook-redeliver-unknown"),
]


def fill(value, names: dict[str, str]):
    """`value` with every placeholder string replaced by its real name."""
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
async def stocked(api, stocked_level) -> dict[str, str]:
    """The placeholders' names: 10 units of a new sku at A (1 of them held by
    an ACTIVE reservation), a second location B, an archived item and an archived
    location."""
    sku, a = await stocked_level(10)
    b = await api.location()
    archived_sku, archived_location = await api.item(), await api.location()
    await api.succeed("archiveItem", {"sku": archived_sku})
    await api.succeed("archiveLocation", {"code": archived_location})
    line = [{"sku": sku, "locationCode": a, "quantity": 5}]
    ids_ = {}
    for name in (SHIPMENT, CANCELLED_SHIPMENT):
        ids_[name] = (await api.succeed("createInboundShipment", {"lines": line},
                                        "... on InboundShipment { id }"))["id"]
    await api.succeed("cancelInbound", {"shipmentId": ids_[CANCELLED_SHIPMENT]})
    await api.receive(sku, b, 1)
    for name, source, dest in ((TRANSFER, b, a), (CANCELLED_TRANSFER, a, b)):
        ids_[name] = (await api.succeed("shipTransfer", {
            "sku": sku, "fromLocationCode": source, "toLocationCode": dest, "quantity": 1},
            "... on StockTransfer { id }"))["id"]
    await api.succeed("cancelTransfer", {"transferId": ids_[CANCELLED_TRANSFER]})
    kit = (await api.succeed("createItem", _kit(f"KIT-{sku}", (sku, 2)),
                             "... on Item { sku }"))["sku"]
    held = await api.succeed("reserveStock", {
        "lines": [{"sku": sku, "locationCode": a, "quantity": 1}], "ttlSeconds": 3600},
        "... on Reservation { id }")
    c = await api.location()
    await api.succeed("setBackorderLimit", {"sku": sku, "locationCode": c, "backorderLimit": 2})
    waiting = await api.succeed("reserveStock", {
        "lines": [{"sku": sku, "locationCode": c, "quantity": 1}], "ttlSeconds": 3600},
        "... on Reservation { id }")
    return {SKU: sku, A: a, B: b, ARCHIVED_SKU: archived_sku,
            ARCHIVED_LOC: archived_location, HELD: held["id"], C: c, WAITING: waiting["id"],
            KIT: kit, **ids_}


@pytest.mark.parametrize("mutation, bad_input, code", BAD_INPUT)
async def test_bad_input_is_typed_and_writes_nothing(api, sync_engine, stocked, mutation,
                                                     bad_input, code):
    body = fill(bad_input, stocked)
    skus = [stocked[SKU], stocked[ARCHIVED_SKU]]
    with sync_engine.connect() as conn:
        before = snapshot(conn, skus)
    result = await api.mutate(mutation, body)
    assert result.get("code") == code, result
    assert result["message"], result
    with sync_engine.connect() as conn:
        assert snapshot(conn, skus) == before


@pytest.mark.parametrize("quantity, answer", [
    ("1.5", "GRAPHQL_VALIDATION_FAILED"),
    ('"3"', "GRAPHQL_VALIDATION_FAILED"),
    ("true", "GRAPHQL_VALIDATION_FAILED"),
    ("null", "GRAPHQL_VALIDATION_FAILED"),
    # A number too large for a quantity still parses; then the domain refuses it.
    ("99999999999999999999999", "receiveStock: INVALID_INPUT"),
])
async def test_malformed_scalars_are_typed_errors_not_500(api, stocked, quantity, answer):
    sku, a = stocked[SKU], stocked[A]
    response = await api.post(f"""
        mutation {{ receiveStock(input: {{sku: "{sku}", locationCode: "{a}",
          quantity: {quantity}}}) {{ __typename ... on UserError {{ code }} }} }}""")
    assert response.status_code == 200, response.text
    assert "Traceback" not in response.text
    body = response.json()
    if body.get("errors"):
        got = body["errors"][0]["extensions"]["code"]
    else:
        got = f"receiveStock: {body['data']['receiveStock']['code']}"
    assert got == answer, body


# Malformed requests carrying a receiveStock of one unit on the stocked level:
# the body, with MUTATION standing for the JSON-encoded document, <raw> for the
# document itself and <several> for two such operations in one. Each is a
# 400 BAD_REQUEST GraphQL JSON error that echoes none of the input, writes
# nothing, and leaves the connection usable.
RECEIVE = 'mutation { receiveStock(input: {sku: "<sku>", locationCode: "<a>", quantity: 1}) ' \
          '{ __typename } }'
MUTATION = b"<mutation>"
MALFORMED_REQUESTS = [
    pytest.param(MUTATION, id="body-a-json-string"),
    pytest.param(b"42", id="body-a-json-number"),
    pytest.param(b"null", id="body-json-null"),
    pytest.param(b"[{\"query\": " + MUTATION + b"}]", id="body-a-batch"),
    pytest.param(b'{"query": "mutation { receiveStock(input: {sku: \\"\xff\\"}) { __typename } }"}',
                 id="body-invalid-utf-8"),
    pytest.param(b'{"query": ' + MUTATION + b', "variables": {"v": ' + b"[" * 100_000
                 + b"]" * 100_000 + b"}}", id="body-json-nested-100000-deep"),
    pytest.param(b'{"query": ' + MUTATION + b', "variables": {"n": ' + b"9" * 5000 + b"}}",
                 id="body-a-5000-digit-number"),
    pytest.param(b'{"query": ' + MUTATION + b', "operationName": ["a"]}',
                 id="operation-name-a-list"),
    pytest.param(b"<raw>", id="body-not-json"),
    pytest.param(b'{"query": <several>}', id="several-operations-without-operation-name"),
    pytest.param(b'{"query": "subscription { lowStock { sku } }"}', id="subscription-by-post"),
]


@pytest.mark.parametrize("body", MALFORMED_REQUESTS)
async def test_malformed_requests_are_typed_and_write_nothing(api, sync_engine, stocked, body):
    import json

    document = fill(RECEIVE, stocked)
    several = f"{document.replace('mutation', 'mutation A', 1)} " \
              f"{document.replace('mutation', 'mutation B', 1)}"
    body = body.replace(MUTATION, json.dumps(document).encode()).replace(
        b"<several>", json.dumps(several).encode()).replace(b"<raw>", document.encode())
    with sync_engine.connect() as conn:
        before = snapshot(conn, [stocked[SKU]])
    response = await api.http("POST", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", response.text
    assert len(response.text) < 400 and "9999" not in response.text, response.text
    with sync_engine.connect() as conn:
        assert snapshot(conn, [stocked[SKU]]) == before
    assert (await api.gql("{ __typename }")) == {"__typename": "Query"}


# CSV files `inventory import levels` refuses, writing nothing at all (the good
# rows of a file with a bad one included): (file, exit status, what the report
# says). Exit 2: the file as a whole (its header); 1: rows, each by line number.
GOOD_ROW = "<sku>,<a>,1"
BAD_FILES = [
    pytest.param("sku,location,onHand\n<sku>,<a>,1\n", 2, "the header must be",
                 id="csv-wrong-header"),
    pytest.param("sku,locationCode,onHand,delta\n<sku>,<a>,1,1\n", 2, "the header must be",
                 id="csv-onhand-and-delta"),
    pytest.param("", 2, "the header must be", id="csv-empty-file"),
    pytest.param(f"sku,locationCode,onHand\n{GOOD_ROW}\n<sku>,<a>,ten\n", 1,
                 "line 3: onHand 'ten' is not a whole number", id="csv-non-numeric"),
    pytest.param("sku,locationCode,delta\n<sku>,<a>,1.5\n", 1,
                 "line 2: delta '1.5' is not a whole number", id="csv-fraction"),
    pytest.param(f"sku,locationCode,onHand\n{GOOD_ROW}\nNOPE-1,<a>,1\n", 1,
                 "line 3: unknown sku 'NOPE-1'", id="csv-unknown-sku"),
    pytest.param(f"sku,locationCode,onHand\n{GOOD_ROW}\n<sku>,NOPE-1,1\n", 1,
                 "line 3: unknown locationCode 'NOPE-1'", id="csv-unknown-location"),
    pytest.param("sku,locationCode,onHand\n<sku>,<a>,-1\n", 1, "line 2: onHand",
                 id="csv-negative-on-hand"),
    pytest.param("sku,locationCode,delta\n<sku>,<a>,0\n", 1, "line 2: delta",
                 id="csv-zero-delta"),
    pytest.param(f"sku,locationCode,onHand\n<sku>,<a>,{BIG}\n", 1, "line 2: onHand",
                 id="csv-above-10^12"),
    pytest.param("sku,locationCode,onHand\n<sku>,<a>\n", 1, "line 2: wrong number of fields",
                 id="csv-short-row"),
]


@pytest.mark.parametrize("text, status, says", BAD_FILES)
async def test_bad_csv_imports_nothing(sync_engine, database_url, stocked, tmp_path, text,
                                       status, says):
    from .support import run_cli

    for placeholder, name in stocked.items():
        text = text.replace(placeholder, name)
    path = tmp_path / "levels.csv"
    path.write_text(text)
    with sync_engine.connect() as conn:
        before = snapshot(conn, [stocked[SKU]])
    done = run_cli("import", "levels", str(path), env={"INVENTORY_DATABASE_URL": database_url})
    assert done.returncode == status, done.stdout + done.stderr
    assert says in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    with sync_engine.connect() as conn:
        assert snapshot(conn, [stocked[SKU]]) == before


# Exports without the inventory:read scope (or any credential) are refused.
@pytest.mark.parametrize("path", ["/export/levels.csv", "/export/movements.jsonl?since=2000-01-01T00:00:00Z"])
@pytest.mark.parametrize("scopes, status", [((), 401), (("inventory:write",), 403)],
                         ids=["no-credential", "write-only"])
async def test_export_without_scope_is_refused(api, database_url, path, scopes, status):
    from .support import create_api_key

    credential = create_api_key(database_url, scopes=scopes) if scopes else ""
    response = await api.http("GET", path, headers={"Authorization": f"Bearer {credential}"
                                                    if credential else ""})
    assert response.status_code == status, response.text
    assert response.json()["data"] is None


# Bulk requests under ALL_OR_NOTHING with one bad line: every line answered,
# the bad one FAILED with its code, nothing written.
BAD_BULK = [
    pytest.param("bulkAdjustStock", [{"sku": SKU, "locationCode": A, "delta": -11},
                                     {"sku": SKU, "locationCode": B, "delta": 1}],
                 "INSUFFICIENT_STOCK", id="bulk-adjust-below-zero"),
    pytest.param("bulkAdjustStock", [{"sku": SKU, "locationCode": B, "delta": 1},
                                     {"sku": "NOPE-1", "locationCode": A, "delta": 1}],
                 "NOT_FOUND", id="bulk-unknown-sku"),
    pytest.param("bulkSetStock", [{"sku": SKU, "locationCode": B, "onHand": 3},
                                  {"sku": SKU, "locationCode": A, "onHand": -1}],
                 "INVALID_INPUT", id="bulk-negative-on-hand"),
    pytest.param("bulkSetStock", [{"sku": SKU, "locationCode": B, "onHand": 3},
                                  {"sku": SKU, "locationCode": B, "onHand": 4}],
                 "INVALID_INPUT", id="bulk-same-level-twice"),
    pytest.param("bulkSetStock", [{"sku": SKU, "locationCode": B, "onHand": 3},
                                  {"sku": SKU, "locationCode": "NOPE-1", "onHand": 4}],
                 "NOT_FOUND", id="bulk-unknown-location"),
]


@pytest.mark.parametrize("mutation, lines, code", BAD_BULK)
async def test_bad_bulk_line_writes_nothing_under_all_or_nothing(api, sync_engine, stocked,
                                                                 mutation, lines, code):
    with sync_engine.connect() as conn:
        before = snapshot(conn, [stocked[SKU]])
    result = await api.mutate(mutation, {"lines": fill(lines, stocked)},
                              "... on BulkStockResult { applied failed lines { status "
                              "error { code } } }")
    assert result["__typename"] == "BulkStockResult", result
    assert result["applied"] == 0 and result["failed"] == 1, result
    assert [l["error"]["code"] for l in result["lines"] if l["error"]] == [code]
    assert {l["status"] for l in result["lines"]} == {"FAILED", "NOT_APPLIED"}
    with sync_engine.connect() as conn:
        assert snapshot(conn, [stocked[SKU]]) == before


async def test_more_than_ten_thousand_bulk_lines_are_refused(start_api_server, graphql,
                                                             sync_engine, stocked):
    # 10,001 lines do not fit the default 256 KiB body: this server takes 4 MiB.
    with start_api_server("bulk-limit", INVENTORY_MAX_BODY_BYTES=str(4 << 20)) as server:
        api = graphql(server)
        with sync_engine.connect() as conn:
            before = snapshot(conn, [stocked[SKU]])
        for mutation, field in (("bulkSetStock", "onHand"), ("bulkAdjustStock", "delta")):
            line = {"sku": stocked[SKU], "locationCode": stocked[A], field: 1}
            result = await api.mutate(mutation, {"lines": [line] * 10_001})
            assert (result["code"], result["field"]) == ("INVALID_INPUT", "lines"), result
        with sync_engine.connect() as conn:
            assert snapshot(conn, [stocked[SKU]]) == before
