"""Generated operations (hypothesis-graphql) against the running API as a tenant
of its own: never a 5xx, never exception text, every error coded, and tenant A's
data untouched. The suite runs a few hundred; for a longer run:

    INVENTORY_FUZZ_EXAMPLES=5000 scripts/test tests/security/test_fuzz.py
"""
from __future__ import annotations

import os
import re
import uuid

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from inventory.schema.root import build_schema

from ..support import create_api_key
from .conftest import ALL, Client, tenant_snapshot

EXAMPLES = int(os.environ.get("INVENTORY_FUZZ_EXAMPLES", "200"))
SCHEMA = str(build_schema())
SCALARS = {
    "Quantity": st.one_of(
        st.integers(-10, 10), st.integers(-(2**63), 2**63 + 10)
    ).map(lambda n: graphql.IntValueNode(value=str(n))),
    "DateTime": st.sampled_from(["2026-11-27T00:00:00Z", "not a date", ""]).map(
        lambda s: graphql.StringValueNode(value=s)),
}
LEAKS = re.compile(r"Traceback|File \"|psycopg|sqlalchemy|asyncpg|Exception|Error\(|"
                   r"SELECT |INSERT |UPDATE ", re.IGNORECASE)


class Findings:
    def __init__(self):
        self.count = 0
        self.codes: dict[str, int] = {}


def _check(response, findings: Findings, query: str) -> None:
    findings.count += 1
    assert response.status_code < 500, (query, response.text)
    if response.status_code != 200:
        assert response.status_code in (400, 413, 429), (query, response.text)
        return
    body = response.json()
    assert not LEAKS.search(response.text), (query, response.text)
    for error in body.get("errors") or []:
        code = error.get("extensions", {}).get("code")
        assert code, (query, error)
        assert code != "INTERNAL", (query, error)  # an unexpected exception: a bug
        findings.codes[code] = findings.codes.get(code, 0) + 1


@pytest.fixture(scope="module")
def fuzz_key(database_url) -> str:
    return create_api_key(database_url, ALL, uuid.uuid4(), "fuzzer")


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE])
def test_generated_operations_fail_cleanly(mode, secure_server, tenants, fuzz_key, sync_engine):
    a, _ = tenants
    client = Client(secure_server.url)
    before = tenant_snapshot(sync_engine, a.id)
    findings = Findings()
    examples = EXAMPLES if mode is Mode.POSITIVE else max(60, EXAMPLES // 3)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(from_schema(SCHEMA, custom_scalars=SCALARS, mode=mode))
    def run(query: str) -> None:
        _check(client.post(query, None, fuzz_key), findings, query)

    run()
    print(f"\n{mode.name}: {findings.count} operations, error codes {findings.codes}")
    assert findings.count >= examples // 2
    assert tenant_snapshot(sync_engine, a.id) == before
