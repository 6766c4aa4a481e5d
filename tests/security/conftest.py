"""Fixtures for the security tests: a server with JWT verification configured, two
tenants with API keys of every kind, JWT minting, and tenant A's data."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import httpx
import jwt
import pytest
from sqlalchemy import text

from inventory.domain import ids

from ..support import ApiServer, create_api_key, unique

ISSUER = "https://issuer.test"
AUDIENCE = "inventory-api"
SECRET = "test-secret-" + "x" * 40
READ, WRITE, ADMIN = "inventory:read", "inventory:write", "inventory:admin"
ALL = (READ, WRITE, ADMIN)

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


@dataclass
class Tenant:
    id: uuid.UUID
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    data: dict[str, str] = field(default_factory=dict)  # names of A's objects


class Client:
    """Synchronous GraphQL calls with a chosen credential."""

    def __init__(self, url: str):
        self.url = url + "/graphql"
        self.http = httpx.Client(timeout=30)

    def post(self, query: str, variables: dict | None = None, credential: str | None = None,
             **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        return self.http.post(self.url, json={"query": query, "variables": variables or {}},
                              headers=headers, **kwargs)

    def data(self, query: str, variables: dict | None = None, credential: str | None = None):
        response = self.post(query, variables, credential)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture(scope="session")
def secure_server(database_url, tmp_path_factory):
    server = ApiServer(database_url, tmp_path_factory.mktemp("secure") / "api.log",
                       **SECURE_ENV).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(secure_server):
    c = Client(secure_server.url)
    yield c
    c.http.close()


@pytest.fixture(scope="session")
def tenants(database_url, client) -> tuple[Tenant, Tenant]:
    """Tenant A (with a location pair, an item, stock and an ACTIVE reservation)
    and tenant B; each with keys of every kind."""
    a, b = Tenant(uuid.uuid4()), Tenant(uuid.uuid4())
    for t in (a, b):
        t.keys["all"] = create_api_key(database_url, ALL, t.id, "all scopes")
        t.keys["read"] = create_api_key(database_url, (READ,), t.id, "read only")
        t.keys["write"] = create_api_key(database_url, (WRITE,), t.id, "write only")
        t.keys["read_write"] = create_api_key(database_url, (READ, WRITE), t.id, "no admin")
    key = a.keys["all"]
    sku, code, code2 = unique("A-SKU"), unique("A-LOC"), unique("A-LOC")
    for c in (code, code2):
        client.data("mutation($i: CreateLocationInput!) { createLocation(input: $i) "
                    "{ __typename } }", {"i": {"code": c, "name": c}}, key)
    item = client.data("mutation($i: CreateItemInput!) { createItem(input: $i) "
                       "{ ... on Item { id } } }",
                       {"i": {"sku": sku, "name": sku, "reorderPoint": 1}}, key)["createItem"]
    level = client.data("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
                        "{ ... on StockLevel { id } } }",
                        {"i": {"sku": sku, "locationCode": code, "quantity": 20}},
                        key)["receiveStock"]
    reservation = client.data(
        "mutation($i: ReserveStockInput!) { reserveStock(input: $i) "
        "{ ... on Reservation { id } } }",
        {"i": {"lines": [{"sku": sku, "locationCode": code, "quantity": 2}],
               "ttlSeconds": 3600}}, key)["reserveStock"]
    location = client.data("query($c: String!) { location(code: $c) { id } }",
                           {"c": code}, key)["location"]
    a.data.update(sku=sku, code=code, code2=code2, itemId=item["id"],
                  locationId=location["id"], levelId=level["id"],
                  reservationId=reservation["id"])
    return a, b


def unknown_data() -> dict[str, str]:
    """Identifiers of the same shapes as tenant A's that exist nowhere."""
    return {
        "sku": unique("NO-SKU"), "code": unique("NO-LOC"), "code2": unique("NO-LOC"),
        "itemId": ids.encode("Item", uuid.uuid4()),
        "locationId": ids.encode("Location", uuid.uuid4()),
        "levelId": ids.encode("StockLevel", uuid.uuid4(), uuid.uuid4()),
        "reservationId": ids.encode("Reservation", uuid.uuid4()),
    }


def tenant_snapshot(sync_engine, tenant_id: uuid.UUID) -> dict:
    """Everything of one tenant that a refused or foreign request must not change."""
    with sync_engine.connect() as conn:
        def rows(sql: str):
            return conn.execute(text(sql), {"t": tenant_id}).all()
        return {
            "levels": rows("SELECT item_id, location_id, on_hand, reserved, version "
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
