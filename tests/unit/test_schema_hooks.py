"""The schema's cheaper request machinery gives strawberry's answers: extension
hooks resolved once per class (inventory/graphql_runtime/strawberry_compat.py) and validation remembered per
document object (graphql_runtime/documents.py, graphql_runtime/document_cache.py)."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import strawberry
from graphql import parse
from strawberry.extensions import SchemaExtension

from inventory.auth.principal import ALL_SCOPES, Principal
from inventory.graphql_runtime.document_cache import PerDocument
from inventory.graphql_runtime.quiet import QuietSchema
from inventory.resolvers.root import build_schema


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


def recording_extension(log: list[str]) -> type[SchemaExtension]:
    """One extension with every kind of hook strawberry accepts."""

    class Recorder(SchemaExtension):
        def on_operation(self):  # generator
            log.append("operation start")
            yield
            log.append("operation end")

        async def on_parse(self):  # async generator
            log.append("parse start")
            yield
            log.append(f"parse end: {self.execution_context.graphql_document is not None}")

        def on_validate(self):  # plain function: runs before the step
            log.append("validate")

        async def on_execute(self):  # coroutine: awaited before the step
            log.append("execute")

    return Recorder


class Second(SchemaExtension):
    """A second extension, so that the order between extensions shows."""
    log: list[str] = []

    def on_operation(self):
        Second.log.append("second operation start")
        yield
        Second.log.append("second operation end")


async def run_with(schema_class, query: str) -> tuple[list[str], object]:
    log: list[str] = []
    Second.log = log
    schema = schema_class(query=Query, extensions=[recording_extension(log), Second])
    results = [await schema.execute(query) for _ in range(2)]  # second time: cached hooks
    return log, results


async def test_hooks_run_like_strawberrys_own_for_every_kind_of_hook():
    for query in ("{ hello }", "{ nope }"):
        ours, our_results = await run_with(QuietSchema, query)
        theirs, their_results = await run_with(strawberry.Schema, query)
        assert ours == theirs
        assert [(r.data, [e.message for e in r.errors or []]) for r in our_results] == \
               [(r.data, [e.message for e in r.errors or []]) for r in their_results]
    assert "operation start" in ours and "validate" in ours  # the hooks did run


def test_per_document_cache_keys_on_the_object_and_the_extra_arguments():
    calls: list[tuple] = []

    def compute(document, extra):
        calls.append((id(document), extra))
        return (document, extra)

    cached = PerDocument(compute, maxsize=2)
    first, equal_twin = parse("{ a }"), parse("{ a }")
    assert cached(first, 1) == (first, 1)
    assert cached(first, 1)[0] is first
    assert cached(equal_twin, 1)[0] is equal_twin  # an equal document is its own entry
    assert cached(first, 2) == (first, 2)  # other extra arguments: another entry
    assert len(calls) == 3  # the repeat was answered from the cache
    cached(first, 1)  # the bound cleared the cache, so this is computed again
    assert len(calls) == 4


async def test_validation_is_per_schema_and_rules_for_the_same_document():
    """The parser cache hands both schemas the same document object; the
    introspection-off schema must still refuse it at validation."""
    query = "{ __schema { queryType { name } } }"
    caller = SimpleNamespace(principal=Principal(uuid.uuid4(), frozenset(ALL_SCOPES), "test",
                                                 "test"), limiter=None)
    closed = await build_schema(introspection=False).execute(query, context_value=caller)
    opened = await build_schema(introspection=True).execute(query, context_value=caller)
    assert closed.errors and "introspection" in closed.errors[0].message.lower()
    assert not opened.errors and opened.data == {"__schema": {"queryType": {"name": "Query"}}}
    bad = await build_schema().execute("{ noSuchField }", context_value=caller)
    assert "noSuchField" in bad.errors[0].message
    # Without a caller nothing is validated: the access guard refuses first.
    anonymous = await build_schema().execute("{ noSuchField }")
    assert [e.extensions["code"] for e in anonymous.errors] == ["UNAUTHENTICATED"]
