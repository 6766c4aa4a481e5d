"""Committed stock-level changes, read back from the ledger.

Writers do nothing for the change feed: every change already is a ledger row
(`movements`, written by the same statement as the level), so readers take
committed rows from there and writers hold no lock and send nothing on the
feed's behalf.

A `LedgerReader` yields `Batch`es. A batch's `cursor` is a promise: every change
committed before it has been yielded, in this batch or an earlier one. Passing
that cursor to `batches` again (after a restart, a dropped connection or a
failover) resumes without loss. Delivery is at-least-once; a consumer drops
repeats by (level, version), which the ledger makes unique. Inside a batch the
changes of one level come in version order. Cursors are opaque strings, safe to
store. Two readers, one per engine (the SQL they send is in `dialect`):

- `XminReader` (PostgreSQL): polls rows whose writer's transaction id
  (`movements.xact_id`) is below `pg_snapshot_xmin(pg_current_snapshot())`, the
  oldest transaction still running. No transaction that could still commit a
  row has an id below it, so nothing can appear behind the cursor later.
- `ChangefeedReader` (CockroachDB): a sinkless changefeed on `movements`; a batch
  ends at each resolved timestamp, below which the changefeed has emitted every
  change.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Collection, Mapping, Protocol
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url

from ..domain.quantities import NAMES, Quantities
from . import dialect
from .engine import libpq_conninfo, normalize_url

log = logging.getLogger(__name__)
READER_NAME = "inventory-change-feed"  # application_name, seen in pg_stat_activity
Tenants = Callable[[], Collection[UUID]]  # which tenants' changes to read; None: all


@dataclass(frozen=True)
class Change:
    """One new version of one stock level, as the ledger recorded it."""

    tenant_id: UUID
    item_id: UUID
    location_id: UUID
    after: Quantities  # the level's states after this change
    delta: Quantities  # what this change did to each
    version: int
    kind: str
    at: datetime
    # Where the reader found it, comparable with `LedgerReader.position_of` of a
    # cursor: a change below a cursor taken at some moment had committed by then.
    position: Any = None
    reservation_id: UUID | None = None  # the reservation it was made for, if any
    # The item's reorder point when the reader found the change (the poll reads
    # it with the row); None where the reader cannot join it (the changefeed).
    reorder_point: int | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any], position: Any = None) -> "Change":
        """From a ledger row (`movements` columns, by name; `reorder_point`
        from `items`, if the row has it)."""
        return cls(row["tenant_id"], row["item_id"], row["location_id"],
                   Quantities.of_row(row, "_after"), Quantities.of_row(row, "_delta"),
                   int(row["version"]), row["kind"], row["created_at"], position,
                   row.get("reservation_id"), row.get("reorder_point"))

    def __getattr__(self, name: str) -> int:
        """`change.on_hand` (after the change) and `change.on_hand_delta`, per state."""
        if name in NAMES:
            return self.after[name]
        if name.endswith("_delta") and name[:-6] in NAMES:
            return self.delta[name[:-6]]
        raise AttributeError(name)

    @property
    def level(self) -> tuple[UUID, UUID, UUID]:
        return (self.tenant_id, self.item_id, self.location_id)


@dataclass(frozen=True)
class Batch:
    changes: list[Change]
    cursor: str  # every change committed before this point has been yielded


class LedgerReader(Protocol):
    async def start(self) -> str:
        """A cursor at the present: changes committed from now on come after it."""

    def batches(self, after: str, tenants: Tenants | None = None) -> AsyncIterator[Batch]:
        """Batches of changes committed after `after`, for ever (raises when the
        database cannot be reached; call again with the last batch's cursor)."""

    def position_of(self, cursor: str) -> Any:
        """A cursor as a value comparable with `Change.position`."""

    def resume_from(self, cursor: str, floor: str) -> str:
        """Where to resume after a lost connection, given the last cursor and
        the first one (never earlier than `floor`)."""

    async def close(self) -> None:
        """Releases the reader's connections."""

    def wake(self) -> None:
        """Asks the reader to look for changes now (a poller may be idling)."""


def _sorted(changes: list[Change]) -> list[Change]:
    return sorted(changes, key=lambda c: (c.level, c.version))


def _for_psycopg(sql: str) -> str:
    """A statement of `dialect`, written for SQLAlchemy's `text()` (`:name`
    parameters), as psycopg takes it (`%(name)s`): compiled as the
    compatibility check compiles it."""
    return str(text(sql).compile(dialect=PGDialect_psycopg()))


_HORIZON = _for_psycopg(dialect.PG_HORIZON)
_FIRST = {False: _for_psycopg(dialect.PG_FIRST_PAGE_ALL),
          True: _for_psycopg(dialect.PG_FIRST_PAGE_TENANTS)}
_NEXT = {False: _for_psycopg(dialect.PG_NEXT_PAGE_ALL),
         True: _for_psycopg(dialect.PG_NEXT_PAGE_TENANTS)}


class XminReader:
    """PostgreSQL: one statement per poll, whatever the number of consumers.

    Rows are fetched in pages but yielded only once the whole range below the
    horizon is in: transaction ids do not follow commit order, so a page
    boundary could otherwise split two versions of one level out of order."""

    PAGE = 5000  # each page is its own statement: rows below the horizon stay visible
    # After a failover the new primary may hand out again ids that the old one
    # gave to transactions whose WAL never reached it (never committed ones).
    # Resuming this many ids early covers that; the consumer drops repeats.
    FAILOVER_REWIND = 10_000
    # Woken polls (a commit of this process wakes the reader) are at least this
    # far apart: at most 100 a second however many commits; and at least
    # GAP_FACTOR times the CPU the last poll took apart (never more than the
    # interval), so that polling takes at most 1/GAP_FACTOR of a core from the
    # process's writers (docs/performance.md, items 37 and 41). CPU, not wall
    # time: the feed polls in a thread of its own (events/feeds.py), where a
    # poll's wall time is mostly waiting for the database and the interpreter
    # lock. So the cheaper a poll, the sooner the next one (item 44).
    MIN_GAP_S = 0.01
    GAP_FACTOR = 20

    def __init__(self, url: str, interval_s: float = 0.05, idle_interval_s: float = 1.0):
        # One connection of its own, to the primary (the URL writers use), named
        # in pg_stat_activity. Each statement in autocommit, READ COMMITTED (a
        # SERIALIZABLE read would take predicate locks and make writers fail
        # more often): one round trip per poll. psycopg directly (statements
        # prepared after a few uses): SQLAlchemy's pool and execution cost a poll
        # more CPU than its statement does (docs/performance.md, item 44), and
        # the gap between woken polls grows with that CPU (above). No pre-ping:
        # a dropped connection fails the call and the next one connects again;
        # the consumer resumes.
        self.conninfo = libpq_conninfo(url)
        self._conn: psycopg.AsyncConnection | None = None
        self._connecting = asyncio.Lock()
        self.interval_s = interval_s
        self.idle_interval_s = idle_interval_s
        self.min_gap_s = min(self.MIN_GAP_S, interval_s)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop `batches` runs on
        self._wake_pending = False

    def wake(self) -> None:
        """Poll now rather than at the end of the interval (e.g. a first
        subscriber, a commit of this process), or as soon as `min_gap_s` allows.

        Callable from any thread. Only the first call after a poll began
        reaches the polling loop: the poll after it reads every change
        committed before that call, so later calls until the next poll
        would wake it for nothing. Each one that did would cost a hand-over
        between threads and a turn of the interpreter lock per commit."""
        if self._wake_pending or self._loop is None:
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # its loop has closed
            pass

    async def _rows(self, sql: str, params: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
        """The rows of one statement, by column name, on the reader's connection
        (connected on first use, and again after it was lost)."""
        async with self._connecting:
            if self._conn is None:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, row_factory=dict_row,
                    connect_timeout=5, application_name=READER_NAME)
            conn = self._conn
        try:
            return await (await conn.execute(sql, params)).fetchall()
        except psycopg.Error:
            if conn.closed or conn.broken:  # the next call connects again
                if self._conn is conn:
                    self._conn = None
                await conn.close()
            raise

    async def _horizon(self) -> str:
        return (await self._rows(_HORIZON))[0]["pg_snapshot_xmin"]

    async def start(self) -> str:
        try:
            return await self._horizon()
        except psycopg.OperationalError:
            # The connection found dead (a restart or failover since its last
            # use): once more, on a new one. A reader that only gives positions
            # has no poll to find that out first.
            if self._conn is not None:
                raise
            return await self._horizon()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def position_of(self, cursor: str) -> int:
        return int(cursor)

    def resume_from(self, cursor: str, floor: str) -> str:
        return str(max(int(floor), int(cursor) - self.FAILOVER_REWIND))

    async def read(self, after: str, tenants: Collection[UUID] | None) -> Batch:
        """Every committed change with a transaction id in [after, horizon)."""
        params: dict[str, Any] = {"after": after, "page": self.PAGE}
        by_tenant = tenants is not None
        if by_tenant:
            params["tenants"] = list(tenants)
            if not params["tenants"]:
                return Batch([], await self._horizon())
        rows = await self._rows(_FIRST[by_tenant], params)
        horizon = rows[0]["horizon"]
        rows = [r for r in rows if r["tenant_id"] is not None]
        found = rows
        while len(rows) == self.PAGE:
            params.update(horizon=horizon, last_xid=rows[-1]["xact_id"], last_id=rows[-1]["id"])
            rows = await self._rows(_NEXT[by_tenant], params)
            found += rows
        return Batch(_sorted([Change.of(r, int(r["xact_id"])) for r in found]), horizon)

    async def batches(self, after: str, tenants: Tenants | None = None
                      ) -> AsyncIterator[Batch]:
        cursor = after
        loop = self._loop = asyncio.get_running_loop()
        while True:
            # Before the poll's snapshot: a commit from here on wakes the next poll.
            self._wake_pending = False
            self._wake.clear()
            started, cpu = loop.time(), time.thread_time()
            wanted = None if tenants is None else tenants()
            batch = await self.read(cursor, wanted)
            gap = min(self.interval_s, max(
                self.min_gap_s, self.GAP_FACTOR * (time.thread_time() - cpu)))
            yield batch
            cursor = batch.cursor
            # With nobody to deliver to, only the cursor moves: slower.
            pause = self.idle_interval_s if wanted is not None and not wanted else self.interval_s
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            # Woken early: still no sooner than `gap` after the last poll began.
            rest = gap - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)


_HLC = re.compile(r"^\d+(\.\d+)?$")


def _hlc(value: str) -> tuple[int, int]:
    wall, _, logical = value.partition(".")
    return int(wall), int(logical or 0)


class ChangefeedReader:
    """CockroachDB: a sinkless changefeed on `movements`, on a dedicated
    connection (its rows stream for as long as it runs). Rows are held until a
    resolved timestamp covers them; then they go out sorted per level, so one
    level's versions keep their order although the changefeed orders rows only
    per primary key. Latency is therefore about the resolved interval plus the
    cluster's closed-timestamp lag (seconds, by default). Not run in the test
    suite: CockroachDB cannot run here (see docs/cockroachdb.md)."""

    def __init__(self, url: str, resolved: str = "1s"):
        self.url = libpq_conninfo(url)
        self.resolved = resolved

    async def close(self) -> None:
        pass  # each `batches` call owns its connection

    def wake(self) -> None:
        pass  # the changefeed pushes

    async def start(self) -> str:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            row = await (await conn.execute(dialect.CRDB_NOW)).fetchone()
            return str(row[0])

    def position_of(self, cursor: str) -> tuple[int, int]:
        return _hlc(cursor)

    def resume_from(self, cursor: str, floor: str) -> str:
        return cursor  # timestamps are never handed out twice

    async def batches(self, after: str, tenants: Tenants | None = None
                      ) -> AsyncIterator[Batch]:
        if not _HLC.match(after):
            raise ValueError(f"not a CockroachDB timestamp cursor: {after!r}")
        pending: list[tuple[tuple[int, int], Change]] = []
        async with await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, application_name=READER_NAME) as conn:
            cursor = conn.cursor()
            async for _table, _key, value in cursor.stream(
                    dialect.crdb_changefeed(after, self.resolved)):
                message = json.loads(value)
                if "resolved" in message:
                    resolved = _hlc(message["resolved"])
                    ready = [c for ts, c in pending if ts <= resolved]
                    pending = [(ts, c) for ts, c in pending if ts > resolved]
                    wanted = None if tenants is None else set(tenants())
                    yield Batch(_sorted([c for c in ready
                                         if wanted is None or c.tenant_id in wanted]),
                                message["resolved"])
                elif message.get("after"):
                    updated = _hlc(message["updated"])
                    pending.append((updated, _from_json(message["after"], updated)))


def _from_json(row: dict, position: tuple[int, int]) -> Change:
    rid = row.get("reservation_id")
    return Change.of({**row, "tenant_id": UUID(row["tenant_id"]), "item_id": UUID(row["item_id"]),
                      "location_id": UUID(row["location_id"]),
                      "reservation_id": UUID(rid) if rid else None,
                      "created_at": datetime.fromisoformat(row["created_at"])}, position)


def ledger_reader(url: str, interval_s: float = 0.05) -> LedgerReader:
    """The reader for the engine `url` names."""
    if make_url(normalize_url(url)).get_backend_name() == "cockroachdb":
        return ChangefeedReader(url)
    return XminReader(url, interval_s)
