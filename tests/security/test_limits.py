"""Abuse limits: token-bucket rate limits per credential and per tenant (reads and
writes apart), in one process and shared between processes through a real Redis;
query limits (depth, aliases, tokens, page size, input lists, body size, batches);
production mode and CORS."""
from __future__ import annotations

import json

import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from ..support import create_api_key, free_port, unique
from .support import ALL, tenant_snapshot

SLOW = "0.01"  # tokens per second: no refill worth counting during a test
READ_Q = '{ location(code: "none") { code } }'  # costs 1 point


def _codes(responses) -> list[str]:
    out = []
    for r in responses:
        if r.status_code == 200 and "errors" not in r.json():
            out.append("ok")
        else:
            body = r.json()
            out.append(body["errors"][0]["extensions"]["code"])
    return out


async def _write(client, key: str, code: str, aliases: int = 1) -> httpx.Response:
    fields = " ".join(
        f'm{i}: createLocation(input: {{code: "{code}-{i}", name: "n"}}) {{ __typename }}'
        for i in range(aliases))
    return await client.post(f"mutation {{ {fields} }}", credential=key)


@pytest.fixture(scope="module")
def limited(start_api_server):
    """A server whose buckets barely refill: reads burst 4, writes burst 3, the
    tenant's budget 1.5 times a credential's."""
    with start_api_server("limited", INVENTORY_RATE_READ=SLOW, INVENTORY_RATE_READ_BURST="4",
                          INVENTORY_RATE_WRITE=SLOW, INVENTORY_RATE_WRITE_BURST="3",
                          INVENTORY_RATE_TENANT_FACTOR="1.5") as server:
        yield server


async def test_rate_limits_per_credential_and_tenant_reads_and_writes_apart(
        limited, graphql, database_url, sync_engine):
    tenant = uuid.uuid4()
    key1, key2 = (create_api_key(database_url, ALL, tenant, f"k{i}") for i in (1, 2))
    client = graphql(limited)
    reads = [await client.post(READ_Q, credential=key1) for _ in range(6)]
    assert _codes(reads) == ["ok"] * 4 + ["RATE_LIMITED"] * 2
    refused = reads[-1]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["retryAfterMs"] > 0
    assert refused.json()["data"] is None
    # Writes have their own budget, untouched by the reads.
    before = tenant_snapshot(sync_engine, tenant)
    writes = [await _write(client, key1, unique("RL")) for _ in range(4)]
    assert _codes(writes) == ["ok"] * 3 + ["RATE_LIMITED"]
    after = tenant_snapshot(sync_engine, tenant)
    assert len(after["locations"]) == len(before["locations"]) + 3  # the refused one wrote nothing
    # key2 has its own bucket, but the tenant's (6 reads) has only 2 left.
    assert _codes([await client.post(READ_Q, credential=key2) for _ in range(3)]) == \
        ["ok", "ok", "RATE_LIMITED"]
    # Another tenant is not affected.
    other = create_api_key(database_url, ALL, uuid.uuid4(), "other")
    assert _codes([await client.post(READ_Q, credential=other)]) == ["ok"]


async def test_rate_limits_apply_on_websockets(limited, database_url):
    import json

    import websockets

    key = create_api_key(database_url, ALL, uuid.uuid4(), "socket")
    url = limited.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"authorization": f"Bearer {key}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        codes = []
        for i in range(6):
            await ws.send(json.dumps({"id": str(i), "type": "subscribe",
                                      "payload": {"query": READ_Q}}))
            message = json.loads(await ws.recv())
            errors = message["payload"].get("errors") if message["type"] == "next" else \
                message["payload"]
            codes.append(errors[0]["extensions"]["code"] if errors else "ok")
            if message["type"] == "next":
                assert json.loads(await ws.recv())["type"] == "complete"
        assert codes == ["ok"] * 4 + ["RATE_LIMITED"] * 2


async def test_aliased_writes_cost_one_token_each(limited, graphql, database_url, sync_engine):
    tenant = uuid.uuid4()
    key = create_api_key(database_url, ALL, tenant, "aliases")
    client = graphql(limited)
    # Four mutations in one request cost four tokens: over a burst of three, so
    # the request is refused whole (it is capped at the burst, so it can never
    # pass either, but nothing of it runs).
    before = tenant_snapshot(sync_engine, tenant)
    assert _codes([await _write(client, key, unique("AL"), aliases=2)]) == ["ok"]
    assert _codes([await _write(client, key, unique("AL"), aliases=2)]) == ["RATE_LIMITED"]
    assert len(tenant_snapshot(sync_engine, tenant)["locations"]) == \
        len(before["locations"]) + 2


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: run scripts/bootstrap (installs it as root)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", process
    if process.poll() is None:
        process.terminate()
        process.wait(5)


async def test_rate_limits_are_shared_between_processes_through_redis(
        database_url, redis_url, start_api_server, graphql):
    url, redis_process = redis_url
    env = dict(INVENTORY_REDIS_URL=url, INVENTORY_RATE_READ=SLOW,
               INVENTORY_RATE_READ_BURST="6", INVENTORY_RATE_WRITE=SLOW,
               INVENTORY_RATE_WRITE_BURST="6", INVENTORY_RATE_TENANT_FACTOR="0")
    with start_api_server("redis-api1", **env) as one, \
            start_api_server("redis-api2", **env) as two:
        key = create_api_key(database_url, ALL, uuid.uuid4(), "shared")
        clients = [graphql(one), graphql(two)]
        # Alternate between the processes: together they allow one burst, not two.
        results = _codes([await clients[i % 2].post(READ_Q, credential=key)
                          for i in range(10)])
        assert results == ["ok"] * 6 + ["RATE_LIMITED"] * 4
        # Redis down: the limiter fails open and the API keeps serving.
        redis_process.terminate()
        redis_process.wait(5)
        fresh = create_api_key(database_url, ALL, uuid.uuid4(), "after redis")
        assert _codes([await clients[0].post(READ_Q, credential=fresh)
                       for _ in range(3)]) == ["ok"] * 3


async def test_without_redis_each_process_has_its_own_buckets(
        limited, database_url, start_api_server, graphql):
    """The control for the Redis test: two processes without Redis allow a burst each."""
    rates = {k: v for k, v in limited.env.items() if k.startswith("INVENTORY_RATE")}
    with start_api_server("second", **rates) as other:
        key = create_api_key(database_url, ALL, uuid.uuid4(), "local")
        clients = [graphql(limited), graphql(other)]
        results = _codes([await clients[i % 2].post(READ_Q, credential=key)
                          for i in range(10)])
        assert results.count("ok") == 8  # 4 per process


# ------------------------------------------------------------------ query limits

def _error_code(response: httpx.Response) -> str:
    assert response.status_code < 500, response.text
    return response.json()["errors"][0]["extensions"]["code"]


async def test_query_limits(secure_api, tenants):
    key = tenants[1].keys["all"]
    client = secure_api.with_key(key)
    deep = "{ items(first: 1) { nodes { stockLevels { item { stockLevels { item { stockLevels " \
           "{ item { stockLevels { item { stockLevels { item { sku } } } } } } } } } } } } } }"
    assert _error_code(await client.post(deep)) == "GRAPHQL_VALIDATION_FAILED"
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
    assert _error_code(await client.post(aliases)) == "GRAPHQL_VALIDATION_FAILED"
    tokens = "{ " + "__typename " * 5001 + "}"
    assert _error_code(await client.post(tokens)) == "GRAPHQL_VALIDATION_FAILED"
    assert _error_code(await client.post("{ items(first: 501) { nodes { sku } } }")) \
        == "INVALID_INPUT"
    lines = [{"sku": "X", "locationCode": "Y", "quantity": 1}] * 101
    body = await client.post("mutation($i: ReserveStockInput!) { reserveStock(input: $i) "
                             "{ ... on UserError { code field } } }", {"i": {"lines": lines}})
    assert body.json()["data"]["reserveStock"] == {"code": "INVALID_INPUT", "field": "lines"}
    # NUL characters and lone surrogates (which PostgreSQL text cannot hold) are
    # refused up front. json.dumps escapes a surrogate as \\ud800, as a client might.
    level = "query($s: String!) { stockLevel(sku: $s, locationCode: \"WH-01\") { onHand } }"
    # (A raw surrogate inside the document itself is already a syntax error.)
    for query, variables, code in (
            ('{ item(sku: "a\\u0000b") { sku } }', None, "INVALID_INPUT"),
            ("query($s: String!) { item(sku: $s) { sku } }", {"s": "a\x00"}, "INVALID_INPUT"),
            (level, {"s": "a\ud800"}, "INVALID_INPUT"),
            ('{ item(sku: "a\ud800") { sku } }', None, "GRAPHQL_VALIDATION_FAILED")):
        response = await client.client.post(
            client.url + "/graphql", content=json.dumps({"query": query, "variables": variables or {}}),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == code, (query, variables)


async def test_body_size_batches_and_several_operations(secure_api, tenants):
    key = tenants[1].keys["all"]
    client = secure_api.with_key(key)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    big = await client.client.post(client.url + "/graphql", content=b'{"query": "' + b" " * 300_000 + b'{ __typename }"}',
                           headers=headers)
    assert big.status_code == 413 and big.json()["errors"][0]["extensions"]["code"] == \
        "PAYLOAD_TOO_LARGE"

    async def chunks():  # no Content-Length: the limit is counted while reading
        for _ in range(40):
            yield b" " * 10_000

    streamed = await client.client.post(client.url + "/graphql", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    batch = await client.client.post(client.url + "/graphql", json=[{"query": "{ __typename }"}] * 5, headers=headers)
    assert batch.status_code == 400  # batching is off: one operation per request
    assert _error_code(batch) == "BAD_REQUEST"
    # Several operations in a document: none runs without operationName (the
    # GraphQL spec's rule), the named one with it, and the scope check looks at
    # that same operation.
    read_only = tenants[1].keys["read"]
    document = ('query A { __typename } '
                'mutation B { createLocation(input: {code: "NEVER", name: "n"}) { __typename } }')
    unnamed = await client.post(document, credential=read_only)
    assert unnamed.status_code == 400 and _error_code(unnamed) == "BAD_REQUEST"
    assert (await client.client.post(
        client.url + "/graphql", json={"query": document, "operationName": "A"},
        headers={"Authorization": f"Bearer {read_only}"})).json()["data"] \
        == {"__typename": "Query"}
    named = await client.client.post(client.url + "/graphql", json={"query": document, "operationName": "B"},
                             headers={"Authorization": f"Bearer {read_only}"})
    assert _error_code(named) == "FORBIDDEN"
    assert await client.gql('{ location(code: "NEVER") { code } }') == {"location": None}


@pytest.fixture(scope="module")
def production(start_api_server):
    with start_api_server("prod", INVENTORY_ENV="production",
                          INVENTORY_CORS_ORIGINS="https://shop.example") as server:
        yield server


async def test_production_mode_turns_off_graphiql_and_introspection(production, api_server,
                                                                   graphql):
    headers = {"Accept": "text/html"}
    assert httpx.get(production.url + "/graphql", headers=headers).status_code == 404
    assert "graphiql" in httpx.get(api_server.url + "/graphql", headers=headers).text.lower()
    # A query in the URL, however encoded, needs a credential like a POST.
    for query_string in ("query={__typename}", "%71uery={__typename}"):
        assert httpx.get(f"{api_server.url}/graphql?{query_string}").status_code == 401
    client = graphql(production)
    introspection = await client.post("{ __schema { types { name } } }")
    assert _error_code(introspection) == "GRAPHQL_VALIDATION_FAILED"
    assert await client.gql("{ __typename }") == {"__typename": "Query"}
    assert await graphql(api_server).gql("{ __schema { queryType { name } } }") == {
        "__schema": {"queryType": {"name": "Query"}}}


def test_cors_allows_only_configured_origins(production, api_server):
    def preflight(url, origin):
        return httpx.options(url + "/graphql", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})

    allowed = preflight(production.url, "https://shop.example")
    assert allowed.headers.get("access-control-allow-origin") == "https://shop.example"
    assert "access-control-allow-origin" not in preflight(production.url, "https://evil.example").headers
    # Nothing is allowed by default.
    assert "access-control-allow-origin" not in preflight(api_server.url, "https://shop.example").headers
    simple = httpx.post(api_server.url + "/graphql", json={"query": "{ __typename }"},
                        headers={"Origin": "https://evil.example",
                                 "Authorization": f"Bearer {api_server.api_key}"})
    assert "access-control-allow-origin" not in simple.headers


async def test_no_schema_hints_when_introspection_is_off(production, api_server, graphql):
    """With introspection off, errors do not suggest schema names (fields,
    arguments, types, input fields); with it on they still help."""
    cases = [
        ("{ ledgerAudi { ok } }", None, "ledgerAudit"),
        ("{ items(firs: 1) { nodes { sku } } }", None, "'first'"),
        ("query($f: ItemFilte) { items(filter: $f) { nodes { sku } } }", None, "ItemFilter"),
        ("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) { __typename } }",
         {"i": {"sku": "S", "locationCode": "L", "quantity": 1, "reasn": "r"}},
         "'reason'"),
    ]
    for server, hints in ((production, False), (api_server, True)):
        client = graphql(server)
        for query, variables, name in cases:
            response = await client.post(query, variables)
            message = response.json()["errors"][0]["message"]
            assert ("Did you mean" in message) is hints, (query, message)
            assert (name in message) is hints, (query, message)


def test_metrics_need_the_metrics_scope_in_production(production, api_server, database_url):
    """In production /metrics (every tenant's counts) needs a credential with the
    inventory:metrics scope; other scopes, even admin, are refused. In development
    it stays open (INVENTORY_METRICS_AUTH=0)."""
    url = production.url + "/metrics"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    admin = create_api_key(database_url, ("inventory:read", "inventory:write", "inventory:admin"),
                           uuid.uuid4(), "no metrics scope")
    refused = httpx.get(url, headers={"Authorization": f"Bearer {admin}"})
    assert refused.status_code == 403
    assert "inventory_graphql_requests_total" not in refused.text
    scraper = create_api_key(database_url, ("inventory:metrics",), uuid.uuid4(), "prometheus")
    scraped = httpx.get(url, headers={"Authorization": f"Bearer {scraper}"})
    assert scraped.status_code == 200 and "inventory_graphql_requests_total" in scraped.text
    # The metrics scope reads nothing else.
    read = httpx.post(production.url + "/graphql", headers={"Authorization": f"Bearer {scraper}"},
                      json={"query": "{ items(first: 1) { nodes { sku } } }"})
    assert read.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert httpx.get(api_server.url + "/metrics").status_code == 200
