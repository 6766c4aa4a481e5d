"""Calculated query cost and the bounds checked before validation runs.

One walk over a parsed document (fragments expanded once each, memoized) gives:

- the operation to run: a document with several operations needs
  `operationName` (the GraphQL spec's rule; without it nothing runs);
- its size after expanding fragments: field selections, fragment spreads,
  nesting, and an estimate of the work of graphql-core's "overlapping fields
  can be merged" check (for each selection set, the pairs of fields with one
  response name, weighted by the selections below them). Documents over
  these bounds are refused with QUERY_TOO_COMPLEX before graphql-core validates
  them: that check is quadratic in the expanded fields, and ten spreads of a
  fragment that spreads another ten times, six levels deep, are a million;
- its cost, as Shopify's calculated query cost: a scalar or enum field costs 0,
  an object field 1, a connection (a field with a `first` argument) 2; a list
  costs its number of elements times one element: `edges` and `nodes` of a
  connection have `first` elements (the default page when not given, never more
  than the largest page), any other list (`Item.stockLevels`,
  `Reservation.lines`) counts as `list_size` elements. A mutation's root field
  costs 10 more. Introspection fields cost 1 flat (bounded by the size limits).
  Above `maximum` the request is refused with QUERY_TOO_COSTLY and
  `extensions.cost = {requested, maximum}`.

The walk depends on the variables only through `first: $variable`; everything
else is computed once per parsed document and remembered with it
(inventory/graphql_runtime/document_cache.py). docs/security.md describes the model.

After an operation has run, `actual_cost` prices what it returned by the same
rules, with each list counted at the elements it really had (a missing or null
object costs nothing), as Shopify reports `actualQueryCost` beside the
requested cost. A document refused before it ran has an actual cost of 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)

TOO_COSTLY = "QUERY_TOO_COSTLY"
TOO_COMPLEX = "QUERY_TOO_COMPLEX"
BAD_REQUEST = "BAD_REQUEST"


@dataclass(frozen=True)
class CostLimits:
    maximum: int = 10_000  # largest cost of one request
    default_page: int = 50  # elements of a connection without `first`
    max_page: int = 500  # `first` is never more (the resolvers refuse more)
    list_size: int = 10  # elements assumed for a list without `first`
    mutation_cost: int = 10  # added per root mutation field
    max_selections: int = 1_000  # field selections after expanding fragments
    max_spreads: int = 200  # fragment spreads after expansion
    max_overlap: int = 10_000  # estimated work of the overlapping-fields check
    max_nesting: int = 64  # selection sets inside each other (recursion bound)


def error(code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


class _TooDeep(Exception):
    pass


@dataclass
class _Size:
    selections: int = 0
    spreads: int = 0
    # response name -> (fields, their selections), merged through fragments
    groups: dict[str, tuple[int, int]] = field(default_factory=dict)


class _Sizer:
    """Expanded size and overlap-check work; each fragment is walked once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], limits: CostLimits):
        self.fragments = fragments
        self.limits = limits
        self.memo: dict[str, _Size] = {}
        self.active: set[str] = set()
        self.overlap = 0

    def fragment(self, name: str, nesting: int) -> _Size:
        known = self.memo.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return _Size()  # unknown fragment or a cycle: validation reports it
        self.active.add(name)
        try:
            size = self.memo[name] = self.selection_set(definition.selection_set, nesting)
        finally:
            self.active.discard(name)
        return size

    def selection_set(self, selection_set: SelectionSetNode, nesting: int) -> _Size:
        if nesting > self.limits.max_nesting:
            raise _TooDeep
        out = _Size()
        groups = out.groups
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                sub = (self.selection_set(selection.selection_set, nesting + 1)
                       if selection.selection_set else _Size())
                size = 1 + sub.selections
                out.selections += size
                out.spreads += sub.spreads
                name = (selection.alias or selection.name).value
                count, total = groups.get(name, (0, 0))
                groups[name] = (count + 1, total + size)
                continue
            if isinstance(selection, InlineFragmentNode):
                sub = self.selection_set(selection.selection_set, nesting + 1)
            elif isinstance(selection, FragmentSpreadNode):
                sub = self.fragment(selection.name.value, nesting + 1)
                out.spreads += 1
            else:  # pragma: no cover - graphql-core has no other selection
                continue
            out.selections += sub.selections
            out.spreads += sub.spreads
            for name, (count, total) in sub.groups.items():
                have, size = groups.get(name, (0, 0))
                groups[name] = (have + count, size + total)
        # graphql-core compares every pair of fields with one response name, and
        # the selections below each pair: pairs of fields with selections cost
        # about ten times a pair of leaves (measured: docs/security.md).
        self.overlap += sum(count * count + 10 * count * (total - count)
                            for count, total in groups.values())
        return out


class _Coster:
    """The cost walk; fragments are memoized per (name, page size in effect)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 limits: CostLimits, variables: dict[str, Any] | None):
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.variables = variables or {}
        self.memo: dict[tuple[str, int | None], int] = {}
        self.active: set[str] = set()

    def page_size(self, node: FieldNode) -> int:
        value: Any = None
        for argument in node.arguments or ():
            if argument.name.value == "first":
                if isinstance(argument.value, IntValueNode):
                    value = int(argument.value.value)
                elif isinstance(argument.value, VariableNode):
                    value = self.variables.get(argument.value.name.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return self.limits.default_page  # absent or null; a wrong type fails later
        return max(0, min(value, self.limits.max_page))

    def selection_set(self, selection_set: SelectionSetNode, parent: Any,
                      page: int | None) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, kind, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page)
        return total

    def fragment(self, name: str, page: int | None) -> int:
        key = (name, page)
        known = self.memo.get(key)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0
        self.active.add(name)
        try:
            kind = self.schema.get_type(definition.type_condition.name.value)
            cost = self.memo[key] = self.selection_set(definition.selection_set, kind, page)
        finally:
            self.active.discard(name)
        return cost

    def field(self, node: FieldNode, parent: Any, page: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0 if name == "__typename" else 1
        if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0  # unknown field: validation reports it
        kind = definition.type
        if isinstance(kind, GraphQLNonNull):
            kind = kind.of_type
        named = get_named_type(kind)
        one = 1 if is_composite_type(named) else 0
        inner_page = self.page_size(node) if "first" in definition.args else None
        if node.selection_set is not None:
            one += self.selection_set(node.selection_set, named, inner_page)
        if isinstance(kind, GraphQLList):
            return (page if page is not None else self.limits.list_size) * one
        return one + (1 if inner_page is not None else 0)  # a connection costs 2

    def operation(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        cost = self.selection_set(operation.selection_set, root, None)
        if operation.operation is OperationType.MUTATION:
            roots = sum(1 for s in operation.selection_set.selections if isinstance(s, FieldNode))
            cost += self.limits.mutation_cost * roots
        return cost


class _ActualPlan:
    """How to price a result, compiled once per analysis: for each response
    name that can cost something, (name, connection, plan of its selections),
    with None as the plan of an introspection field (1 flat). Fields are
    grouped by response name first (as graphql-core merges them), so a name
    selected in several fragments is priced once, with all its selections;
    scalars, enums and `__typename` cost nothing and are left out. Pricing a
    result then walks only the data (docs/performance.md, item 36)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments

    def collect(self, selection_set: SelectionSetNode, parent: Any,
                into: dict[str, list], seen: set[str]) -> dict[str, list]:
        """response name -> [(field node, its parent type), ...]"""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                into.setdefault(name, []).append((selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                self.collect(selection.selection_set, kind, into, seen)
            elif isinstance(selection, FragmentSpreadNode):
                definition = self.fragments.get(selection.name.value)
                if definition is not None and definition.name.value not in seen:
                    seen.add(definition.name.value)
                    kind = self.schema.get_type(definition.type_condition.name.value)
                    self.collect(definition.selection_set, kind, into, seen)
        return into

    def of(self, nodes: list) -> tuple:
        """The plan of an object selected by these (field node, parent) pairs."""
        grouped: dict[str, list] = {}
        for node, parent in nodes:
            if node.selection_set is not None:
                self.collect(node.selection_set, parent, grouped, set())
        return self.entries(grouped)

    def entries(self, grouped: dict[str, list]) -> tuple:
        out = []
        for response_name, fields in grouped.items():
            node, parent = fields[0]
            name = node.name.value
            if name.startswith("__"):
                if name != "__typename":
                    out.append((response_name, 0, None))
                continue
            if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
                continue
            definition = parent.fields.get(name)
            if definition is None or not is_composite_type(get_named_type(definition.type)):
                continue
            inner = [(n, get_named_type(p.fields[name].type)) for n, p in fields
                     if isinstance(p, (GraphQLObjectType, GraphQLInterfaceType))
                     and name in p.fields]
            connection = 1 if "first" in definition.args else 0
            out.append((response_name, connection, self.of(inner)))
        return tuple(out)


def _price(plan: tuple, data: dict) -> int:
    total = 0
    for name, connection, inner in plan:
        value = data.get(name)
        if value is None:
            continue
        if inner is None:
            total += 1
        elif isinstance(value, dict):
            total += 1 + connection + (_price(inner, value) if inner else 0)
        elif isinstance(value, list):
            total += _price_list(value, connection, inner)
    return total


def _price_list(values: list, connection: int, plan: tuple) -> int:
    """A list's elements, each priced as one object (a page's edges, an
    item's levels: hundreds per answer, so a loop, not a call per element)."""
    total = 0
    for element in values:
        if isinstance(element, dict):
            total += 1 + connection + (_price(plan, element) if plan else 0)
        elif isinstance(element, list):
            total += _price_list(element, connection, plan)
    return total


def _page_variables(document: DocumentNode) -> frozenset[str]:
    """Names of the variables given as a `first` argument anywhere."""
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value == "first" and isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)
            walk(getattr(selection, "selection_set", None))

    for definition in document.definitions:
        walk(getattr(definition, "selection_set", None))
    return frozenset(names)


class Analysis:
    """What one parsed document (and operation name) needs checked per request."""

    def __init__(self, document: DocumentNode, operation_name: str | None,
                 schema: GraphQLSchema, limits: CostLimits):
        self.limits = limits
        self.schema = schema
        self.error: GraphQLError | None = None
        self._actual_plan: tuple | None = None
        self.operation: OperationDefinitionNode | None = None
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            if len(operations) > 1:
                self.error = error(BAD_REQUEST, "the document has several operations: name "
                                                "the one to run in operationName")
                return
            self.operation = operations[0] if operations else None
        else:
            self.operation = next((o for o in operations
                                   if o.name and o.name.value == operation_name), None)
        if self.operation is None:
            return  # strawberry answers: no operation to run
        sizer = _Sizer(self.fragments, limits)
        try:
            size = sizer.selection_set(self.operation.selection_set, 0)
        except _TooDeep:
            self.error = error(TOO_COMPLEX, "the document is nested too deeply",
                               maximum=limits.max_nesting)
            return
        for what, value, maximum in (
                ("fieldSelections", size.selections, limits.max_selections),
                ("fragmentSpreads", size.spreads, limits.max_spreads),
                ("overlapChecks", sizer.overlap, limits.max_overlap)):
            if value > maximum:
                self.error = error(
                    TOO_COMPLEX, f"the document is too complex: {what} after expanding "
                                 f"fragments exceed {maximum}", limit=what, maximum=maximum)
                return
        self.page_variables = _page_variables(document)
        self.static_cost = None if self.page_variables else self._cost(None)
        self._costs: dict[tuple, int] = {}

    def _cost(self, variables: dict[str, Any] | None) -> int:
        assert self.operation is not None
        return _Coster(self.schema, self.fragments, self.limits, variables).operation(
            self.operation)

    def cost(self, variables: dict[str, Any] | None) -> int:
        """The requested cost with these variables (remembered per page size)."""
        if self.static_cost is not None:
            return self.static_cost
        values = variables or {}
        key = tuple(_hashable(values.get(name)) for name in sorted(self.page_variables))
        known = self._costs.get(key)
        if known is None:
            known = self._cost(variables)
            if len(self._costs) < 64:
                self._costs[key] = known
        return known

    def actual_cost(self, data: dict | None) -> int:
        """What the operation's result costs (see the module's docstring)."""
        if self.operation is None or not isinstance(data, dict):
            return 0
        if self._actual_plan is None:
            root = self.schema.get_root_type(self.operation.operation)
            planner = _ActualPlan(self.schema, self.fragments)
            self._actual_plan = planner.entries(
                planner.collect(self.operation.selection_set, root, {}, set()))
        cost = _price(self._actual_plan, data)
        if self.operation.operation is OperationType.MUTATION:
            roots = sum(1 for s in self.operation.selection_set.selections
                        if isinstance(s, FieldNode))
            cost += self.limits.mutation_cost * roots
        return cost

    def refusal(self, cost: int) -> GraphQLError | None:
        if cost > self.limits.maximum:
            return error(TOO_COSTLY, f"the query costs {cost}, more than the maximum of "
                                     f"{self.limits.maximum}: ask for fewer elements "
                                     "(`first`) or fewer nested lists",
                         cost={"requested": cost, "maximum": self.limits.maximum})
        return None


def record_cost(execution_context, cost: int, maximum: int) -> None:
    """Puts the requested cost in the response's `extensions.cost` (strawberry
    adds `extensions_results` to every result)."""
    execution_context.extensions_results["cost"] = {"requested": cost, "maximum": maximum}


def record_actual(execution_context, actual: int, maximum: int) -> None:
    """Adds the actual cost (0 for a document refused before it ran) to
    `extensions.cost`, with the maximum if no requested cost was recorded."""
    cost = execution_context.extensions_results.setdefault("cost", {"maximum": maximum})
    cost["actual"] = actual


class CostMeasure:
    """The measure the document checks apply right after parsing
    (inventory/graphql_runtime/documents.py): the analysis is remembered per
    parsed document, the refusal is decided per request."""

    def __init__(self, limits: CostLimits):
        self.limits = limits

    def analyse(self, document: DocumentNode, operation_name: str | None,
                schema: GraphQLSchema) -> Analysis:
        return Analysis(document, operation_name, schema, self.limits)

    def refusal(self, analysis: Analysis, execution_context) -> GraphQLError | None:
        """The error that refuses this request, else None; the cost goes into
        the response's `extensions.cost`."""
        if analysis.error is not None:
            return analysis.error
        if analysis.operation is None:
            return None
        cost = analysis.cost(execution_context.variables)
        record_cost(execution_context, cost, self.limits.maximum)
        return analysis.refusal(cost)

    def too_deep(self) -> GraphQLError:
        """A document nested past the parser's recursion limit."""
        return error(TOO_COMPLEX, "the document is nested too deeply")

    def refused(self, execution_context) -> None:
        """A request refused before it ran cost nothing (`actual` 0)."""
        record_actual(execution_context, 0, self.limits.maximum)

    def ran(self, analysis: Analysis, execution_context) -> None:
        """The actual cost of what the operation returned."""
        data = getattr(execution_context.result, "data", None)
        if isinstance(data, dict):
            record_actual(execution_context, analysis.actual_cost(data), self.limits.maximum)


def charge(execution_context) -> int:
    """What a read is charged: its cost, at least 1. A document refused before
    running (over the maximum cost, too complex, unreadable) is charged 1 like
    any small request: its refusal is cheap, and a mistake should not empty
    the caller's budget."""
    cost = execution_context.extensions_results.get("cost")
    if not cost or cost["requested"] > cost["maximum"]:
        return 1
    return max(1, cost["requested"])


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (int, type(None))) else repr(type(value))
