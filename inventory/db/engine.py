"""Engines: one async engine per process, plus a SERIALIZABLE view of it for writes."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .retry import RetryPolicy


def normalize_url(url: str) -> str:
    """Accepts libpq-style URLs and names the psycopg 3 driver explicitly."""
    for prefix, replacement in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("cockroachdb://", "cockroachdb+psycopg://"),
    ):
        if url.startswith(prefix):
            return replacement + url[len(prefix):]
    return url


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class PoolSettings:
    size: int = 10
    max_overflow: int = 5
    timeout_s: float = 5.0
    recycle_s: int = 1800
    # Ping a pooled connection before use only when it sat idle this long (0: always).
    ping_idle_s: float = 1.0


@dataclass(eq=False)  # compared and hashed by identity: one per process
class Database:
    """Holds the engines of one process. `writer` is SERIALIZABLE; `reader` runs
    each statement in autocommit (its own snapshot, no BEGIN/ROLLBACK round trips:
    every read is one statement, or independent ones) and shares the writer's pool."""

    engine: AsyncEngine
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        # Built once: execution_options() makes a new engine object on every call.
        self._writer = self.engine.execution_options(isolation_level="SERIALIZABLE")
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def writer(self) -> AsyncEngine:
        return self._writer

    @property
    def reader(self) -> AsyncEngine:
        return self._reader

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(
    url: str, pool: PoolSettings | None = None, retry_policy: RetryPolicy | None = None
) -> Database:
    pool = pool or PoolSettings()
    engine = create_async_engine(
        normalize_url(url),
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout_s,
        pool_recycle=pool.recycle_s,
        pool_pre_ping=pool.ping_idle_s <= 0,
        connect_args={"connect_timeout": 5},
    )
    if pool.ping_idle_s > 0:
        ping_when_idle(engine.sync_engine, pool.ping_idle_s)
    return Database(engine=engine, retry_policy=retry_policy or RetryPolicy())


def ping_when_idle(sync_engine: Engine, idle_s: float) -> None:
    """Pre-ping only connections that sat idle in the pool for `idle_s` or more.

    A ping on every checkout costs a round trip per request; a connection that was
    used a moment ago is almost surely alive, and a stale one that slips through
    fails like any dropped connection (writes are re-run by the retry runner, reads
    answer UNAVAILABLE). After a database restart every connection has been idle,
    so they are all pinged and replaced, as with `pool_pre_ping`.
    """

    @event.listens_for(sync_engine, "connect")
    @event.listens_for(sync_engine, "checkin")
    def _stamp(dbapi_connection, record, *rest) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _ping(dbapi_connection, record, proxy) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < idle_s:
            return
        try:
            alive = sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool replaces it and checks out another
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error
        if alive is False:
            raise exc.DisconnectionError("stale pooled connection")


def create_sync_engine(url: str) -> Engine:
    """For migrations and command-line tools."""
    return create_engine(normalize_url(url), pool_pre_ping=True)
