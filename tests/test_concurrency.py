"""Invariants under concurrency, through the HTTP API against real PostgreSQL."""
from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from .support import RESERVATION_FIELDS, unique

RETRYABLE = {"TRANSACTION_CONFLICT", "UNAVAILABLE"}


async def _until_final(api, name, body, selection="", retried: list | None = None):
    """As a well-behaved client: retry retryable errors with the same idempotency
    key. Each retryable answer is appended to `retried` (the tests show them)."""
    body = {**body, "idempotencyKey": unique("k")}
    for _ in range(20):
        result = await api.mutate(name, body, selection)
        if result.get("code") not in RETRYABLE:
            return result
        if retried is not None:
            retried.append(result["code"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} still retryable after 20 tries: {result}")


async def test_100_concurrent_reservations_against_10_units(api, sync_engine, stocked_level):
    sku, code = await stocked_level(10)
    body = {"lines": [{"sku": sku, "locationCode": code, "quantity": 1}]}
    results = await asyncio.gather(*[
        _until_final(api, "reserveStock", body, RESERVATION_FIELDS) for _ in range(100)])
    kinds = [r["__typename"] for r in results]
    assert kinds.count("Reservation") == 10, kinds
    assert kinds.count("InsufficientStockError") == 90
    assert await api.level(sku, code) == {"onHand": 10, "reserved": 10, "available": 0,
                                          "version": 11}
    with sync_engine.connect() as conn:
        active = conn.execute(text(
            "SELECT count(*) FROM reservation_lines rl JOIN reservations r "
            "ON r.id = rl.reservation_id JOIN items i ON i.id = rl.item_id "
            "WHERE i.sku = :s AND r.status = 'ACTIVE'"), {"s": sku}).scalar()
    assert active == 10


async def test_transfers_both_ways_conserve_total_without_deadlocks(api, stocked_level,
                                                                    scrape_metrics):
    """Opposite transfers lock their two levels in one order: they queue, and
    PostgreSQL never has to break a deadlock (40P01, which the runner would
    retry unseen: the server's retry counter shows it)."""
    sku, a, b = await stocked_level(50, locations=2)
    rng = random.Random(7)
    moves = [(a, b) if rng.random() < 0.5 else (b, a) for _ in range(80)]
    before = scrape_metrics(api.url)
    retried: list[str] = []
    results = await asyncio.gather(*[
        _until_final(api, "transferStock", {"sku": sku, "fromLocationCode": src,
                                            "toLocationCode": dst,
                                            "quantity": rng.randint(1, 15)},
                     "... on Transfer { quantity }", retried)
        for src, dst in moves])
    after = scrape_metrics(api.url)
    kinds = [r["__typename"] for r in results]
    assert set(kinds) <= {"Transfer", "InsufficientStockError"}, results
    assert kinds.count("Transfer") > 0
    total = (await api.level(sku, a))["onHand"] + (await api.level(sku, b))["onHand"]
    assert total == 100
    retries = "inventory_tx_retries_total"  # by SQLSTATE; exported: see the metrics test
    assert after.count(retries, sqlstate="40P01") == before.count(retries, sqlstate="40P01")
    assert after.value("inventory_tx_total") > before.value("inventory_tx_total")
    print(f"client retries: {retried}")


async def test_multi_line_commits_and_releases_in_opposite_orders_do_not_deadlock(
        api, stocked_level, scrape_metrics):
    """Reservations over the same two levels, their lines in opposite orders,
    committed and released at once: each takes the levels (and their items'
    rows) in key order, not line order, so they queue and PostgreSQL never
    breaks a deadlock (40P01, retried unseen by the runner: the server's
    counter shows it)."""
    x, code = await stocked_level(200)
    y = await api.item()
    await api.receive(y, code, 200)
    made = []
    for n in range(40):
        pair = [{"sku": x, "locationCode": code, "quantity": 1},
                {"sku": y, "locationCode": code, "quantity": 1}]
        made.append(await api.succeed("reserveStock", {"lines": pair[::-1] if n % 2 else pair},
                                      "... on Reservation { id }"))
    before = scrape_metrics(api.url)
    retried: list[str] = []
    results = await asyncio.gather(*[
        _until_final(api, "commitReservation" if n % 4 < 2 else "releaseReservation",
                     {"reservationId": r["id"]}, "... on Reservation { status }", retried)
        for n, r in enumerate(made)])
    after = scrape_metrics(api.url)
    assert sorted(r["status"] for r in results) == ["COMMITTED"] * 20 + ["RELEASED"] * 20, results
    for sku in (x, y):
        level = await api.level(sku, code)
        assert (level["onHand"], level["reserved"]) == (180, 0), level
    retries = "inventory_tx_retries_total"
    assert after.count(retries, sqlstate="40P01") == before.count(retries, sqlstate="40P01")
    print(f"client retries: {retried}")


async def test_mixed_workload_keeps_invariants_and_every_answer_adds_up(api, stocked_level):
    """Receives, adjustments, reserves, commits and releases interleaved on shared
    levels: every answer is a success or a typed refusal, and each level ends at
    exactly what the successful answers add up to (the ledger audit runs after)."""
    sku, *codes = await stocked_level(20, locations=3)
    rng = random.Random(11)
    expected = {code: 20 for code in codes}

    async def client(n: int) -> None:
        for _ in range(8):
            code = rng.choice(codes)
            op = rng.choice(["receive", "adjust", "reserve", "reserve"])
            if op == "receive":
                quantity = rng.randint(1, 5)
                r = await _until_final(api, "receiveStock", {
                    "sku": sku, "locationCode": code, "quantity": quantity})
                assert r["__typename"] == "StockLevel", r
                expected[code] += quantity
            elif op == "adjust":
                delta = -rng.randint(1, 5)
                r = await _until_final(api, "adjustStock", {
                    "sku": sku, "locationCode": code, "delta": delta})
                assert r["__typename"] in {"StockLevel", "InsufficientStockError"}, r
                if r["__typename"] == "StockLevel":
                    expected[code] += delta
            else:
                quantity = rng.randint(1, 4)
                r = await _until_final(api, "reserveStock", {"lines": [
                    {"sku": sku, "locationCode": code, "quantity": quantity}]},
                    RESERVATION_FIELDS)
                assert r["__typename"] in {"Reservation", "InsufficientStockError"}, r
                if r["__typename"] == "Reservation":
                    finish = rng.choice(["commitReservation", "releaseReservation"])
                    done = await _until_final(api, finish, {"reservationId": r["id"]},
                                              RESERVATION_FIELDS)
                    assert done["__typename"] == "Reservation", done
                    if finish == "commitReservation":
                        expected[code] -= quantity

    await asyncio.gather(*[client(n) for n in range(25)])
    for code in codes:
        assert await api.level(sku, code) == {
            "onHand": expected[code], "reserved": 0, "available": expected[code],
            "version": (await api.level(sku, code))["version"]}


async def test_backorder_fills_and_the_waiting_lines_commits_and_releases_do_not_deadlock(
        api, scrape_metrics):
    """Receipts fill the lines backordered at a level (the receipt holds the
    level, then updates each waiting line) while those same reservations are
    committed in part and released (which take their lines, then change the
    level). Taking a backordered line takes its level first (service/
    reservations.py `_finish`), so both queue on the level and PostgreSQL never
    breaks a deadlock (40P01, retried unseen by the runner: the server's
    counter shows it). Every answer is final or typed, and the level adds up."""
    sku, code = unique("SKU"), await api.location()
    await api.succeed("createItem", {"sku": sku, "name": "Backordered " + sku,
                                     "backorderLimit": 1000})
    made = [await api.succeed("reserveStock", {"lines": [
        {"sku": sku, "locationCode": code, "quantity": 2}]}, "... on Reservation { id }")
        for _ in range(40)]
    before = scrape_metrics(api.url)
    retried: list[str] = []
    line = "... on Reservation { status }"
    finishing = [
        _until_final(api, "releaseReservation", {"reservationId": r["id"]}, line, retried)
        if n % 2 else
        _until_final(api, "commitReservation", {"reservationId": r["id"], "lines": [
            {"lineNumber": 0, "quantity": 1}]}, line, retried)
        for n, r in enumerate(made)]
    # Each receipt fills five waiting lines, one at a time, holding the level.
    receipts = [_until_final(api, "receiveStock", {"sku": sku, "locationCode": code,
                                                   "quantity": 10}, "", retried)
                for _ in range(8)]
    results = await asyncio.gather(*receipts, *finishing)
    after = scrape_metrics(api.url)
    received, finished = results[:8], results[8:]
    assert {r["__typename"] for r in received} == {"StockLevel"}, received
    released = [r for r in finished[1::2]]
    assert all(r.get("status") == "RELEASED" for r in released), released
    commits = finished[0::2]
    # A commit takes filled units only: one whose line was not filled yet is refused.
    assert all(r.get("status") == "ACTIVE" or r.get("code") == "RESERVATION_BACKORDERED"
               for r in commits), commits
    shipped = sum(r.get("status") == "ACTIVE" for r in commits)
    level = await api.level(sku, code)
    assert level["onHand"] == 80 - shipped, (level, shipped)
    retries = "inventory_tx_retries_total"
    print(f"partial commits {shipped}/20, 40P01 re-runs "
          f"{after.count(retries, sqlstate='40P01') - before.count(retries, sqlstate='40P01')}, "
          f"client retries: {len(retried)}")
    assert after.count(retries, sqlstate="40P01") == before.count(retries, sqlstate="40P01")


async def test_receipts_of_several_levels_and_single_receipts_do_not_deadlock(
        api, scrape_metrics):
    """A receipt of an inbound shipment at two locations of one item changes both
    levels (and the item's row with each), while receiveStock changes one of
    them: unless the receipt locks its levels first, in key order, it holds one
    level and the item row while waiting for the other level, which a
    receiveStock holds while waiting for the item row, and PostgreSQL breaks a
    deadlock (40P01, retried unseen by the runner: the server's counter shows
    it). Every receipt lands, and the levels add up."""
    sku, east, west = await api.item(), await api.location(), await api.location()
    shipments = [await api.succeed("createInboundShipment", {
        "reference": unique("po"), "lines": [
            {"sku": sku, "locationCode": east, "quantity": 3},
            {"sku": sku, "locationCode": west, "quantity": 3}]}, "... on InboundShipment { id }")
        for _ in range(12)]
    before = scrape_metrics(api.url)
    retried: list[str] = []
    receipts = [_until_final(api, "receiveInbound", {"shipmentId": s["id"], "lines": [
        {"sku": sku, "locationCode": east, "quantity": 3},
        {"sku": sku, "locationCode": west, "quantity": 3}]}, "", retried) for s in shipments]
    singles = [_until_final(api, "receiveStock", {"sku": sku, "locationCode": code,
                                                  "quantity": 1}, "", retried)
               for n in range(24) for code in ((east, west)[n % 2],)]
    results = await asyncio.gather(*receipts, *singles)
    after = scrape_metrics(api.url)
    assert {r["__typename"] for r in results[:12]} == {"InboundReceipt"}, results[:12]
    assert {r["__typename"] for r in results[12:]} == {"StockLevel"}, results[12:]
    for code in (east, west):
        assert (await api.level(sku, code))["onHand"] == 12 * 3 + 12
    retries = "inventory_tx_retries_total"
    print(f"40P01 re-runs {after.count(retries, sqlstate='40P01') - before.count(retries, sqlstate='40P01')}, "
          f"client retries: {len(retried)}")
    assert after.count(retries, sqlstate="40P01") == before.count(retries, sqlstate="40P01")
