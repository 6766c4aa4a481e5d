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
import contextvars
import functools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Hashable, TypeVar

from ..observability import tracing

T = TypeVar("T")
MAX_BATCH = 64


@dataclass
class BatchStats:
    """Process-wide, copied into /metrics: batches of two or more, and their requests."""

    batches: int = 0
    requests: int = 0


stats = BatchStats()


class LevelBatches(Generic[T]):
    """Per key, a queue of waiting requests and one task that drains it.

    A batch of one runs in the context its request was submitted in (its trace
    span, for one); a larger batch runs under its own span, linked to each
    request's span.
    """

    def __init__(self, run: Callable[[list[T]], Awaitable[list[Any]]], name: str):
        self.run = run  # applies a batch; returns one result per request, in order
        self.name = name  # of the span of a shared batch
        self._queues: dict[Hashable, list[tuple[T, contextvars.Context, asyncio.Future]]] = {}
        self._drainers: dict[Hashable, asyncio.Task] = {}

    def __len__(self) -> int:
        return len(self._queues)

    async def submit(self, key: Hashable, request: T) -> Any:
        future = asyncio.get_running_loop().create_future()
        entry = (request, contextvars.copy_context(), future)
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = [entry]
            # A fresh context: the drain outlives the request that started it, so
            # it must not carry that request's trace into later batches.
            task = asyncio.create_task(self._drain(key), context=contextvars.Context())
            self._drainers[key] = task
            task.add_done_callback(functools.partial(self._drained, key))
        else:
            queue.append(entry)
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
                    results = await self._run(batch)
                    if len(results) != len(batch):  # a bug: trust none of them
                        raise RuntimeError(f"{len(results)} results for {len(batch)} requests")
                    for (_, _, future), result in zip(batch, results):
                        if not future.done():
                            future.set_result(result)
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # shutting down
                        for _, _, future in batch + queue:
                            future.cancel()
                        raise
                    _fail(batch, RuntimeError("the batch was cancelled"))
                except Exception as error:  # the waiting requests report it (INTERNAL)
                    _fail(batch, error)
        finally:
            # No await between the last `while queue` check and here, so no
            # request can have joined this queue after it was found empty.
            self._forget(key)

    async def _run(self, batch: list) -> list[Any]:
        requests = [request for request, _, _ in batch]
        if len(batch) == 1:
            return await asyncio.create_task(self.run(requests), context=batch[0][1])
        with tracing.linked_span(self.name, [context for _, context, _ in batch],
                                 **{"inventory.batch.size": len(batch)}):
            return await self.run(requests)

    def _drained(self, key: Hashable, task: asyncio.Task) -> None:
        """A drain cancelled before its first step never ran its `finally`: its
        waiting requests must not hang, and the key must accept new ones."""
        if self._drainers.get(key) is task:
            for _, _, future in self._queues.get(key, []):
                future.cancel()
            self._forget(key)

    def _forget(self, key: Hashable) -> None:
        self._queues.pop(key, None)
        self._drainers.pop(key, None)


def _fail(batch: list, error: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(error)
