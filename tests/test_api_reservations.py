"""reserveStock, commitReservation, releaseReservation and expiry."""
from __future__ import annotations

import asyncio
import time

from sqlalchemy import create_engine, text

from inventory.db import migrate
from inventory.domain import ids

from .support import RESERVATION_FIELDS, create_database, in_process_app


async def test_multi_line_reserve_then_commit_ships(api, stocked_level):
    sku, a, b = await stocked_level(10, locations=2)
    r = await api.mutate("reserveStock", {
        "lines": [{"sku": sku, "locationCode": a, "quantity": 3},
                  {"sku": sku, "locationCode": b, "quantity": 5}],
        "reference": "order-1", "ttlSeconds": 600}, RESERVATION_FIELDS)
    assert r["status"] == "ACTIVE" and r["reference"] == "order-1"
    assert [l["quantity"] for l in r["lines"]] == [3, 5]
    assert (await api.level(sku, a))["available"] == 7
    committed = await api.mutate("commitReservation", {"reservationId": r["id"]},
                                 RESERVATION_FIELDS)
    assert committed["status"] == "COMMITTED"
    assert await api.level(sku, a) == {"onHand": 7, "reserved": 0, "available": 7, "version": 3}
    assert (await api.level(sku, b))["onHand"] == 5
    fetched = await api.gql("query($id: ID!) { reservation(id: $id) { status } }",
                            {"id": r["id"]})
    assert fetched["reservation"]["status"] == "COMMITTED"


async def test_release_returns_stock_and_only_active_moves(api, stocked_level):
    sku, a = await stocked_level(5)
    r = await api.mutate("reserveStock", {"lines": [{"sku": sku, "locationCode": a,
                                                     "quantity": 5}]}, RESERVATION_FIELDS)
    released = await api.mutate("releaseReservation", {"reservationId": r["id"]},
                                RESERVATION_FIELDS)
    assert released["status"] == "RELEASED"
    assert await api.level(sku, a) == {"onHand": 5, "reserved": 0, "available": 5, "version": 3}
    for name in ("commitReservation", "releaseReservation"):
        again = await api.mutate(name, {"reservationId": r["id"]},
                                 "... on ReservationNotActiveError { status }")
        assert (again["code"], again["status"]) == ("RESERVATION_NOT_ACTIVE", "RELEASED")


async def test_all_or_nothing_reports_every_short_line(api, stocked_level):
    sku, a, b = await stocked_level(2, locations=2)
    other = await api.item()
    r = await api.mutate("reserveStock", {"lines": [
        {"sku": sku, "locationCode": a, "quantity": 1},
        {"sku": sku, "locationCode": b, "quantity": 3},
        {"sku": other, "locationCode": a, "quantity": 1}]},
        "... on InsufficientStockError { shortages { sku locationCode requested available } }")
    assert r["code"] == "INSUFFICIENT_STOCK"
    assert sorted((s["sku"], s["requested"], s["available"]) for s in r["shortages"]) == sorted(
        [(sku, 3, 2), (other, 1, 0)])
    assert (await api.level(sku, a))["reserved"] == 0  # the satisfiable line was not applied


async def test_unknown_and_malformed_reservation_ids(api):
    from uuid import uuid4

    missing = await api.mutate("commitReservation",
                               {"reservationId": ids.encode("Reservation", uuid4())})
    assert (missing["code"], missing["field"]) == ("NOT_FOUND", "reservationId")
    for bad in ["garbage", ids.encode("Item", uuid4())]:
        r = await api.mutate("releaseReservation", {"reservationId": bad})
        assert (r["code"], r["field"]) == ("INVALID_INPUT", "reservationId")


async def test_expired_reservations_are_swept_and_stop_holding_stock(api, sync_engine,
                                                                    stocked_level):
    sku, a = await stocked_level(4)
    r = await api.mutate("reserveStock", {"lines": [{"sku": sku, "locationCode": a,
                                                     "quantity": 4}], "ttlSeconds": 1},
                         RESERVATION_FIELDS)
    assert (await api.level(sku, a))["available"] == 0
    deadline = time.monotonic() + 30  # the test servers sweep every 0.3 s
    while (await api.gql("query($id: ID!) { reservation(id: $id) { status } }",
                         {"id": r["id"]}))["reservation"]["status"] != "EXPIRED":
        assert time.monotonic() < deadline, "the reservation was never swept"
        await asyncio.sleep(0.1)
    assert await api.level(sku, a) == {"onHand": 4, "reserved": 0, "available": 4, "version": 3}
    with sync_engine.connect() as conn:
        kinds = conn.execute(text(
            "SELECT kind FROM movements m JOIN items i ON i.id = m.item_id "
            "WHERE i.sku = :s ORDER BY m.version"), {"s": sku}).scalars().all()
    assert kinds == ["RECEIVE", "RESERVE", "EXPIRE"]
    late = await api.mutate("commitReservation", {"reservationId": r["id"]},
                            "... on ReservationNotActiveError { status }")
    assert (late["code"], late["status"]) == ("RESERVATION_NOT_ACTIVE", "EXPIRED")


async def test_commit_and_release_after_expiry_are_refused_before_any_sweep(
        pg_base_url, monkeypatch, graphql, stocked_level):
    """Past expiry counts as not active even before a sweeper gets to it. On a
    database of its own with no sweeper at all (the shared one has several),
    so the refusal can only come from the expiry check: the reservation is
    still ACTIVE in the database and its units still reserved."""
    url = create_database(pg_base_url, "inventory_unswept")
    migrate.upgrade(url)
    app, key = in_process_app(url, monkeypatch)  # sweep interval 0: no sweeper
    engine = create_engine(url)
    try:
        client = graphql(app=app, api_key=key, database_url=url)
        sku, a = await stocked_level(3, client=client)
        r = await client.succeed("reserveStock", {
            "lines": [{"sku": sku, "locationCode": a, "quantity": 1}], "ttlSeconds": 60},
            RESERVATION_FIELDS)
        (rid,) = ids.decode_as("Reservation", r["id"])
        with engine.begin() as conn:  # move the expiry into the past
            conn.execute(text("UPDATE reservations SET expires_at = now() - interval '1 hour' "
                              "WHERE id = :id"), {"id": rid})
        for name in ("commitReservation", "releaseReservation"):
            late = await client.mutate(name, {"reservationId": r["id"]},
                                       "... on ReservationNotActiveError { status }")
            assert (late["code"], late["status"]) == ("RESERVATION_NOT_ACTIVE", "EXPIRED")
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT status FROM reservations WHERE id = :id"),
                                  {"id": rid}).scalar()
        assert stored == "ACTIVE"  # nobody swept it
        assert await client.level(sku, a) == {"onHand": 3, "reserved": 1, "available": 2,
                                              "version": 2}
    finally:
        engine.dispose()
        await app.state.ctx.db.dispose()
