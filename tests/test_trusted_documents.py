"""Trusted documents (INVENTORY_TRUSTED_DOCUMENTS): a server with an allow-list
runs the listed documents, by hash or as text, over HTTP and WebSocket, and
refuses every other document with PERSISTED_QUERY_NOT_ALLOWED, without using the
automatic persisted-query store. Both manifest formats, on real servers."""
from __future__ import annotations

import hashlib
import json

import pytest

from inventory.web.trusted import NOT_ALLOWED

from .live_support import WsClient
from .support import run_cli

LEVEL = ("query Level($sku: String!, $code: String!) { stockLevel(sku: $sku, "
         "locationCode: $code) { onHand } }")
CREATE_LOCATION = ("mutation CreateLocation($input: CreateLocationInput!) { "
                   "createLocation(input: $input) { __typename ... on Location { code } } }")
CREATE_ITEM = ("mutation CreateItem($input: CreateItemInput!) { createItem(input: $input) "
               "{ __typename ... on Item { sku } } }")
RECEIVE = ("mutation Receive($input: ReceiveStockInput!) { receiveStock(input: $input) "
           "{ __typename ... on StockLevel { onHand } } }")
LISTED = (LEVEL, CREATE_LOCATION, CREATE_ITEM, RECEIVE)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str, query: str | None = None, variables: dict | None = None) -> dict:
    body = {"variables": variables or {},
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if query is not None:
        body["query"] = query
    return body


def refused(body: dict) -> bool:
    return body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == [
        NOT_ALLOWED]


@pytest.fixture(scope="module")
def trusted_server(start_api_server, tmp_path_factory):
    """A server trusting the documents above, from GraphQL Code Generator's format."""
    manifest = tmp_path_factory.mktemp("trusted") / "persisted-documents.json"
    manifest.write_text(json.dumps({sha256(d): d for d in LISTED}))
    with start_api_server("trusted", INVENTORY_TRUSTED_DOCUMENTS=str(manifest)) as server:
        yield server


@pytest.fixture(scope="module")
async def stocked(trusted_server, graphql):
    """An item and location with 7 received, written through listed documents only."""
    api = graphql(trusted_server)
    sku, code = f"TD-{sha256(str(id(api)))[:8]}", f"TDL-{sha256(str(id(api)))[:8]}"
    for digest, variables in (
            (sha256(CREATE_LOCATION), {"code": code, "name": "trusted"}),
            (sha256(CREATE_ITEM), {"sku": sku, "name": "trusted"}),
            (sha256(RECEIVE), {"sku": sku, "locationCode": code, "quantity": 7})):
        body = (await api.http("POST", json=persisted(digest, variables={"input": variables})))
        assert body.status_code == 200 and "errors" not in body.json(), body.text
    return api, sku, code


async def test_listed_documents_run_by_hash_or_as_text(stocked):
    api, sku, code = stocked
    variables = {"sku": sku, "code": code}
    by_hash = (await api.http("POST", json=persisted(sha256(LEVEL), variables=variables))).json()
    assert by_hash["data"] == {"stockLevel": {"onHand": 7}}
    both = (await api.http("POST", json=persisted(sha256(LEVEL), LEVEL, variables))).json()
    assert both["data"] == {"stockLevel": {"onHand": 7}}
    as_text = await api.raw(LEVEL, variables)
    assert as_text["data"] == {"stockLevel": {"onHand": 7}}
    by_get = (await api.http("GET", headers={"accept": "application/json"}, params={
        "variables": json.dumps(variables),
        "extensions": json.dumps({"persistedQuery": {"version": 1,
                                                     "sha256Hash": f"sha256:{sha256(LEVEL)}"}})})
              ).json()
    assert by_get["data"] == {"stockLevel": {"onHand": 7}}


async def test_other_documents_are_refused_with_a_clear_code(stocked):
    api, sku, code = stocked
    variables = {"sku": sku, "code": code}
    # The same operation, spelt differently, is another document.
    other = LEVEL.replace("{ onHand }", "{ onHand reserved }")
    body = await api.raw(other, variables)
    assert refused(body), body
    assert "allow-list" in body["errors"][0]["message"]
    assert refused(await api.raw("{ __schema { types { name } } }"))  # introspection too
    assert refused(await api.raw('mutation { createLocation(input: {code: "X-TD", name: "x"}) '
                                 '{ __typename } }'))
    # A listed hash with a document that is not its own is refused as invalid.
    mismatch = (await api.http("POST", json=persisted(sha256(LEVEL), other, variables))).json()
    assert mismatch["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_INVALID"
    assert mismatch["data"] is None


async def test_the_automatic_persisted_query_store_is_bypassed(stocked):
    api, sku, code = stocked
    other = LEVEL.replace("{ onHand }", "{ available }")
    variables = {"sku": sku, "code": code}
    # APQ registration (document + its hash) would store it; here it is refused...
    register = (await api.http("POST", json=persisted(sha256(other), other, variables))).json()
    assert refused(register), register
    # ...and the hash alone is not "not found, send the document" but not allowed.
    again = (await api.http("POST", json=persisted(sha256(other), variables=variables))).json()
    assert refused(again), again


async def test_websocket_operations_are_held_to_the_list(trusted_server, stocked):
    api, sku, code = stocked
    async with WsClient(trusted_server.url) as ws:
        listed = await ws.subscribe(LEVEL, {"sku": sku, "code": code})
        assert (await ws.next_data())["stockLevel"] == {"onHand": 7}
        assert (await ws.receive())["type"] == "complete"
        other = await ws.subscribe("subscription { stockLevelChanged { sku } }")
        message = await ws.receive()
        assert message["id"] == other != listed
        errors = message["payload"] if isinstance(message["payload"], list) else \
            message["payload"].get("errors")
        assert [e["extensions"]["code"] for e in errors] == [NOT_ALLOWED], message


async def test_apollo_manifest_format(start_api_server, graphql, tmp_path):
    manifest = tmp_path / "persisted-query-manifest.json"
    manifest.write_text(json.dumps({
        "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{"id": sha256(LEVEL), "name": "Level", "type": "query",
                        "body": LEVEL}]}))
    with start_api_server("apollo-manifest", INVENTORY_TRUSTED_DOCUMENTS=str(manifest)) as server:
        api = graphql(server)
        variables = {"sku": "NONE", "code": "NONE"}
        body = (await api.http("POST", json=persisted(sha256(LEVEL), variables=variables))).json()
        assert body == {"data": {"stockLevel": None}, "extensions": body["extensions"]}
        assert refused(await api.raw("{ __typename }"))


@pytest.mark.parametrize("content, reason", [
    ("not json", "not JSON"),
    ('["query { a }"]', "expected a JSON object"),
    ('{"0123": "{ __typename }"}', "is not a sha256 hash"),
    (json.dumps({"a" * 64: "{ __typename }"}), "is not the sha256 of its document"),
    ('{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}',
     "needs version 1"),
    ("{}", "lists no documents"),
])
def test_a_bad_manifest_stops_the_server_with_the_reason(tmp_path, database_url, content,
                                                         reason):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(content)
    result = run_cli("serve", "--port", "1", env={
        "INVENTORY_DATABASE_URL": database_url, "INVENTORY_TRUSTED_DOCUMENTS": str(manifest)})
    assert result.returncode == 2
    assert reason in result.stderr and "INVENTORY_TRUSTED_DOCUMENTS=" in result.stderr


def test_a_missing_manifest_stops_the_server(tmp_path, database_url):
    result = run_cli("serve", "--port", "1", env={
        "INVENTORY_DATABASE_URL": database_url,
        "INVENTORY_TRUSTED_DOCUMENTS": str(tmp_path / "absent.json")})
    assert result.returncode == 2 and "cannot read it" in result.stderr
