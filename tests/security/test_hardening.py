"""Production hardening: one canonical API-key form, one Authorization header,
persisted queries namespaced by tenant."""
from __future__ import annotations

import hashlib



async def test_only_the_canonical_key_form_is_accepted(secure_api, tenants):
    client = secure_api
    key = tenants[0].keys["all"]
    assert await client.gql("{ __typename }", credential=key)
    prefix, ids, secret = key[:4], key[4:68], key[69:]
    for variant in (prefix + ids.upper() + "_" + secret,  # uppercase tenant and id hex
                    prefix + ids[:32].upper() + ids[32:] + "_" + secret,  # uppercase tenant
                    "INV_" + ids + "_" + secret,
                    prefix + "{" + ids[:31] + ids[32:] + "}_" + secret,
                    key + "=",
                    key[:-1]):
        assert (await client.post("{ __typename }", credential=variant)).status_code == 401, \
            variant


async def test_duplicate_authorization_headers_are_refused(secure_api, tenants):
    client = secure_api
    good, other = tenants[0].keys["all"], tenants[1].keys["all"]
    for pair in ((good, good), ("garbage", good), (good, other)):
        response = await client.client.post(
            client.url + "/graphql", json={"query": "{ __typename }"},
            headers=[("Authorization", f"Bearer {pair[0]}"),
                     ("Authorization", f"Bearer {pair[1]}")])
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_persisted_queries_are_namespaced_by_tenant(secure_api, tenants):
    client = secure_api
    a, b = tenants[0].keys["read"], tenants[1].keys["read"]
    query = "{ __typename apqNamespace: __typename }"
    persisted = {"persistedQuery": {"version": 1,
                                    "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}

    async def send(key, with_query):
        body = {"extensions": persisted, **({"query": query} if with_query else {})}
        return (await client.client.post(client.url + "/graphql", json=body,
                                         headers={"Authorization": f"Bearer {key}"})).json()

    assert (await send(a, True))["data"]["apqNamespace"] == "Query"  # stored for tenant A
    assert (await send(a, False))["data"]["apqNamespace"] == "Query"
    # Tenant B cannot tell that A sent it.
    assert (await send(b, False))["errors"][0]["extensions"]["code"] == \
        "PERSISTED_QUERY_NOT_FOUND"
    assert (await send(b, True))["data"]["apqNamespace"] == "Query"
    assert (await send(b, False))["data"]["apqNamespace"] == "Query"
