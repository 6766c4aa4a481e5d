"""Engines: one async engine per process, plus a SERIALIZABLE view of it for writes."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import create_engine
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


@dataclass
class Database:
    """Holds the engines of one process. `writer` is SERIALIZABLE; `reader` uses
    the server's default (READ COMMITTED on PostgreSQL, SERIALIZABLE on CockroachDB)
    and shares the writer's pool."""

    engine: AsyncEngine
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def writer(self) -> AsyncEngine:
        return self.engine.execution_options(isolation_level="SERIALIZABLE")

    @property
    def reader(self) -> AsyncEngine:
        return self.engine

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
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )
    return Database(engine=engine, retry_policy=retry_policy or RetryPolicy())


def create_sync_engine(url: str) -> Engine:
    """For migrations and command-line tools."""
    return create_engine(normalize_url(url), pool_pre_ping=True)
