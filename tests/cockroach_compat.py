"""Rules for SQL that CockroachDB refuses or runs differently, checked on the
statement's parse tree (PostgreSQL's own parser, through pglast).

`violations(sql)` names every rule a statement breaks; `migration_violations`
checks one migration revision's statements together. Used by
tests/test_cockroach_compat.py over every statement the service sends.
"""
from __future__ import annotations

import json
import re
from typing import Iterator

from pglast.parser import ParseError, parse_sql_json

# CockroachDB built-ins the service may call, each checked by name in
# CockroachDB's generated function reference (the source of the docs' "Functions
# and Operators" page), in github.com/cockroachdb/cockroach:
#   docs/generated/sql/functions.md at 0e747e4ac3630a9b41f2eccb7ace0e2d17258ae6,
#   docs/generated/sql/aggregates.md at 02287942713e0837692f394aef38f3f3401425df,
#   docs/generated/sql/window_functions.md at 808ed23ca44563b7e9f9b8664c9b7ab090807a72.
# The service's statements call count, gen_random_uuid, generate_series, lag, max,
# min, now and sum; CockroachDB's own (dialect.CRDB_NOW, the staleness read)
# cluster_logical_timestamp, extract and follower_read_timestamp. COALESCE,
# GREATEST, LEAST, NULLIF and CURRENT_TIMESTAMP are syntax, not function calls, in
# the parse tree, and need no entry. A statement calling anything else fails the
# check: look the function up in those files before adding it here.
COCKROACH_FUNCTIONS = frozenset({
    # functions.md
    "abs", "ceil", "clock_timestamp", "cluster_logical_timestamp", "current_database",
    "date_trunc", "extract", "floor", "follower_read_timestamp", "gen_random_uuid",
    "generate_series", "json_build_array", "json_build_object", "jsonb_build_array",
    "now", "unnest", "upper",
    # aggregates.md
    "array_agg", "bool_and", "bool_or", "count", "jsonb_agg", "max", "min", "sum",
    # window_functions.md
    "lag",
})
ADVISORY = re.compile(r"^pg_(try_)?advisory")
DDL_NODES = frozenset({
    "CreateStmt", "AlterTableStmt", "IndexStmt", "DropStmt", "RenameStmt",
    "CreateSeqStmt", "AlterSeqStmt", "ViewStmt", "CreateFunctionStmt", "CommentStmt",
    "CreateSchemaStmt", "CreateEnumStmt", "AlterEnumStmt", "CreateTableAsStmt",
})
DML_NODES = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def as_parseable(sql: str) -> str:
    """psycopg's %(name)s placeholders as $n, which the parser reads."""
    names: dict[str, int] = {}
    return PLACEHOLDER.sub(lambda m: f"${names.setdefault(m.group(1), len(names) + 1)}",
                           sql).replace("%%", "%")


def _walk(node) -> Iterator[tuple[str, dict]]:
    """(node type, fields) for every node of a pglast JSON parse tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and key[:1].isupper():
                yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _func_name(fields: dict) -> str:
    return ".".join(part["String"]["sval"] for part in fields.get("funcname", ()))


def parse(sql: str) -> list[dict]:
    return [raw["stmt"] for raw in json.loads(parse_sql_json(as_parseable(sql)))["stmts"]]


def violations(sql: str) -> list[str]:
    """The rules `sql` breaks (empty: none)."""
    try:
        statements = parse(sql)
    except ParseError as error:
        return [f"does not parse: {error}"]
    found: list[str] = []
    for stmt in statements:
        targets: list[str] = []
        for kind, fields in _walk(stmt):
            if kind in DML_NODES and "relation" in fields:
                targets.append(fields["relation"]["relname"])
            elif kind in ("ListenStmt", "NotifyStmt", "UnlistenStmt"):
                found.append(f"LISTEN/NOTIFY ({kind}): CockroachDB has no notifications")
            elif kind == "FuncCall":
                name = _func_name(fields).removeprefix("pg_catalog.")
                if any("NamedArgExpr" in arg for arg in fields.get("args", ())):
                    found.append(f"named-argument call of {name}(): CockroachDB refuses it")
                if name == "pg_notify":
                    found.append("pg_notify(): CockroachDB has no notifications")
                elif ADVISORY.match(name):
                    found.append(f"advisory lock {name}(): CockroachDB has none")
                elif name not in COCKROACH_FUNCTIONS:
                    found.append(f"function {name}() is not in the kept list of CockroachDB "
                                 "built-ins (tests/cockroach_compat.py)")
        for table in sorted({t for t in targets if targets.count(t) > 1}):
            found.append(f"table {table} modified twice in one statement: CockroachDB "
                         "refuses it")
    return found


def statement_kinds(sql: str) -> set[str]:
    """'ddl' and/or 'dml' (writes other than Alembic's own version table)."""
    kinds = set()
    for stmt in parse(sql):
        (kind, fields), = stmt.items()
        if kind in DDL_NODES:
            kinds.add("ddl")
        elif kind in DML_NODES and fields["relation"]["relname"] != "alembic_version":
            kinds.add("dml")
    return kinds


def migration_violations(revision: str, statements: list[str]) -> list[str]:
    """One revision's statements: DDL and data changes must not share it (on
    CockroachDB DDL is not transactional; a backfill goes in its own revision)."""
    kinds = set().union(*(statement_kinds(s) for s in statements)) if statements else set()
    if kinds == {"ddl", "dml"}:
        return [f"revision {revision} mixes DDL with DML in one migration transaction"]
    return []
