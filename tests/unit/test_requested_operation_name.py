"""The document checks learn the operationName a request gave (None when it
gave none) through the schema's public entry points (graphql_runtime/quiet.py),
whichever one runs the operation."""
from __future__ import annotations

import strawberry
from strawberry.extensions import SchemaExtension

from inventory.graphql_runtime.quiet import QuietSchema, requested_operation_name


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


async def test_every_entry_point_passes_the_operation_name_it_was_given():
    seen: list[object] = []

    class Record(SchemaExtension):
        def on_parse(self):
            yield
            seen.append(requested_operation_name.get())

    schema = QuietSchema(query=Query, extensions=[Record])
    two = "query A { hello } query B { hello }"
    assert (await schema.execute("query A { hello }")).data == {"hello": "world"}
    assert (await schema.execute(two, operation_name="B")).data == {"hello": "world"}
    assert schema.execute_sync(two, operation_name="A").data == {"hello": "world"}
    results = [r async for r in await schema.stream(two, operation_name="B")]
    assert results[0].data == {"hello": "world"}
    results = [r async for r in await schema.stream("{ hello }")]
    assert seen == [None, "B", "A", "B", None]
