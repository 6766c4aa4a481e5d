"""Invariants under concurrency, through the HTTP API against real PostgreSQL."""
from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from .support import RESERVATION_FIELDS, assert_invariants, unique

RETRYABLE = {"TRANSACTION_CONFLICT", "UNAVAILABLE"}


async def _until_final(api, name, body, selection=""):
    """As a well-behaved client: retry retryable errors with the same idempotency key."""
    body = {**body, "idempotencyKey": unique("k")}
    for _ in range(20):
        result = await api.mutate(name, body, selection)
        if result.get("code") not in RETRYABLE:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} still retryable after 20 tries: {result}")


async def test_100_concurrent_reservations_against_10_units(api, sync_engine):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 10)
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
    assert_invariants(sync_engine)


async def test_transfers_both_ways_conserve_total(api, sync_engine):
    sku, a, b = await api.item(), await api.location(), await api.location()
    await api.receive(sku, a, 50)
    await api.receive(sku, b, 50)
    rng = random.Random(7)
    moves = [(a, b) if rng.random() < 0.5 else (b, a) for _ in range(80)]
    results = await asyncio.gather(*[
        _until_final(api, "transferStock", {"sku": sku, "fromLocationCode": src,
                                            "toLocationCode": dst,
                                            "quantity": rng.randint(1, 15)})
        for src, dst in moves])
    assert {r["__typename"] for r in results} <= {"Transfer", "InsufficientStockError"}
    assert sum(r["__typename"] == "Transfer" for r in results) > 0
    total = (await api.level(sku, a))["onHand"] + (await api.level(sku, b))["onHand"]
    assert total == 100
    assert_invariants(sync_engine)


async def test_mixed_workload_keeps_invariants(api, sync_engine):
    """Receives, adjustments, reserves, commits and releases interleaved on shared levels."""
    sku = await api.item()
    codes = [await api.location() for _ in range(3)]
    for code in codes:
        await api.receive(sku, code, 20)
    rng = random.Random(11)

    async def client(n: int) -> None:
        for _ in range(8):
            code = rng.choice(codes)
            op = rng.choice(["receive", "adjust", "reserve", "reserve"])
            if op == "receive":
                await _until_final(api, "receiveStock", {"sku": sku, "locationCode": code,
                                                         "quantity": rng.randint(1, 5)})
            elif op == "adjust":
                await _until_final(api, "adjustStock", {"sku": sku, "locationCode": code,
                                                        "delta": -rng.randint(1, 5)})
            else:
                r = await _until_final(api, "reserveStock", {"lines": [
                    {"sku": sku, "locationCode": code, "quantity": rng.randint(1, 4)}]},
                    RESERVATION_FIELDS)
                if r["__typename"] == "Reservation":
                    finish = rng.choice(["commitReservation", "releaseReservation"])
                    done = await _until_final(api, finish, {"reservationId": r["id"]},
                                              RESERVATION_FIELDS)
                    assert done["__typename"] == "Reservation", done

    await asyncio.gather(*[client(n) for n in range(25)])
    for code in codes:
        level = await api.level(sku, code)
        assert level["reserved"] == 0 and level["onHand"] >= 0
    assert_invariants(sync_engine)
