"""Allocation: which of a channel's locations a line given by channel takes
its units from (pure Python; the caller has locked the levels it read)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Hashable, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)


class AllocationStrategy(str, enum.Enum):
    PRIORITY = "PRIORITY"  # the channel's location order
    MOST_AVAILABLE = "MOST_AVAILABLE"  # the location with the most available first


@dataclass(frozen=True)
class Allocation:
    strategy: AllocationStrategy = AllocationStrategy.PRIORITY
    allow_split: bool = False  # may one line take units from several locations


def allocate(quantity: int, candidates: Sequence[tuple[K, int]], allocation: Allocation
             ) -> list[tuple[K, int]] | None:
    """(location, units) taken for `quantity` from `candidates`, (location,
    available) in the channel's order; None when they cannot give it. Without
    splitting, the first location in strategy order that has it all; with
    splitting, locations in strategy order, each giving what it has, until the
    quantity is met. MOST_AVAILABLE breaks ties by the channel's order."""
    order = list(candidates)
    if allocation.strategy is AllocationStrategy.MOST_AVAILABLE:
        order.sort(key=lambda c: -c[1])  # stable: ties keep the channel's order
    if not allocation.allow_split:
        chosen = next((where for where, available in order if available >= quantity), None)
        return None if chosen is None else [(chosen, quantity)]
    taken, wanted = [], quantity
    for where, available in order:
        if wanted == 0:
            break
        units = min(available, wanted)
        if units > 0:
            taken.append((where, units))
            wanted -= units
    return taken if wanted == 0 else None


def could_give(candidates: Sequence[tuple[K, int]], allocation: Allocation) -> int:
    """The most one line could have had: the sum when splitting, else the
    largest single location (what a shortage reports as available)."""
    available = [max(a, 0) for _, a in candidates]
    if allocation.allow_split:
        return sum(available)
    return max(available, default=0)


def allocate_backordering(quantity: int, candidates: Sequence[tuple[K, int, int]],
                          allocation: Allocation) -> list[tuple[K, int, int]] | None:
    """(location, units, of them backordered) for `quantity` from `candidates`,
    (location, available, backorderable) in the channel's order; None when even
    backorders cannot give it. What `allocate` gives from available stock comes
    first; only when that falls short is the rest backordered:
    - without splitting, at the first location in the channel's order whose
      available plus backorderable covers the quantity (it takes what is
      available there and backorders the rest there);
    - with splitting, every location gives what it has (as `allocate`) and the
      rest is backordered at the first location in the channel's order whose
      backorderable covers it.
    Either way a backorder lands where nothing is left available, so a later
    reservation never takes stock ahead of one that waits."""
    plain = allocate(quantity, [(where, available) for where, available, _ in candidates],
                     allocation)
    if plain is not None:
        return [(where, units, 0) for where, units in plain]
    if not allocation.allow_split:
        for where, available, room in candidates:
            have = max(available, 0)
            if have + room >= quantity:
                return [(where, quantity, quantity - have)]
        return None
    parts = {where: max(available, 0) for where, available, _ in candidates if available > 0}
    rest = quantity - sum(parts.values())
    landing = next((where for where, _, room in candidates if room >= rest), None)
    if landing is None:
        return None
    order = [where for where, _, _ in candidates]
    if allocation.strategy is AllocationStrategy.MOST_AVAILABLE:
        order.sort(key=lambda w: -parts.get(w, 0))  # as `allocate` took them
    return [(where, parts.get(where, 0) + (rest if where == landing else 0),
             rest if where == landing else 0)
            for where in order if where in parts or where == landing]


def could_backorder(candidates: Sequence[tuple[K, int, int]]) -> int:
    """The most one location could backorder (what a shortage reports as
    backorderable)."""
    return max((max(room, 0) for _, _, room in candidates), default=0)
