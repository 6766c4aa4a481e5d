"""Malformed requests are 4xx GraphQL JSON errors, never a 500, never an echo of
the input, and the connection stays usable for the next request."""
from __future__ import annotations

import json

import httpx
import pytest

DEEP = b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * 100_000 + b"]" * 100_000 \
    + b"}}"
HUGE_NUMBER = b'{"query": "query($n: Int) { __typename }", "variables": {"n": ' + b"9" * 5000 \
    + b"}}"
# (name, body bytes, Content-Type, query string)
MALFORMED = [
    ("a JSON string", b'"{ __typename }"', "application/json", ""),
    ("a JSON number", b"42", "application/json", ""),
    ("JSON null", b"null", "application/json", ""),
    ("not JSON", b"{ __typename }", "application/json", ""),
    ("an invalid UTF-8 byte", b'{"query": "{ __typename \xff }"}', "application/json", ""),
    ("JSON nested 100,000 deep", DEEP, "application/json", ""),
    ("JSON nested 40 deep", b'{"query": "{ __typename }", "variables": {"v": '
     + b"[" * 40 + b"]" * 40 + b"}}", "application/json", ""),
    ("a 5,000-digit integer", HUGE_NUMBER, "application/json", ""),
    ("a list as operationName",
     b'{"query": "{ __typename }", "operationName": ["a"]}', "application/json", ""),
    ("a number as query", b'{"query": 5}', "application/json", ""),
    ("a list as variables", b'{"query": "{ __typename }", "variables": [1]}',
     "application/json", ""),
    ("no query", b'{"variables": {}}', "application/json", ""),
    ("a batch", b'[{"query": "{ __typename }"}, {"query": "{ __typename }"}]',
     "application/json", ""),
    ("several operations, no operationName",
     b'{"query": "query A { __typename } query B { __typename }"}', "application/json", ""),
    ("an unknown operationName",
     json.dumps({"query": "query A { __typename }", "operationName": "B" * 10_000}).encode(),
     "application/json", ""),
    ("an unsupported content type", b"{ __typename }", "text/plain", ""),
    ("GET with deep variables", b"", "",
     "query=%7B__typename%7D&variables=" + "%5B" * 5000 + "%5D" * 5000),
    ("GET with a non-object variables", b"", "", "query=%7B__typename%7D&variables=5"),
]


@pytest.mark.parametrize("name, body, content_type, query_string", MALFORMED,
                         ids=[m[0] for m in MALFORMED])
def test_malformed_requests_are_4xx_graphql_errors(secure_server, name, body, content_type,
                                                   query_string):
    headers = {"Authorization": f"Bearer {secure_server.api_key}"}
    url = secure_server.url + "/graphql"
    with httpx.Client(timeout=30) as http:  # one connection for both requests
        if query_string:
            response = http.get(f"{url}?{query_string}", headers=headers)
        else:
            response = http.post(url, content=body,
                                 headers={**headers, "Content-Type": content_type})
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json"), name
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_REQUEST", (name, error)
        assert response.json()["data"] is None
        assert len(response.text) < 400, (name, response.text)  # no echo of the input
        for leak in ("Traceback", "unhashable", "Internal Server Error", "BBBB", "9999"):
            assert leak not in response.text, (name, response.text)
        # The connection is still good.
        again = http.post(url, json={"query": "{ __typename }"}, headers=headers)
        assert again.status_code == 200 and again.json()["data"] == {"__typename": "Query"}


def test_huge_numbers_within_json_are_graphql_errors(secure_server):
    """A number JSON can hold but GraphQL's Int cannot: a typed error, no echo
    of anything long."""
    headers = {"Authorization": f"Bearer {secure_server.api_key}"}
    response = httpx.post(secure_server.url + "/graphql", headers=headers, json={
        "query": "query($n: Int) { items(first: $n) { nodes { sku } } }",
        "variables": {"n": 10 ** 18}})
    assert response.status_code == 200, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
