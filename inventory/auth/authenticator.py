"""Turns an `Authorization: Bearer ...` value into a Principal (or None).

API keys (`inv_...`) are checked against the database; anything else is tried as
a JWT. Results are cached for a few seconds (INVENTORY_AUTH_CACHE_SECONDS) keyed
by a hash of the credential, so a busy client costs one key lookup per interval;
a revoked key stops working within that interval.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict

from sqlalchemy import exc as sa_exc

from ..db import api_keys
from ..db.engine import Database
from ..db.retry import DatabaseUnavailable
from . import keys
from .principal import Principal
from .settings import SecuritySettings
from .tokens import JwtVerifier

CACHE_ENTRIES = 10_000


class Authenticator:
    def __init__(self, settings: SecuritySettings, db: Database):
        self.settings = settings
        self.db = db
        self.jwt = JwtVerifier(settings) if settings.jwt_enabled else None
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        # Concurrent first requests with one credential share one verification
        # instead of each taking a database connection (a burst of 100 would).
        self._inflight: dict[str, asyncio.Future] = {}

    @staticmethod
    def _credential(authorization: str | None) -> str | None:
        if not authorization or len(authorization) > 8192:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None
        return credential

    def cached_until(self, authorization: str | None) -> float | None:
        """When (time.monotonic) the cached answer for this credential expires;
        None when nothing is cached."""
        credential = self._credential(authorization)
        if credential is None:
            return None
        cached = self._cache.get(hashlib.sha256(credential.encode()).hexdigest())
        return cached[0] if cached else None

    async def authenticate(self, authorization: str | None) -> Principal | None:
        credential = self._credential(authorization)
        if credential is None:
            return None
        cache_key = hashlib.sha256(credential.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached and cached[0] > now:
            return cached[1]
        pending = self._inflight.get(cache_key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled
                # The first request was cancelled mid-check: verify here instead.
        future = asyncio.get_running_loop().create_future()
        self._inflight[cache_key] = future
        try:
            principal = await self._verify(credential)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning if nobody waits
            raise
        else:
            future.set_result(principal)
        finally:
            del self._inflight[cache_key]
        if self.settings.auth_cache_s > 0:
            self._cache[cache_key] = (now + self.settings.auth_cache_s, principal)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return principal

    async def _verify(self, credential: str) -> Principal | None:
        if credential.startswith(keys.PREFIX):
            parsed = keys.parse_key(credential)
            if parsed is None:
                return None
            try:
                async with self.db.reader.connect() as conn:
                    row = await api_keys.find_key(conn, parsed.tenant_id, parsed.key_id)
            except sa_exc.TimeoutError as error:
                raise DatabaseUnavailable("no database connection free in time") from error
            except (sa_exc.OperationalError, sa_exc.InterfaceError, OSError) as error:
                # Not cached: the next request looks the key up again.
                raise DatabaseUnavailable(f"database unreachable: {error}") from error
            return keys.principal_for(row, parsed)
        if self.jwt is None:
            return None
        return await self.jwt.verify(credential)
