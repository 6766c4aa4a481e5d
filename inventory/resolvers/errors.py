"""Errors for queries (mutations return typed results instead)."""
from __future__ import annotations

from graphql import GraphQLError

from ..domain.errors import ErrorCode


def invalid_argument(argument: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT", "field": argument})


def kit_has_no_stock(sku: str) -> GraphQLError:
    """A stock level asked of a kit: it has none (its components hold its stock)."""
    return GraphQLError(
        f"{sku!r} is a kit: it has no stock level of its own. What it has available is "
        "what its components make, in whole kits: read Item.availableByLocation (per "
        "location), Item.totalAvailable or Item.availability(channelCode)",
        extensions={"code": ErrorCode.KIT_HAS_NO_STOCK.value, "field": "sku"})
