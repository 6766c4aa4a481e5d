"""Request coalescing for hot reads.

The lookups that concurrent requests of this process make during one turn of the
event loop are answered by one statement instead of one each (like a DataLoader,
but across requests): under load, the per-statement cost in the database
libraries and the pool checkout is paid once per batch. Each read still runs
after its request arrived, so it sees every write acknowledged before that.

With `max_loads`, at most that many loads run at once: lookups that arrive
while they are all busy wait for the first to end and then go together. This is
the group commit of reads: a process under load sends fewer, larger statements,
so the cost of a read falls as the load rises instead of every request paying
for its own statement; a lookup that finds a load free still goes at once.

A lookup alone in its turn runs in its request's context (its trace); a shared
one runs under its own span linked to each request's span.
"""
from __future__ import annotations

import asyncio
import contextvars
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

from ..observability import listeners, tracing

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


MAX_KEYS = 256  # per statement: bounds its size and the number of distinct texts


class Coalescer(Generic[K, V]):
    def __init__(self, load_many: Callable[[list[K]], Awaitable[dict[K, V]]], name: str,
                 retry_alone: Callable[[Exception], bool] = lambda error: True,
                 max_loads: int | None = None):
        self.load_many = load_many  # keys -> {key: value}; absent keys answer None
        self.name = name  # of the span of a shared load
        # When a shared load fails with such an error, each key is loaded on its own,
        # so that one request's bad key cannot fail the others.
        self.retry_alone = retry_alone
        self.max_loads = max_loads  # loads at once; None: no limit
        self._pending: dict[K, list[tuple[asyncio.Future, contextvars.Context]]] = {}
        self._loading: set[asyncio.Task] = set()
        self._flush_scheduled = False

    def _busy(self) -> bool:
        return self.max_loads is not None and len(self._loading) >= self.max_loads

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._busy():
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)  # after this turn's lookups

    async def get(self, key: K) -> V | None:
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append((future, contextvars.copy_context()))
        if len(self._pending) >= MAX_KEYS:
            self._flush(full=True)
        else:
            self._schedule_flush()  # when all loads are busy, the first to end flushes
        return await future

    def _flush(self, full: bool = False) -> None:
        if not full:
            self._flush_scheduled = False
            if self._busy():
                return  # the load that ends first flushes again
        pending, self._pending = self._pending, {}
        if not pending:
            return
        waiters = [waiter for waiting in pending.values() for waiter in waiting]
        context = waiters[0][1] if len(waiters) == 1 else contextvars.Context()
        task = asyncio.get_running_loop().create_task(self._load(pending, waiters),
                                                      context=context)
        self._loading.add(task)  # keeps it referenced until it ends
        task.add_done_callback(self._loaded)

    def _loaded(self, task: asyncio.Task) -> None:
        self._loading.discard(task)
        if self._pending:
            self._schedule_flush()

    async def _load(self, pending: dict, waiters: list) -> None:
        try:
            if len(waiters) == 1:
                found = await self.load_many(list(pending))
            else:
                listeners.count(listeners.READ_BATCH, len(waiters))
                with tracing.linked_span(self.name, [context for _, context in waiters],
                                         **{"inventory.batch.size": len(waiters)}):
                    found = await self._load_shared(list(pending))
            for key, waiting in pending.items():
                outcome = found.get(key)
                for future, _ in waiting:
                    if not future.done():
                        if isinstance(outcome, Exception):
                            future.set_exception(outcome)
                        else:
                            future.set_result(outcome)
        except asyncio.CancelledError:
            for future, _ in waiters:
                future.cancel()
            raise
        except Exception as error:  # each waiting request reports it (e.g. UNAVAILABLE)
            for future, _ in waiters:
                if not future.done():
                    future.set_exception(error)
        finally:
            for future, _ in waiters:  # nobody waits forever, whatever happened
                if not future.done():
                    future.set_exception(RuntimeError("the lookup gave no answer"))

    async def _load_shared(self, keys: list[K]) -> dict:
        try:
            return await self.load_many(keys)
        except Exception as error:
            if len(keys) == 1 or not self.retry_alone(error):
                raise
        answers = await asyncio.gather(*(self.load_many([key]) for key in keys),
                                       return_exceptions=True)
        found: dict = {}
        for key, answer in zip(keys, answers):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                found[key] = answer  # this key's own error, for its requests only
            elif key in answer:
                found[key] = answer[key]
        return found
