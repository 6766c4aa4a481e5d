"""Queries answered without strawberry's operation machinery
(inventory/web/direct.py) answer exactly what strawberry's path answers: each
request below goes to a real HTTP server (uvicorn, in this process) once with
the direct path off and once with it on, and the HTTP status, the headers and
the body must be the same bytes. Requests the direct path must leave to
strawberry (refusals, invalid documents, mutations, ...) are compared too,
and the test checks which requests the direct path answered itself, so that it
cannot pass by always falling back."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import replace

import httpx
import pytest

from inventory.config import Settings
from inventory.web.app import create_app
from inventory.web.direct import DirectQueries

from .support import READ, WRITE, create_api_key, served_in_thread, unique

LEVEL = """query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c)
  { onHand reserved available version } }"""
PAGE = """query($p: String!) { items(first: 50, filter: {skuPrefix: $p}) { edges { node { sku
  totalAvailable stockLevels { onHand reserved available location { code } } } } } }"""
TWO = """query First { __typename } query Second($s: String!, $c: String!) {
  stockLevel(sku: $s, locationCode: $c) { onHand } }"""
GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture(scope="module")
def server(database_url):
    """An in-process server with a small read budget per credential (no
    tenant budget), so that one key can be rate limited quickly."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"INVENTORY_RATE_READ": "0.001", "INVENTORY_RATE_READ_BURST": "15000",
                            "INVENTORY_RATE_TENANT_FACTOR": "0", "INVENTORY_RATE_WRITE": "1000",
                            "INVENTORY_CHANGE_FEED": "off"}.items():
            env.setenv(name, value)
        app = create_app(replace(Settings.from_env(), database_url=database_url,
                                 sweep_interval_s=0, graphiql=False))
    with served_in_thread(app) as url:
        yield url


@pytest.fixture
def answered(monkeypatch):
    """Switches the direct path (`answered.on`) and records the requests it
    answered itself."""
    real = DirectQueries.execute

    class Switch:
        on = True
        count = 0

    async def switched(self, *args):
        if not Switch.on:
            return None
        result = await real(self, *args)
        if result is not None:
            Switch.count += 1
        return result

    monkeypatch.setattr(DirectQueries, "execute", switched)
    return Switch


def _normalized(response: httpx.Response) -> tuple:
    """Status, headers and body; a refusal's wait (which moves with the clock)
    and an internal error's id made comparable."""
    headers = sorted((k, v) for k, v in response.headers.items() if k != "date")
    body = re.sub(rb'"internal error \(id [0-9a-f]+\)"', b'"internal error"', response.content)
    body = re.sub(rb'"errorId":"[0-9a-f]+"', b'"errorId":"N"', body)
    if response.status_code == 429:
        headers = [(k, "N" if k in ("retry-after", "content-length") else v) for k, v in headers]
        payload = json.loads(body)
        for error in payload.get("errors", ()):
            error["extensions"]["retryAfterMs"] = "N"
        body = json.dumps(payload).encode()
    return response.status_code, headers, body


async def _both(url: str, answered, body: dict | bytes, key: str | None,
                keys: tuple[str, str] | None = None, accept: str | None = None,
                statuses: list | None = None) -> bool:
    """Sends the request with the direct path off, then on (each with `keys`'
    own key when given); asserts the answers are equal and returns whether the
    direct path answered it (the status goes to `statuses`)."""
    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answers = []
    before = answered.count
    async with httpx.AsyncClient(timeout=30) as client:
        for on, credential in zip((False, True), keys or (key, key)):
            answered.on = on
            sent = dict(headers)
            if credential:
                sent["Authorization"] = f"Bearer {credential}"
            response = await client.post(f"{url}/graphql", content=content, headers=sent)
            assert response.status_code < 500, response.text
            answers.append(_normalized(response))
    assert answers[0] == answers[1], (body, answers)
    if statuses is not None:
        statuses.append(answers[0][0])
    return answered.count > before


@pytest.fixture(scope="module")
async def data(server, database_url):
    key = create_api_key(database_url)
    sku, code, prefix = unique("DQ-"), unique("D"), unique("DQP-")
    async with httpx.AsyncClient(timeout=30) as client:
        async def gql(query: str, variables: dict) -> dict:
            response = await client.post(f"{server}/graphql", json={
                "query": query, "variables": variables},
                headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200 and "errors" not in response.json(), \
                response.text
            return response.json()["data"]

        await gql("mutation($i: CreateLocationInput!) { createLocation(input: $i) "
                  "{ __typename } }", {"i": {"code": code, "name": "Direct"}})
        for s in (sku, f"{prefix}1", f"{prefix}2"):
            await gql("mutation($i: CreateItemInput!) { createItem(input: $i) "
                      "{ __typename } }", {"i": {"sku": s, "name": "Direct"}})
            await gql("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
                      "{ __typename } }", {"i": {"sku": s, "locationCode": code, "quantity": 5}})
    return {"sku": sku, "code": code, "prefix": prefix}


def _cases(data: dict) -> list[tuple[str, dict | bytes, bool]]:
    """(name, request body, answered by the direct path)."""
    level = {"s": data["sku"], "c": data["code"]}
    apq = "{ __typename }"
    return [
        ("level", {"query": LEVEL, "variables": level}, True),
        ("page", {"query": PAGE, "variables": {"p": data["prefix"]}}, True),
        ("typename", {"query": "{ __typename }"}, True),
        ("unknown level", {"query": LEVEL, "variables": {"s": "NO-SUCH", "c": "NOWHERE"}}, True),
        ("named", {"query": TWO, "variables": level, "operationName": "Second"}, True),
        ("named first", {"query": TWO, "operationName": "First"}, True),
        ("unknown operation", {"query": TWO, "operationName": "Third"}, False),
        ("several, unnamed", {"query": TWO, "variables": level}, False),
        ("variables of the wrong type", {"query": LEVEL, "variables": {"s": 5, "c": "X"}}, True),
        ("a missing variable", {"query": LEVEL, "variables": {"s": "X"}}, True),
        ("no variables", {"query": LEVEL}, True),
        ("a resolver's error", {"query": "{ items(first: 501) { edges { node { sku } } } }"},
         True),
        ("unstorable text", {"query": LEVEL, "variables": {"s": "A\u0000", "c": "X"}}, False),
        ("too costly", {"query": "{ items(first: 500) { edges { node { sku stockLevels "
                                 "{ location { code } } } } } }"}, False),
        ("invalid", {"query": "{ nope }"}, False),
        ("unreadable", {"query": "{ stockLevel("}, False),
        ("bounded staleness", {"query": "query @boundedStaleness(maxMs: 500) { __typename }"},
         False),
        ("a bad bound", {"query": "query @boundedStaleness(maxMs: -1) { __typename }"}, False),
        ("a mutation", {"query": "mutation { createLocation(input: {code: \"\", name: \"\"}) "
                                 "{ __typename } }"}, False),
        ("a subscription", {"query": "subscription { lowStock { __typename } }"}, False),
        ("apq", {"query": apq, "extensions": {"persistedQuery": {
            "version": 1, "sha256Hash": hashlib.sha256(apq.encode()).hexdigest()}}}, True),
        ("apq unknown", {"extensions": {"persistedQuery": {"version": 1,
                                                           "sha256Hash": "0" * 64}}}, False),
        ("no query", {"variables": {}}, False),
        ("not JSON", b"{", False),
    ]


@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
async def test_direct_and_strawberry_paths_answer_alike(server, data, answered, database_url,
                                                        accept):
    key = create_api_key(database_url)
    direct = {}
    for name, body, expected in _cases(data):
        # The first request of a document is parsed on strawberry's path.
        await _both(server, answered, body, key, accept=accept)
        direct[name] = await _both(server, answered, body, key, accept=accept)
    assert direct == {name: expected for name, _, expected in _cases(data)}


async def test_refusals_answer_alike(server, data, answered, database_url):
    body = {"query": LEVEL, "variables": {"s": data["sku"], "c": data["code"]}}
    key = create_api_key(database_url)
    await _both(server, answered, body, key)  # known document
    # No credential, a wrong one: the gate answers before any operation.
    for accept in (None, GRAPHQL_RESPONSE):
        assert not await _both(server, answered, body, None, accept=accept)
        assert not await _both(server, answered, body, "not-a-key", accept=accept)
        # A key without the read scope: FORBIDDEN.
        write_only = create_api_key(database_url, scopes=(WRITE,))
        assert not await _both(server, answered, body, write_only, accept=accept)
    # Rate limited: each path with a fresh key, the same costly reads until
    # the budget (15,000 points) refuses one.
    costly = {"query": "{ items(first: 500) { edges { node { sku stockLevels "
                       "{ onHand } } } } }"}
    await _both(server, answered, costly, create_api_key(database_url))
    for accept in (None, GRAPHQL_RESPONSE):
        keys = (create_api_key(database_url, scopes=(READ,)),
                create_api_key(database_url, scopes=(READ,)))
        statuses: list[int] = []
        assert await _both(server, answered, costly, None, keys=keys, accept=accept,
                           statuses=statuses)
        while statuses[-1] != 429 and len(statuses) < 20:
            await _both(server, answered, costly, None, keys=keys, accept=accept,
                        statuses=statuses)
        assert statuses[-1] == 429, statuses


async def test_other_tenants_read_their_own_data(server, data, answered, database_url):
    """The direct path binds the operation to the caller as strawberry's does."""
    body = {"query": LEVEL, "variables": {"s": data["sku"], "c": data["code"]}}
    other = create_api_key(database_url, tenant_id=uuid.uuid4())
    await _both(server, answered, body, other)
    assert await _both(server, answered, body, other)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server}/graphql", json=body,
                                     headers={"Authorization": f"Bearer {other}"})
    assert response.json()["data"] == {"stockLevel": None}
