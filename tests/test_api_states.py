"""Quantity states beyond on hand and reserved: moveStock between AVAILABLE and
the named states, adjustStock out of a named state, what available means, the
ledger row each writes, and the audit over every state."""
from __future__ import annotations

from sqlalchemy import text

from inventory.db.audit import audit
from inventory.domain.quantities import NAMES, StockState, camel

STATES = " ".join(camel(n) for n in NAMES)
LEVEL = f"... on StockLevel {{ sku locationCode {STATES} available version }}"
SHORT = ("... on InsufficientQuantityError { state requested held } "
         "... on InsufficientStockError { shortages { requested available } }")


async def _move(api, sku, code, source, target, quantity, **extra):
    return await api.mutate("moveStock", {"sku": sku, "locationCode": code, "from": source,
                                          "to": target, "quantity": quantity, **extra},
                            LEVEL + " " + SHORT)


async def test_move_sets_units_aside_and_back_without_changing_on_hand(api, stocked_level):
    sku, code = await stocked_level(10)
    damaged = await _move(api, sku, code, "AVAILABLE", "DAMAGED", 3, reason="dropped")
    assert damaged["__typename"] == "StockLevel", damaged
    assert (damaged["onHand"], damaged["damaged"], damaged["available"]) == (10, 3, 7)
    qc = await _move(api, sku, code, "DAMAGED", "QUALITY_CONTROL", 2)
    assert (qc["damaged"], qc["qualityControl"], qc["available"]) == (1, 2, 7)
    safety = await _move(api, sku, code, "AVAILABLE", "SAFETY_STOCK", 4)
    assert (safety["safetyStock"], safety["available"], safety["incoming"]) == (4, 3, 0)
    back = await _move(api, sku, code, "QUALITY_CONTROL", "AVAILABLE", 2)
    assert (back["onHand"], back["qualityControl"], back["available"], back["version"]) == (
        10, 0, 5, 5)
    page = await api.gql("""query($sku: String, $code: String) {
        movements(sku: $sku, locationCode: $code, first: 1) { nodes {
          kind reason onHandDelta damagedDelta qualityControlDelta qualityControlAfter } } }""",
                         {"sku": sku, "code": code})
    assert page["movements"]["nodes"] == [{
        "kind": "MOVE", "reason": None, "onHandDelta": 0, "damagedDelta": 0,
        "qualityControlDelta": -2, "qualityControlAfter": 0}]


async def test_a_reservation_cannot_take_units_set_aside(api, stocked_level):
    sku, code = await stocked_level(5)
    await _move(api, sku, code, "AVAILABLE", "DAMAGED", 4)
    refused = await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "locationCode": code, "quantity": 2}]},
        "... on InsufficientStockError { shortages { available } }")
    assert (refused["code"], refused["shortages"]) == ("INSUFFICIENT_STOCK", [{"available": 1}])
    transfer = await api.mutate("transferStock", {
        "sku": sku, "fromLocationCode": code, "toLocationCode": await api.location(),
        "quantity": 2})
    assert transfer["code"] == "INSUFFICIENT_STOCK"
    below = await api.mutate("setStock", {"sku": sku, "locationCode": code, "onHand": 3})
    assert below["code"] == "INSUFFICIENT_STOCK"


async def test_moving_more_than_a_state_holds_is_refused_with_what_it_holds(api, stocked_level):
    sku, code = await stocked_level(10)
    await _move(api, sku, code, "AVAILABLE", "DAMAGED", 2)
    refused = await _move(api, sku, code, "DAMAGED", "AVAILABLE", 3)
    assert (refused["__typename"], refused["code"], refused["field"], refused["state"],
            refused["requested"], refused["held"]) == (
        "InsufficientQuantityError", "INSUFFICIENT_QUANTITY", "from", "DAMAGED", 3, 2)
    short = await _move(api, sku, code, "AVAILABLE", "SAFETY_STOCK", 9)
    assert (short["code"], short["shortages"]) == (
        "INSUFFICIENT_STOCK", [{"requested": 9, "available": 8}])


async def test_adjust_takes_units_out_of_a_named_state(api, stocked_level):
    sku, code = await stocked_level(10)
    await _move(api, sku, code, "AVAILABLE", "DAMAGED", 3)
    scrapped = await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -2,
                                                "state": "DAMAGED", "reason": "scrapped"}, LEVEL)
    assert (scrapped["onHand"], scrapped["damaged"], scrapped["available"]) == (8, 1, 7)
    found = await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 4,
                                             "state": "QUALITY_CONTROL"}, LEVEL)
    assert (found["onHand"], found["qualityControl"], found["available"]) == (12, 4, 7)
    refused = await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -2,
                                               "state": "DAMAGED"}, SHORT)
    assert (refused["code"], refused["field"], refused["held"]) == (
        "INSUFFICIENT_QUANTITY", "state", 1)


async def test_move_is_idempotent_with_a_key(api, stocked_level):
    sku, code = await stocked_level(10)
    first = await _move(api, sku, code, "AVAILABLE", "DAMAGED", 1, idempotencyKey="mv-" + sku)
    again = await _move(api, sku, code, "AVAILABLE", "DAMAGED", 1, idempotencyKey="mv-" + sku)
    assert first == again and again["damaged"] == 1
    reused = await _move(api, sku, code, "AVAILABLE", "DAMAGED", 2, idempotencyKey="mv-" + sku)
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_every_movable_state_is_a_stock_state():
    assert list(StockState.__members__) == [
        "AVAILABLE", "DAMAGED", "QUALITY_CONTROL", "SAFETY_STOCK"]


async def test_audit_checks_every_state_against_its_ledger(api, stocked_level, sync_engine):
    sku, code = await stocked_level(10)
    await _move(api, sku, code, "AVAILABLE", "SAFETY_STOCK", 3)
    with sync_engine.begin() as conn:
        item_id = conn.execute(text("SELECT id FROM items WHERE sku = :s"), {"s": sku}).scalar()
        tenant = conn.execute(text("SELECT tenant_id FROM items WHERE sku = :s"),
                              {"s": sku}).scalar()
    with sync_engine.connect() as conn:
        assert audit(conn, tenant_id=tenant).ok
    try:
        with sync_engine.begin() as conn:
            conn.execute(text("UPDATE stock_levels SET safety_stock = 2 WHERE item_id = :i"),
                         {"i": item_id})
        with sync_engine.connect() as conn:
            found = {(d.check, d.item_id) for d in audit(conn, tenant_id=tenant).discrepancies}
        assert ("level differs from ledger sums", item_id) in found
        assert ("conservation per item", item_id) in found
    finally:
        with sync_engine.begin() as conn:
            conn.execute(text("UPDATE stock_levels SET safety_stock = 3 WHERE item_id = :i"),
                         {"i": item_id})
