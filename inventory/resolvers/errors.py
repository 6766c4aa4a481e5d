"""Errors for queries (mutations return typed results instead)."""
from __future__ import annotations

from graphql import GraphQLError


def invalid_argument(argument: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT", "field": argument})
