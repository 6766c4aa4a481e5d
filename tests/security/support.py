"""Helpers of the security tests: the JWT settings of the secure server, JWT
minting, the tenants' data and a per-tenant snapshot."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import jwt
from sqlalchemy import text

from inventory.domain import ids

from ..support import ADMIN, ALL_SCOPES, READ, WRITE, unique  # noqa: F401 (re-exported)

ISSUER = "https://issuer.test"
AUDIENCE = "inventory-api"
SECRET = "test-secret-" + "x" * 40
ALL = ALL_SCOPES

SECURE_ENV = {
    "INVENTORY_JWT_ISSUER": ISSUER,
    "INVENTORY_JWT_AUDIENCE": AUDIENCE,
    "INVENTORY_JWT_HS256_SECRET": SECRET,
    "INVENTORY_AUTH_CACHE_SECONDS": "0",  # revocation takes effect at once
}


def token(tenant: uuid.UUID, scopes=ALL, *, sub="user-1", key=SECRET, algorithm="HS256",
          **claims) -> str:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "tenant_id": str(tenant),
               "scope": " ".join(scopes), "exp": int(time.time()) + 300,
               "iat": int(time.time())}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


def alg_none_token(tenant: uuid.UUID) -> str:
    """An unsigned token (`alg: none`) claiming every scope."""
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory",
                       "tenant_id": str(tenant), "scope": " ".join(ALL),
                       "exp": int(time.time()) + 300}, None, algorithm="none")


async def stock_for(client, data: dict[str, str] | None = None) -> dict[str, str]:
    """Makes, through `client` (a GraphQL client with an all-scopes credential),
    the objects the access tests name: two locations, an item with 20 units at
    the first, and two ACTIVE reservations of it (`reservationId`, `releaseId`).
    Returns their names and ids (see unknown_data for the same keys)."""
    sku, code, code2 = unique("A-SKU"), unique("A-LOC"), unique("A-LOC")
    for c in (code, code2):
        await client.location(c)
    item = await client.succeed("createItem", {"sku": sku, "name": sku, "reorderPoint": 1},
                                "... on Item { id }")
    level = await client.succeed("receiveStock", {"sku": sku, "locationCode": code,
                                                  "quantity": 20}, "... on StockLevel { id }")
    reservations = [await client.succeed(
        "reserveStock", {"lines": [{"sku": sku, "locationCode": code, "quantity": n}],
                         "ttlSeconds": 3600}, "... on Reservation { id }") for n in (2, 1)]
    location = (await client.gql("query($c: String!) { location(code: $c) { id } }",
                                 {"c": code}))["location"]
    shipment = await client.succeed("createInboundShipment", {"lines": [
        {"sku": sku, "locationCode": code2, "quantity": 5}]}, "... on InboundShipment { id }")
    transfer = await client.succeed("shipTransfer", {
        "sku": sku, "fromLocationCode": code, "toLocationCode": code2, "quantity": 1},
        "... on StockTransfer { id }")
    return dict(sku=sku, code=code, code2=code2, itemId=item["id"],
                locationId=location["id"], levelId=level["id"],
                reservationId=reservations[0]["id"], releaseId=reservations[1]["id"],
                shipmentId=shipment["id"], transferId=transfer["id"])


@dataclass
class Tenant:
    id: uuid.UUID
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    data: dict[str, str] = field(default_factory=dict)  # names of A's objects


def unknown_data() -> dict[str, str]:
    """Identifiers of the same shapes as tenant A's that exist nowhere."""
    return {
        "sku": unique("NO-SKU"), "code": unique("NO-LOC"), "code2": unique("NO-LOC"),
        "itemId": ids.encode("Item", uuid.uuid4()),
        "locationId": ids.encode("Location", uuid.uuid4()),
        "levelId": ids.encode("StockLevel", uuid.uuid4(), uuid.uuid4()),
        "reservationId": ids.encode("Reservation", uuid.uuid4()),
        "releaseId": ids.encode("Reservation", uuid.uuid4()),
        "shipmentId": ids.encode("InboundShipment", uuid.uuid4()),
        "transferId": ids.encode("StockTransfer", uuid.uuid4()),
    }


def tenant_snapshot(sync_engine, tenant_id: uuid.UUID) -> dict:
    """Everything of one tenant that a refused or foreign request must not change."""
    with sync_engine.connect() as conn:
        def rows(sql: str):
            return conn.execute(text(sql), {"t": tenant_id}).all()
        return {
            "levels": rows("SELECT item_id, location_id, on_hand, reserved, incoming, version "
                           "FROM stock_levels WHERE tenant_id = :t ORDER BY 1, 2"),
            "movements": rows("SELECT count(*) FROM movements WHERE tenant_id = :t"),
            "reservations": rows("SELECT id, status FROM reservations WHERE tenant_id = :t "
                                 "ORDER BY id"),
            "items": rows("SELECT id, sku, name, reorder_point FROM items WHERE tenant_id = :t "
                          "ORDER BY id"),
            "locations": rows("SELECT id, code, name FROM locations WHERE tenant_id = :t "
                              "ORDER BY id"),
            "idempotency": rows("SELECT count(*) FROM idempotency_keys WHERE tenant_id = :t"),
        }
