"""Caches bounded in bytes: the parser cache keeps documents within a budget of
estimated bytes and never keeps a long one; answers remembered per document
hold it weakly; persisted queries are bounded in characters and kept per tenant."""
from __future__ import annotations

import gc

from graphql import parse

from inventory.web.apq import NOT_FOUND, PersistedQueries
from inventory.graphql_runtime.document_cache import BYTES_PER_CHAR, ParsedDocuments, PerDocument


def test_parser_cache_is_bounded_in_bytes_and_skips_long_documents():
    parsed = ParsedDocuments(parse, max_bytes=1000 * BYTES_PER_CHAR, max_document_chars=300)
    padded = "# " + "x" * 400 + "\n{ __typename }"
    assert parsed(padded) is not parsed(padded)  # too long to keep: parsed each time
    assert len(parsed) == 0 and parsed.bytes == 0
    documents = [f"{{ a{i}: __typename }}".ljust(250) for i in range(20)]
    kept = []
    for text in documents:
        kept.append(parsed(text))
        assert parsed(text) is kept[-1]  # kept
    assert parsed.bytes <= 1000 * BYTES_PER_CHAR
    assert len(parsed) == 4  # 4 x 250 characters fill the budget of 1,000
    assert parsed(documents[-1]) is kept[-1]  # the most recent stay
    assert parsed(documents[0]) is not kept[0]  # the oldest went


def test_answers_per_document_hold_it_weakly():
    cached = PerDocument(lambda document, extra: extra * 2)
    document = parse("{ a }")
    assert cached(document, 21) == 42
    assert len(cached) == 1
    del document
    gc.collect()
    assert len(cached) == 0  # the entry went with its document


def test_persisted_queries_are_bounded_in_characters_and_per_tenant():
    import hashlib

    store = PersistedQueries(max_entries=100, max_chars=1000)

    def ext(query):
        return {"persistedQuery": {"version": 1,
                                   "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}

    queries = [f"{{ a{i}: __typename {' ' * 290}}}" for i in range(5)]  # ~310 chars each
    for query in queries:
        assert store.resolve(query, ext(query), "tenant-a") == query
    assert store.chars <= 1000 and len(store) == 3
    assert store.resolve(None, ext(queries[-1]), "tenant-a") == queries[-1]
    assert store.resolve(None, ext(queries[0]), "tenant-a").code == NOT_FOUND  # dropped
    assert store.resolve(None, ext(queries[-1]), "tenant-b").code == NOT_FOUND  # per tenant
