"""The change feed: brings committed changes from the ledger to this process's hub.

One `LedgerFeed` per process reads with a `LedgerReader` (inventory/db/changes.py)
from a cursor. When its connection drops (a restart, a failover to a new
primary) it waits, reconnects through the pool and resumes from its cursor, so
nothing committed meanwhile is missed; what it reads twice the hub drops by
(level, version).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Callable

from ..db.changes import Change, LedgerReader
from ..observability.tracing import untraced
from .hub import Hub

log = logging.getLogger(__name__)


class LedgerFeed:
    def __init__(self, reader: LedgerReader, hub: Hub):
        self.reader, self.hub = reader, hub
        self.connected = False
        self.cursor: str | None = None

    async def run(self) -> None:
        """Runs until cancelled, reconnecting by itself."""
        floor: str | None = None
        delay = 0.1
        while True:
            try:
                if floor is None:
                    floor = self.cursor = await self.reader.start()
                async for batch in self.reader.batches(self.cursor, self.hub.tenants):
                    if not self.connected:
                        self.connected, delay = True, 0.1
                    if batch.changes:
                        await self.hub.deliver(batch.changes)
                    self.cursor = batch.cursor
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep reading through database outages
                self.connected = False
                log.warning("change feed lost its connection (%s); resuming from its cursor "
                            "in %.1fs", error, delay)
                if self.cursor is not None:
                    self.cursor = self.reader.resume_from(self.cursor, floor)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class _Relay:
    """The hub as the feed's thread sees it: the tenants to read, and delivery
    on the process's loop (where the hub, its subscribers and its name cache
    live). The feed awaits each delivery before its next poll.

    A batch is handed to the hub by a plain callback on that loop, which
    offers its events to the subscribers at once when no query is needed
    (`Hub.deliver_now`): a coroutine sent there would run as a task, one more
    turn of a loop busy with requests later."""

    def __init__(self, hub: Hub, loop: asyncio.AbstractEventLoop):
        self.hub, self.loop = hub, loop

    def tenants(self):
        return self.hub.tenants()

    async def deliver(self, changes: list[Change]) -> None:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self._deliver, changes, done)
        await asyncio.wrap_future(done)

    def _deliver(self, changes: list[Change], done: concurrent.futures.Future) -> None:
        """On the process's loop."""
        if not done.set_running_or_notify_cancel():  # the feed is stopping
            return
        try:
            later = self.hub.deliver_now(changes)
        except Exception as error:
            done.set_exception(error)
            return
        if later is None:
            done.set_result(None)
        else:
            asyncio.ensure_future(later).add_done_callback(
                lambda task: _settle(done, task))


def _settle(done: concurrent.futures.Future, task: asyncio.Future) -> None:
    if task.cancelled():
        done.set_exception(asyncio.CancelledError())
    elif task.exception() is not None:
        done.set_exception(task.exception())
    else:
        done.set_result(None)


class FeedThread:
    """A `LedgerFeed` on an event loop of its own, in a thread of its own.

    On the process's event loop, each await of a poll (a connection, the query,
    its rows) waits its turn behind every request then ready: with writers
    keeping the process busy, one small SELECT took tens of milliseconds of
    wall time and was most of commit-to-delivery (docs/performance.md, item 41).
    In its own thread a poll waits for the database and for the interpreter
    lock only. Only immutable batches of changes (to the hub, on the process's
    loop) and wake-ups cross between the threads.
    """

    def __init__(self, make_reader: Callable[[], LedgerReader], hub: Hub):
        self._make_reader = make_reader  # called in the thread: its engine belongs to that loop
        self.hub = hub
        self.feed: LedgerFeed | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._reader: LedgerReader | None = None
        self._started = threading.Event()

    @property
    def connected(self) -> bool:
        return self.feed is not None and self.feed.connected

    def start(self) -> None:
        main = asyncio.get_running_loop()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(main),),
                                        name="change-feed", daemon=True)
        self._thread.start()
        self._started.wait(10)

    async def _serve(self, main: asyncio.AbstractEventLoop) -> None:
        untraced()  # each poll would be a root trace of its own; observed through stats
        reader = self._make_reader()
        self.feed = LedgerFeed(reader, _Relay(self.hub, main))
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._reader = reader
        self._started.set()
        try:
            await self.feed.run()
        except asyncio.CancelledError:
            pass
        finally:
            await reader.close()

    def wake(self) -> None:
        """Asks the reader to poll now (from the process's loop). The reader
        lets one wake-up a poll cross to this thread, however many commits ask."""
        if self._reader is not None:
            self._reader.wake()

    async def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:
                pass
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
