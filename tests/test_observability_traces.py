"""Traces of real requests: the app runs in-process under uvicorn (in a thread)
with an in-memory span exporter, against the test PostgreSQL server, with
authentication on (an API key in the database, sent by every request)."""
from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from inventory.web.app import create_app
from inventory.config import Settings
from inventory.observability import tracing
from inventory.service.context import DEFAULT_TENANT_ID

from .support import (API_KEYS, DATABASES, create_api_key, receive_with_forced_retry,
                      served_in_thread)


@pytest.fixture(scope="module")
def exporter():
    """Spans of this module's app, in memory (the process's global provider is
    left alone, so nothing else in the test run is traced)."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    assert not tracing.enabled()
    tracing.configure(provider)
    yield memory
    tracing.shutdown()
    provider.shutdown()


@pytest.fixture(scope="module")
def traced_url(database_url, exporter):
    with pytest.MonkeyPatch.context() as env:
        # As for `inventory serve` in tests: rate limits far above what the tests
        # send; verified credentials cached long enough that a test's second
        # request surely reuses its first one's lookup.
        env.setenv("INVENTORY_RATE_READ", "100000")
        env.setenv("INVENTORY_RATE_WRITE", "100000")
        env.setenv("INVENTORY_AUTH_CACHE_SECONDS", "120")
        app = create_app(replace(Settings.from_env(), database_url=database_url,
                                 sweep_interval_s=0, graphiql=False))
    assert tracing.enabled()
    with served_in_thread(app, start_timeout=15) as url:
        API_KEYS[url] = create_api_key(database_url)  # the GraphQL client sends it
        DATABASES[url] = database_url
        yield url
        API_KEYS.pop(url, None)
    assert not tracing.enabled()  # lifespan shutdown removed the instrumentation


@pytest.fixture(scope="module")
def traced(graphql, traced_url):
    """The GraphQL client on the traced in-process server."""
    return graphql(traced_url)


async def post(client, query: str, variables: dict | None = None, **kwargs):
    """The response to one operation, which must be HTTP 200."""
    response = await client.post(query, variables, **kwargs)
    assert response.status_code == 200, response.text
    return response


def spans_of(exporter, trace_id: str, *, settle: float = 10.0):
    """The finished spans of one trace (waits for the server span, which ends
    last, after the response has reached the client)."""
    wanted = int(trace_id, 16)
    deadline = time.monotonic() + settle
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == wanted]
        if any(s.kind is SpanKind.SERVER for s in spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def statement(span) -> str:
    return str(span.attributes.get("db.statement", ""))


def tree(spans):
    """(server span, operation span, SQL spans under the operation, SQL spans of
    the credential lookup).

    The HTTP gate verifies the credential before GraphQL runs, so a key the
    process has not verified recently (see INVENTORY_AUTH_CACHE_SECONDS) adds
    its lookup (checkout pre-ping, then SELECT ... FROM api_keys) as SQL spans
    directly under the server span, before the operation span: that time is
    the request's, not the operation's. Nothing else may sit beside the
    operation span."""
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans]
    server = servers[0]
    children = [s for s in spans if s.parent and s.parent.span_id == server.context.span_id]
    operations = [s for s in children if s.kind is SpanKind.INTERNAL]
    assert len(operations) == 1, [(s.name, s.kind) for s in spans]
    operation = operations[0]
    auth_sql = [s for s in children if s is not operation]
    assert all(s.kind is SpanKind.CLIENT and s.attributes.get("db.system") == "postgresql"
               for s in auth_sql), [(s.name, s.kind) for s in auth_sql]
    if auth_sql:
        assert any("api_keys" in statement(s) for s in auth_sql), [statement(s) for s in auth_sql]
        assert all("api_keys" not in statement(s) or s.status.status_code is not StatusCode.ERROR
                   for s in auth_sql)
        assert max(s.end_time for s in auth_sql) <= operation.start_time
    sql = [s for s in spans if s.parent and s.parent.span_id == operation.context.span_id]
    assert not any("api_keys" in statement(s) for s in sql), "credential lookup inside the operation"
    inner = [s for s in spans if s is not server]
    assert {s.parent.span_id for s in inner} <= {
        server.context.span_id, operation.context.span_id}, "unexpected nesting"
    assert not any("http send" in s.name or "http receive" in s.name for s in spans)
    return server, operation, sql, auth_sql


LEVEL_QUERY = """query Level($sku: String!, $code: String!) {
  stockLevel(sku: $sku, locationCode: $code) { onHand available } }"""
RESERVE = """mutation($sku: String!, $code: String!, $q: Quantity!) {
  reserveStock(input: {lines: [{sku: $sku, locationCode: $code, quantity: $q}],
                       ttlSeconds: 60}) {
    __typename ... on UserError { code message } } }"""


async def test_query_span_tree(traced, stocked_level, exporter, database_url):
    sku, code = await stocked_level(5, client=traced)
    key = create_api_key(database_url, scopes=["inventory:read"])  # not verified yet
    headers = {"Authorization": f"Bearer {key}"}
    response = await post(traced, LEVEL_QUERY, {"sku": sku, "code": code}, headers=headers)
    body = response.json()
    assert body["data"]["stockLevel"]["onHand"] == 5
    trace_id = response.headers["x-trace-id"]
    assert body["extensions"]["traceId"] == trace_id
    assert response.headers["traceresponse"].startswith(f"00-{trace_id}-")

    server, operation, sql, auth_sql = tree(spans_of(exporter, trace_id))
    assert operation.name == "query Level"
    attributes = operation.attributes
    assert attributes["graphql.operation.type"] == "query"
    assert attributes["graphql.operation.name"] == "Level"
    assert attributes["graphql.root_fields"] == ("stockLevel",)
    assert len(attributes["graphql.document.hash"]) == 64
    assert attributes["inventory.tenant_id"] == str(DEFAULT_TENANT_ID)
    assert attributes["inventory.outcome"] == "ok"
    assert operation.status.status_code is StatusCode.UNSET
    assert sql and all(s.attributes.get("db.system") == "postgresql" for s in sql)
    assert any("stock_levels" in statement(s) for s in sql)
    # The first use of the key: its lookup, under the server span (see tree()).
    assert [s for s in auth_sql if "api_keys" in statement(s)], [s.name for s in auth_sql]
    # Variables' values and the credential are not recorded anywhere (statements
    # are parameterised; the key's secret never reaches the database).
    secret = key.split("_", 2)[2]  # inv_<ids>_<secret>; the secret may contain "_"
    for span in [server, operation, *sql, *auth_sql]:
        assert sku not in repr(dict(span.attributes)), span.name
        assert secret not in repr(dict(span.attributes)), span.name

    # The same key again: verified from the cache, so no lookup in this trace.
    response = await post(traced, LEVEL_QUERY, {"sku": sku, "code": code}, headers=headers)
    _, operation, sql, auth_sql = tree(spans_of(exporter, response.headers["x-trace-id"]))
    assert operation.name == "query Level" and sql and auth_sql == []


async def test_span_records_the_credentials_tenant(traced, stocked_level, exporter,
                                                  database_url):
    """The tenant on the operation span is the one of the caller's credential
    (the per-request context is rebound to it), not the process's default."""
    tenant = uuid.uuid4()
    key = create_api_key(database_url, scopes=["inventory:read"], tenant_id=tenant)
    sku, code = await stocked_level(1, client=traced)  # the default tenant's stock
    response = await post(traced, LEVEL_QUERY, {"sku": sku, "code": code},
                    headers={"Authorization": f"Bearer {key}"})
    assert response.json()["data"] == {"stockLevel": None}  # another tenant's level: invisible
    _, operation, _, _ = tree(spans_of(exporter, response.headers["x-trace-id"]))
    assert operation.attributes["inventory.tenant_id"] == str(tenant)
    assert operation.attributes["inventory.outcome"] == "ok"

    # And right after, the default tenant's key again: each request its own tenant.
    response = await post(traced, LEVEL_QUERY, {"sku": sku, "code": code})
    assert response.json()["data"]["stockLevel"]["onHand"] == 1
    _, operation, _, _ = tree(spans_of(exporter, response.headers["x-trace-id"]))
    assert operation.attributes["inventory.tenant_id"] == str(DEFAULT_TENANT_ID)


async def test_mutation_with_real_retry(traced, stocked_level, exporter, database_url):
    """A transaction holding the level's row lock commits while the mutation waits
    for it: PostgreSQL refuses the mutation's update with 40001, the runner
    retries, and the retry is an event on the operation span."""
    sku, code = await stocked_level(5, client=traced)
    response = await receive_with_forced_retry(traced, database_url, sku, code)
    _, operation, sql, _ = tree(spans_of(exporter, response.headers["x-trace-id"]))
    assert operation.name == "mutation Receive"
    retries = [e for e in operation.events if e.name == "transaction.retry"]
    assert len(retries) >= 1
    assert retries[0].attributes["db.response.status_code"] == "40001"
    assert retries[0].attributes["inventory.tx.attempt"] == 1
    failed = [s for s in sql if s.status.status_code is StatusCode.ERROR]
    assert failed, "the statement refused with 40001 is a failed SQL span"
    # Both attempts' statements sit under the operation span, in time order.
    assert any(s.start_time > failed[0].end_time for s in sql)
    assert operation.attributes["inventory.outcome"] == "ok"


async def test_failed_mutations(traced, stocked_level, exporter):
    sku, code = await stocked_level(1, client=traced)
    response = await post(traced, RESERVE, {"sku": sku, "code": code, "q": 5})
    assert response.json()["data"]["reserveStock"]["code"] == "INSUFFICIENT_STOCK"
    _, operation, _, _ = tree(spans_of(exporter, response.headers["x-trace-id"]))
    assert operation.name == "mutation reserveStock"  # unnamed: its root field
    assert operation.attributes["inventory.user_error.codes"] == ("INSUFFICIENT_STOCK",)
    assert operation.attributes["inventory.outcome"] == "user_error"

    # A request the schema rejects: an error status, the code, the trace id in the error.
    response = await post(traced, "mutation { receiveStock(input: {sku: 1}) { __typename } }")
    body = response.json()
    trace_id = response.headers["x-trace-id"]
    assert body["errors"][0]["extensions"]["traceId"] == trace_id
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    _, operation, sql, _ = tree(spans_of(exporter, trace_id))
    assert operation.status.status_code is StatusCode.ERROR
    assert "GRAPHQL_VALIDATION_FAILED" in operation.attributes["graphql.error.codes"]
    assert operation.attributes["inventory.outcome"] == "rejected"
    assert sql == []


async def test_incoming_traceparent_is_honoured(traced, stocked_level, exporter):
    sku, code = await stocked_level(2, client=traced)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = await post(traced, LEVEL_QUERY, {"sku": sku, "code": code},
                    headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    assert response.headers["x-trace-id"] == trace_id
    assert response.json()["extensions"]["traceId"] == trace_id
    server, operation, sql, _ = tree(spans_of(exporter, trace_id))
    assert server.parent.span_id == int(parent_id, 16) and server.parent.is_remote
    assert operation.name == "query Level" and sql


async def test_probes_are_not_traced(traced, exporter):
    exporter.clear()
    for path in ("/healthz", "/readyz", "/metrics"):
        response = await traced.client.get(traced.url + path)
        assert response.status_code == 200 and "x-trace-id" not in response.headers
    # A traced request after the probes: once its spans are in, a probe's would be too.
    marker = (await post(traced, "{ __typename }")).headers["x-trace-id"]
    assert spans_of(exporter, marker)
    traces = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
    assert traces == {marker}


async def test_direct_queries_record_the_same_span_and_metrics(traced, stocked_level,
                                                               exporter, monkeypatch):
    """A known query answered without strawberry's operation machinery
    (inventory/web/direct.py) records the span and the metrics strawberry's
    path records."""
    from prometheus_client import REGISTRY

    from inventory.web.direct import DirectQueries

    real = DirectQueries.execute
    answered: list[bool] = []
    direct_on = [False]

    async def switched(self, *args):
        result = await real(self, *args) if direct_on[0] else None
        answered.append(result is not None)
        return result

    sku, code = await stocked_level(3, client=traced)
    monkeypatch.setattr(DirectQueries, "execute", switched)
    labels = {"operation": "query stockLevel", "outcome": "ok"}
    spans = []
    for on in (False, False, True):  # the first parses the document
        direct_on[0] = on
        before = REGISTRY.get_sample_value("inventory_graphql_requests_total", labels) or 0
        response = await post(traced, LEVEL_QUERY, {"sku": sku, "code": code})
        assert response.json()["data"]["stockLevel"]["onHand"] == 3
        after = REGISTRY.get_sample_value("inventory_graphql_requests_total", labels)
        assert after == before + 1
        _, operation, sql, _ = tree(spans_of(exporter, response.headers["x-trace-id"]))
        assert sql and any("stock_levels" in statement(s) for s in sql)
        spans.append(operation)
    assert answered == [False, False, True]
    normal, direct = spans[1], spans[2]
    assert direct.name == normal.name == "query Level"
    assert dict(direct.attributes) == dict(normal.attributes)
    assert direct.status.status_code is normal.status.status_code is StatusCode.UNSET
