"""The strawberry internals inventory/graphql_runtime/strawberry_compat.py relies
on, checked against the installed strawberry: a release that changes one fails
here, naming the hook and the module's item, rather than changing behaviour
quietly. Each check exercises the hook through strawberry's own code where it
can (a schema executing, strawberry's ASGI view answering)."""
from __future__ import annotations

import inspect
from importlib.metadata import version

import httpx
import pytest
import strawberry
from graphql.execution.executor import Executor as GraphQLCoreExecutor
from graphql import GraphQLSchema, parse, specified_rules
from strawberry.asgi import GraphQL
from strawberry.directive import DirectiveValue
from strawberry.extensions import SchemaExtension

from inventory.graphql_runtime import strawberry_compat as compat

STRAWBERRY = version("strawberry-graphql")


def changed(item: int, hook: str) -> str:
    return (f"strawberry {STRAWBERRY} changed {hook}: update item {item} of "
            f"inventory/graphql_runtime/strawberry_compat.py")


def params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self) -> int:
        return 1


def test_graphql_core_schema():
    schema = strawberry.Schema(query=Query)
    core = compat.graphql_core_schema(schema)
    assert isinstance(core, GraphQLSchema) and core.query_type.name == "Query", \
        changed(1, "Schema._schema")


def test_validate_document():
    assert params(compat.validate_document)[:3] == ["schema", "document", "validation_rules"], \
        changed(3, "strawberry.schema.schema.validate_document")
    core = compat.graphql_core_schema(strawberry.Schema(query=Query))
    assert compat.validate_document(core, parse("{ hello }"), tuple(specified_rules)) == []
    errors = compat.validate_document(core, parse("{ nope }"), tuple(specified_rules))
    assert errors and "nope" in errors[0].message, changed(3, "validate_document")


async def test_execution_context_base():
    assert issubclass(compat.ExecutionContextBase, GraphQLCoreExecutor), \
        changed(4, "StrawberryGraphQLCoreExecutionContext")
    built: list[object] = []

    class Recording(compat.ExecutionContextBase):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.operation_extensions)

    schema = strawberry.Schema(query=Query, execution_context_class=Recording)
    result = await schema.execute("{ hello }", operation_extensions={"x": 1})
    assert result.data == {"hello": "world"} and built == [{"x": 1}], \
        changed(4, "Schema(execution_context_class=...) with StrawberryGraphQLCoreExecutionContext")


async def test_request_errors_and_reasons():
    schema = strawberry.Schema(query=Query, mutation=Mutation)
    get = compat.allowed_operation_types("GET", True)
    assert {t.value for t in get} >= {"query"} and "mutation" not in {t.value for t in get}, \
        changed(5, "OperationType.from_http")
    assert "query" not in {t.value for t in compat.allowed_operation_types("GET", False)}
    assert "subscription" not in {t.value for t in compat.allowed_operation_types("POST", True)}
    cases = [
        (dict(query="mutation { touch }", allowed_operation_types=get), "GET", "mutations"),
        (dict(query="query A { hello }", operation_name="B"), "POST", "B"),
        (dict(query=None), "POST", "No GraphQL query"),
    ]
    for kwargs, method, expected in cases:
        with pytest.raises(Exception) as raised:
            await schema.execute(**kwargs)
        assert isinstance(raised.value, (*compat.REQUEST_ERRORS, compat.MissingQueryError)), \
            changed(5, f"the exception Schema.execute raises for {kwargs}")
        assert expected in compat.refused_request_reason(raised.value, method), \
            changed(5, "as_http_error_reason of strawberry.schema.exceptions")


def test_extension_runner_internals():
    assert params(strawberry.Schema.create_extensions_runner)[1:] == [
        "execution_context", "extensions"], changed(6, "Schema.create_extensions_runner")
    for step in ("operation", "parsing", "validation", "executing"):
        assert callable(getattr(compat.SchemaExtensionsRunner, step, None)), \
            changed(6, f"SchemaExtensionsRunner.{step}")
    source = inspect.getsource(strawberry.Schema)
    for step in ("operation", "parsing", "validation", "executing"):
        assert f"extensions_runner.{step}()" in source, \
            changed(6, f"Schema.execute entering extensions_runner.{step}()")


def _recording_extensions(log: list, fail: str | None = None):
    """Extensions with every kind of hook strawberry accepts, logging each
    entry and exit (and the error a hook saw); `fail`: the hook that raises."""

    def check(name):
        if name == fail:
            raise ValueError(name)

    class Generators(SchemaExtension):
        def on_operation(self):
            log.append("gen op enter")
            try:
                yield
            except Exception as error:
                log.append(f"gen op saw {error!r}")
                raise
            log.append("gen op exit")

        def on_execute(self):
            log.append("gen execute enter")
            check("gen execute")
            yield
            log.append("gen execute exit")

    class AsyncGenerators(SchemaExtension):
        async def on_operation(self):
            log.append("agen op enter")
            yield
            log.append("agen op exit")

        async def on_validate(self):
            log.append("agen validate enter")
            yield
            check("agen validate exit")
            log.append("agen validate exit")

    class Plain(SchemaExtension):
        async def on_parse(self):
            log.append("coroutine parse")

        def on_execute(self):
            log.append("plain execute")

        def get_results(self):
            return {"plain": True}

    return [Generators, AsyncGenerators, Plain]


class _Lean(compat.CachedExtensionHooks, strawberry.Schema):
    pass


@strawberry.type
class Failing:
    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError("boom")


@pytest.mark.parametrize("document, fail", [
    ("{ hello }", None), ("{ nope }", None), ("{ hello", None),
    ("{ hello }", "gen execute"), ("{ hello }", "agen validate exit")])
async def test_lean_steps_run_hooks_as_strawberry_does(document, fail):
    """The same extensions, the same log and answer through strawberry's own
    runner and through the lean steps (item 6): order, errors and results."""
    answers = []
    for schema_class in (strawberry.Schema, _Lean):
        log: list = []
        schema = schema_class(query=Query, extensions=_recording_extensions(log, fail))
        try:
            result = await schema.execute(document)
            outcome = (result.data, [e.message for e in result.errors or ()],
                       result.extensions)
        except Exception as error:  # noqa: BLE001 - compared, not judged
            outcome = repr(error)
        answers.append((log, outcome))
    assert answers[0] == answers[1], changed(6, "the order or errors of extension hooks")


def test_lean_steps_sync_refuse_async_hooks_as_strawberry_does():
    for schema_class in (strawberry.Schema, _Lean):
        schema = schema_class(query=Query, extensions=_recording_extensions([]))
        result = schema.execute_sync("{ hello }")
        assert result.data is None and "failed to complete synchronously" in \
            result.errors[0].message


def test_view_internals():
    assert params(GraphQL.execute_single)[1:] == [
        "request", "request_adapter", "sub_response", "context", "root_value",
        "request_data"], changed(7, "AsyncBaseHTTPView.execute_single")
    assert issubclass(compat.WebSocketAdapter, GraphQL.websocket_adapter_class), \
        changed(8, "GraphQL.websocket_adapter_class")
    assert params(compat.ASGIWebSocketAdapter.__init__)[1:] == ["view", "request", "response"]
    assert params(compat.ASGIWebSocketAdapter.close)[1:] == ["code", "reason"], \
        changed(8, "ASGIWebSocketAdapter.close")
    assert params(compat.ASGIWebSocketAdapter.send_json)[1:] == ["message"], \
        changed(8, "ASGIWebSocketAdapter.send_json")
    assert "self.ws" in inspect.getsource(compat.ASGIWebSocketAdapter), \
        changed(8, "ASGIWebSocketAdapter.ws")


class RecordingView(compat.ViewHooks, GraphQL):
    """strawberry's own HTTP path, reaching execute_request through ViewHooks."""

    calls: list[tuple] = []

    async def execute_request(self, request, sub_response, context, root_value, *, query,
                              variables, operation_name, extensions, method):
        RecordingView.calls.append((query, variables, operation_name, extensions, method))
        try:
            return await self.schema.execute(
                query, variable_values=variables, context_value=context,
                operation_name=operation_name, operation_extensions=extensions,
                allowed_operation_types=compat.allowed_operation_types(
                    method, self.allow_queries_via_get))
        except (compat.MissingQueryError, *compat.REQUEST_ERRORS) as error:
            raise compat.HTTPException(400, compat.refused_request_reason(error, method))


async def test_strawberry_http_path_calls_execute_single():
    view = RecordingView(strawberry.Schema(query=Query, mutation=Mutation))
    RecordingView.calls.clear()
    transport = httpx.ASGITransport(app=view)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/graphql", params={"query": "{ hello }"})
        refused = await client.get("/graphql", params={"query": "mutation { touch }"})
        post = await client.post(
            "/graphql", json={"query": "{ hello }", "extensions": {"e": 1}})
    assert RecordingView.calls[0] == ("{ hello }", None, None, None, "GET"), \
        changed(7, "the arguments strawberry's HTTP path passes to execute_single")
    assert answer.json() == {"data": {"hello": "world"}}
    assert refused.status_code == 400 and "mutations" in refused.text.lower(), \
        changed(5, "HTTPException as strawberry's view answers it")
    assert post.json() == {"data": {"hello": "world"}}
    assert RecordingView.calls[-1][3] == {"e": 1} and RecordingView.calls[-1][4] == "POST"


def test_http_exception_is_strawberrys():
    from strawberry.http import async_base_view
    assert async_base_view.HTTPException is compat.HTTPException, \
        changed(5, "the HTTPException strawberry's view raises")
    error = compat.HTTPException(400, "x")
    assert error.status_code == 400 and error.reason == "x", \
        changed(5, "HTTPException.status_code and .reason")


def test_directive_extension_left_out_while_directives_are_operation_only():
    from graphql import DirectiveLocation
    from strawberry.extensions.directives import DirectivesExtension

    @strawberry.directive(locations=[DirectiveLocation.QUERY], name="opOnly")
    def op_only(level: int) -> None:
        return None

    @strawberry.directive(locations=[DirectiveLocation.FIELD], name="upper")
    def upper(value: DirectiveValue[str]) -> str:
        return value.upper()

    # What item 9 relies on: strawberry appends its per-field hook for any directive.
    plain = strawberry.Schema(query=Query, directives=[op_only])
    assert any(isinstance(e, DirectivesExtension) for e in plain.get_extensions()), \
        changed(9, "Schema.get_extensions (DirectivesExtension)")

    class Mixed(compat.OperationDirectivesOnly, strawberry.Schema):
        pass

    lean = Mixed(query=Query, directives=[op_only])
    assert not any(isinstance(e, DirectivesExtension) for e in lean.get_extensions())
    assert lean.execute_sync("query @opOnly(level: 1) { hello }").data == {"hello": "world"}
    # A directive that can stand on a field keeps the hook, and works.
    field = Mixed(query=Query, directives=[op_only, upper])
    assert any(isinstance(e, DirectivesExtension) for e in field.get_extensions())
    assert field.execute_sync("{ hello @upper }").data == {"hello": "WORLD"}


@strawberry.type
class Basic:
    plain_value: int
    guarded: int = strawberry.field(default=2, permission_classes=[])

    @strawberry.field
    def computed(self) -> int:
        return 3


@strawberry.type
class BasicQuery:
    @strawberry.field
    def basic(self) -> Basic:
        return Basic(plain_value=1)


def test_basic_attribute():
    core = compat.graphql_core_schema(strawberry.Schema(query=BasicQuery))
    fields = core.get_type("Basic").fields
    assert compat.basic_attribute(fields["plainValue"]) == "plain_value", \
        changed(10, "the resolver of a basic field (_is_default, DEFINITION_BACKREF)")
    source = Basic(plain_value=7)
    # What the fast path reads is what strawberry's own resolver returns.
    assert fields["plainValue"].resolve(source, None) == getattr(source, "plain_value") == 7, \
        changed(10, "the resolver of a basic field")
    assert compat.basic_attribute(fields["computed"]) is None, changed(10, "resolver fields")
    assert compat.basic_attribute(fields["guarded"]) in (None, "guarded")


def test_basic_attribute_needs_the_default_resolver():
    config = strawberry.schema.config.StrawberryConfig(
        default_resolver=lambda source, name: getattr(source, name))
    core = compat.graphql_core_schema(strawberry.Schema(query=BasicQuery, config=config))
    assert compat.basic_attribute(core.get_type("Basic").fields["plainValue"]) is None


def test_what_direct_queries_rely_on():
    """Item 11: inventory/web/direct.py answers known queries as
    `Schema.execute` does."""
    import strawberry.schema.schema as schema_module

    assert "is_awaitable=optimized_is_awaitable" in inspect.getsource(schema_module), \
        changed(11, "the is_awaitable Schema.execute gives graphql-core")
    assert compat.is_awaitable.__module__.startswith("strawberry.execution"), \
        changed(11, "strawberry.execution.optimized_is_awaitable")

    seen: dict = {}

    class First(SchemaExtension):
        def on_operation(self):
            yield
            seen["errors"] = self.execution_context.pre_execution_errors

        def get_results(self):
            return {"first": 1}

    class Second(SchemaExtension):
        def on_execute(self):
            self.execution_context.extensions_results["cost"] = 2
            yield

        def get_results(self):
            return {"second": 3}

    @strawberry.type
    class Failing:
        @strawberry.field
        def broken(self) -> str | None:
            raise ValueError("no")

    schema = strawberry.Schema(query=Failing, extensions=[First, Second])
    assert [type(e) for e in compat.schema_extensions(schema)] == [First, Second], \
        changed(11, "Schema.get_extensions")
    import asyncio

    result = asyncio.run(schema.execute("{ broken }"))
    assert list(result.extensions) == ["first", "second", "cost"], \
        changed(11, "the order of a result's extensions (get_extensions_results)")
    assert seen["errors"] == result.errors and result.errors, \
        changed(11, "execution errors as pre_execution_errors before on_operation ends")
