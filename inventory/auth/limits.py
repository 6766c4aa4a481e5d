"""Query limits beyond the depth/alias/token limiters in inventory/resolvers/root.py.

Limits in place, and where:
- depth 12, aliases 30, tokens 5000: resolvers/root.py (limit_rules below, applied by
  inventory/graphql_runtime/documents.py);
- page size: `first` between 0 and 500 (resolvers/queries.py MAX_PAGE);
- list lengths in inputs: reserveStock lines <= 100, texts <= 200 characters
  (domain/commands.py);
- request body: INVENTORY_MAX_BODY_BYTES (web/gate.py HttpGate);
- operations per request: one. Batching (a JSON array of operations) is not
  enabled and is answered 400; a document with several operations runs only the
  one named by operationName, else the first (and AccessGuard checks that one);
- writes: each root mutation field costs one rate-limit token (auth/extension.py);
- introspection: off in production unless INVENTORY_INTROSPECTION=1;
- strings: no NUL characters anywhere in arguments (PostgreSQL text cannot hold
  them, so they would otherwise fail deep in the driver); checked by AccessGuard.
"""
from __future__ import annotations

from typing import Any

from graphql import StringValueNode, visit
from graphql.language import Visitor
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter


def _unstorable(text: str) -> bool:
    """NUL, or a lone UTF-16 surrogate (a JSON escape such as \\ud800 decodes to
    one): PostgreSQL text can hold neither, and the driver would fail on it."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_values(value: Any) -> bool:
    """Whether a JSON value (the variables) holds text PostgreSQL cannot store."""
    if isinstance(value, str):
        return _unstorable(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if unstorable_values(key) or unstorable_values(item):
                return True
        return False
    if isinstance(value, (list, tuple)):
        for item in value:
            if unstorable_values(item):
                return True
    return False


class _UnstorableFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_args):
        if _unstorable(node.value):
            self.found = True


def unstorable_literals(document: Any, query: str | None) -> bool:
    """Whether the string literals of a parsed document (of the text `query`)
    hold text PostgreSQL cannot store."""
    query = query or ""
    # Only documents that could hold such text (raw or escaped) are walked.
    if document is None or (query.isascii() and "\\u" not in query):
        return False
    finder = _UnstorableFinder()
    visit(document, finder)
    return finder.found


def contains_unstorable_text(ec) -> bool:
    """Whether the operation's variables or string literals hold text PostgreSQL
    cannot store (checked by AccessGuard, which answers INVALID_INPUT)."""
    return unstorable_values(ec.variables) or unstorable_literals(ec.graphql_document,
                                                                   ec.query)


def limit_rules(max_depth: int, max_aliases: int, introspection: bool) -> list:
    """Validation rules for the depth and alias limits (and against introspection
    when it is off), built once for the schema's document checks
    (inventory/graphql_runtime/documents.py). QueryDepthLimiter and MaxAliasesLimiter each
    build a new rule class per instance, i.e. per request, which made every
    request miss the validation cache (its key includes the rules) and
    re-validate the document (docs/performance.md, item 1)."""
    rules = [*QueryDepthLimiter(max_depth=max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules
