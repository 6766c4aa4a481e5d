from __future__ import annotations

from typing import NewType

import strawberry


def _parse_quantity(value: object) -> int:
    # bool is an int subclass in Python; a quantity of `true` is a client bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Quantity must be a whole number, got {value!r}")
    return value


Quantity = strawberry.scalar(
    NewType("Quantity", int),
    name="Quantity",
    description=(
        "A whole number of units, 64-bit (GraphQL Int is 32-bit). Serialised as a JSON "
        "number; limits per operation are enforced with INVALID_INPUT errors."
    ),
    serialize=int,
    parse_value=_parse_quantity,
)
