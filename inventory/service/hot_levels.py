"""Hot stock levels: how a reservation reaches the database quickly.

`HotLevels.reserve` is the one way in; the reservation itself (what is checked,
what is written) is always the use case in service/reservations.py. One object
per process, built by the app (`INVENTORY_HOT_KEY_QUEUE`, on by default).

- Turns. In a flash sale every request updates the same stock_levels row. Under
  SERIALIZABLE, PostgreSQL lets one transaction take the row; every other one
  that waited for it then fails with 40001 and is re-run with backoff, so the
  row's throughput collapses as clients are added (docs/performance.md). Here a
  process lets only one of its own transactions at a time work on a given
  (tenant, sku, location): the rest wait in memory, in arrival order, which
  costs nothing when the level is not contended. Keys are taken in sorted
  order, so multi-line reservations cannot deadlock here.
- Group commit. Single-line reservations of one level that arrive while an
  earlier one is being applied wait in this process's memory; as soon as the
  level is free, all of them (up to MAX_BATCH) are applied together by ONE
  transaction (one lock, one statement, one commit), in arrival order and with
  the same outcome each would have had alone. Without idempotency keys and with
  equal quantities (the flash sale), one autocommit statement decides and
  writes them all (`ledger.reserve_fitting`).
- One statement. A reservation on its own that is a valid single line without
  an idempotency key is one guarded statement sent in autocommit on a
  SERIALIZABLE session: its own transaction, one round trip.
- Kits. A kit line reserves its components (service/allocating.py): it takes
  turns on each component's level key, so it queues with that level's batches
  instead of racing them, and it is always the use case in a transaction
  (never a batch nor the one statement, which change the line's own level).
  Whether a sku is a kit comes from the process cache (service/kits.py).

Nothing waits for a timer: an uncontended reservation runs at once as a batch
of one, and batches only form while the level is busy. Correctness never
depends on this: across processes the database still serializes the row, and
every outcome is decided under its lock. Switched off, reservations neither
take turns nor form batches.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import (
    Any, AsyncIterator, Awaitable, Callable, Generic, Hashable, Iterable, TypeVar,
)
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger
from ..db.ledger import Why
from ..domain.commands import MAX_LINES, ReserveStock, validate_idempotency_key
from ..domain.errors import Rejected, Shortage, UserError, insufficient_stock
from ..domain.models import ReservationLineView, ReservationStatus, ReservationView
from ..observability import listeners, tracing
from . import kits
from .context import Ctx
from .resolve import ids_for
from .runner import (
    claim, execute, key_reused, release, request_hash, store, transact,
)

T = TypeVar("T")
MAX_BATCH = 64
# The use case: (ctx, command) -> work(conn, key) that decides, then writes.
UseCase = Callable[[Ctx, ReserveStock], Callable[[AsyncConnection, "str | None"], Awaitable[Any]]]


class HotLevels:
    """Per process: reservations of one level take turns, and single-line ones
    of a busy level are applied in batches."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._turns = KeyLocks(enabled)
        self._batches: LevelBatches[_Request] = LevelBatches(
            self._apply_batch, name="reserveStock batch")

    async def reserve(self, ctx: Ctx, cmd: ReserveStock, key: str | None,
                      use_case: UseCase) -> ReservationView | UserError:
        lines = cmd.lines[:MAX_LINES]
        valid = not (cmd.validate() or validate_idempotency_key(key))
        # A kit reserves its components: it takes turns on their levels, with
        # their batches, and never joins a batch itself (the batch statements
        # change the one level they are keyed by, and a kit has none).
        kits_in = await kits.kits_among(ctx, [l.sku for l in lines]) if valid else {}
        request = _Request(ctx, cmd, key, use_case, has_kit=bool(kits_in))
        # A line by channel takes turns with the channel's other orders of its
        # sku; the database decides which locations it gets (service/allocating.py).
        keys = [(ctx.tenant_id, sku, str(l.location_code) if l.location_code is not None
                 else f"@{l.channel_code}") for l in lines
                for sku in ([p.sku for p in kits_in[l.sku]] if l.sku in kits_in
                            else [str(l.sku)])]
        if (len(lines) == 1 and valid and not kits_in and self.enabled
                and cmd.lines[0].location_code is not None):
            return await self._batches.submit(keys[0], request)
        async with self._turns.hold(_with_items(keys)):
            return await _alone(request)

    async def _apply_batch(self, batch: list[_Request]) -> list[ReservationView | UserError]:
        """Single-line reservations of one level: alone through the usual path,
        or together in one transaction that decides them in arrival order."""
        first = batch[0]
        line = first.cmd.lines[0]
        async with self._turns.hold(_with_items([(first.ctx.tenant_id, str(line.sku),
                                                  str(line.location_code))])):
            if len(batch) == 1:
                return [await _alone(first)]
            if not any(r.key for r in batch) and len({r.cmd.lines[0].quantity
                                                      for r in batch}) == 1:
                outcome = await transact(first.ctx, _fitting_unit(batch), idempotent=False,
                                         single_statement=True)
            else:
                outcome = await transact(first.ctx, _group_unit(batch),
                                         idempotent=all(r.key for r in batch))
            results = outcome if isinstance(outcome, list) else [outcome] * len(batch)
            # Those that did not fit a level that takes backorders: each in turn
            # through the use case, which backorders what is not available.
            for i, result in enumerate(results):
                if result is _BACKORDER:
                    results[i] = await _alone(batch[i])
        return results


# A batch's answer for a request that did not fit what is available at a level
# that may take backorders (or that does not exist yet: a preorder): it, and
# every later request of the batch, then runs on its own, in arrival order,
# through the use case, which backorders (see _apply_batch).
_BACKORDER = object()


def _with_items(keys: list[tuple]) -> list[tuple]:
    """The level keys (tenant, sku, location) and their items' (tenant, sku).
    Every level change also writes its item's row (its total available, for
    the low-stock index), so reservations of one item at different locations
    would abort each other under SERIALIZABLE as those of one level do: they
    take turns per item as well (docs/performance.md, "Low stock as indexable
    state"). An item key sorts before its levels' keys, so the sorted order
    KeyLocks takes them in stays one order for every holder."""
    return keys + [key[:2] for key in keys]


@dataclass(frozen=True)
class _Request:
    ctx: Ctx
    cmd: ReserveStock
    key: str | None
    use_case: UseCase
    has_kit: bool = False  # some line is a kit: never the one-statement path


async def _alone(r: _Request) -> ReservationView | UserError:
    """One reservation on its own: a valid single line of a plain item without
    an idempotency key is one statement in autocommit; anything else is the use
    case in a transaction."""
    if (r.key is None and len(r.cmd.lines) == 1 and r.cmd.lines[0].location_code is not None
            and not r.has_kit and not r.cmd.validate()):
        made = await _reserve_in_one_statement(r.ctx, r.cmd)
        if made is not None:
            return made
        # Refused by the guard (or no such level): the transaction below tries
        # again and, refused again, reads the level in the same snapshot to say
        # exactly how much was available.
    return await execute(r.ctx, r.cmd, r.key, r.use_case(r.ctx, r.cmd))


async def _reserve_in_one_statement(ctx: Ctx, cmd: ReserveStock) -> ReservationView | None:
    """The whole reservation (guarded level change, ledger row, reservation and
    line) is one statement, sent in autocommit on a SERIALIZABLE session: its
    own transaction, one round trip instead of BEGIN, statement and COMMIT.
    There is no idempotency record to write in the same transaction, so this
    serves only requests without a key. None when the guard refused (nothing
    written)."""
    line = cmd.lines[0]

    async def unit(conn: AsyncConnection) -> ReservationView | None:
        # Ids come from the process cache (a miss reads them first, on this
        # connection, before the write).
        item_id, location_id = await _line_ids(conn, ctx.tenant_id, line)
        reservation_id = uuid4()
        made = await ledger.reserve_one(
            conn, ctx.tenant_id, item_id, location_id, line.quantity,
            cmd.ttl_seconds, Why(None, cmd.reference, reservation_id, None, ctx.actor))
        if made is None:
            return None
        return _single_line_view(reservation_id, cmd, item_id, location_id, made.created_at,
                                 made.expires_at)

    return await transact(ctx, unit, idempotent=False, single_statement=True)


async def _line_ids(conn: AsyncConnection, tenant_id: UUID, line) -> tuple[UUID, UUID]:
    """(item id, location id) of a single-line reservation's line, or Rejected
    (NOT_FOUND naming lines[0].sku or lines[0].locationCode)."""
    items, locs = await ids_for(conn, tenant_id, [
        (line.sku, "lines[0].sku", line.location_code, "lines[0].locationCode")])
    return items[line.sku], locs[line.location_code]


def _single_line_view(reservation_id: UUID, cmd: ReserveStock, item_id: UUID,
                      location_id: UUID, created_at, expires_at) -> ReservationView:
    """The ACTIVE reservation a single-line command made."""
    line = cmd.lines[0]
    return ReservationView(
        reservation_id, ReservationStatus.ACTIVE, cmd.reference, expires_at, created_at,
        (ReservationLineView(item_id, location_id, line.sku, line.location_code,
                             line.quantity),))


def _fitting_unit(batch: list[_Request]):
    """A batch without idempotency keys whose requests all want the same quantity
    (the flash sale): one statement decides and writes them all, in autocommit
    (ledger.reserve_fitting). With equal quantities, taking them in arrival order
    while they fit means taking the first k, which the statement can decide by
    itself; each refused request is told what was left at its turn, as alone."""
    first = batch[0]
    tenant_id, line = first.ctx.tenant_id, first.cmd.lines[0]
    quantity = line.quantity

    async def unit(conn: AsyncConnection) -> list[ReservationView | UserError]:
        item_id, location_id = await _line_ids(conn, tenant_id, line)
        entries = []
        for r in batch:
            rid = uuid4()
            entries.append(ledger.BatchEntry(rid, quantity, r.cmd.ttl_seconds,
                                             Why(None, r.cmd.reference, rid, None, r.ctx.actor)))
        available, backorderable, made = await ledger.reserve_fitting(
            conn, tenant_id, item_id, location_id, quantity, entries)
        if backorderable is None or backorderable > 0:
            refused = _BACKORDER
        else:
            refused = insufficient_stock([Shortage(line.sku, line.location_code, quantity,
                                                   available - quantity * len(made))])
        return [_single_line_view(e.reservation_id, r.cmd, item_id, location_id,
                                  *made[e.reservation_id])
                if e.reservation_id in made else refused
                for r, e in zip(batch, entries)]

    return unit


def _group_unit(batch: list[_Request]):
    first = batch[0]
    tenant_id, line = first.ctx.tenant_id, first.cmd.lines[0]
    prints = [request_hash(r.cmd) if r.key else "" for r in batch]

    async def unit(conn: AsyncConnection) -> list[ReservationView | UserError]:
        # The batch's keys are claimed first, as alone (service/runner.py);
        # keys used before this transaction answer as stored (every copy of a
        # key is checked against the stored request, as it would be alone).
        keyed = [i for i, r in enumerate(batch) if r.key]
        results: list[Any] = [None] * len(batch)
        for i, answer in zip(keyed, await claim(
                conn, tenant_id, [(batch[i].cmd, batch[i].key, prints[i]) for i in keyed])):
            results[i] = answer
        replayed = {i for i in keyed if results[i] is not None}
        first_with_key: dict[str, int] = {}
        for i in keyed:
            first_with_key.setdefault(batch[i].key, i)
        claimed = [batch[i].key for i in keyed
                   if i not in replayed and first_with_key[batch[i].key] == i]
        try:
            item_id, location_id = await _line_ids(conn, tenant_id, line)
        except Rejected as rejected:  # unknown sku or code: not stored under any key
            await release(conn, tenant_id, claimed)
            return [result if i in replayed else rejected.error
                    for i, result in enumerate(results)]
        level = (await ledger.lock_level_rows(conn, tenant_id, [(item_id, location_id)])).get(
            (item_id, location_id))
        available = level.quantities.available if level else 0
        # No level yet: a preorder may make it (the use case decides).
        backorders = level is None or level.backorderable > 0
        accepted = []
        for i, r in enumerate(batch):
            if i in replayed or (r.key and first_with_key[r.key] != i):
                continue
            quantity = r.cmd.lines[0].quantity
            if quantity > available and backorders:
                # It and every later one go alone, in order, through the use case.
                available, results[i] = 0, _BACKORDER
                continue
            if quantity > available:
                results[i] = insufficient_stock([Shortage(line.sku, line.location_code, quantity,
                                                     available)])
                continue
            available -= quantity
            rid = uuid4()
            accepted.append((i, ledger.BatchEntry(
                rid, quantity, r.cmd.ttl_seconds,
                Why(None, r.cmd.reference, rid, r.key, r.ctx.actor))))
        if accepted:
            made = await ledger.reserve_many(conn, tenant_id, item_id, location_id,
                                             [entry for _, entry in accepted])
            assert made is not None, "level changed while locked"
            for i, entry in accepted:
                results[i] = _single_line_view(entry.reservation_id, batch[i].cmd, item_id,
                                               location_id, *made[entry.reservation_id])
        answered, unused = [], []
        for i in keyed:
            r, j = batch[i], first_with_key[batch[i].key]
            if i in replayed:
                continue
            if results[j] is _BACKORDER:  # decided alone, its key claimed then
                results[i] = _BACKORDER
                if j == i:
                    unused.append(r.key)
            elif j == i:
                answered.append((r.key, results[i]))
            else:  # a key first used in this batch: the later copy replays it
                results[i] = (results[j] if prints[i] == prints[j]
                              else key_reused(r.key, batch[j].cmd.operation))
        await store(conn, tenant_id, answered)
        await release(conn, tenant_id, unused)
        return results

    return unit



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
                    listeners.count(listeners.RESERVATION_BATCH, len(batch))
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


class KeyLocks:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  # off: nobody waits (for measurement)
        # key -> [lock, holders + waiters]; an entry lives only while someone uses it
        self._entries: dict[Hashable, list] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, keys: Iterable[Hashable]) -> AsyncIterator[None]:
        if not self.enabled:
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
