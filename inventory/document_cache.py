"""Answers remembered per parsed GraphQL document, keyed by its identity.

graphql-core's AST nodes are dataclasses that hash by walking their whole tree,
so a cache keyed by the document itself re-hashes every node of it on every
lookup (strawberry's ValidationCache spent about 20 us of a `stockLevel` read
that way; docs/performance.md). The parser cache hands the same document object
to every request with the same text, so the object's identity is as good a key
and costs nothing. Each entry keeps its document alive, so an id is never
reused while its entry exists.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable


class PerDocument:
    """`cached(document, *extra)` = `compute(document, *extra)`, remembered for
    up to `maxsize` (document, extra) pairs; `extra` must be hashable."""

    def __init__(self, compute: Callable[..., Any], maxsize: int = 1024):
        self._compute = compute
        self._maxsize = maxsize
        self._entries: dict[tuple, tuple[Any, Any]] = {}

    def __call__(self, document: Any, *extra: Hashable) -> Any:
        key = (id(document), *extra)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is document:
            return hit[1]
        value = self._compute(document, *extra)
        if len(self._entries) >= self._maxsize:
            self._entries.clear()  # simple bound; repeat documents refill it at once
        self._entries[key] = (document, value)
        return value
