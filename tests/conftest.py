"""Real servers for the tests: an embedded PostgreSQL (started once per run)
with a fresh database, and the API running as `inventory serve` against it."""
from __future__ import annotations

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine

from inventory.db import embedded, migrate

from .support import Api, ApiServer, auth_headers


@pytest.fixture(scope="session")
def pg_base_url(tmp_path_factory) -> str:
    """libpq URL of the server's maintenance database."""
    url, server = embedded.start(tmp_path_factory.mktemp("pg"))
    pytest.pg_server_handle = server  # keep the server alive for the session
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_database(pg_base_url: str, name: str) -> str:
    """Creates an empty database; returns its SQLAlchemy URL."""
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_base_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}".replace(
        "postgresql://", "postgresql+psycopg://", 1
    )


@pytest.fixture(scope="session")
def database_url(pg_base_url) -> str:
    url = create_database(pg_base_url, "inventory_test")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def sync_engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def api_server(database_url, tmp_path_factory):
    server = ApiServer(database_url, tmp_path_factory.mktemp("api") / "api.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def api(api_server):
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    # Every request carries the server's test API key (all scopes, default tenant).
    async with httpx.AsyncClient(timeout=30, limits=limits,
                                 headers=auth_headers(api_server.url)) as client:
        yield Api(client, api_server.url)
