"""receiveStock, adjustStock, setStock, transferStock through the running server."""
from __future__ import annotations

from .support import LEVEL_FIELDS

TRANSFER_FIELDS = ("... on Transfer { sku quantity from { locationCode onHand version } "
                   "to { locationCode onHand version } }")


async def test_receive_creates_level_then_adds(api):
    sku, code = await api.item(), await api.location()
    first = await api.mutate("receiveStock", {"sku": sku, "locationCode": code, "quantity": 4,
                                              "reason": "PO", "reference": "po:1"}, LEVEL_FIELDS)
    assert (first["onHand"], first["available"], first["version"]) == (4, 4, 1)
    second = await api.receive(sku, code, 6)
    assert (second["onHand"], second["version"]) == (10, 2)


async def test_receive_unknown_sku_or_location_is_not_found(api):
    sku, code = await api.item(), await api.location()
    r = await api.mutate("receiveStock", {"sku": "NOPE-1", "locationCode": code, "quantity": 1})
    assert (r["__typename"], r["code"], r["field"]) == ("NotFoundError", "NOT_FOUND", "sku")
    r = await api.mutate("receiveStock", {"sku": sku, "locationCode": "NOPE-1", "quantity": 1})
    assert (r["code"], r["field"]) == ("NOT_FOUND", "locationCode")


async def test_adjust_up_and_down_but_never_below_reserved(api, stocked_level):
    sku, code = await stocked_level(10)
    reserve = await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "locationCode": code, "quantity": 6}]})
    assert reserve["__typename"] == "Reservation"
    down = await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -4},
                            LEVEL_FIELDS)
    assert (down["onHand"], down["reserved"], down["available"]) == (6, 6, 0)
    refused = await api.mutate(
        "adjustStock", {"sku": sku, "locationCode": code, "delta": -1},
        "... on InsufficientStockError { shortages { sku locationCode requested available } }")
    assert refused["code"] == "INSUFFICIENT_STOCK"
    assert refused["shortages"] == [{"sku": sku, "locationCode": code, "requested": 1,
                                     "available": 0}]
    up = await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": 5},
                          LEVEL_FIELDS)
    assert (up["onHand"], up["available"]) == (11, 5)


async def test_adjust_down_on_never_stocked_level_is_insufficient(api):
    sku, code = await api.item(), await api.location()
    r = await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -1})
    assert r["code"] == "INSUFFICIENT_STOCK"


async def test_set_stock_compare_and_swap(api, stocked_level):
    sku, code = await stocked_level(10)
    ok = await api.mutate("setStock", {"sku": sku, "locationCode": code, "onHand": 7,
                                       "compareQuantity": 10, "reason": "count"}, LEVEL_FIELDS)
    assert (ok["onHand"], ok["version"]) == (7, 2)
    stale = await api.mutate(
        "setStock", {"sku": sku, "locationCode": code, "onHand": 3, "compareQuantity": 10},
        "... on QuantityMismatchError { expected actual }")
    assert (stale["code"], stale["expected"], stale["actual"]) == ("QUANTITY_MISMATCH", 10, 7)
    assert (await api.level(sku, code))["onHand"] == 7
    unconditional = await api.mutate("setStock", {"sku": sku, "locationCode": code, "onHand": 0},
                                     LEVEL_FIELDS)
    assert unconditional["onHand"] == 0


async def test_set_stock_on_new_level_and_below_reserved(api):
    sku, code = await api.item(), await api.location()
    created = await api.mutate("setStock", {"sku": sku, "locationCode": code, "onHand": 5,
                                            "compareQuantity": 0}, LEVEL_FIELDS)
    assert (created["onHand"], created["version"]) == (5, 1)
    await api.mutate("reserveStock", {"lines": [{"sku": sku, "locationCode": code,
                                                 "quantity": 4}]})
    below = await api.mutate("setStock", {"sku": sku, "locationCode": code, "onHand": 3})
    assert below["code"] == "INSUFFICIENT_STOCK"
    assert (await api.level(sku, code))["onHand"] == 5


async def test_transfer_moves_stock_atomically(api):
    sku, a, b = await api.item(), await api.location(), await api.location()
    await api.receive(sku, a, 10)
    moved = await api.mutate("transferStock", {"sku": sku, "fromLocationCode": a,
                                               "toLocationCode": b, "quantity": 4},
                             TRANSFER_FIELDS)
    assert moved["from"] == {"locationCode": a, "onHand": 6, "version": 2}
    assert moved["to"] == {"locationCode": b, "onHand": 4, "version": 1}
    too_much = await api.mutate(
        "transferStock", {"sku": sku, "fromLocationCode": a, "toLocationCode": b,
                          "quantity": 7},
        "... on InsufficientStockError { shortages { locationCode requested available } }")
    assert too_much["shortages"] == [{"locationCode": a, "requested": 7, "available": 6}]
    assert (await api.level(sku, a))["onHand"] == 6
    assert (await api.level(sku, b))["onHand"] == 4


async def test_transfer_errors(api):
    sku, a = await api.item(), await api.location()
    same = await api.mutate("transferStock", {"sku": sku, "fromLocationCode": a,
                                              "toLocationCode": a, "quantity": 1})
    assert (same["code"], same["field"]) == ("INVALID_INPUT", "toLocationCode")
    unknown = await api.mutate("transferStock", {"sku": sku, "fromLocationCode": a,
                                                 "toLocationCode": "NOPE-9", "quantity": 1})
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "toLocationCode")


async def test_quantities_above_32_bits_round_trip_over_http(api, stocked_level):
    """Quantity is 64-bit (GraphQL Int is 32): amounts past 2^31 and 2^32 are
    received, reserved, reported and listed exactly."""
    sku, code = await stocked_level(0)
    big = 3 * 2 ** 31 + 7  # 6,442,450,951
    received = await api.succeed("receiveStock", {"sku": sku, "locationCode": code,
                                                  "quantity": big}, LEVEL_FIELDS)
    assert (received["onHand"], received["available"]) == (big, big)
    reserved = await api.succeed("reserveStock", {"lines": [
        {"sku": sku, "locationCode": code, "quantity": 2 ** 32}]},
        "... on Reservation { lines { quantity } }")
    assert reserved["lines"] == [{"quantity": 2 ** 32}]
    assert await api.level(sku, code) == {"onHand": big, "reserved": 2 ** 32,
                                          "available": big - 2 ** 32, "version": 2}
    listed = await api.gql("""query($s: String!) { movements(sku: $s) {
        nodes { kind onHandDelta reservedDelta onHandAfter } } }""", {"s": sku})
    assert listed["movements"]["nodes"] == [
        {"kind": "RESERVE", "onHandDelta": 0, "reservedDelta": 2 ** 32, "onHandAfter": big},
        {"kind": "RECEIVE", "onHandDelta": big, "reservedDelta": 0, "onHandAfter": big}]
