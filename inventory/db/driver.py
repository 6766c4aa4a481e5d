"""Hot statements sent straight to the pooled connection's psycopg connection.

Every statement is still built with SQLAlchemy Core. A `DriverStatement` is
compiled once per dialect; what it skips is SQLAlchemy's per-execution work
(parameter processing, the execution context, result and row objects, two
greenlet switches), which costs a one-key stockLevel lookup about three times
the CPU of psycopg alone (docs/performance.md, item 30). Only statements run
once per request on the hottest paths are worth it; the rest go through
SQLAlchemy.

The connection still comes from, and goes back to, SQLAlchemy's pool. A lost
connection is invalidated, as SQLAlchemy does, so that the pool does not hand
it out again, and every error surfaces as SQLAlchemy's own type for it, so
callers handle both paths alike. psycopg's OpenTelemetry instrumentation traces these
statements like any other.
"""
from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement


class DriverStatement:
    def __init__(self, statement: ClauseElement, prepare: bool | None = None):
        self.statement = statement  # what is compiled, per dialect (the compatibility check reads it)
        # psycopg's `prepare`: None prepares it on a connection after a few
        # executions (its default); False plans it with the values every time.
        self.prepare = prepare
        # dialect name -> (SQL text, values of the statement's own literals)
        self._compiled: dict[str, tuple[str, dict[str, Any]]] = {}

    def compiled(self, conn: AsyncConnection) -> tuple[str, dict[str, Any]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            if compiled.positiontup or compiled.literal_execute_params or \
                    compiled.post_compile_params:
                raise ValueError("a driver statement takes named, non-expanding parameters")
            literals = {name: value for name, value in compiled.params.items()
                        if value is not None}
            found = self._compiled[dialect.name] = (compiled.string, literals)
        return found

    async def mappings(self, conn: AsyncConnection, params: dict[str, Any]
                       ) -> list[dict[str, Any]]:
        """The statement's rows, as {column name: value}."""
        return await self._fetch(conn, params, by_name=True)

    async def rows(self, conn: AsyncConnection, params: dict[str, Any]) -> list[tuple]:
        """The statement's rows, as tuples in its column order."""
        return await self._fetch(conn, params, by_name=False)

    async def _fetch(self, conn: AsyncConnection, params: dict[str, Any], by_name: bool):
        sql, literals = self.compiled(conn)
        params = {**literals, **params}
        fairy = await conn.get_raw_connection()
        try:
            cursor = fairy.driver_connection.cursor()
            await cursor.execute(sql, params, prepare=self.prepare)
            rows = await cursor.fetchall()
            if by_name:
                names = [column.name for column in cursor.description]
                return [dict(zip(names, row)) for row in rows]
            return rows
        except psycopg.Error as error:
            # As SQLAlchemy does: a closed or broken connection is invalidated, so
            # the pool does not hand it out again; any error is raised as
            # SQLAlchemy's class for it (OperationalError, DataError, ...).
            driver = fairy.driver_connection
            lost = driver.closed or driver.broken
            if lost:
                await conn.invalidate(error)
            raise sa_exc.DBAPIError.instance(sql, params, error, psycopg.Error,
                                             connection_invalidated=lost,
                                             dialect=conn.dialect) from error
