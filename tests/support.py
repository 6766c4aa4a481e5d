"""Test helpers: a GraphQL client for the running API and database checks."""
from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from inventory.api_process import ApiProcess, free_port  # noqa: F401 (free_port: for tests)
from inventory.db.audit import discrepancies

ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count()
# API base URL -> the API key (all scopes, default tenant) its ApiServer created.
# Api sends it on every request; WebSocket clients send auth_payload(url) in
# connection_init.
API_KEYS: dict[str, str] = {}


def create_api_key(database_url: str, scopes=("inventory:read", "inventory:write",
                                              "inventory:admin"),
                   tenant_id=None, name: str = "tests") -> str:
    """Creates an API key in the database (as `inventory keys create` does)."""
    from sqlalchemy import create_engine

    from inventory.auth.keys import create_key
    from inventory.service.context import DEFAULT_TENANT_ID

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            return create_key(conn, tenant_id or DEFAULT_TENANT_ID, list(scopes), name)[1]
    finally:
        engine.dispose()


def auth_headers(url: str) -> dict[str, str]:
    """HTTP headers that authenticate as the test key of the API at `url`."""
    return {"Authorization": f"Bearer {API_KEYS[url]}"}


def auth_payload(url: str) -> dict[str, str]:
    """The graphql-transport-ws / graphql-ws connection_init payload for the API at `url`."""
    return {"authorization": f"Bearer {API_KEYS[url]}"}


def unique(prefix: str) -> str:
    """A code/sku no other test uses (tests share one database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}-{next(_counter)}"


class ApiServer(ApiProcess):
    """`inventory serve` in a subprocess, as users run it, ready once migrated,
    with an all-scopes key for the default tenant (`api_key`, `API_KEYS[url]`)."""

    ready_path = "/readyz"
    defaults = {
        **ApiProcess.defaults,
        "INVENTORY_SWEEP_INTERVAL": "0.3",
        # Tests fire bursts on a shared, busy machine: queue them, do not shed.
        "INVENTORY_QUEUE_TIMEOUT": "60",
        # Rate limits far above what tests send (tests/security/test_limits.py lowers them).
        "INVENTORY_RATE_READ": "100000",
        "INVENTORY_RATE_WRITE": "100000",
    }

    def __init__(self, database_url: str, log_path: Path, **env: str):
        super().__init__(database_url, log_path, env)
        self.api_key: str | None = None

    def start(self, timeout: float = 30) -> "ApiServer":
        super().start(timeout)
        # Ready means migrated: the key table exists now.
        if self.api_key is None:
            self.api_key = create_api_key(self.env["INVENTORY_DATABASE_URL"])
        API_KEYS[self.url] = self.api_key
        return self


class Api:
    def __init__(self, client: httpx.AsyncClient, url: str, api_key: str | None = None):
        self.client = client
        self.url = url
        self.api_key = api_key  # default: the key of the ApiServer at this URL

    @property
    def headers(self) -> dict[str, str]:
        key = self.api_key or API_KEYS.get(self.url)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def raw(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        response = await self.client.post(
            self.url + "/graphql", json={"query": query, "variables": variables or {}},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def gql(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        """Data of a request that must not produce GraphQL errors."""
        body = await self.raw(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def mutate(self, name: str, input: dict, selection: str = "") -> dict[str, Any]:
        """Runs mutation `name(input:)` and returns its payload with __typename,
        the UserError fields and the given extra selection."""
        query = f"""
        mutation($input: {name[0].upper() + name[1:]}Input!) {{
          {name}(input: $input) {{
            __typename
            ... on UserError {{ code message field }}
            {selection}
          }}
        }}"""
        return (await self.gql(query, {"input": input}))[name]

    # Conveniences used across tests.
    async def location(self, code: str | None = None) -> str:
        code = code or unique("LOC")
        result = await self.mutate("createLocation", {"code": code, "name": f"Location {code}"})
        assert result["__typename"] == "Location", result
        return code

    async def item(self, sku: str | None = None, reorder_point: int = 0) -> str:
        sku = sku or unique("SKU")
        result = await self.mutate(
            "createItem", {"sku": sku, "name": f"Item {sku}", "reorderPoint": reorder_point}
        )
        assert result["__typename"] == "Item", result
        return sku

    async def receive(self, sku: str, code: str, quantity: int) -> dict:
        result = await self.mutate(
            "receiveStock", {"sku": sku, "locationCode": code, "quantity": quantity},
            "... on StockLevel { onHand reserved available version }",
        )
        assert result["__typename"] == "StockLevel", result
        return result

    async def level(self, sku: str, code: str) -> dict | None:
        data = await self.gql(
            """query($sku: String!, $code: String!) {
                 stockLevel(sku: $sku, locationCode: $code) {
                   onHand reserved available version } }""",
            {"sku": sku, "code": code},
        )
        return data["stockLevel"]


LEVEL_FIELDS = "... on StockLevel { sku locationCode onHand reserved available version }"
RESERVATION_FIELDS = (
    "... on Reservation { id status reference expiresAt lines { sku locationCode quantity } }"
)


def snapshot(conn) -> dict[str, Any]:
    """Everything a rejected mutation must leave untouched."""
    return {
        "levels": conn.execute(text(
            "SELECT item_id, location_id, on_hand, reserved, version FROM stock_levels "
            "ORDER BY 1, 2")).all(),
        "movements": conn.execute(text("SELECT count(*) FROM movements")).scalar(),
        "reservations": conn.execute(text(
            "SELECT id, status FROM reservations ORDER BY id")).all(),
        "items": conn.execute(text("SELECT count(*) FROM items")).scalar(),
        "locations": conn.execute(text("SELECT count(*) FROM locations")).scalar(),
        "keys": conn.execute(text("SELECT count(*) FROM idempotency_keys")).scalar(),
    }


def assert_invariants(engine) -> None:
    with engine.connect() as conn:
        problems = discrepancies(conn)
    assert problems == [], "\n".join(problems)
