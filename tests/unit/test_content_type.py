"""The cached Content-Type parsing (inventory/graphql_view.py) stays in place and
answers exactly as strawberry's own parser does."""
from __future__ import annotations

import strawberry.http.async_base_view as strawberry_view

from inventory import graphql_view


def test_strawberry_uses_the_cached_parser_with_the_same_answers():
    assert strawberry_view.parse_content_type is graphql_view._cached_parse_content_type
    original = graphql_view._strawberry_parse_content_type
    for header in ("application/json", "application/json; charset=utf-8", "",
                   "multipart/form-data; boundary=abc", "text/plain;q=0.5; x*=utf-8''a%20b"):
        first = strawberry_view.parse_content_type(header)
        assert first == original(header) == strawberry_view.parse_content_type(header)
    mime, params = strawberry_view.parse_content_type("application/json; charset=utf-8")
    params["charset"] = "changed"  # a caller's change does not leak into the cache
    assert strawberry_view.parse_content_type("application/json; charset=utf-8")[1] == {
        "charset": "utf-8"}
