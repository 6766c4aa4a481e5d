"""Parsed GraphQL documents, and answers remembered per parsed document.

Memory is bounded in bytes, not only in entries: a client sending thousands of
distinct large documents (comment padding) must not grow the process.

- `ParsedDocuments` keeps parsed documents by text, least recently used
  dropped first, within a budget of estimated bytes: `BYTES_PER_CHAR` of
  Python objects per character, as measured on dense GraphQL (docs/security.md,
  "Memory"). The estimate uses that figure for every document, so padding is over-counted, never under-counted. Documents longer
  than `max_document_chars` are parsed for their request and not kept.
- `PerDocument` remembers answers keyed by the document's identity. graphql-core's
  AST nodes are dataclasses that hash by walking their whole tree, so a cache
  keyed by the document itself re-hashes every node on every lookup
  (strawberry's ValidationCache did, on every read: docs/performance.md,
  item 28). The parser cache hands the same document object to
  every request with the same text, so the object's identity is as good a key
  and costs nothing. Entries hold their document weakly and go when it goes,
  so these caches never keep a document alive: they are bounded by the parser
  cache's budget.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

BYTES_PER_CHAR = 130


class ParsedDocuments:
    def __init__(self, parse: Callable[[str], Any], max_bytes: int = 64 * 1024 * 1024,
                 max_document_chars: int = 16 * 1024):
        self._parse = parse
        self.max_bytes = max_bytes
        self.max_document_chars = max_document_chars
        self.bytes = 0
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def known(self, query: str) -> Any:
        """The document parsed before from this text, or None (nothing parsed)."""
        document = self._entries.get(query)
        if document is not None:
            try:
                self._entries.move_to_end(query)
            except KeyError:  # dropped meanwhile by another thread
                pass
        return document

    def __call__(self, query: str) -> Any:
        document = self.known(query)
        if document is not None:
            return document
        document = self._parse(query)  # a syntax error raises and is not kept
        if len(query) <= self.max_document_chars:
            with self._lock:
                if query not in self._entries:
                    self._entries[query] = document
                    self.bytes += len(query) * BYTES_PER_CHAR
                while self.bytes > self.max_bytes and self._entries:
                    old, _ = self._entries.popitem(last=False)
                    self.bytes -= len(old) * BYTES_PER_CHAR
        return document


class PerDocument:
    """`cached(document, *extra)` = `compute(document, *extra)`, remembered while
    the document lives, for up to `maxsize` (document, extra) pairs; `extra`
    must be hashable."""

    def __init__(self, compute: Callable[..., Any], maxsize: int = 1024):
        self._compute = compute
        self._maxsize = maxsize
        self._entries: dict[tuple, tuple[weakref.ref, Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, document: Any, *extra: Hashable) -> Any:
        if document is not None:  # the lookup of `get`, without a closure per call
            hit = self._entries.get((id(document), *extra))
            if hit is not None and hit[0]() is document:
                return hit[1]
        return self.get(document, extra, lambda: self._compute(document, *extra))

    def get(self, document: Any, extra: tuple, compute: Callable[[], Any]) -> Any:
        """The answer for (document, *extra), from `compute()` when not known."""
        if document is None:
            return compute()
        key = (id(document), *extra)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is document:
            return hit[1]
        value = compute()
        if len(self._entries) >= self._maxsize:
            self._entries.clear()  # simple bound; repeat documents refill it at once
        entries = self._entries
        self._entries[key] = (weakref.ref(document, lambda _ref: entries.pop(key, None)), value)
        return value
