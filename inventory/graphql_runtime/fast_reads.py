"""Queries answered without graphql-core's per-field machinery, when the
answer is certain to be the same (docs/performance.md, item 39).

graphql-core completes every field of an answer on its own: resolve info,
argument values, strawberry's resolver wrapper, a path, and for every
asynchronous field a coroutine of its own awaited on its own. A 50-item page
with four levels each is about 1,300 fields, and that machinery was most of
its CPU. The executor of the schema (execution.py) asks this module for a
plan of the operation instead, compiled once per operation (and per value of
the variables that @skip and @include read), and runs it:

- root fields through their real resolvers, with graphql-core's own resolve
  info and argument values, so what they read and refuse is unchanged;
- fields without a resolver (strawberry's basic fields) by reading the
  attribute, as strawberry's default resolver does;
- fields with a resolver only when the product registered a batch for them
  (`@batch("Type.field")`): one call for all the objects at that place in the
  answer, returning their values in order (a list, or an awaitable of one),
  so a page's 50 items cost one await per field, not 50;
- values completed as graphql-core completes them: `coerce_output_value` of
  scalars and enums, lists, `is_type_of` of object types, `__typename`;
- or, for a field whose whole answer the product can build for the selection
  below it (`@answers("Type.field")`: a page's levels with their numbers and
  location code), that answer as it is, with no object per value to complete.

What a plan does not cover, it does not try: an operation that is not a
query, an abstract type (interface, union), introspection, a non-root field
with arguments, a resolver field without a batch, or any field resolver hook
(a strawberry extension with `resolve`) makes the operation run the normal
way. And at run time, anything else than a complete answer (a resolver or a
batch raising, a null where the schema says non-null, a scalar that does not
serialize, an object of the wrong type) abandons the fast answer and runs the
operation again the normal way, which then reports it with graphql-core's
errors, paths and null propagation. Queries read only, so running one again
changes nothing. tests/test_fast_reads.py sends documents through both paths
and compares the answers.
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, Union

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_argument_values,
    get_named_type,
    is_leaf_type,
    is_object_type,
)
from graphql.pyutils import Path
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_string

from .document_cache import PerDocument
from .strawberry_compat import basic_attribute

# fn(context, sources) -> their values, in order (or an awaitable of them)
Batch = Callable[[Any, list], Union[list, Awaitable[list]]]
_BATCHES: dict[str, Batch] = {}


def batch(coordinate: str) -> Callable[[Batch], Batch]:
    """Registers how the fast path resolves `Type.field` (GraphQL names) for
    many objects at once: `fn(context, sources)` returns the value of the
    field for each source, in order. It must answer what the field's resolver
    answers for each source; the differential test checks it."""
    def register(fn: Batch) -> Batch:
        _BATCHES[coordinate] = fn
        return fn
    return register


# fn(selection) -> a Batch of the field's complete answers, or None (see `answers`)
Answering = Callable[[tuple], Union[Batch, None]]
_ANSWERS: dict[str, Answering] = {}


def answers(coordinate: str) -> Callable[[Answering], Answering]:
    """Registers how the fast path answers `Type.field` whole, for the
    selection below it: `fn(selection)`, called once per plan, returns a
    batch whose values are the field's complete answers, exactly as the
    response carries them (dicts, lists, strings and numbers: what the field's
    batch and the completion of its objects would make), or None when it does
    not answer that selection (the field's @batch then resolves it).
    `selection` is a tuple of (response name, field name, its own selection
    or None for a leaf), in the answer's order, after fragments, @skip and
    @include; None instead when it has a field with arguments or an abstract
    type. The differential test checks that both paths answer alike."""
    def register(fn: Answering) -> Answering:
        _ANSWERS[coordinate] = fn
        return fn
    return register


class Unsupported(Exception):
    """The operation is not one a plan answers: the normal path runs it."""


class Abandoned(Exception):
    """The fast answer would not be complete: the normal path runs it."""


# Completers: how a field's value is completed for its GraphQL type.
_NON_NULL, _LIST, _LEAF, _OBJECT = range(4)
# Entries of an object plan.
_TYPENAME, _ATTRIBUTE, _BATCH, _ANSWER = range(4)


class _ObjectPlan:
    __slots__ = ("entries", "is_type_of")

    def __init__(self, object_type: GraphQLObjectType, entries: list[tuple]):
        # (response name, kind, attribute | batch | type name, completer, the
        # type of values answered as they are or None: see _unchanged_type)
        self.entries = entries
        self.is_type_of = object_type.is_type_of


class Plan:
    def __init__(self, root: GraphQLObjectType, roots: list[tuple]):
        self.root = root
        # (response name, field definition or None for __typename, field nodes, completer)
        self.roots = roots


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 directive_values: dict[str, Any]):
        self.schema = schema
        self.fragments = fragments
        self.directive_values = directive_values  # the variables @skip and @include read

    def operation(self, operation: OperationDefinitionNode) -> Plan:
        if operation.operation is not OperationType.QUERY:
            raise Unsupported("not a query")
        root = self.schema.query_type
        if root is None:
            raise Unsupported("no query type")
        roots = []
        for name, nodes in self.collect(root, [operation.selection_set]).items():
            field_name = nodes[0].name.value
            if field_name == "__typename":
                roots.append((name, None, nodes, None))
                continue
            definition = root.fields.get(field_name)
            if definition is None or definition.resolve is None:
                raise Unsupported(f"root field {field_name}")  # introspection, unknown
            roots.append((name, definition, nodes, self.completer(definition.type, nodes)))
        if not any(definition is not None and inspect.iscoroutinefunction(definition.resolve)
                   for _, definition, _, _ in roots):
            # The normal path may then answer without awaiting (execute_sync):
            # the plan, which always awaits, must not change that.
            raise Unsupported("no asynchronous root field")
        return Plan(root, roots)

    def completer(self, kind: Any, nodes: list[FieldNode]) -> tuple:
        if isinstance(kind, GraphQLNonNull):
            return (_NON_NULL, self.completer(kind.of_type, nodes))
        if isinstance(kind, GraphQLList):
            return (_LIST, self.completer(kind.of_type, nodes))
        if is_leaf_type(kind):
            return (_LEAF, kind)
        if is_object_type(kind):
            return (_OBJECT, self.object(kind, nodes))
        raise Unsupported(f"abstract type {kind}")

    def object(self, object_type: GraphQLObjectType, nodes: list[FieldNode]) -> _ObjectPlan:
        selections = [node.selection_set for node in nodes if node.selection_set is not None]
        entries = []
        for name, field_nodes in self.collect(object_type, selections).items():
            field_name = field_nodes[0].name.value
            if field_name == "__typename":
                entries.append((name, _TYPENAME, object_type.name, None, None))
                continue
            definition = object_type.fields.get(field_name)
            if definition is None or definition.args or field_nodes[0].arguments:
                raise Unsupported(f"{object_type.name}.{field_name}")
            completer = self.completer(definition.type, field_nodes)
            attribute = basic_attribute(definition)
            if attribute is not None:
                entries.append((name, _ATTRIBUTE, attribute, completer,
                                _unchanged_type(completer)))
                continue
            coordinate = f"{object_type.name}.{field_name}"
            answering = _ANSWERS.get(coordinate)
            if answering is not None:
                whole = answering(self.selection(definition.type, field_nodes))
                if whole is not None:
                    entries.append((name, _ANSWER, whole, None, None))
                    continue
            found = _BATCHES.get(coordinate)
            if found is None:
                raise Unsupported(f"{object_type.name}.{field_name} has no batch")
            entries.append((name, _BATCH, found, completer, _unchanged_type(completer)))
        return _ObjectPlan(object_type, entries)

    def selection(self, kind: Any, nodes: list[FieldNode]) -> tuple | None:
        """What `answers` functions are given: the fields selected below these
        nodes of this type, or None (see `answers`)."""
        named = get_named_type(kind)
        if not is_object_type(named):
            return None
        selected = []
        sets = [node.selection_set for node in nodes if node.selection_set is not None]
        for name, field_nodes in self.collect(named, sets).items():
            field_name = field_nodes[0].name.value
            if field_name == "__typename":
                selected.append((name, field_name, None))
                continue
            definition = named.fields.get(field_name)
            if definition is None or any(node.arguments for node in field_nodes):
                return None
            below = None
            if not is_leaf_type(get_named_type(definition.type)):
                below = self.selection(definition.type, field_nodes)
                if below is None:
                    return None
            selected.append((name, field_name, below))
        return tuple(selected)

    def collect(self, object_type: GraphQLObjectType,
                selection_sets: list[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        """The spec's CollectFields, over the selection sets of merged fields."""
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(object_type, selection_set, grouped, set())
        return grouped

    def _collect(self, object_type: GraphQLObjectType, selection_set: SelectionSetNode,
                 grouped: dict[str, list[FieldNode]], visited: set[str]) -> None:
        for selection in selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                grouped.setdefault((selection.alias or selection.name).value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self.applies(condition.name.value, object_type):
                    self._collect(object_type, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.fragments.get(name)
                if fragment is None or getattr(fragment, "variable_definitions", None):
                    raise Unsupported(f"fragment {name}")
                if self.applies(fragment.type_condition.name.value, object_type):
                    self._collect(object_type, fragment.selection_set, grouped, visited)
            else:
                raise Unsupported(f"selection {selection.kind}")

    def applies(self, condition: str, object_type: GraphQLObjectType) -> bool:
        kind = self.schema.get_type(condition)
        if kind is None:
            raise Unsupported(f"type {condition}")
        if kind is object_type:
            return True
        return not is_object_type(kind) and self.schema.is_sub_type(kind, object_type)

    def included(self, node: Any) -> bool:
        """@skip and @include, as graphql-core applies them."""
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            value = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            if isinstance(value, VariableNode):
                flag = self.directive_values.get(value.name.value)
            elif isinstance(value, BooleanValueNode):
                flag = value.value
            else:
                raise Unsupported(f"@{name} without a Boolean")  # validation refuses it
            if (name == "skip" and flag is True) or (name == "include" and flag is False):
                return False
        return True


def _directive_variables(operation: OperationDefinitionNode,
                         fragments: Any) -> tuple[str, ...]:
    """Names of the variables that @skip and @include read anywhere in the
    document: a plan holds for one set of their values."""
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set is not None else ():
            for directive in selection.directives or ():
                if directive.name.value in ("skip", "include"):
                    for argument in directive.arguments or ():
                        if isinstance(argument.value, VariableNode):
                            names.add(argument.value.name.value)
            walk(getattr(selection, "selection_set", None))

    for definition in (operation, *fragments):
        walk(definition.selection_set)
    return tuple(sorted(names))


# Both filled through `get`, per operation node.
_variables_of = PerDocument(_directive_variables)
_plans = PerDocument(lambda operation, *extra: None)


def plan_for(executor: Any) -> Plan | None:
    """The plan of the executor's operation, or None: run it the normal way.
    Remembered per operation (the parser cache keeps one document per text),
    schema and values of the variables of @skip and @include."""
    if executor.abort_signal is not None:
        return None
    manager = executor.middleware_manager
    if manager is not None and getattr(manager, "middlewares", ()):
        return None  # a field resolver hook: every field must go through it
    operation = executor.operation
    coerced = executor.variable_values.coerced
    fragments = executor.fragment_definitions
    names = _variables_of.get(operation, (), lambda: _directive_variables(
        operation, fragments.values()))
    values = tuple(_hashable(coerced.get(name)) for name in names)

    def compile_plan() -> Plan | None:
        compiler = _Compiler(executor.schema, fragments, dict(zip(names, values)))
        try:
            return compiler.operation(operation)
        except Unsupported:
            return None

    return _plans.get(operation, (id(executor.schema), values), compile_plan)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (bool, type(None))) else repr(value)


async def run(plan: Plan, executor: Any) -> dict[str, Any]:
    """The answer's data; raises Abandoned (or what a resolver raised) when
    the normal path must answer instead."""
    root = plan.root
    data: dict[str, Any] = {}
    values: dict[str, Any] = {}
    awaited: list[str] = []
    for name, definition, nodes, _ in plan.roots:
        if definition is None:
            continue
        info = executor.build_resolve_info(definition, nodes, root, Path(None, name, root.name))
        args = (get_argument_values(definition, nodes[0], executor.variable_values)
                if definition.args or nodes[0].arguments else {})
        value = definition.resolve(executor.root_value, info, **args)
        if inspect.isawaitable(value):
            awaited.append(name)
        values[name] = value
    if len(awaited) == 1:
        values[awaited[0]] = await values[awaited[0]]
    elif awaited:
        results = await asyncio.gather(*(values[name] for name in awaited))
        values.update(zip(awaited, results))
    context = executor.context_value
    for name, definition, _, completer in plan.roots:
        if definition is None:
            data[name] = root.name
            continue
        pending: list = []
        data[name] = _complete(completer, values[name], pending)
        if pending:
            await _fill(_object_plan(completer), pending, context)
    return data


def _object_plan(completer: tuple) -> _ObjectPlan:
    while completer[0] != _OBJECT:
        completer = completer[1]
    return completer[1]


async def _fill(plan: _ObjectPlan, pending: list[tuple[Any, dict]], context: Any) -> None:
    """Fills the answer of every (source, answer) pair, field by field."""
    sources = [source for source, _ in pending]
    answers = [answer for _, answer in pending]
    is_type_of = plan.is_type_of
    if is_type_of is not None:
        for source in sources:
            if is_type_of(source, None) is not True:
                raise Abandoned("is_type_of")
    for name, kind, how, completer, same in plan.entries:
        if kind == _TYPENAME:
            for answer in answers:
                answer[name] = how
            continue
        if kind == _ATTRIBUTE:
            if same is not None:
                # A leaf its scalar answers as it is (most of a page's fields):
                # read and placed directly; anything else is completed as usual.
                for answer, source in zip(answers, sources):
                    value = getattr(source, how)
                    answer[name] = value if type(value) is same else \
                        _complete(completer, value, None)
                continue
            values = [getattr(source, how) for source in sources]
        else:
            values = how(context, sources)
            if inspect.isawaitable(values):
                values = await values
            if len(values) != len(sources):
                raise Abandoned(f"batch for {name} answered {len(values)} of {len(sources)}")
            if kind == _ANSWER:
                for answer, value in zip(answers, values):
                    answer[name] = value
                continue
            if same is not None:
                for answer, value in zip(answers, values):
                    answer[name] = value if type(value) is same else \
                        _complete(completer, value, None)
                continue
        below: list = []
        for answer, value in zip(answers, values):
            answer[name] = _complete(completer, value, below)
        if below:
            await _fill(_object_plan(completer), below, context)


# Result coercions that answer a value of one exact Python type as it is
# (graphql-core's String, ID and Boolean; a scalar serialized by `int`).
_UNCHANGED = {serialize_string: str, serialize_id: str, serialize_boolean: bool, int: int}


def _unchanged_type(completer: tuple) -> type | None:
    """The Python type whose values the (non-null) leaf completer returns
    unchanged, or None."""
    if completer[0] == _NON_NULL:
        completer = completer[1]
    if completer[0] != _LEAF:
        return None
    try:
        return _UNCHANGED.get(completer[1].coerce_output_value)
    except TypeError:  # an unhashable coercer
        return None


def _complete(completer: tuple, value: Any, pending: list) -> Any:
    kind = completer[0]
    if kind == _NON_NULL:
        if value is None:
            raise Abandoned("null in a non-null field")
        completer = completer[1]
        kind = completer[0]
    elif value is None:
        return None
    if kind == _OBJECT:
        answer: dict[str, Any] = {}
        pending.append((value, answer))
        return answer
    if kind == _LEAF:
        coerced = completer[1].coerce_output_value(value)
        if coerced is None or coerced is Undefined:
            raise Abandoned("a leaf value did not serialize")
        return coerced
    if not isinstance(value, (list, tuple)):
        raise Abandoned("a list field's value is not a list")
    inner = completer[1]
    if inner[0] == _NON_NULL and inner[1][0] == _OBJECT:
        # A list of objects (a page's edges, an item's levels), inline.
        answers = []
        for element in value:
            if element is None:
                raise Abandoned("null in a non-null field")
            answer = {}
            pending.append((element, answer))
            answers.append(answer)
        return answers
    return [_complete(inner, element, pending) for element in value]
