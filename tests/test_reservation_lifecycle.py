"""The reservation lifecycle: extendReservation, partial commit and release,
and reservations found by reference. Every change writes its ledger rows; the
ledger audit runs after each test (tests/conftest.py)."""
from __future__ import annotations

import asyncio
from datetime import datetime

from .support import unique

LINES = ("... on Reservation { id status expiresAt reference lines { lineNumber sku "
         "locationCode quantity committedQuantity releasedQuantity heldQuantity } }")
NOT_ACTIVE = "... on ReservationNotActiveError { status }"


def held(reservation: dict) -> list[tuple[int, int, int, int]]:
    """(quantity, committed, released, held) per line, in line order."""
    return [(l["quantity"], l["committedQuantity"], l["releasedQuantity"], l["heldQuantity"])
            for l in reservation["lines"]]


async def two_line_order(api, stocked_level, reference=None):
    sku, a, b = await stocked_level(10, locations=2)
    made = await api.succeed("reserveStock", {
        "lines": [{"sku": sku, "locationCode": a, "quantity": 4},
                  {"sku": sku, "locationCode": b, "quantity": 6}],
        "reference": reference}, LINES)
    assert [l["lineNumber"] for l in made["lines"]] == [0, 1]
    return sku, a, b, made


async def test_partial_commit_ships_part_and_keeps_the_rest_active(api, stocked_level):
    sku, a, b, r = await two_line_order(api, stocked_level)
    part = await api.succeed("commitReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 0, "quantity": 1}, {"lineNumber": 1}]}, LINES)
    assert part["status"] == "ACTIVE"
    assert held(part) == [(4, 1, 0, 3), (6, 6, 0, 0)]
    assert await api.level(sku, a) == {"onHand": 9, "reserved": 3, "available": 6,
                                       "version": 3}
    assert await api.level(sku, b) == {"onHand": 4, "reserved": 0, "available": 4,
                                       "version": 3}
    too_much = await api.mutate("commitReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 0, "quantity": 4}]})
    assert (too_much["code"], too_much["field"]) == ("INVALID_INPUT", "lines[0].quantity")
    emptied = await api.mutate("commitReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 1, "quantity": 1}]})
    assert emptied["code"] == "INVALID_INPUT"  # line 1 holds nothing any more
    rest = await api.succeed("commitReservation", {"reservationId": r["id"]}, LINES)
    assert rest["status"] == "COMMITTED"
    assert held(rest) == [(4, 4, 0, 0), (6, 6, 0, 0)]
    assert await api.level(sku, a) == {"onHand": 6, "reserved": 0, "available": 6,
                                       "version": 4}
    kinds = await api.gql("""query($sku: String!, $a: String!) {
        movements(sku: $sku, locationCode: $a) { nodes { kind onHandDelta reservedDelta
          reservationId } } }""", {"sku": sku, "a": a})
    assert [(m["kind"], m["onHandDelta"], m["reservedDelta"])
            for m in kinds["movements"]["nodes"]] == [
        ("COMMIT", -3, -3), ("COMMIT", -1, -1), ("RESERVE", 0, 4), ("RECEIVE", 10, 0)]
    assert {m["reservationId"] for m in kinds["movements"]["nodes"][:3]} == {r["id"]}


async def test_partial_release_then_the_last_part_ends_it(api, stocked_level):
    sku, a, b, r = await two_line_order(api, stocked_level)
    part = await api.succeed("releaseReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 1, "quantity": 5}]}, LINES)
    assert (part["status"], held(part)) == ("ACTIVE", [(4, 0, 0, 4), (6, 0, 5, 1)])
    assert (await api.level(sku, b))["reserved"] == 1
    shipped = await api.succeed("commitReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 0}]}, LINES)
    assert shipped["status"] == "ACTIVE"
    last = await api.succeed("releaseReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 1}]}, LINES)
    assert (last["status"], held(last)) == ("RELEASED", [(4, 4, 0, 0), (6, 0, 6, 0)])
    assert await api.level(sku, a) == {"onHand": 6, "reserved": 0, "available": 6,
                                       "version": 3}
    assert await api.level(sku, b) == {"onHand": 10, "reserved": 0, "available": 10,
                                       "version": 4}
    again = await api.mutate("commitReservation", {"reservationId": r["id"]}, NOT_ACTIVE)
    assert (again["code"], again["status"]) == ("RESERVATION_NOT_ACTIVE", "RELEASED")


async def test_bad_parts_write_nothing(api, stocked_level):
    sku, a, b, r = await two_line_order(api, stocked_level)
    for parts, field in [([{"lineNumber": 7}], "lines[0].lineNumber"),
                         ([{"lineNumber": 0, "quantity": 5}], "lines[0].quantity"),
                         ([{"lineNumber": 0, "quantity": 0}], "lines[0].quantity"),
                         ([{"lineNumber": 0}, {"lineNumber": 0}], "lines[1].lineNumber"),
                         ([], "lines")]:
        for name in ("commitReservation", "releaseReservation"):
            bad = await api.mutate(name, {"reservationId": r["id"], "lines": parts,
                                          "idempotencyKey": unique("k")})
            assert (bad["code"], bad["field"]) == ("INVALID_INPUT", field), (parts, bad)
    read = await api.gql("query($id: ID!) { reservation(id: $id) { status lines { "
                         "heldQuantity } } }", {"id": r["id"]})
    assert read["reservation"] == {"status": "ACTIVE",
                                   "lines": [{"heldQuantity": 4}, {"heldQuantity": 6}]}
    assert (await api.level(sku, a))["version"] == 2


async def test_concurrent_partial_commits_never_take_more_than_held(api, stocked_level):
    sku, a = await stocked_level(10)
    r = await api.succeed("reserveStock", {"lines": [{"sku": sku, "locationCode": a,
                                                      "quantity": 10}]}, LINES)

    async def ship_one():
        for _ in range(30):
            got = await api.mutate("commitReservation", {
                "reservationId": r["id"], "lines": [{"lineNumber": 0, "quantity": 3}],
                "idempotencyKey": unique("k")}, NOT_ACTIVE)
            if got.get("code") not in ("TRANSACTION_CONFLICT", "UNAVAILABLE"):
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(got)

    results = await asyncio.gather(*[ship_one() for _ in range(8)])
    assert [x["__typename"] for x in results].count("Reservation") == 3, results
    assert await api.level(sku, a) == {"onHand": 1, "reserved": 1, "available": 0,
                                       "version": 5}


async def test_extend_sets_a_new_ttl_from_now(api, stocked_level):
    sku, a, b, r = await two_line_order(api, stocked_level)
    longer = await api.succeed("extendReservation", {"reservationId": r["id"],
                                                     "ttlSeconds": 7200}, LINES)
    before = datetime.fromisoformat(r["expiresAt"])
    after = datetime.fromisoformat(longer["expiresAt"])
    assert 3600 < (after - before).total_seconds() < 7300  # the default TTL is 900 s
    assert longer["status"] == "ACTIVE" and held(longer) == held(r)
    assert (await api.level(sku, a))["version"] == 2  # no stock moved: no ledger row
    for ttl in (-5, 0, 10 ** 8):
        bad = await api.mutate("extendReservation", {"reservationId": r["id"],
                                                     "ttlSeconds": ttl})
        assert (bad["code"], bad["field"]) == ("INVALID_INPUT", "ttlSeconds"), bad
    await api.succeed("releaseReservation", {"reservationId": r["id"]})
    late = await api.mutate("extendReservation", {"reservationId": r["id"], "ttlSeconds": 60},
                            NOT_ACTIVE)
    assert (late["code"], late["status"]) == ("RESERVATION_NOT_ACTIVE", "RELEASED")


async def test_an_expired_reservation_cannot_be_extended(api, stocked_level):
    sku, a = await stocked_level(2)
    r = await api.succeed("reserveStock", {"lines": [{"sku": sku, "locationCode": a,
                                                      "quantity": 2}], "ttlSeconds": 1},
                          LINES)
    await asyncio.sleep(1.5)
    late = await api.mutate("extendReservation", {"reservationId": r["id"],
                                                  "ttlSeconds": 600}, NOT_ACTIVE)
    assert (late["code"], late["status"]) == ("RESERVATION_NOT_ACTIVE", "EXPIRED")
    shipped = await api.mutate("commitReservation", {"reservationId": r["id"], "lines": [
        {"lineNumber": 0, "quantity": 1}]}, NOT_ACTIVE)
    assert (shipped["code"], shipped["status"]) == ("RESERVATION_NOT_ACTIVE", "EXPIRED")


async def test_reservations_found_by_reference_newest_first(api, stocked_level):
    sku, a = await stocked_level(10)
    order = unique("order")
    made = []
    for quantity in (1, 2, 3):
        made.append(await api.succeed("reserveStock", {
            "lines": [{"sku": sku, "locationCode": a, "quantity": quantity}],
            "reference": order}, LINES))
    await api.succeed("reserveStock", {"lines": [{"sku": sku, "locationCode": a,
                                                  "quantity": 1}], "reference": unique("o")})
    await api.succeed("releaseReservation", {"reservationId": made[0]["id"]})
    query = """query($ref: String, $status: ReservationStatus, $after: String) {
        reservations(first: 2, after: $after, filter: {reference: $ref, status: $status}) {
          nodes { id reference status } pageInfo { hasNextPage endCursor } } }"""
    page = (await api.gql(query, {"ref": order}))["reservations"]
    assert [n["id"] for n in page["nodes"]] == [made[2]["id"], made[1]["id"]]
    assert page["pageInfo"]["hasNextPage"]
    rest = (await api.gql(query, {"ref": order, "after": page["pageInfo"]["endCursor"]}
                          ))["reservations"]
    assert [(n["id"], n["status"]) for n in rest["nodes"]] == [(made[0]["id"], "RELEASED")]
    assert not rest["pageInfo"]["hasNextPage"]
    active = (await api.gql(query, {"ref": order, "status": "ACTIVE"}))["reservations"]
    assert {n["id"] for n in active["nodes"]} == {made[1]["id"], made[2]["id"]}
    none = (await api.gql(query, {"ref": unique("nothing")}))["reservations"]
    assert none["nodes"] == []


async def test_keyed_extend_and_partial_commit_replay(api, stocked_level):
    sku, a, b, r = await two_line_order(api, stocked_level)
    extend = {"reservationId": r["id"], "ttlSeconds": 120, "idempotencyKey": unique("k")}
    first = await api.succeed("extendReservation", extend, LINES)
    assert await api.succeed("extendReservation", extend, LINES) == first
    part = {"reservationId": r["id"], "lines": [{"lineNumber": 0, "quantity": 1}],
            "idempotencyKey": unique("k")}
    shipped = await api.succeed("commitReservation", part, LINES)
    assert await api.succeed("commitReservation", part, LINES) == shipped  # once only
    assert (await api.level(sku, a))["onHand"] == 9
