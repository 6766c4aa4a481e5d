"""Test helpers that are not fixtures: the GraphQL client class, the server
process, a parsed metrics scrape, database checks and small utilities.

Tests reach these through the fixtures in tests/conftest.py (`api`, `graphql`,
`start_api_server`, `stocked_level`, `scrape_metrics`, the autouse
`ledger_audit`); helpers used by several test modules live here or in
tests/live_support.py, never in a test module or a conftest."""
from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, make_url, text

from inventory.web.process import ApiProcess, free_port  # noqa: F401 (free_port: for tests)
from inventory.db.audit import discrepancies

ROOT = Path(__file__).resolve().parents[1]
READ, WRITE, ADMIN = "inventory:read", "inventory:write", "inventory:admin"
ALL_SCOPES = (READ, WRITE, ADMIN)

_counter = itertools.count()
# API base URL -> the API key (all scopes, default tenant) its ApiServer created.
# Api sends it on every request; WebSocket clients send it in connection_init.
API_KEYS: dict[str, str] = {}
# API base URL -> the database it writes to (for the ledger audit after a test).
DATABASES: dict[str, str] = {}
# Databases written through the API (a mutation sent by Api) and not audited since.
UNAUDITED: set[str] = set()


def unique(prefix: str) -> str:
    """A code/sku no other test uses (tests share one database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}-{next(_counter)}"


def database_key(url: str) -> str:
    """One spelling per database, whatever driver its URL names."""
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_database(pg_base_url: str, name: str) -> str:
    """Creates an empty database (dropping one of that name); returns its
    SQLAlchemy URL. `pg_base_url` is the session server's libpq URL."""
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_base_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}".replace(
        "postgresql://", "postgresql+psycopg://", 1
    )


def create_api_key(database_url: str, scopes=ALL_SCOPES, tenant_id=None,
                   name: str = "tests") -> str:
    """Creates an API key in the database (as `inventory keys create` does)."""
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


def run_cli(*args: str, env: dict | None = None, timeout: float = 60):
    """`inventory <args>` in a subprocess, as users run it; the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "inventory.cli", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


class ApiServer(ApiProcess):
    """`inventory serve` in a subprocess, as users run it, ready once migrated,
    with an all-scopes key for the default tenant (`api_key`, `API_KEYS[url]`).
    Tests start one through the `start_api_server` fixture."""

    ready_path = "/readyz"
    defaults = {
        **ApiProcess.defaults,
        "INVENTORY_SWEEP_INTERVAL": "0.3",
        # Tests fire bursts on a shared, busy machine: queue them, do not shed.
        "INVENTORY_QUEUE_TIMEOUT": "60",
        # Rate limits far above what tests send (tests/security/test_limits.py lowers them).
        "INVENTORY_RATE_READ": "100000",
        "INVENTORY_RATE_WRITE": "100000",
        "INVENTORY_RATE_REFUSED": "100000",
    }

    def __init__(self, database_url: str, log_path: Path, workers: int = 1, **env: str):
        super().__init__(database_url, log_path, env)
        if workers != 1:
            self.extra_args = (*self.extra_args, "--workers", str(workers))
        self.database_url = database_url
        self.api_key: str | None = None

    def start(self, timeout: float = 60) -> "ApiServer":
        super().start(timeout)
        # Ready means migrated: the key table exists now.
        if self.api_key is None:
            self.api_key = create_api_key(self.database_url)
        API_KEYS[self.url] = self.api_key
        DATABASES[self.url] = self.database_url
        return self


@contextlib.contextmanager
def served_in_thread(app, start_timeout: float = 30):
    """`app` served by uvicorn on a free port in a thread of this process (a
    real HTTP server, while the test can reach the app's objects); yields its URL."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "in-process server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def in_process_app(database_url: str, monkeypatch, settings: dict | None = None, **env: str):
    """The app in this process (no sweeper, no GraphiQL, plus any Settings field
    in `settings`) and an all-scopes API key for it; talk to it with
    `graphql(app=app, api_key=key, database_url=...)`. Its other settings are read
    from the environment, as at a server's start: no rate limits (setups send
    many writes at once), plus any INVENTORY_* setting in `env`. Dispose of `app.state.ctx.db`
    at the end."""
    from inventory.web.app import create_app
    from inventory.config import Settings

    for name, value in {"INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0",
                        **env}.items():
        monkeypatch.setenv(name, value)
    key = create_api_key(database_url)
    settings = replace(Settings.from_env(), database_url=database_url, sweep_interval_s=0,
                       graphiql=False, **(settings or {}))
    return create_app(settings), key


class RoundTrips:
    """Counts the round trips an engine (of an app in this process) makes to the
    database: each statement, plus BEGIN (sent with a transaction's first
    statement) and COMMIT/ROLLBACK of each transaction not in autocommit.
    `with RoundTrips(db.write_engine) as trips: ...; trips.count`"""

    def __init__(self, engine):
        self.engine = getattr(engine, "sync_engine", engine)
        self.count = 0
        self._open: set[int] = set()  # connections inside a transaction

    def _statement(self, conn, *args) -> None:
        if not conn.connection.driver_connection.autocommit and id(conn) not in self._open:
            self._open.add(id(conn))
            self.count += 1  # BEGIN
        self.count += 1

    def _end(self, conn) -> None:
        if id(conn) in self._open:
            self._open.discard(id(conn))
            self.count += 1  # COMMIT or ROLLBACK

    def __enter__(self) -> "RoundTrips":
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)


_DEFAULT = object()
_MUTATION = re.compile(r"\bmutation\b")


class Api:
    """The GraphQL client of the tests: POSTs to `url`/graphql with a credential
    (by default the test key of the server at `url`). Every mutation it sends
    marks the server's database for the ledger audit that runs after the test.
    Get one from the `api` or `graphql` fixture."""

    def __init__(self, client: httpx.AsyncClient, url: str, api_key: str | None = None):
        self.client = client
        self.url = url
        self.api_key = api_key  # default: the key of the ApiServer at this URL

    def with_key(self, api_key: str | None) -> "Api":
        """The same client with another credential (None: the server's test key)."""
        return Api(self.client, self.url, api_key)

    @property
    def headers(self) -> dict[str, str]:
        key = self.api_key or API_KEYS.get(self.url)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def post(self, query: str, variables: dict | None = None, *,
                   credential: Any = _DEFAULT, headers: dict | None = None,
                   **kwargs) -> httpx.Response:
        """The raw response to one operation, whatever its status. `credential`
        replaces this client's (None: no Authorization header at all)."""
        if credential is _DEFAULT:
            auth = self.headers
        else:
            auth = {"Authorization": f"Bearer {credential}"} if credential else {}
        if _MUTATION.search(query) and self.url in DATABASES:
            UNAUDITED.add(database_key(DATABASES[self.url]))
        return await self.client.post(
            self.url + "/graphql", json={"query": query, "variables": variables or {}},
            headers={**auth, **(headers or {})}, **kwargs)

    async def http(self, method: str, path: str = "/graphql", *,
                   headers: dict | None = None, **kwargs) -> httpx.Response:
        """Any HTTP request to the server, with this client's credential
        (unless `headers` carry an Authorization of their own)."""
        return await self.client.request(method, self.url + path,
                                         headers={**self.headers, **(headers or {})}, **kwargs)

    async def raw(self, query: str, variables: dict | None = None, **kwargs) -> dict[str, Any]:
        """The JSON body of an operation that must answer HTTP 200."""
        response = await self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def gql(self, query: str, variables: dict | None = None, **kwargs) -> dict[str, Any]:
        """Data of a request that must not produce GraphQL errors."""
        body = await self.raw(query, variables, **kwargs)
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

    async def succeed(self, name: str, input: dict, selection: str = "") -> dict[str, Any]:
        """`mutate` that must return its success type, not a UserError."""
        result = await self.mutate(name, input, selection)
        assert "code" not in result, (name, input, result)
        return result

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


class Metrics:
    """One scrape of /metrics, parsed with prometheus_client's parser. A sample
    that is not there is an error, never a silent zero."""

    def __init__(self, body: str):
        self.samples: dict[tuple[str, tuple], float] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}

    def has(self, name: str, **labels: str) -> bool:
        return (name, tuple(sorted(labels.items()))) in self.samples

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; fails if the scrape does not have it."""
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, (
            f"no sample {name}{labels}; have: "
            f"{sorted(k for k in self.samples if k[0] == name) or 'none of that name'}")
        return self.samples[key]

    def count(self, name: str, **labels: str) -> float:
        """A labelled counter's value, 0 when its child was never incremented
        (prometheus_client exports a labelled child only once used). For
        counters whose name another test proves exported."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def increase(self, since: "Metrics", name: str, **labels: str) -> float:
        """How much a counter grew since the scrape `since`. It must be in this
        scrape; a labelled child not yet created then counts from zero."""
        now = self.value(name, **labels)
        return now - since.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        """The sum over every label set of one sample name."""
        return sum(v for (n, _), v in self.samples.items() if n == name)


def scrape(url: str) -> Metrics:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Metrics(response.text)


def snapshot(conn, skus: list[str]) -> dict[str, Any]:
    """Everything a rejected mutation on these skus must leave untouched: their
    levels, ledger rows and reservations, and the counts of items, locations and
    idempotency keys. (Only these skus' levels: the servers' sweepers may
    expire other tests' reservations at any time.)"""
    mine = {"skus": list(skus)}
    return {
        "levels": conn.execute(text(
            "SELECT sl.* FROM stock_levels sl "
            "JOIN items i ON i.id = sl.item_id WHERE i.sku = ANY(:skus) ORDER BY 1, 2"),
            mine).all(),
        "movements": conn.execute(text(
            "SELECT count(*) FROM movements m JOIN items i ON i.id = m.item_id "
            "WHERE i.sku = ANY(:skus)"), mine).scalar(),
        "reservations": conn.execute(text(
            "SELECT r.id, r.status, r.expires_at, rl.line_no, rl.committed, rl.released, "
            "rl.backordered "
            "FROM reservations r JOIN reservation_lines rl ON rl.reservation_id = r.id "
            "JOIN items i ON i.id = rl.item_id WHERE i.sku = ANY(:skus) ORDER BY 1, 4"),
            mine).all(),
        "all reservations": conn.execute(text("SELECT count(*) FROM reservations")).scalar(),
        "items": conn.execute(text("SELECT count(*) FROM items")).scalar(),
        "locations": conn.execute(text("SELECT count(*) FROM locations")).scalar(),
        "keys": conn.execute(text("SELECT count(*) FROM idempotency_keys")).scalar(),
        "webhooks": conn.execute(text("SELECT count(*) FROM webhooks")).scalar(),
    }


def assert_invariants(engine) -> None:
    """The ledger audit (db/audit.py) over the engine's whole database must find
    nothing. Also clears the database's mark for the audit after the test."""
    with engine.connect() as conn:
        problems = discrepancies(conn)
    UNAUDITED.discard(database_key(engine.url.render_as_string(hide_password=False)))
    assert problems == [], "\n".join(problems)


RECEIVE_ONE = """mutation Receive($sku: String!, $code: String!, $key: String) {
  receiveStock(input: {sku: $sku, locationCode: $code, quantity: 1, idempotencyKey: $key}) {
    __typename ... on UserError { code } ... on TransientError { retryAfterMs }
    ... on StockLevel { onHand } } }"""


async def receive_with_forced_retry(client: Api, database_url: str, sku: str,
                                    code: str) -> httpx.Response:
    """`receive_after_a_conflict` that must end in a StockLevel (the runner retried)."""
    response = await receive_after_a_conflict(client, database_url, sku, code)
    assert response.json()["data"]["receiveStock"]["__typename"] == "StockLevel", response.text
    return response


async def receive_after_a_conflict(client: Api, database_url: str, sku: str, code: str,
                                   idempotency_key: str | None = None) -> httpx.Response:
    """Runs `receiveStock` (operation "Receive", 1 unit) through `client` while
    another transaction holds the level's row lock, and commits that
    transaction once the mutation waits for the lock: the mutation's
    SERIALIZABLE update then fails with 40001 (a real serialization failure).
    Returns the mutation's response (HTTP 200)."""
    import asyncio
    import time

    libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    async with await psycopg.AsyncConnection.connect(libpq) as blocker, \
            await psycopg.AsyncConnection.connect(libpq, autocommit=True) as watcher:
        # A no-op update: takes the row lock, changes no quantity or version.
        await blocker.execute(
            "UPDATE stock_levels SET version = version WHERE (item_id, location_id) = "
            "(SELECT i.id, l.id FROM items i, locations l WHERE i.sku = %s AND l.code = %s)",
            (sku, code))
        mutation = asyncio.ensure_future(client.post(
            RECEIVE_ONE, {"sku": sku, "code": code, "key": idempotency_key}))
        deadline = time.monotonic() + 30
        while not (await (await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%%stock_levels%%'")).fetchone())[0]:
            assert not mutation.done(), mutation.result().text
            assert time.monotonic() < deadline, "the mutation never waited for the row lock"
            await asyncio.sleep(0.02)
        await blocker.commit()
        response = await mutation
    assert response.status_code == 200, response.text
    return response
