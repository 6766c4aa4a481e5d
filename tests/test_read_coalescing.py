"""stockLevel reads of concurrent requests share statements (service/coalesce.py):
through the real HTTP server, every request still gets its own tenant's answer."""
from __future__ import annotations

import asyncio
import uuid


from .support import create_api_key, unique

QUERY = """query($s: String!, $l: String!) {
  stockLevel(sku: $s, locationCode: $l) { sku locationCode onHand reserved version } }"""


async def test_concurrent_reads_of_two_tenants_each_get_their_own(api, database_url,
                                                                 scrape_metrics):
    other = api.with_key(create_api_key(database_url, tenant_id=uuid.uuid4(),
                                        name="second tenant"))
    sku, code, empty_code = unique("SAME"), unique("LOC"), unique("LOC")
    stock = {}
    for n, tenant in enumerate((api, other)):  # same sku and code in both tenants
        await tenant.location(code)
        await tenant.location(empty_code)
        await tenant.item(sku)
        await tenant.receive(sku, code, 10 + n)
        stock[tenant] = 10 + n
    before = scrape_metrics(api.url)

    asks = [(tenant, s, c) for _ in range(15) for tenant in (api, other)
            for s, c in ((sku, code), (sku, empty_code), (unique("NONE"), code))]
    answers = await asyncio.gather(*[
        tenant.gql(QUERY, {"s": s, "l": c}) for tenant, s, c in asks])
    for (tenant, s, c), answer in zip(asks, answers):
        level = answer["stockLevel"]
        if s != sku:
            assert level is None  # unknown sku
        elif c == empty_code:  # item and location exist, no stock ever: a zero level
            assert level == {"sku": sku, "locationCode": c, "onHand": 0, "reserved": 0,
                             "version": 0}
        else:
            assert level == {"sku": sku, "locationCode": c, "onHand": stock[tenant],
                             "reserved": 0, "version": 1}
    assert scrape_metrics(api.url).increase(before, "inventory_reads_coalesced_total") > 0, \
        "no read was coalesced: the test did not test coalescing"
