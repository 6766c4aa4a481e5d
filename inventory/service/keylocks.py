"""Per-process queues for hot stock levels.

In a flash sale every request updates the same stock_levels row. Under
SERIALIZABLE, PostgreSQL lets one transaction take the row; every other one
that waited for it then fails with 40001 and is re-run with backoff, so the
row's throughput collapses as clients are added (measured in docs/performance.md).
Here a process lets only one of its own transactions at a time work on a given
(tenant, sku, location): the rest wait in memory, in arrival order, which costs
nothing when the level is not contended. Across processes the database still
decides (so correctness never depends on this), but at most one transaction
per process competes for the row.

Keys are taken in sorted order, so multi-line reservations cannot deadlock here.
Set INVENTORY_HOT_KEY_QUEUE=0 to turn it off (for measurement).
"""
from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator, Hashable, Iterable

ENABLED = os.environ.get("INVENTORY_HOT_KEY_QUEUE", "1").strip().lower() not in {
    "0", "false", "no", "off"}


class KeyLocks:
    def __init__(self) -> None:
        # key -> [lock, holders + waiters]; an entry lives only while someone uses it
        self._entries: dict[Hashable, list] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, keys: Iterable[Hashable]) -> AsyncIterator[None]:
        if not ENABLED:
            yield
            return
        wanted = sorted(set(keys))
        joined: list = []   # entries whose count we raised
        locked: list = []   # entries whose lock we hold
        try:
            for key in wanted:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = [asyncio.Lock(), 0]
                entry[1] += 1
                joined.append((key, entry))
                await entry[0].acquire()
                locked.append(entry)
            yield
        finally:
            for entry in locked:
                entry[0].release()
            for key, entry in joined:
                entry[1] -= 1
                if entry[1] == 0 and self._entries.get(key) is entry:
                    del self._entries[key]


# One per process: reservations of the same level queue here before the database.
levels = KeyLocks()
