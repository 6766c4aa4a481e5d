"""Failures that are the database's, not the request's: the client is told to
retry them (UNAVAILABLE).

Reads and writes turn the driver's errors for an unreachable database or a
pool with no connection free in time into DatabaseUnavailable (retry.py,
service/reads.py); the change feed and the subscriptions' lookups may still
raise the driver's own.
"""
from __future__ import annotations

from sqlalchemy import exc as sa_exc

from .retry import DatabaseUnavailable

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseUnavailable, sa_exc.OperationalError, sa_exc.TimeoutError, OSError)
