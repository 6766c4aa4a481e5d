"""`inventory serve` with timestamps along the change feed's path, for
`bench/subscribers.py --trace`: where commit-to-delivery goes.

Run as `python -m bench.feed_trace <path> serve ...`: it wraps a few methods
of the live-stock path (nothing of the service changes when not run this way),
starts the service, and at exit writes to <path> (JSON):

- per change, keyed "sku/version": when the poll that read it began and when
  its rows were in (the feed's thread), when the hub began and finished
  delivering it (the process's loop), when the first subscriber began writing
  its frame and when the first and the last frame write returned;
- per poll: start, end, its CPU in the feed's thread, rows, whether woken;
- the process's event loop lag: how late a 5 ms sleep wakes, sampled.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import runpy
import sys
import time

from inventory.db import changes
from inventory.events import hub as hub_module
from inventory.web import frames

PATH = sys.argv[1]
del sys.argv[1]
polls: list[tuple[float, float, float, int]] = []
by_level: dict[tuple, dict] = {}  # (item_id, version) -> times
sent: dict[str, list[float]] = {}  # "sku/version" -> [first start, first end, last end]
skus: dict = {}  # item id -> sku
lags: list[tuple[float, float]] = []

_read = changes.XminReader.read


async def read(self, after, tenants):
    if tenants is None:  # not the live feed (webhooks read every tenant)
        return await _read(self, after, tenants)
    started, cpu = time.time(), time.thread_time()
    batch = await _read(self, after, tenants)
    ended = time.time()
    polls.append((started, ended, time.thread_time() - cpu, len(batch.changes)))
    for c in batch.changes:
        by_level[(c.item_id, c.version)] = {"poll_start": started, "poll_end": ended}
    return batch


_deliver_now = hub_module.Hub.deliver_now


def deliver_now(self, batch):
    """deliver_end: when the events were offered, or when the hub began
    reading names it lacked (then its offers come later)."""
    started = time.time()
    for c in batch:
        found = by_level.get((c.item_id, c.version))
        if found is not None and "deliver_start" not in found:
            found["deliver_start"] = started
    later = _deliver_now(self, batch)
    ended = time.time()
    for c in batch:
        found = by_level.get((c.item_id, c.version))
        if found is not None and "deliver_end" not in found:
            found["deliver_end"] = ended
    _watch_loop()
    return later


_events = hub_module.Names.events


async def events(self, changes_):
    out = await _events(self, changes_)
    for event in out:
        skus[event.change.item_id] = event.sku
    return out


_send = frames.OperationFrames.send


async def send(self, payload):
    started = time.time()
    await _send(self, payload)
    ended = time.time()
    key = f"{payload.sku}/{payload.version}"
    times = sent.get(key)
    if times is None:
        sent[key] = [started, ended, ended]
    else:
        times[2] = ended


_watching = False


def _watch_loop() -> None:
    global _watching
    if not _watching:
        _watching = True
        asyncio.get_running_loop().create_task(_lag())


async def _lag() -> None:
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(0.005)
        lags.append((time.time(), loop.time() - asked - 0.005))


def _dump() -> None:
    out = {}
    for (item_id, version), times in list(by_level.items()):
        sku = skus.get(item_id)
        if sku is not None:
            key = f"{sku}/{version}"
            out[key] = {**times, **dict(zip(("send_start", "first_sent", "last_sent"),
                                            sent.get(key, ())))}
    with open(PATH, "w") as f:
        json.dump({"changes": out, "polls": polls, "lags": lags}, f)


changes.XminReader.read = read
hub_module.Hub.deliver_now = deliver_now
hub_module.Names.events = events
frames.OperationFrames.send = send
atexit.register(_dump)
runpy.run_module("inventory.cli", run_name="__main__")
