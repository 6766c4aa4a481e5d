"""Group commit for hot stock levels.

In a flash sale every request changes the same stock_levels row, so their
transactions can only run one after another, and each costs several round
trips. Here the single-line reservations of one level that arrive while an
earlier one is being applied wait in this process's memory; as soon as the
level is free, all of them (up to MAX_BATCH) are applied together by ONE
transaction (service/reservations.py: one lock, one statement, one commit),
in arrival order and with the same outcome each would have had alone.

Nothing waits for a timer: an uncontended reservation runs at once as a batch of
one (the usual single-request path), and batches only form while the level is
busy. Correctness never depends on this: across processes the database still
serializes the row, and every outcome is decided under its lock.

INVENTORY_HOT_KEY_QUEUE=0 turns batching (and the per-level queue) off.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Hashable, TypeVar

T = TypeVar("T")
MAX_BATCH = 64


@dataclass
class BatchStats:
    """Process-wide, copied into /metrics: batches of two or more, and their requests."""

    batches: int = 0
    requests: int = 0


stats = BatchStats()


class LevelBatches(Generic[T]):
    """Per key, a queue of waiting requests and one task that drains it."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[Any]]]):
        self.run = run  # applies a batch; returns one result per request, in order
        self._queues: dict[Hashable, list[tuple[T, asyncio.Future]]] = {}
        self._drainers: dict[Hashable, asyncio.Task] = {}

    def __len__(self) -> int:
        return len(self._queues)

    async def submit(self, key: Hashable, request: T) -> Any:
        future = asyncio.get_running_loop().create_future()
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = [(request, future)]
            self._drainers[key] = asyncio.create_task(self._drain(key))
        else:
            queue.append((request, future))
        # A caller that goes away (client disconnected) cancels only its wait: a
        # batch that already took its request still applies it, as a request whose
        # transaction committed just before the client left.
        return await future

    async def _drain(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                batch = queue[:MAX_BATCH]
                del queue[:MAX_BATCH]
                if len(batch) > 1:
                    stats.batches += 1
                    stats.requests += len(batch)
                try:
                    results = await self.run([request for request, _ in batch])
                except Exception as error:  # the waiting requests report it (INTERNAL)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                except asyncio.CancelledError:  # shutting down
                    for _, future in batch + queue:
                        future.cancel()
                    raise
                for (_, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            # No await between the last `while queue` check and here, so no
            # request can have joined this queue after it was found empty.
            del self._queues[key]
            del self._drainers[key]
