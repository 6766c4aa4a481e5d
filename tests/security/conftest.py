"""Fixtures of the security tests: a server with JWT verification configured,
its GraphQL client, and two tenants with API keys of every kind and tenant A's
data. Helpers are in tests/security/support.py."""
from __future__ import annotations

import uuid

import pytest

from ..support import create_api_key
from .support import ALL, READ, SECURE_ENV, WRITE, Tenant, stock_for


@pytest.fixture(scope="session")
def secure_server(start_api_server):
    """A server that accepts HS256 JWTs (support.token) besides API keys, with
    the credential cache off (a revoked key is refused at once)."""
    with start_api_server("secure", **SECURE_ENV) as server:
        yield server


@pytest.fixture(scope="session")
def secure_api(graphql, secure_server):
    """The GraphQL client on the secure server; pass `credential=` to post/raw/gql."""
    return graphql(secure_server)


@pytest.fixture(scope="session")
async def tenants(database_url, secure_api) -> tuple[Tenant, Tenant]:
    """Tenant A (with the objects of support.stock_for: a location pair, an item,
    stock and two ACTIVE reservations; tests must not change them) and tenant B; each with keys of every kind ("all", "read", "write",
    "read_write")."""
    a, b = Tenant(uuid.uuid4()), Tenant(uuid.uuid4())
    for t in (a, b):
        t.keys["all"] = create_api_key(database_url, ALL, t.id, "all scopes")
        t.keys["read"] = create_api_key(database_url, (READ,), t.id, "read only")
        t.keys["write"] = create_api_key(database_url, (WRITE,), t.id, "write only")
        t.keys["read_write"] = create_api_key(database_url, (READ, WRITE), t.id, "no admin")
    a.data.update(await stock_for(secure_api.with_key(a.keys["all"])))
    return a, b
