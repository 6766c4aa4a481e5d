"""Reserve by SKU: reserveStock lines given by channel, allocated over the
channel's locations (PRIORITY or MOST_AVAILABLE, with or without splitting),
all lines or none, exact under concurrency."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from inventory.domain.allocation import Allocation, AllocationStrategy, allocate

from .support import unique
from .test_api_channels import make_channel
from .test_concurrency import _until_final

FIELDS = ("... on Reservation { id status lines { lineNumber sku locationCode quantity } } "
          "... on InsufficientStockError { shortages { sku locationCode channelCode requested "
          "available } }")
PRIORITY, MOST = AllocationStrategy.PRIORITY, AllocationStrategy.MOST_AVAILABLE


def test_allocate_follows_the_strategy():
    offered = [("a", 2), ("b", 5), ("c", 3)]
    assert allocate(2, offered, Allocation(PRIORITY)) == [("a", 2)]
    assert allocate(3, offered, Allocation(PRIORITY)) == [("b", 3)]
    assert allocate(3, offered, Allocation(MOST)) == [("b", 3)]
    assert allocate(6, offered, Allocation(PRIORITY)) is None
    assert allocate(6, offered, Allocation(PRIORITY, True)) == [("a", 2), ("b", 4)]
    assert allocate(9, offered, Allocation(MOST, True)) == [("b", 5), ("c", 3), ("a", 1)]
    assert allocate(11, offered, Allocation(MOST, True)) is None
    assert allocate(1, [("a", 3), ("b", 3)], Allocation(MOST)) == [("a", 1)]  # tie: order


async def stocked_channel(api, stocked_level, quantities: list[int]):
    """A sku with quantities[i] at location i, and a channel of those locations in order."""
    sku, *codes = await stocked_level(0, locations=len(quantities))
    for code, quantity in zip(codes, quantities):
        if quantity:
            await api.receive(sku, code, quantity)
    return sku, codes, await make_channel(api, codes)


def taken(reservation: dict) -> list[tuple[str, int]]:
    return [(l["locationCode"], l["quantity"]) for l in reservation["lines"]]


async def test_priority_and_most_available_with_and_without_split(api, stocked_level):
    sku, (a, b, c), channel = await stocked_channel(api, stocked_level, [2, 5, 3])
    line = {"sku": sku, "channelCode": channel, "quantity": 3}
    first = await api.succeed("reserveStock", {"lines": [line]}, FIELDS)
    assert taken(first) == [(b, 3)]  # PRIORITY: a has only 2
    most = await api.succeed("reserveStock", {"lines": [{**line, "quantity": 1}],
                                              "allocation": {"strategy": "MOST_AVAILABLE"}},
                             FIELDS)
    assert taken(most) == [(c, 1)]  # now a 2, b 2, c 3
    split = await api.succeed("reserveStock", {"lines": [{**line, "quantity": 5}],
                                               "allocation": {"allowSplit": True}}, FIELDS)
    assert taken(split) == [(a, 2), (b, 2), (c, 1)]
    assert [l["lineNumber"] for l in split["lines"]] == [0, 1, 2]
    for code, reserved in ((a, 2), (b, 5), (c, 2)):
        assert (await api.level(sku, code))["reserved"] == reserved
    short = await api.mutate("reserveStock", {"lines": [{**line, "quantity": 2}]}, FIELDS)
    assert short["code"] == "INSUFFICIENT_STOCK"
    assert short["shortages"] == [{"sku": sku, "locationCode": channel, "channelCode": channel,
                                   "requested": 2, "available": 1}]
    short = await api.mutate("reserveStock", {"lines": [{**line, "quantity": 2}],
                                              "allocation": {"allowSplit": True}}, FIELDS)
    assert short["shortages"][0]["available"] == 1


async def test_all_lines_or_none_across_channel_and_location_lines(api, stocked_level):
    sku, (a, b), channel = await stocked_channel(api, stocked_level, [3, 3])
    other, o = await stocked_level(1)
    # The line at a takes a's 3 first; the channel line then has only b's 3.
    made = await api.succeed("reserveStock", {"lines": [
        {"sku": sku, "channelCode": channel, "quantity": 3},
        {"sku": sku, "locationCode": a, "quantity": 3}]}, FIELDS)
    assert taken(made) == [(b, 3), (a, 3)]
    await api.succeed("releaseReservation", {"reservationId": made["id"]})
    refused = await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "channelCode": channel, "quantity": 2},
        {"sku": other, "locationCode": o, "quantity": 2}]}, FIELDS)
    assert refused["code"] == "INSUFFICIENT_STOCK"
    assert [(s["sku"], s["available"]) for s in refused["shortages"]] == [(other, 1)]
    for code in (a, b):
        assert (await api.level(sku, code))["reserved"] == 0  # nothing of the good line


async def test_unknown_channel_and_ambiguous_lines_are_typed(api, stocked_level):
    sku, (a,), channel = await stocked_channel(api, stocked_level, [1])
    unknown = await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "channelCode": "NO-SUCH-CHANNEL", "quantity": 1}]})
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "lines[0].channelCode")
    both = await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "channelCode": channel, "locationCode": a, "quantity": 1}]})
    assert (both["code"], both["field"]) == ("INVALID_INPUT", "lines[0]")
    neither = await api.mutate("reserveStock", {"lines": [{"sku": sku, "quantity": 1}]})
    assert (neither["code"], neither["field"]) == ("INVALID_INPUT", "lines[0]")


async def test_a_keyed_channel_reservation_replays(api, stocked_level):
    sku, (a, b), channel = await stocked_channel(api, stocked_level, [1, 1])
    body = {"lines": [{"sku": sku, "channelCode": channel, "quantity": 2}],
            "allocation": {"allowSplit": True}, "idempotencyKey": unique("k")}
    first = await api.succeed("reserveStock", body, FIELDS)
    again = await api.succeed("reserveStock", body, FIELDS)
    assert again == first and taken(first) == [(a, 1), (b, 1)]
    reused = await api.mutate("reserveStock", {**body, "allocation": {"allowSplit": False}})
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_100_concurrent_reservations_by_sku_against_10_units_in_3_locations(
        api, sync_engine, stocked_level, scrape_metrics):
    """As the 100-against-10 test, through a channel of 3 locations (4 + 3 + 3):
    exactly 10 succeed, every location ends fully reserved, and PostgreSQL never
    had to break a deadlock (the levels are locked in key order)."""
    sku, codes, channel = await stocked_channel(api, stocked_level, [4, 3, 3])
    before = scrape_metrics(api.url)
    strategies = ["PRIORITY", "MOST_AVAILABLE"]
    results = await asyncio.gather(*[
        _until_final(api, "reserveStock", {
            "lines": [{"sku": sku, "channelCode": channel, "quantity": 1}],
            "allocation": {"strategy": strategies[n % 2]}}, FIELDS)
        for n in range(100)])
    after = scrape_metrics(api.url)
    kinds = [r["__typename"] for r in results]
    assert kinds.count("Reservation") == 10, kinds
    assert kinds.count("InsufficientStockError") == 90
    for code, quantity in zip(codes, [4, 3, 3]):
        assert await api.level(sku, code) == {"onHand": quantity, "reserved": quantity,
                                              "available": 0, "version": quantity + 1}
    retries = "inventory_tx_retries_total"
    assert after.count(retries, sqlstate="40P01") == before.count(retries, sqlstate="40P01")
    with sync_engine.connect() as conn:
        active = conn.execute(text(
            "SELECT COALESCE(SUM(rl.quantity), 0) FROM reservation_lines rl "
            "JOIN reservations r ON r.id = rl.reservation_id JOIN items i ON i.id = rl.item_id "
            "WHERE i.sku = :s AND r.status = 'ACTIVE'"), {"s": sku}).scalar()
    assert active == 10
