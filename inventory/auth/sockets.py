"""Authenticated WebSockets: credentials re-checked while a socket is open, and
a cap on sockets per credential.

A socket is authenticated once, at `connection_init`. Afterwards:

- before each operation on it, the credential is checked again (through the
  authenticator's cache, so this costs a dictionary lookup until the cached
  answer expires);
- while it is open, a watcher re-checks the credential when the authenticator's
  cached answer for it expires (every INVENTORY_AUTH_CACHE_SECONDS; every
  second when that is 0), so a socket that only receives events learns too.

A revoked key, or a JWT past its `exp`, therefore stops working on an open
socket within INVENTORY_AUTH_CACHE_SECONDS: the socket is closed with 4403
(graphql-transport-ws's "Forbidden"), which ends its subscriptions, and an
operation that arrives first is refused. If the database cannot be reached
for the check, the socket stays open and the check is repeated.

Each process keeps at most INVENTORY_WS_PER_CREDENTIAL authenticated sockets
per credential (key or JWT subject); one more is closed at `connection_init`
with TOO_MANY_SOCKETS (4029) and a reason that names the setting.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from ..db.retry import DatabaseUnavailable
from .authenticator import Authenticator
from .principal import Principal

log = logging.getLogger(__name__)

REVOKED = 4403
REVOKED_REASON = "credential revoked or expired"
TOO_MANY_SOCKETS = 4029
TOO_MANY_REASON = "too many open sockets for this credential (INVENTORY_WS_PER_CREDENTIAL)"
_SCOPE_KEY = "inventory.socket"


class LiveSocket:
    """One authenticated socket: its credential, and the checks of it."""

    def __init__(self, sockets: "Sockets", websocket: Any, authorization: str,
                 principal: Principal):
        self.sockets = sockets
        self.websocket = websocket
        self.authorization = authorization
        self.principal = principal
        self.closed = False
        self.watcher: asyncio.Task | None = None

    async def still_valid(self) -> bool:
        """Checks the credential again (cached); closes the socket (4403) and
        answers False when it no longer authenticates as the same caller."""
        if self.closed:
            return False
        try:
            principal = await self.sockets.authenticator.authenticate(self.authorization)
        except DatabaseUnavailable:
            return True  # cannot tell now; the watcher asks again
        if principal is not None and principal.credential == self.principal.credential:
            return True
        await self.close(REVOKED, REVOKED_REASON)
        return False

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # already gone: nothing to close
            await self.websocket.close(code=code, reason=reason)

    async def watch(self) -> None:
        authenticator = self.sockets.authenticator
        while not self.closed:
            until = authenticator.cached_until(self.authorization)
            await asyncio.sleep(max(until - time.monotonic(), 0) + 0.05
                                if until is not None else 1.0)
            try:
                if not await self.still_valid():
                    return
            except Exception:  # a bug here must not end the process's loop
                log.exception("re-checking a socket's credential failed")


class Sockets:
    """The process's authenticated sockets, counted per credential."""

    def __init__(self, authenticator: Authenticator, per_credential: int):
        self.authenticator = authenticator
        self.per_credential = per_credential
        self.open_count: Counter[str] = Counter()

    async def open(self, context: Any, authorization: str, principal: Principal) -> bool:
        """Registers an authenticated socket; False (and the socket closed with
        TOO_MANY_SOCKETS) when its credential already has the most allowed."""
        websocket = context.request
        credential = principal.credential
        if self.per_credential > 0 and self.open_count[credential] >= self.per_credential:
            with contextlib.suppress(Exception):
                await websocket.close(code=TOO_MANY_SOCKETS, reason=TOO_MANY_REASON)
            return False
        socket = LiveSocket(self, websocket, authorization, principal)
        self.open_count[credential] += 1
        websocket.scope[_SCOPE_KEY] = socket
        context.socket = socket
        socket.watcher = asyncio.create_task(socket.watch())
        return True

    async def release(self, scope: dict) -> None:
        """Called when the socket's handling ends, however it ended."""
        socket: LiveSocket | None = scope.pop(_SCOPE_KEY, None)
        if socket is None:
            return
        socket.closed = True
        credential = socket.principal.credential
        self.open_count[credential] -= 1
        if self.open_count[credential] <= 0:
            del self.open_count[credential]
        if socket.watcher is not None:
            socket.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await socket.watcher
