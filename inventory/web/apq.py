"""Automatic persisted queries (Apollo's APQ protocol) with a bounded LRU per process.

A client first sends only `extensions.persistedQuery.sha256Hash`. When the hash is
unknown here it gets the error code PERSISTED_QUERY_NOT_FOUND and sends again with
the document; the document is stored after its hash has been checked, so later
requests carry the hash alone (less upload, and with the parser cache no parsing).
Each process keeps its own store: a client that lands on a process that has not
seen its hash is told PERSISTED_QUERY_NOT_FOUND and simply sends the document.

Entries are namespaced by tenant: a hash one tenant stored is unknown to every
other, so the store cannot tell anyone whether another tenant sent a document.
The store is bounded in characters as well as entries; documents longer than
MAX_DOCUMENT_CHARS run but are not stored.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
INVALID = "PERSISTED_QUERY_INVALID"
DEFAULT_MAX_ENTRIES = 2048
DEFAULT_MAX_CHARS = 8 * 1024 * 1024  # all stored documents together
MAX_DOCUMENT_CHARS = 16 * 1024


@dataclass(frozen=True)
class ApqError:
    code: str
    message: str


class PersistedQueries:
    """(tenant, sha256 hex) -> document, least recently used dropped first."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES,
                 max_chars: int = DEFAULT_MAX_CHARS):
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.chars = 0
        self._store: OrderedDict[tuple[Any, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._store)

    def _get(self, digest: tuple[Any, str]) -> str | None:
        with self._lock:
            query = self._store.get(digest)
            if query is not None:
                self._store.move_to_end(digest)
            return query

    def _put(self, digest: tuple[Any, str], query: str) -> None:
        with self._lock:
            old = self._store.pop(digest, None)
            self.chars += len(query) - (len(old) if old is not None else 0)
            self._store[digest] = query
            while len(self._store) > self.max_entries or self.chars > self.max_chars:
                _, dropped = self._store.popitem(last=False)
                self.chars -= len(dropped)

    def resolve(self, query: str | None, extensions: Any,
                tenant: Any = None) -> str | ApqError | None:
        """The document to execute; `query` unchanged when the request does not use
        APQ; an ApqError for an unknown hash or a hash that does not match."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is None:
            return query
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if (not isinstance(digest, str) or len(digest) != 64
                or persisted.get("version", 1) != 1):
            return ApqError(INVALID, "persistedQuery needs version 1 and a sha256Hash of "
                                     "64 hex digits")
        digest = digest.lower()
        if query is None:
            stored = self._get((tenant, digest))
            return stored if stored is not None else ApqError(NOT_FOUND, "PersistedQueryNotFound")
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            return ApqError(INVALID, "provided sha256Hash does not match the query")
        if len(query) <= MAX_DOCUMENT_CHARS:
            self._put((tenant, digest), query)
        return query
