"""In-process cache of sku -> item id and location code -> location id.

Items and locations are never deleted and their sku/code never change, so a
mapping once seen stays true: only positives are cached (an unknown sku is asked
again every time, so one created a moment later is found). Keyed by engine and
tenant so two databases or tenants in one process never mix. Bounded: when full
it is simply cleared (cheap, and refilled by the next few requests).
"""
from __future__ import annotations

import weakref
from uuid import UUID

MAX_ENTRIES = 100_000


class IdCache:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self.items: dict[tuple[UUID, str], UUID] = {}
        self.locations: dict[tuple[UUID, str], UUID] = {}

    def lookup(self, tenant_id: UUID, skus, codes):
        """(found items, found locations, missing skus, missing codes)."""
        items, locs, miss_skus, miss_codes = {}, {}, [], []
        for sku in skus:
            found = self.items.get((tenant_id, sku))
            if found is None:
                miss_skus.append(sku)
            else:
                items[sku] = found
        for code in codes:
            found = self.locations.get((tenant_id, code))
            if found is None:
                miss_codes.append(code)
            else:
                locs[code] = found
        return items, locs, miss_skus, miss_codes

    def remember(self, tenant_id: UUID, items: dict[str, UUID], locs: dict[str, UUID]) -> None:
        if len(self.items) + len(self.locations) + len(items) + len(locs) > self.max_entries:
            self.items.clear()
            self.locations.clear()
        for sku, item_id in items.items():
            self.items[(tenant_id, sku)] = item_id
        for code, location_id in locs.items():
            self.locations[(tenant_id, code)] = location_id


_caches: "weakref.WeakKeyDictionary[object, IdCache]" = weakref.WeakKeyDictionary()


def cache_for(conn) -> IdCache:
    """The cache of the database `conn` belongs to. Keyed by the connection pool,
    which the write views of the database share (reads need no ids); dropped with it."""
    pool = conn.sync_engine.pool
    cache = _caches.get(pool)
    if cache is None:
        cache = _caches[pool] = IdCache()
    return cache
