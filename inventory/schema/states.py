"""GraphQL fields for the quantity states, from the domain's list
(domain/quantities.py): a state added there appears on every type decorated
here, camel-cased (`on_hand` -> `onHand`, `onHandDelta`)."""
from __future__ import annotations

from typing import Callable, Mapping

import strawberry

from ..domain.quantities import STATES, Quantities
from ..domain.quantities import StockState as DomainStockState
from .scalars import Quantity

StockState = strawberry.enum(
    DomainStockState, description="Where units of on hand are: AVAILABLE (sellable) or set "
                                   "aside in a named state.")


def with_states(after: str, suffixes: tuple[str, ...] = ("",), describe: bool = False
                ) -> Callable[[type], type]:
    """Class decorator, applied before `strawberry.type`: a Quantity field per
    state and suffix (`on_hand`, `on_hand_delta`), placed after the field
    `after` (so the published order stays stable)."""

    def decorate(cls: type) -> type:
        annotations: dict[str, object] = {}
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            annotations[name] = annotation
            if name != after:
                continue
            for suffix in suffixes:
                for state in STATES:
                    annotations[state.name + suffix] = Quantity
                    if describe:
                        setattr(cls, state.name + suffix,
                                strawberry.field(description=state.description))
        assert len(annotations) > len(cls.__dict__.get("__annotations__", {})), after
        cls.__annotations__ = annotations
        return cls

    return decorate


def state_values(quantities: Quantities, suffix: str = "") -> Mapping[str, int]:
    """The keyword arguments of the fields `with_states` added, for one suffix."""
    if not suffix:
        return quantities.as_dict()
    return {name + suffix: value for name, value in quantities.items()}
