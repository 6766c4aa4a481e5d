"""Every kind of bad input gets a typed error and writes nothing."""
from __future__ import annotations

import pytest

from .support import snapshot


@pytest.fixture(scope="module")
async def stocked(api):
    sku, a, b = await api.item(), await api.location(), await api.location()
    await api.receive(sku, a, 10)
    return sku, a, b


def cases(sku, a, b):
    big = 10 ** 13
    line = {"sku": sku, "locationCode": a, "quantity": 1}
    return [
        ("receiveStock", {"sku": sku, "locationCode": a, "quantity": 0}, "INVALID_INPUT"),
        ("receiveStock", {"sku": sku, "locationCode": a, "quantity": -3}, "INVALID_INPUT"),
        ("receiveStock", {"sku": sku, "locationCode": a, "quantity": big}, "INVALID_INPUT"),
        ("receiveStock", {"sku": "NOPE-1", "locationCode": a, "quantity": 1}, "NOT_FOUND"),
        ("receiveStock", {"sku": "", "locationCode": a, "quantity": 1}, "INVALID_INPUT"),
        ("receiveStock", {"sku": sku, "locationCode": a, "quantity": 1, "reason": "x" * 500},
         "INVALID_INPUT"),
        ("receiveStock", {"sku": sku, "locationCode": a, "quantity": 1, "idempotencyKey": ""},
         "INVALID_INPUT"),
        ("adjustStock", {"sku": sku, "locationCode": a, "delta": 0}, "INVALID_INPUT"),
        ("adjustStock", {"sku": sku, "locationCode": a, "delta": -big}, "INVALID_INPUT"),
        ("adjustStock", {"sku": sku, "locationCode": a, "delta": -11}, "INSUFFICIENT_STOCK"),
        ("setStock", {"sku": sku, "locationCode": a, "onHand": -1}, "INVALID_INPUT"),
        ("setStock", {"sku": sku, "locationCode": a, "onHand": 1, "compareQuantity": 9},
         "QUANTITY_MISMATCH"),
        ("transferStock", {"sku": sku, "fromLocationCode": a, "toLocationCode": b,
                           "quantity": 0}, "INVALID_INPUT"),
        ("transferStock", {"sku": sku, "fromLocationCode": a, "toLocationCode": b,
                           "quantity": 11}, "INSUFFICIENT_STOCK"),
        ("transferStock", {"sku": sku, "fromLocationCode": "NOPE-1", "toLocationCode": b,
                           "quantity": 1}, "NOT_FOUND"),
        ("reserveStock", {"lines": []}, "INVALID_INPUT"),
        ("reserveStock", {"lines": [line, line]}, "INVALID_INPUT"),
        ("reserveStock", {"lines": [{**line, "quantity": 0}]}, "INVALID_INPUT"),
        ("reserveStock", {"lines": [{**line, "quantity": big}]}, "INVALID_INPUT"),
        ("reserveStock", {"lines": [{**line, "sku": "NOPE-1"}]}, "NOT_FOUND"),
        ("reserveStock", {"lines": [line], "ttlSeconds": 0}, "INVALID_INPUT"),
        ("reserveStock", {"lines": [line], "ttlSeconds": 10 ** 8}, "INVALID_INPUT"),
        ("reserveStock", {"lines": [line] + [{**line, "locationCode": b, "quantity": 1}]},
         "INSUFFICIENT_STOCK"),
        ("commitReservation", {"reservationId": "not-an-id"}, "INVALID_INPUT"),
        ("releaseReservation", {"reservationId": ""}, "INVALID_INPUT"),
        ("createItem", {"sku": "bad sku", "name": "x"}, "INVALID_INPUT"),
        ("createItem", {"sku": "OK-SKU-1", "name": ""}, "INVALID_INPUT"),
        ("createItem", {"sku": "OK-SKU-2", "name": "x", "reorderPoint": -1}, "INVALID_INPUT"),
        ("createLocation", {"code": "x" * 100, "name": "x"}, "INVALID_INPUT"),
    ]


async def test_bad_input_is_typed_and_writes_nothing(api, sync_engine, stocked):
    for name, body, expected in cases(*stocked):
        with sync_engine.connect() as conn:
            before = snapshot(conn)
        result = await api.mutate(name, body)
        assert result.get("code") == expected, (name, body, result)
        assert result["message"], (name, body)
        with sync_engine.connect() as conn:
            assert snapshot(conn) == before, (name, body)


@pytest.mark.parametrize("quantity", ["1.5", '"3"', "true", "null", "99999999999999999999999"])
async def test_malformed_scalars_are_graphql_errors_not_500(api, stocked, quantity):
    sku, a, _ = stocked
    response = await api.client.post(api.url + "/graphql", json={"query": f"""
        mutation {{ receiveStock(input: {{sku: "{sku}", locationCode: "{a}",
          quantity: {quantity}}}) {{ __typename ... on UserError {{ code }} }} }}"""})
    assert response.status_code == 200
    body = response.json()
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] in {"GRAPHQL_VALIDATION_FAILED",
                                                           "INVALID_INPUT"}
        assert "Traceback" not in response.text
    else:  # a number too large for a quantity still parses, then the domain refuses it
        assert body["data"]["receiveStock"]["code"] == "INVALID_INPUT"
