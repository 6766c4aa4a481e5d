"""Kits (bundles): an item made of plain items, with no stock of its own.
What a kit has available is decided by its components (pure Python)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping
from uuid import UUID

from .errors import UserError, invalid


@dataclass(frozen=True)
class Part:
    """One component of a kit: `quantity` units of item `item_id` per kit."""

    item_id: UUID
    sku: str
    quantity: int


def kits_available(parts: Iterable[Part], available: Mapping[UUID, int]) -> int:
    """Whole kits that `available` ({component item id: units}) makes: the
    minimum over the parts of floor(available / units per kit); 0 without parts."""
    return min((max(available.get(p.item_id, 0), 0) // p.quantity for p in parts), default=0)


def kits_by_location(parts: tuple[Part, ...],
                     available: Mapping[tuple[UUID, UUID], int]) -> dict[UUID, int]:
    """Whole kits per location, from {(component item id, location id): units};
    only locations where every component has a level."""
    locations: set[UUID] | None = None
    for p in parts:
        at = {loc for item, loc in available if item == p.item_id}
        locations = at if locations is None else locations & at
    return {loc: kits_available(parts, {p.item_id: available[(p.item_id, loc)] for p in parts})
            for loc in sorted(locations or ())}


def takes_no_backorders() -> UserError:
    """A kit takes no backorders: what it has is what its components have
    available (service/allocating.py), so a limit on it would promise nothing."""
    return invalid("backorderLimit", "a kit takes no backorders: its backorderLimit stays 0")
