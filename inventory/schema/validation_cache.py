"""strawberry's ValidationCache, keyed by the parsed document's identity.

strawberry's own extension keys its LRU cache by (schema, document, rules), and
a graphql-core document hashes by walking every node of its tree: about 20 us
of each `stockLevel` read went to hashing the same document again
(docs/performance.md). The answer is the same; only the key is cheaper (see
inventory/document_cache.py).
"""
from __future__ import annotations

from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from ..document_cache import PerDocument

_validate = PerDocument(lambda document, schema, rules: validate_document(schema, document, rules))


class DocumentValidationCache(SchemaExtension):
    def on_validate(self):
        ec = self.execution_context
        ec.pre_execution_errors = _validate(ec.graphql_document, ec.schema._schema,
                                            tuple(ec.validation_rules))
        yield
