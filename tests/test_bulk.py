"""bulkSetStock and bulkAdjustStock over HTTP: per-line results, one ledger row
per changed line, the two error policies, idempotency, and concurrent bulk
requests over the same levels in opposite orders (locked in key order: no
deadlock, nothing lost)."""
from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import text

from .support import snapshot

BIG_BODY = str(4 << 20)  # 10,000 lines do not fit the default 256 KiB
RESULT = """... on BulkStockResult { errorPolicy applied failed lines { index status
  level { sku locationCode onHand reserved available version }
  error { __typename code message field } } }"""


@pytest.fixture(scope="module")
def bulk_server(start_api_server):
    with start_api_server("bulk", INVENTORY_MAX_BODY_BYTES=BIG_BODY) as server:
        yield server


@pytest.fixture
def bulk(graphql, bulk_server):
    """The GraphQL client on the bulk server."""
    return graphql(bulk_server)


def _moves(sync_engine, skus) -> int:
    with sync_engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM movements m JOIN items i ON "
                                 "i.id = m.item_id WHERE i.sku = ANY(:s)"),
                            {"s": list(skus)}).scalar()


async def test_set_then_adjust_answer_per_line_with_one_ledger_row_per_change(bulk, sync_engine):
    a, b, c = [await bulk.item() for _ in range(3)]
    code = await bulk.location()
    result = await bulk.succeed("bulkSetStock", {"lines": [
        {"sku": a, "locationCode": code, "onHand": 5, "reason": "count"},
        {"sku": b, "locationCode": code, "onHand": 0},
        {"sku": c, "locationCode": code, "onHand": 7}]}, RESULT)
    assert (result["applied"], result["failed"]) == (2, 0)
    assert [(l["index"], l["status"], l["level"]["onHand"], l["level"]["version"])
            for l in result["lines"]] == [(0, "APPLIED", 5, 1), (1, "UNCHANGED", 0, 0),
                                          (2, "APPLIED", 7, 1)]
    assert _moves(sync_engine, [a, b, c]) == 2
    result = await bulk.succeed("bulkAdjustStock", {"lines": [
        {"sku": c, "locationCode": code, "delta": 3},
        {"sku": a, "locationCode": code, "delta": -2}]}, RESULT)
    assert [(l["status"], l["level"]["sku"], l["level"]["onHand"]) for l in result["lines"]] == \
        [("APPLIED", c, 10), ("APPLIED", a, 3)]
    assert _moves(sync_engine, [a, b, c]) == 4
    with sync_engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, reason FROM movements m JOIN items i ON "
                                  "i.id = m.item_id WHERE i.sku = :a ORDER BY m.version"),
                             {"a": a}).all()
    assert [tuple(k) for k in kinds] == [("SET", "count"), ("ADJUST", None)]


@pytest.mark.parametrize("policy", ["ALL_OR_NOTHING", "SKIP_FAILED"])
async def test_error_policies(bulk, sync_engine, stocked_level, policy):
    sku, code = await stocked_level(4, client=bulk)
    other = await bulk.item()
    lines = [{"sku": sku, "locationCode": code, "delta": -10},        # more than available
             {"sku": other, "locationCode": code, "delta": 2},
             {"sku": "NOPE-1", "locationCode": code, "delta": 1},      # unknown sku
             {"sku": other, "locationCode": code, "delta": 1},         # the same level again
             {"sku": other, "locationCode": code, "delta": 0}]         # zero
    with sync_engine.connect() as conn:
        before = snapshot(conn, [sku, other])
    result = await bulk.succeed("bulkAdjustStock", {"lines": lines, "errorPolicy": policy},
                               RESULT)
    errors = [l["error"] and (l["error"]["__typename"], l["error"]["code"])
              for l in result["lines"]]
    assert errors == [("InsufficientStockError", "INSUFFICIENT_STOCK"), None,
                      ("NotFoundError", "NOT_FOUND"), ("InvalidInputError", "INVALID_INPUT"),
                      ("InvalidInputError", "INVALID_INPUT")]
    assert result["failed"] == 4
    if policy == "ALL_OR_NOTHING":
        assert result["applied"] == 0 and result["lines"][1]["status"] == "NOT_APPLIED"
        with sync_engine.connect() as conn:
            assert snapshot(conn, [sku, other]) == before
    else:
        assert result["applied"] == 1
        assert result["lines"][1]["status"] == "APPLIED"
        assert result["lines"][1]["level"]["onHand"] == 2
        assert (await bulk.level(sku, code))["onHand"] == 4


async def test_idempotency_key_replays_the_first_result(bulk, sync_engine):
    sku, code = await bulk.item(), await bulk.location()
    body = {"lines": [{"sku": sku, "locationCode": code, "delta": 3}], "idempotencyKey":
            f"bulk-{sku}"}
    first = await bulk.succeed("bulkAdjustStock", body, RESULT)
    again = await bulk.succeed("bulkAdjustStock", body, RESULT)
    assert again == first and _moves(sync_engine, [sku]) == 1
    reused = await bulk.mutate("bulkAdjustStock", {**body, "lines": [
        {"sku": sku, "locationCode": code, "delta": 4}]})
    assert reused["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_ten_thousand_lines_and_one_more(bulk, sync_engine):
    code = await bulk.location()
    skus = [await bulk.item() for _ in range(3)]
    lines = [{"sku": skus[n % 3], "locationCode": code, "onHand": n} for n in range(10_001)]
    refused = await bulk.mutate("bulkSetStock", {"lines": lines})
    assert refused["code"] == "INVALID_INPUT" and refused["field"] == "lines"
    assert _moves(sync_engine, skus) == 0


async def test_concurrent_bulk_requests_in_opposite_orders(bulk, stocked_level):
    code = await bulk.location()
    skus = [await bulk.item() for _ in range(20)]
    await bulk.succeed("bulkSetStock", {"lines": [
        {"sku": s, "locationCode": code, "onHand": 100} for s in skus]}, RESULT)

    async def one(n: int):
        order = skus[::-1] if n % 2 else list(skus)
        random.Random(n).shuffle(order) if n % 3 == 0 else None
        return await bulk.succeed("bulkAdjustStock", {"lines": [
            {"sku": s, "locationCode": code, "delta": 1 if n % 2 else -1} for s in order]},
            RESULT)

    results = await asyncio.gather(*(one(n) for n in range(6)))
    assert all(r["applied"] == 20 for r in results)
    for s in skus:
        assert (await bulk.level(s, code))["onHand"] == 100  # three +1 and three -1
