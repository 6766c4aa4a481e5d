"""`insert()`: PostgreSQL's INSERT ... ON CONFLICT (which CockroachDB accepts
too), as a statement SQLAlchemy can cache.

SQLAlchemy 2.0's `postgresql.insert()` declares `inherit_cache = False` and its
ON CONFLICT clauses declare no cache-key attributes, so a statement using them
has no cache key and is compiled again on every execution (the engine log says
"[no key]"), however often the same statement object is reused. The classes
below are the same constructs, compiled the same way, with their state named
for the cache key: the target (constraint name or index elements, index WHERE)
and, for DO UPDATE, the SET list and WHERE. tests/test_statement_cache.py
checks that the ledger's upserts are served from the cache.
"""
from __future__ import annotations

from sqlalchemy.dialects.postgresql import dml
from sqlalchemy.sql.visitors import InternalTraversal

_TARGET = [
    ("constraint_target", InternalTraversal.dp_string),
    ("inferred_target_elements", InternalTraversal.dp_multi_list),  # columns or names
    ("inferred_target_whereclause", InternalTraversal.dp_clauseelement),
]


class _DoNothing(dml.OnConflictDoNothing):
    _traverse_internals = _TARGET


class _DoUpdate(dml.OnConflictDoUpdate):
    _traverse_internals = _TARGET + [
        ("update_values_to_set", InternalTraversal.dp_dml_ordered_values),
        ("update_whereclause", InternalTraversal.dp_clauseelement),
    ]


class Insert(dml.Insert):
    """`postgresql.Insert` whose cache key covers its ON CONFLICT clause."""

    inherit_cache = True

    def on_conflict_do_update(self, constraint=None, index_elements=None, index_where=None,
                              set_=None, where=None) -> "Insert":
        stmt = super().on_conflict_do_update(constraint, index_elements, index_where,
                                             set_, where)
        stmt._post_values_clause = _DoUpdate(constraint, index_elements, index_where,
                                             set_, where)
        return stmt

    def on_conflict_do_nothing(self, constraint=None, index_elements=None,
                               index_where=None) -> "Insert":
        stmt = super().on_conflict_do_nothing(constraint, index_elements, index_where)
        stmt._post_values_clause = _DoNothing(constraint, index_elements, index_where)
        return stmt


def insert(table) -> Insert:
    """INSERT INTO `table`, with the ON CONFLICT methods of `postgresql.insert`."""
    return Insert(table)
