"""Engines of one process: a pool for reads and a pool for writes, and a pool
for bounded-staleness reads when replicas are configured.

Write sessions default to SERIALIZABLE (CockroachDB's default; on PostgreSQL a
startup option sets it), so that a write sent as a single statement in
autocommit, its own implicit transaction, is as SERIALIZABLE as one between BEGIN
and COMMIT, in one round trip instead of three. Reads keep the server's default
(READ COMMITTED on PostgreSQL): a SERIALIZABLE read would take predicate locks
and make concurrent writers fail more often, for no gain to a one-statement read.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .dialect import WRONG_NODE_SQLSTATES, follower_read_session_options
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


def libpq_conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy URL, for tools that connect with
    psycopg directly. Keeps every host of a multi-host URL (`?host=h:p1&host=h:p2`
    becomes `host=h,h port=p1,p2`) and options such as target_session_attrs."""
    from psycopg.conninfo import make_conninfo
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    parsed = make_url(normalize_url(url)).set(drivername="postgresql+psycopg")
    _args, kwargs = PGDialect_psycopg().create_connect_args(parsed)
    return make_conninfo(**{key: value for key, value in kwargs.items() if value is not None})


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
    """Holds the engines of one process.

    - `reader`: each statement in autocommit (its own snapshot, no BEGIN/ROLLBACK
      round trips: every read is one statement, or independent ones);
    - `writer`: SERIALIZABLE transactions (BEGIN ... COMMIT);
    - `single_writer`: one write statement in autocommit, on a session whose
      default isolation is SERIALIZABLE (see the module's docstring).
    `engine` serves reads; `write_engine` (its own pool) serves both kinds of write.
    """

    engine: AsyncEngine
    write_engine: AsyncEngine
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Replicas for reads that accept staleness (INVENTORY_READ_DATABASE_URL; on
    # CockroachDB, follower reads); None: every read goes to the leader.
    replica_engine: AsyncEngine | None = None

    def __post_init__(self) -> None:
        # Built once: execution_options() makes a new engine object on every call.
        # The read engine's connections are in autocommit from the start (see
        # create_database), so its checkouts change nothing and reset nothing.
        self._reader = self.engine
        self._writer = self.write_engine.execution_options(isolation_level="SERIALIZABLE")
        self._single_writer = self.write_engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def writer(self) -> AsyncEngine:
        return self._writer

    @property
    def single_writer(self) -> AsyncEngine:
        return self._single_writer

    @property
    def reader(self) -> AsyncEngine:
        return self._reader

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.write_engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()


def create_database(
    url: str, pool: PoolSettings | None = None, retry_policy: RetryPolicy | None = None,
    read_url: str | None = None,
) -> Database:
    """`url`: the leader (a multi-host URL with target_session_attrs=read-write
    follows it across failovers); `read_url`: replicas for bounded-staleness reads."""
    pool = pool or PoolSettings()
    url = normalize_url(url)

    def engine(isolation_level: str | None = None, engine_url: str = url,
               **connect_args) -> AsyncEngine:
        made = create_async_engine(
            engine_url,
            **({"isolation_level": isolation_level} if isolation_level else {}),
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout_s,
            pool_recycle=pool.recycle_s,
            pool_pre_ping=pool.ping_idle_s <= 0,
            connect_args={"connect_timeout": 5, **connect_args},
        )
        if pool.ping_idle_s > 0:
            ping_when_idle(made.sync_engine, pool.ping_idle_s)
        event.listen(made.sync_engine, "handle_error", _wrong_node_is_a_disconnect)
        return made

    # Reads: every connection in autocommit for its whole life. Set per checkout
    # instead (execution_options), it is set and reset on every read
    # (docs/performance.md, item 30).
    replica = None
    if read_url:
        replica = engine("AUTOCOMMIT", engine_url=normalize_url(read_url))
    elif make_url(url).get_backend_name() == "cockroachdb":
        replica = engine("AUTOCOMMIT", options=follower_read_session_options())
    return Database(engine=engine("AUTOCOMMIT"), write_engine=engine(**serializable_sessions(url)),
                    retry_policy=retry_policy or RetryPolicy(), replica_engine=replica)


def serializable_sessions(url: str) -> dict[str, str]:
    """Connect arguments that make SERIALIZABLE the session's default isolation.
    CockroachDB's default already is; PostgreSQL's is READ COMMITTED, changed by a
    startup option (kept after any options the URL carries)."""
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("postgresql"):
        return {}
    given = parsed.query.get("options", "")
    given = given if isinstance(given, str) else " ".join(given)
    return {"options": f"{given} -c default_transaction_isolation=serializable".strip()}


def _wrong_node_is_a_disconnect(context) -> None:
    """A node that refuses writes (a leader demoted by a failover) will refuse them
    on every connection to it: treat the error as a disconnect, so the pool drops
    the connection and its siblings, and new ones find the new leader."""
    state = getattr(context.original_exception, "sqlstate", None)
    if state in WRONG_NODE_SQLSTATES:
        context.is_disconnect = True


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
