"""Parsing and validating GraphQL documents, with the product's limits, and
remembering both: one schema extension.

It does the work of five of strawberry's (ParserCache, MaxTokensLimiter,
ValidationCache, and AddValidationRules for the depth and alias limits and for
DisableIntrospection). strawberry builds every extension anew for each
operation and runs each one's hooks through context managers; five extensions
for this one concern cost a `stockLevel` read about 20 us (docs/performance.md).

- Parsing stops past `max_tokens` tokens; parsed documents are remembered by
  text (a bounded LRU), so repeat documents are not parsed again.
- Validation runs the schema's rules plus `rules` (built once: depth, aliases,
  introspection; inventory/auth/limits.py); results are remembered per parsed
  document object (inventory/document_cache.py), keyed also by schema and rules.
Errors are strawberry's own: a document too long or unreadable fails in parsing,
an invalid one in validation, with graphql-core's messages.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

from graphql import parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from ..document_cache import PerDocument

_validate = PerDocument(lambda document, schema, rules: validate_document(schema, document, rules))


@functools.lru_cache(maxsize=1024)
def _parse(query: str, max_tokens: int):
    return parse(query, max_tokens=max_tokens)


class DocumentChecks(SchemaExtension):
    def __init__(self, max_tokens: int, rules: tuple[type, ...]):
        self.max_tokens = max_tokens
        self.rules = rules

    def on_parse(self):
        ec = self.execution_context
        ec.graphql_document = _parse(ec.query, self.max_tokens)
        yield

    def on_validate(self):
        ec = self.execution_context
        ec.pre_execution_errors = _validate(ec.graphql_document, ec.schema._schema,
                                            ec.validation_rules + self.rules)
        yield


def document_checks(max_tokens: int, rules: Sequence[type]) -> Callable[[], SchemaExtension]:
    """The extension factory for the schema's extension list."""
    return functools.partial(DocumentChecks, max_tokens, tuple(rules))
