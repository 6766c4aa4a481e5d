"""The published schema: the SDL clients code against, and the compatibility
rule between the committed copy (`schema.graphql` at the repository root) and
the schema the code builds.

The rule (README, "Schema changes and deprecation"): additive changes are free;
a breaking change, as graphql-core's `find_breaking_changes` sees it, is allowed
only when it removes what the published schema deprecated with a removal date
that has passed (`@deprecated(reason: "Use X instead. Removal after
2027-03-01.")`): a field, an argument, an enum value or an input field, and the
types that only they reached. Anything else (a changed type, a new required
argument, a removal without a due deprecation) is unintended.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import graphql
from graphql import (
    BreakingChange,
    DangerousChange,
    DocumentNode,
    GraphQLSchema,
    build_ast_schema,
    find_breaking_changes,
    find_dangerous_changes,
    get_named_type,
    is_input_object_type,
    is_interface_type,
    is_object_type,
    is_union_type,
    parse,
)
from graphql.language import (
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    TypeDefinitionNode,
)

SCHEMA_FILE = "schema.graphql"
# What to run (at the repository root) when the schema changed on purpose.
REGENERATE = f".venv/bin/inventory schema --output {SCHEMA_FILE}"
REMOVAL_DATE = re.compile(r"[Rr]emoval after (\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Comparison:
    unintended: list[BreakingChange]  # breaking, and not a due removal
    removals: list[BreakingChange]  # breaking, but deprecated earlier and due
    dangerous: list[DangerousChange]  # may change what existing clients see
    safe: list  # additions, descriptions (listed with graphql-core 3.3 and later)

    def report(self) -> str:
        lines = [f"  breaking (not allowed): {c.description}" for c in self.unintended]
        lines += [f"  removal after its deprecation period: {c.description}"
                  for c in self.removals]
        lines += [f"  dangerous (allowed, check clients): {c.description}"
                  for c in self.dangerous]
        lines += [f"  safe: {c.description}" for c in self.safe]
        return "\n".join(lines)


def compare(published: str, current: str, today: dt.date | None = None) -> Comparison:
    """How the `current` SDL differs from the `published` one, under the rule."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    old = build_ast_schema(parse(published))
    new = build_ast_schema(parse(current))
    breaking = find_breaking_changes(old, new)
    allowed_old = build_ast_schema(_without_due_removals(parse(published), old, today))
    unintended = find_breaking_changes(allowed_old, new)
    unintended_text = {c.description for c in unintended}
    return Comparison(
        unintended=unintended,
        removals=[c for c in breaking if c.description not in unintended_text],
        dangerous=find_dangerous_changes(old, new),
        safe=_safe_changes(old, new),
    )


def _safe_changes(old: GraphQLSchema, new: GraphQLSchema) -> list:
    find_all = getattr(graphql, "find_schema_changes", None)  # new in graphql-core 3.3
    safe_type = getattr(graphql, "SafeChange", None)
    if find_all is None or safe_type is None:
        return []
    return [c for c in find_all(old, new) if isinstance(c, safe_type)]


def due(reason: str | None, today: dt.date) -> bool:
    """A deprecation whose stated removal date has passed."""
    match = REMOVAL_DATE.search(reason or "")
    return bool(match) and dt.date.fromisoformat(match.group(1)) < today


def _deprecation(node) -> str | None:
    for directive in node.directives or ():
        if directive.name.value == "deprecated":
            for argument in directive.arguments or ():
                if argument.name.value == "reason":
                    return getattr(argument.value, "value", None)
            return "No longer supported"
    return None


def _without_due_removals(document: DocumentNode, schema: GraphQLSchema,
                          today: dt.date) -> DocumentNode:
    """The published document minus what may now be removed: elements deprecated
    with a passed removal date, then the types only they reached."""

    def keep(node) -> bool:
        return not due(_deprecation(node), today)

    definitions = []
    for definition in document.definitions:
        if isinstance(definition, (ObjectTypeDefinitionNode, InterfaceTypeDefinitionNode)):
            fields = []
            for field in definition.fields or ():
                if keep(field):
                    arguments = tuple(a for a in field.arguments or () if keep(a))
                    fields.append(FieldDefinitionNode(
                        **{**_attrs(field), "arguments": arguments}))
            definition = type(definition)(**{**_attrs(definition), "fields": tuple(fields)})
        elif isinstance(definition, InputObjectTypeDefinitionNode):
            definition = type(definition)(**{**_attrs(definition), "fields": tuple(
                f for f in definition.fields or () if keep(f))})
        elif isinstance(definition, EnumTypeDefinitionNode):
            definition = type(definition)(**{**_attrs(definition), "values": tuple(
                v for v in definition.values or () if keep(v))})
        definitions.append(definition)
    pruned = DocumentNode(definitions=tuple(definitions))
    orphans = _reachable(schema) - _reachable(build_ast_schema(pruned))
    return DocumentNode(definitions=tuple(
        d for d in definitions
        if not (isinstance(d, TypeDefinitionNode) and d.name.value in orphans)))


def _attrs(node) -> dict:
    return {key: getattr(node, key) for key in node.keys if key != "loc"}


def _reachable(schema: GraphQLSchema) -> set[str]:
    """Names of the types a client can reach from the roots and the directives."""
    pending = [t for t in (schema.query_type, schema.mutation_type,
                           schema.subscription_type) if t is not None]
    pending += [get_named_type(a.type) for d in schema.directives for a in d.args.values()]
    seen: set[str] = set()
    while pending:
        named = get_named_type(pending.pop())
        if named.name in seen:
            continue
        seen.add(named.name)
        if is_object_type(named) or is_interface_type(named):
            pending += list(named.interfaces)
            for field in named.fields.values():
                pending.append(field.type)
                pending += [a.type for a in field.args.values()]
            if is_interface_type(named):
                pending += list(schema.get_implementations(named).objects)
        elif is_union_type(named):
            pending += list(named.types)
        elif is_input_object_type(named):
            pending += [f.type for f in named.fields.values()]
    return seen


def read_published(root: Path) -> str:
    return (root / SCHEMA_FILE).read_text()
