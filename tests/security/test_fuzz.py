"""Generated operations (hypothesis-graphql) against the running API as a tenant
of its own: never a 5xx, never exception text, every error coded, and tenant A's
data untouched. String and ID arguments are drawn partly from real identifiers
(the fuzzing tenant's own, so operations succeed and change stock, and tenant
A's, so they probe isolation), partly at random. The suite runs a few hundred;
for a longer run:

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

from inventory.resolvers.root import build_schema

from ..support import create_api_key, unique
from .support import ALL, tenant_snapshot

EXAMPLES = int(os.environ.get("INVENTORY_FUZZ_EXAMPLES", "200"))
SCHEMA = str(build_schema())
SCALARS = {
    "Quantity": st.one_of(
        st.integers(-3, 20), st.integers(-3, 20), st.integers(-(2**63), 2**63 + 10)
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
        self.succeeded = 0


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
    if body.get("data") and not body.get("errors"):
        findings.succeeded += 1


FUZZ_TENANT = uuid.uuid4()


@pytest.fixture(scope="module")
def fuzz_key(database_url) -> str:
    return create_api_key(database_url, ALL, FUZZ_TENANT, "fuzzer")


@pytest.fixture(scope="module")
async def known_names(secure_api, tenants, fuzz_key) -> list[str]:
    """Identifiers worth drawing: the fuzzing tenant's (two items stocked at two
    locations, one reservation) and tenant A's."""
    client = secure_api.with_key(fuzz_key)
    skus, codes = [unique("F-SKU") for _ in range(2)], [unique("F-LOC") for _ in range(2)]
    names: list[str] = [*skus, *codes]
    for code in codes:
        await client.location(code)
    for sku in skus:
        item = await client.succeed("createItem", {"sku": sku, "name": sku, "reorderPoint": 3},
                                    "... on Item { id }")
        names.append(item["id"])
        for code in codes:
            level = await client.succeed("receiveStock", {
                "sku": sku, "locationCode": code, "quantity": 50}, "... on StockLevel { id }")
            names.append(level["id"])
    reservation = await client.succeed("reserveStock", {
        "lines": [{"sku": skus[0], "locationCode": codes[0], "quantity": 1}]},
        "... on Reservation { id }")
    names.append(reservation["id"])
    return names + list(tenants[0].data.values())


def _scalars(names: list[str]) -> dict:
    text = st.one_of(st.sampled_from(names), st.sampled_from(names), st.text(max_size=30))
    return {**SCALARS,
            "String": text.map(lambda v: graphql.StringValueNode(value=v)),
            "ID": text.map(lambda v: graphql.StringValueNode(value=v))}


def _generated(mode: Mode, names: list[str], examples: int, fields=None) -> list[str]:
    """The operations hypothesis-graphql draws (deterministic: derandomized),
    over every root field or only `fields`."""
    drawn: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(from_schema(SCHEMA, fields=fields, custom_scalars=_scalars(names), mode=mode))
    def draw(query: str) -> None:
        drawn.append(query)

    draw()
    return drawn


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE])
async def test_generated_operations_fail_cleanly(mode, secure_api, tenants, fuzz_key,
                                                 known_names, sync_engine):
    """Every generated operation gets a clean answer; valid ones (POSITIVE) do
    reach the data and write (so the fuzzing is not all refusals), and the
    ledger audit after the test covers what they wrote."""
    a, _ = tenants
    client = secure_api.with_key(fuzz_key)
    before = tenant_snapshot(sync_engine, a.id)
    mine_before = tenant_snapshot(sync_engine, FUZZ_TENANT)
    findings = Findings()
    examples = EXAMPLES if mode is Mode.POSITIVE else max(60, EXAMPLES // 3)
    queries = _generated(mode, known_names, examples)
    if mode is Mode.POSITIVE:
        # A write needs a known sku and location together, which draws over the
        # whole schema name only by luck (and which draws those are changes
        # with every new field): these draw receiveStock with the fuzzing
        # tenant's skus and codes (known_names starts with them). About one draw
        # in twenty is a valid receipt, so 200 draws make "none wrote" a
        # real finding rather than bad luck (60 once drew none).
        queries += _generated(mode, known_names[:4], 200, fields=["receiveStock"])
    for query in queries:
        _check(await client.post(query), findings, query)
    mine = tenant_snapshot(sync_engine, FUZZ_TENANT)
    print(f"\n{mode.name}: {findings.count} operations, {findings.succeeded} with data, "
          f"error codes {findings.codes}; the fuzzing tenant's ledger rows "
          f"{mine_before['movements'][0][0]} -> {mine['movements'][0][0]}")
    assert findings.count == len(queries) >= examples // 2
    assert tenant_snapshot(sync_engine, a.id) == before
    if mode is Mode.POSITIVE:
        assert findings.succeeded >= len(queries) // 10, findings.codes
        assert mine["movements"][0][0] > mine_before["movements"][0][0], \
            "no generated operation wrote anything"
