"""GraphQL over HTTP: graphql-http's audit suite against the running server
(every MUST, SHOULD and MAY audit passes), and the media types negotiated from
Accept: application/graphql-response+json with the spec's status codes,
application/json as it always was."""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import pytest

from inventory.web.media import GRAPHQL_RESPONSE, JSON, negotiate

from .support import READ, ROOT, create_api_key

AUDIT = ROOT / "tests" / "graphql_http"
GR = {"accept": GRAPHQL_RESPONSE}
PARSE_ERROR = "{ items { "
VALIDATION_ERROR = "{ noSuchField }"
COERCION_ERROR = ("query($n: Int!) { items(first: $n) { nodes { sku } } }", {"n": "many"})


def test_graphql_http_audit_suite_passes_every_audit(api_server):
    node = shutil.which("node")
    assert node, "node is missing: scripts/bootstrap installs it (nodejs)"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), \
        "graphql-http is missing: run scripts/bootstrap (npm ci in tests/graphql_http)"
    run = subprocess.run([node, str(AUDIT / "audit.mjs"), api_server.url + "/graphql",
                          api_server.api_key], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    failed = [r for r in results if r["status"] != "ok"]
    for r in failed:
        print(f"audit failed: {r['id']} {r['name']}: {r['reason']} "
              f"(HTTP {r['httpStatus']}, {r['contentType']}) {r['body']}")
    levels = Counter(r["name"].split()[0] for r in results)
    passed = Counter(r["name"].split()[0] for r in results if r["status"] == "ok")
    print(f"graphql-http audit: MUST {passed['MUST']}/{levels['MUST']}, SHOULD/MAY "
          f"{passed['SHOULD'] + passed['MAY']}/{levels['SHOULD'] + levels['MAY']}")
    assert (levels["MUST"], levels["SHOULD"] + levels["MAY"]) == (13, 48), levels
    assert not failed, "\n".join(f"{r['id']} {r['name']}: {r['reason']}" for r in failed)


@pytest.mark.parametrize("accept, expected", [
    ("", JSON),
    ("*/*", JSON),
    ("application/json", JSON),
    ("application/*", JSON),
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE}, application/json", GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE};charset=utf-8", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE}; q=0.5, application/json", JSON),
    (f"application/json; q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE}; q=0", JSON),
    ("text/html", JSON),
])
def test_negotiation(accept, expected):
    assert negotiate(accept) == expected


def _no_data(response) -> dict:
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE), response.headers
    body = response.json()
    assert "data" not in body and body["errors"], body
    return body


async def test_request_errors_are_4xx_without_data_under_graphql_response_json(api):
    parse = await api.post(PARSE_ERROR, headers=GR)
    assert parse.status_code == 400
    assert _no_data(parse)["errors"][0]["message"].startswith("Syntax Error")
    validation = await api.post(VALIDATION_ERROR, headers=GR)
    assert validation.status_code == 400
    assert "noSuchField" in _no_data(validation)["errors"][0]["message"]
    coercion = await api.post(*COERCION_ERROR, headers=GR)
    assert coercion.status_code == 400
    assert "$n" in _no_data(coercion)["errors"][0]["message"]
    # Over GET too (strawberry's own path).
    got = await api.http("GET", headers=GR, params={"query": VALIDATION_ERROR})
    assert got.status_code == 400 and "noSuchField" in _no_data(got)["errors"][0]["message"]
    # A body that is not JSON.
    broken = await api.http("POST", headers={**GR, "content-type": "application/json"},
                            content=b"{not json")
    assert broken.status_code == 400
    assert _no_data(broken)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_credentials_and_scopes_keep_their_status_under_graphql_response_json(
        api, database_url):
    anonymous = await api.post("{ __typename }", credential=None, headers=GR)
    assert anonymous.status_code == 401
    assert _no_data(anonymous)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    reader = create_api_key(database_url, scopes=(READ,), name="media-type reader")
    forbidden = await api.post('mutation { createLocation(input: {code: "MT-1", name: "x"}) '
                               '{ __typename } }', credential=reader, headers=GR)
    assert forbidden.status_code == 403
    assert _no_data(forbidden)["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_executed_results_are_200_under_graphql_response_json(api):
    ok = await api.post("{ __typename }", headers=GR)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.json()["data"] == {"__typename": "Query"}
    # A field error during execution: the result has data (null), so 200.
    field_error = await api.post("{ items(first: -1) { nodes { sku } } }", headers=GR)
    assert field_error.status_code == 200, field_error.text
    body = field_error.json()
    assert "data" in body and body["errors"][0]["path"] == ["items"]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
async def test_application_json_is_unchanged(api, accept):
    headers = {"accept": accept} if accept else {}
    for query, variables in ((PARSE_ERROR, None), (VALIDATION_ERROR, None), COERCION_ERROR):
        response = await api.post(query, variables, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == JSON
        body = response.json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"]
    anonymous = await api.post("{ __typename }", credential=None, headers=headers)
    assert anonymous.status_code == 401 and anonymous.json()["data"] is None
    assert anonymous.headers["content-type"] == JSON
