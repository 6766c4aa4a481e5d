"""Fixtures: real servers for the tests. An embedded PostgreSQL (started once per
run) with a fresh database, the API running as `inventory serve` against it,
and one fixture each for what many tests need:

    api                 the GraphQL client on the shared server (test key)
    graphql             a GraphQL client for any server, credential or in-process app
    start_api_server    another `inventory serve` (own settings, database, workers)
    stocked_level       a new item and location with stock received
    scrape_metrics      one parsed /metrics scrape
    ledger_audit        (autouse) the ledger audit after every test that wrote

Helpers that are not fixtures are in tests/support.py and tests/live_support.py.
"""
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine

from inventory.db import embedded, migrate

from .support import (
    DATABASES,
    UNAUDITED,
    Api,
    ApiServer,
    Metrics,
    assert_invariants,
    create_database,
    scrape,
)


@pytest.fixture(scope="session")
def pg_base_url(tmp_path_factory) -> str:
    """libpq URL of the session server's maintenance database (make databases
    of your own with support.create_database(pg_base_url, name))."""
    url, server = embedded.start(tmp_path_factory.mktemp("pg"))
    pytest.pg_server_handle = server  # keep the server alive for the session
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def database_url(pg_base_url) -> str:
    """SQLAlchemy URL of the shared, migrated test database."""
    url = create_database(pg_base_url, "inventory_test")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def sync_engine(database_url):
    """A synchronous SQLAlchemy engine on the shared test database."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def start_api_server(database_url, tmp_path_factory):
    """Starts another `inventory serve` process:

        with start_api_server("poll", INVENTORY_CHANGE_FEED="poll") as server:
            ...  # server.url, server.api_key, server.stop(), server.start()

    Arguments: a name for its log folder; `database_url=` (default: the shared
    test database); `workers=` (default 1); any INVENTORY_*/OTEL_* setting as a
    keyword. The server is ready (migrated, with an all-scopes test key for the
    default tenant) when the block starts and is stopped when it ends. Use it
    in a module-scoped fixture to share one server among a module's tests."""

    @contextlib.contextmanager
    def start(name: str = "api", *, database_url: str = database_url, workers: int = 1,
              **env: str) -> Iterator[ApiServer]:
        log = tmp_path_factory.mktemp(name) / "api.log"
        server = ApiServer(database_url, log, workers=workers, **env).start()
        try:
            yield server
        finally:
            server.stop()

    return start


@pytest.fixture(scope="session")
def api_server(start_api_server):
    """The shared API server on the shared test database."""
    with start_api_server("api") as server:
        yield server


@pytest.fixture(scope="session")
async def graphql(api_server):
    """Makes GraphQL clients (tests/support.py Api: post, raw, gql, mutate,
    succeed, item, location, receive, level):

        graphql()                        the shared server, its test key
        graphql(server_or_url)           another server, its test key
        graphql(server, api_key=key)     with another credential
        graphql(app=app, api_key=key,    an app running in this process
                database_url=url)        (ASGI; the URL is for the ledger audit)

    All share one connection pool; in-process clients close at the end of the run."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    in_process: list[httpx.AsyncClient] = []
    numbers = itertools.count()
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        def make(target=None, *, api_key: str | None = None, app=None,
                 database_url: str | None = None) -> Api:
            if app is not None:
                url = f"http://app-{next(numbers)}"
                asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url=url, timeout=30)
                in_process.append(asgi)
                if database_url:
                    DATABASES[url] = database_url
                return Api(asgi, url, api_key)
            url = getattr(target, "url", target) or api_server.url
            return Api(client, url, api_key)

        yield make
        for asgi in in_process:
            await asgi.aclose()


@pytest.fixture(scope="session")
def api(graphql) -> Api:
    """The GraphQL client on the shared server, as its all-scopes test key."""
    return graphql()


@pytest.fixture(scope="session")
def stocked_level(api):
    """Makes a new item and location with stock received:

        sku, code = await stocked_level(10)
        sku, a, b = await stocked_level(5, locations=2)         # 5 at each
        sku, code = await stocked_level(0, reorder_point=3)     # nothing received
        sku, code = await stocked_level(4, client=other_api)    # through another client

    Each location with a quantity above 0 gets one RECEIVE (its level is at
    version 1); with 0 the level is never written (version 0)."""

    async def make(quantity: int = 10, *, locations: int = 1, reorder_point: int = 0,
                   client: Api | None = None) -> tuple[str, ...]:
        client = client or api
        sku = await client.item(reorder_point=reorder_point)
        codes = [await client.location() for _ in range(locations)]
        if quantity:
            for code in codes:
                await client.receive(sku, code, quantity)
        return (sku, *codes)

    return make


@pytest.fixture(scope="session")
def scrape_metrics():
    """Scrapes a server's /metrics: `scrape_metrics(server_or_url)` returns a
    support.Metrics with value(name, **labels) (fails when the sample is
    missing), has(...), increase(since, name, **labels) and total(name)."""

    def make(target) -> Metrics:
        return scrape(getattr(target, "url", target))

    return make


@pytest.fixture(autouse=True)
def ledger_audit(request):
    """After every test that sent a mutation through the GraphQL client, the
    ledger audit (db/audit.py) runs on each database written, unless the test
    audited it itself after its last write (support.assert_invariants). A test
    that breaks a ledger on purpose says so with
    @pytest.mark.ledger_broken_on_purpose and is not audited."""
    UNAUDITED.clear()
    yield
    written, _ = sorted(UNAUDITED), UNAUDITED.clear()
    if request.node.get_closest_marker("ledger_broken_on_purpose"):
        return
    for url in written:
        engine = create_engine(url)
        try:
            assert_invariants(engine)
        finally:
            engine.dispose()
