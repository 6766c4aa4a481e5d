"""In-process cache of sku -> item id and location code -> location id, and
of sku -> kit parts (() for a plain item: service/kits.py).

Items and locations are never deleted and their sku/code never change, so a
mapping once seen stays true: only positives are cached (an unknown sku is asked
again every time, so one created a moment later is found). Keyed by engine and
tenant so two databases or tenants in one process never mix. Bounded: when full
it is simply cleared (cheap, and refilled by the next few requests). An item is
a kit or not for life and a kit's parts never change, so they are cached alike.
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
        self.parts: dict[tuple[UUID, str], tuple] = {}  # () for a plain item

    def lookup(self, tenant_id: UUID, skus, codes):
        """(found items, found locations, missing skus, missing codes)."""
        items, miss_skus = _split(self.items, tenant_id, skus)
        locs, miss_codes = _split(self.locations, tenant_id, codes)
        return items, locs, miss_skus, miss_codes

    def lookup_parts(self, tenant_id: UUID, skus) -> tuple[dict[str, tuple], list[str]]:
        """(found {sku: parts}, missing skus)."""
        return _split(self.parts, tenant_id, skus)

    def remember_parts(self, tenant_id: UUID, parts: dict[str, tuple]) -> None:
        self._make_room(len(parts))
        for sku, item_parts in parts.items():
            self.parts[(tenant_id, sku)] = item_parts

    def _make_room(self, more: int) -> None:
        if len(self.items) + len(self.locations) + len(self.parts) + more > self.max_entries:
            self.items.clear()
            self.locations.clear()
            self.parts.clear()

    def remember(self, tenant_id: UUID, items: dict[str, UUID], locs: dict[str, UUID]) -> None:
        self._make_room(len(items) + len(locs))
        for sku, item_id in items.items():
            self.items[(tenant_id, sku)] = item_id
        for code, location_id in locs.items():
            self.locations[(tenant_id, code)] = location_id


def _split(cached: dict, tenant_id: UUID, names) -> tuple[dict, list]:
    """({name: cached value} of those cached, the names missing)."""
    found, missing = {}, []
    for name in names:
        value = cached.get((tenant_id, name))
        if value is None:
            missing.append(name)
        else:
            found[name] = value
    return found, missing


_caches: "weakref.WeakKeyDictionary[object, IdCache]" = weakref.WeakKeyDictionary()


def cache_for(conn) -> IdCache:
    """The cache of the database `conn` belongs to. Keyed by the connection pool,
    which the write views of the database share (reads need no ids); dropped with it."""
    return cache_of_pool(conn.sync_engine.pool)


def cache_of_pool(pool) -> IdCache:
    cache = _caches.get(pool)
    if cache is None:
        cache = _caches[pool] = IdCache()
    return cache
