"""Trusted documents: with an allow-list loaded (INVENTORY_TRUSTED_DOCUMENTS),
the server runs only the documents the client builds shipped, and nothing else.

The list is a JSON manifest written by client tooling, in one of two formats:

- GraphQL Code Generator's client preset (`persistedDocuments: {hashAlgorithm:
  "sha256"}`), `persisted-documents.json`: an object of sha256 hash -> document;
- Apollo's persisted query manifest (`@apollo/generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1, "operations":
  [{"id": <sha256>, "name", "type", "body"}]}`.

Every hash must be the sha256 of its document (both tools' default; a "sha256:"
prefix, as in the GraphQL-over-HTTP persisted documents appendix, is accepted);
a list that does not read is refused at start-up with the reason. Clients send
the hash as `extensions.persistedQuery.sha256Hash` (Apollo Client's
persisted-queries link, urql's persistedExchange), with or without the
document. A request with another hash is refused here; a document sent as text
is refused by the parsing step unless it is on the list, the same check for
HTTP and WebSocket operations (inventory/graphql_runtime/documents.py). The
automatic persisted-query store is not used while the list is on.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError

from .apq import INVALID, ApqError

NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
NOT_ALLOWED_MESSAGE = ("this server runs only trusted documents, and this one is not on its "
                       "allow-list; send a document from the client build the server was "
                       "deployed with")
APOLLO_FORMAT = "apollo-persisted-query-manifest"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class TrustedDocumentsError(Exception):
    """The allow-list cannot be used; the message says why and what to fix."""


@dataclass(frozen=True)
class TrustedDocuments:
    by_hash: dict[str, str]  # sha256 hex -> document
    texts: frozenset[str]  # the documents themselves, for requests that send text

    def __len__(self) -> int:
        return len(self.by_hash)

    def refusal(self, query: str) -> GraphQLError | None:
        """The error for a document text that is not on the list (the parsing
        step asks, for HTTP and WebSocket operations alike)."""
        if query in self.texts:
            return None
        return GraphQLError(NOT_ALLOWED_MESSAGE, extensions={"code": NOT_ALLOWED})

    def resolve(self, query: str | None, extensions: Any) -> str | None | ApqError:
        """The document to execute: the listed one for a listed hash, `query`
        unchanged without a hash (its text is checked when it is parsed), an
        ApqError for a hash that is not listed or does not match `query`."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if persisted is None:
            return query
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str) or persisted.get("version", 1) != 1:
            return ApqError(INVALID, "persistedQuery needs version 1 and a sha256Hash of "
                                     "64 hex digits")
        document = self.by_hash.get(_digest(digest))
        if document is None:
            return ApqError(NOT_ALLOWED, NOT_ALLOWED_MESSAGE)
        if query is not None and query != document:
            return ApqError(INVALID, "provided sha256Hash does not match the query")
        return document


def _digest(text: str) -> str:
    text = text.strip().lower()
    return text[len("sha256:"):] if text.startswith("sha256:") else text


def load(path: Path) -> TrustedDocuments:
    """Reads a manifest (either format); TrustedDocumentsError when it cannot be used."""
    where = f"INVENTORY_TRUSTED_DOCUMENTS={path}"
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise TrustedDocumentsError(f"{where}: cannot read it ({error.strerror})") from None
    except ValueError as error:
        raise TrustedDocumentsError(f"{where}: not JSON ({error})") from None
    entries = _entries(manifest, where)
    by_hash: dict[str, str] = {}
    for key, document in entries:
        if not isinstance(key, str) or not isinstance(document, str) or not document.strip():
            raise TrustedDocumentsError(f"{where}: entry {key!r} needs a hash and a document")
        digest = _digest(key)
        if not _HEX64.fullmatch(digest):
            raise TrustedDocumentsError(
                f"{where}: {key!r} is not a sha256 hash (64 hex digits); generate the "
                "manifest with sha256 (GraphQL Code Generator: persistedDocuments: "
                "{hashAlgorithm: 'sha256'})")
        if hashlib.sha256(document.encode()).hexdigest() != digest:
            raise TrustedDocumentsError(
                f"{where}: {key!r} is not the sha256 of its document; regenerate the manifest")
        by_hash[digest] = document
    if not by_hash:
        raise TrustedDocumentsError(f"{where}: the manifest lists no documents")
    return TrustedDocuments(by_hash, frozenset(by_hash.values()))


def _entries(manifest: Any, where: str) -> list[tuple[Any, Any]]:
    if isinstance(manifest, dict) and manifest.get("format") == APOLLO_FORMAT:
        if manifest.get("version") != 1 or not isinstance(manifest.get("operations"), list):
            raise TrustedDocumentsError(
                f"{where}: an {APOLLO_FORMAT} needs version 1 and a list of operations")
        return [(op.get("id"), op.get("body")) if isinstance(op, dict) else (op, None)
                for op in manifest["operations"]]
    if isinstance(manifest, dict) and "format" not in manifest:
        return list(manifest.items())
    raise TrustedDocumentsError(
        f"{where}: expected a JSON object of sha256 hash -> document (GraphQL Code "
        f"Generator's persisted-documents.json) or an {APOLLO_FORMAT} (Apollo)")
