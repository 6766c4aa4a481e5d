"""Query-depth and alias limits whose validation rules are created once.

strawberry's QueryDepthLimiter and MaxAliasesLimiter build a new rule class in
every instance; with one instance per request (the factory pattern the schema
uses) the rule set differs on every request, so the ValidationCache, keyed by
(schema, document, rules), never hits and every request is validated afresh:
about half of a simple query's CPU time (see docs/performance.md). These build
each rule once per limit, so repeat documents skip validation.
"""
from __future__ import annotations

from functools import cache

from strawberry.extensions import AddValidationRules
from strawberry.extensions import max_aliases, query_depth_limiter


@cache
def _depth_rule(max_depth: int):
    return query_depth_limiter.create_validator(max_depth, None, None)


@cache
def _alias_rule(max_alias_count: int):
    return max_aliases.create_validator(max_alias_count)


class QueryDepthLimiter(AddValidationRules):
    def __init__(self, max_depth: int) -> None:
        super().__init__([_depth_rule(max_depth)])


class MaxAliasesLimiter(AddValidationRules):
    def __init__(self, max_alias_count: int) -> None:
        super().__init__([_alias_rule(max_alias_count)])
