"""Parsing and validating GraphQL documents, with the product's limits, and
remembering both: one schema extension.

It does the work of five of strawberry's (ParserCache, MaxTokensLimiter,
ValidationCache, and AddValidationRules for the depth and alias limits and for
DisableIntrospection). strawberry builds every extension anew for each
operation and runs each one's hooks through context managers, so five
extensions for this one concern cost every read that machinery five times
(docs/performance.md, item 31).

- Parsing stops past `max_tokens` tokens; parsed documents are remembered by
  text within a byte budget (inventory/graphql_runtime/document_cache.py), so repeat documents
  are not parsed again. A syntax error is kept and reported in the validation
  step, so that an unreadable document is charged to the caller's rate limit
  like any other (AccessGuard charges between parsing and validation).
- With trusted documents on (inventory/web/trusted.py), a document that is not
  on the allow-list is refused before it is parsed.
- Right after parsing, the document is measured by the `measure` given
  (inventory/auth/cost.py CostMeasure: the operation to run, its size after
  expanding fragments, its cost). Its analysis is remembered per parsed
  document; the refusal (and the cost in `extensions.cost`) is decided per
  request, as the cost depends on the variables through `first: $variable`;
  once the operation has run (or was refused) the measure notes what it
  actually cost (`extensions.cost.actual`).
- Validation: a document over the size bounds, over the maximum cost, or with
  several operations and no operationName is refused without running
  graphql-core's validation. Every refused or invalid document is counted
  against its caller's refusal budget (inventory/auth/ratelimit.py). Otherwise the schema's rules plus `rules` (built
  once: depth, aliases, introspection; inventory/auth/limits.py) run, and
  their result is remembered per parsed document object.
- With `hide_suggestions` (introspection off), "Did you mean ...?" hints are
  removed from every error message, so errors do not reveal schema names.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Protocol, Sequence

from graphql import GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension

from .document_cache import ParsedDocuments, PerDocument
from .quiet import requested_operation_name
from .strawberry_compat import graphql_core_schema, validate_document

# validation_errors(document, graphql-core schema, rules): the schema's rules
# plus `rules`, remembered per parsed document.
validation_errors = PerDocument(
    lambda document, schema, rules: validate_document(schema, document, rules))
# Stands in for a document that did not parse, so the request goes on to the
# validation step (where it is charged, then refused with the syntax error).
_UNREADABLE = parse("{ __typename }")
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestions(error: GraphQLError) -> GraphQLError:
    """The error with graphql-core's "Did you mean ...?" hints removed (in place)."""
    if "Did you mean" in error.message:
        error.message = _SUGGESTION.sub("", error.message)
    return error


class DocumentMeasure(Protocol):
    def analyse(self, document, operation_name: str | None, schema: GraphQLSchema) -> Any:
        """What to remember about a parsed document (and operation name)."""

    def refusal(self, analysis: Any, execution_context) -> GraphQLError | None:
        """Per request: the error that refuses it, else None."""

    def too_deep(self) -> GraphQLError:
        """The error for a document nested past the parser's recursion limit."""

    def refused(self, execution_context) -> None:
        """Per request refused before it ran: notes that it cost nothing."""

    def ran(self, analysis: Any, execution_context) -> None:
        """Per request that ran: notes what its result cost."""


class _Documents:
    """Per schema: the parser cache and the per-document analyses."""

    def __init__(self, max_tokens: int, measure: DocumentMeasure, trusted=None):
        self.measure = measure
        self.trusted = trusted  # .refusal(text) -> GraphQLError | None, or None: any text
        self.parsed = ParsedDocuments(functools.partial(parse, max_tokens=max_tokens))
        self.analyses = PerDocument(measure.analyse)


def _note_refusal(context) -> None:
    """Counts a refused document against its caller (inventory/auth/ratelimit.py)."""
    limiter = getattr(context, "limiter", None)
    principal = getattr(context, "principal", None)
    if limiter is not None and principal is not None:
        limiter.note_refusal(principal)


class DocumentChecks(SchemaExtension):
    def __init__(self, documents: _Documents, rules: tuple[type, ...]):
        self.documents = documents
        self.rules = rules
        self.refusal: GraphQLError | None = None
        self.analysis: Any = None

    def on_parse(self):
        ec = self.execution_context
        if ec.pre_execution_errors:  # refused before parsing (AccessGuard)
            ec.graphql_document = _UNREADABLE
            yield
            return
        trusted = self.documents.trusted
        try:
            if trusted is not None:
                self.refusal = trusted.refusal(ec.query)
            if self.refusal is None:
                ec.graphql_document = self.documents.parsed(ec.query)
        except GraphQLError as syntax_error:
            self.refusal = syntax_error
        except RecursionError:
            self.refusal = self.documents.measure.too_deep()
        if self.refusal is not None:
            ec.graphql_document = _UNREADABLE
            yield
            return
        name = requested_operation_name.get()  # None when the request gave none
        analysis = self.analysis = self.documents.analyses(ec.graphql_document, name,
                                                           graphql_core_schema(ec.schema))
        self.refusal = self.documents.measure.refusal(analysis, ec)
        yield

    def on_validate(self):
        ec = self.execution_context
        if ec.pre_execution_errors is None:  # not refused already (rate limit)
            if self.refusal is not None:
                ec.pre_execution_errors = [self.refusal]
            else:
                ec.pre_execution_errors = validation_errors(
                    ec.graphql_document, graphql_core_schema(ec.schema),
                    ec.validation_rules + self.rules)
            if ec.pre_execution_errors:
                _note_refusal(ec.context)
        if ec.pre_execution_errors:  # refused: nothing runs
            self.documents.measure.refused(ec)
        yield

    def on_execute(self):
        yield
        if self.analysis is not None:
            self.documents.measure.ran(self.analysis, self.execution_context)


class HintlessDocumentChecks(DocumentChecks):
    """DocumentChecks that also remove "Did you mean" hints from every error."""

    def on_operation(self):
        yield
        ec = self.execution_context
        for errors in (ec.pre_execution_errors, getattr(ec.result, "errors", None)):
            for e in errors or ():
                without_suggestions(e)


def document_checks(max_tokens: int, rules: Sequence[type], measure: DocumentMeasure,
                    hide_suggestions: bool, trusted=None) -> Callable[[], SchemaExtension]:
    """The extension factory for the schema's extension list; `trusted`: the
    allow-list of documents (inventory/web/trusted.py), None to run any."""
    documents = _Documents(max_tokens, measure, trusted)
    cls = HintlessDocumentChecks if hide_suggestions else DocumentChecks
    return functools.partial(cls, documents, tuple(rules))
