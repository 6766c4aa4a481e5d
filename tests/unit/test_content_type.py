"""The Content-Type parsing the GraphQL view uses (inventory/web/view.py
caches it) answers exactly as strawberry's own parser does, and one caller's
change to an answer does not reach the next caller."""
from __future__ import annotations

import strawberry.http.async_base_view as strawberry_view
from strawberry.http.parse_content_type import parse_content_type as strawberry_parser

import inventory.web.view  # noqa: F401 (the view's module sets up its parser)


def test_content_types_parse_as_strawberry_parses_them_and_answers_are_not_shared():
    for header in ("application/json", "application/json; charset=utf-8", "",
                   "multipart/form-data; boundary=abc", "text/plain;q=0.5; x*=utf-8''a%20b"):
        first = strawberry_view.parse_content_type(header)
        assert first == strawberry_parser(header) == strawberry_view.parse_content_type(header)
    mime, params = strawberry_view.parse_content_type("application/json; charset=utf-8")
    params["charset"] = "changed"
    assert strawberry_view.parse_content_type("application/json; charset=utf-8")[1] == {
        "charset": "utf-8"}
