"""The quantity states of a stock level: the one place that names them, says
how `available` follows from them and what each movement kind may do to each.

Everything else derives from `STATES`: the level and ledger columns
(`<state>`, `<state>_delta`, `<state>_after`), the guards of the ledger
statements, the audit, change events, and the GraphQL fields (`onHand`,
`onHandDelta`, ...). Adding a state is an entry here, its effects below, and a
migration adding its columns.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping


@dataclass(frozen=True)
class State:
    name: str  # the column (snake_case); GraphQL camel-cases it
    description: str
    # How the state counts in `available`: +1 adds (on hand), -1 is held out of
    # what is on hand (reserved, damaged, ...), 0 is not part of it (incoming).
    in_available: int
    # moveStock moves units between available and the movable states, and
    # adjustStock can take units out of one (StockState names them).
    movable: bool = False
    # A level column the state may not exceed (a CHECK and every statement's guard).
    limit: str | None = None


STATES: tuple[State, ...] = (
    State("on_hand", "Units at this location, whatever else they are set aside for.", +1),
    State("reserved", "Held for reservations (orders not yet shipped).", -1),
    State("incoming", "On its way here, not yet on hand: what open inbound shipments and "
                      "transfers in transit still expect.", 0),
    State("damaged", "Part of onHand, set aside as damaged: not sellable.", -1, movable=True),
    State("quality_control", "Part of onHand, held for quality control: not sellable.", -1,
          movable=True),
    State("safety_stock", "Part of onHand, kept back as safety stock: not sellable.", -1,
          movable=True),
    State("backordered", "Reserved beyond what is here, up to backorderLimit: filled in "
                         "arrival order as stock arrives.", 0, limit="backorder_limit"),
)
NAMES: tuple[str, ...] = tuple(s.name for s in STATES)


def camel(name: str) -> str:
    """The GraphQL spelling of a state (or of `<state>_delta`): onHand, onHandDelta."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_INDEX = {name: i for i, name in enumerate(NAMES)}


class Quantities(Mapping[str, int]):
    """One whole number per state (0 when not given), immutable; read as
    `q.on_hand` or `q["on_hand"]`."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, int] | None = None, /, **named: int):
        given = {**(values or {}), **named}
        unknown = set(given) - _INDEX.keys()
        if unknown:
            raise ValueError(f"not quantity states: {sorted(unknown)}")
        object.__setattr__(self, "_values", tuple(int(given.get(n, 0)) for n in NAMES))

    @classmethod
    def of_values(cls, values: Iterable[int]) -> "Quantities":
        """From one whole number per state, in the order of NAMES (a row's
        columns selected in that order): no checks, for hot reads."""
        made = object.__new__(cls)
        object.__setattr__(made, "_values", tuple(values))
        return made

    @classmethod
    def of_row(cls, row: Any, suffix: str = "") -> "Quantities":
        """From a result row by column name: `<state><suffix>` (suffix "_delta",
        "_after", or none for a level)."""
        mapping = row._mapping if hasattr(row, "_mapping") else row
        return cls({n: mapping[n + suffix] for n in NAMES})

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):  # e.g. _values before __init__ (copy, pickle)
            raise AttributeError(name)
        try:
            return self._values[_INDEX[name]]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Quantities are immutable")

    def __reduce__(self):
        return (Quantities, (dict(self),))

    def __getitem__(self, name: str) -> int:
        return self._values[_INDEX[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantities):
            return self._values == other._values
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return "Quantities(" + ", ".join(f"{n}={v}" for n, v in self.items()) + ")"

    def __add__(self, other: Mapping[str, int]) -> "Quantities":
        return Quantities({n: self[n] + other.get(n, 0) for n in NAMES})

    def __sub__(self, other: Mapping[str, int]) -> "Quantities":
        return Quantities({n: self[n] - other.get(n, 0) for n in NAMES})

    @property
    def available(self) -> int:
        return _available_of_values(self._values)

    def as_dict(self) -> dict[str, int]:
        """{state: value}, in the order of NAMES."""
        return dict(zip(NAMES, self._values))

    def negative(self) -> list[str]:
        """The states below zero, and "available" when it is."""
        bad = [n for n in NAMES if self[n] < 0]
        return bad + (["available"] if self.available < 0 else [])


# (sign, state) of each state counted in available, positive first.
AVAILABLE_TERMS: tuple[tuple[int, str], ...] = tuple(sorted(
    ((s.in_available, s.name) for s in STATES if s.in_available), key=lambda t: -t[0]))


# The formula over values in the order of NAMES, by position (read for every
# level of every page): the states added, then those subtracted.
_ADDED = tuple(i for i, s in enumerate(STATES) if s.in_available > 0)
_SUBTRACTED = tuple(i for i, s in enumerate(STATES) if s.in_available < 0)


def _available_of_values(values: tuple[int, ...]) -> int:
    total = 0
    for i in _ADDED:
        total += values[i]
    for i in _SUBTRACTED:
        total -= values[i]
    return total


def available(values: Mapping[str, Any]) -> Any:
    """The formula, over ints or SQL column expressions alike (`values[state]`)."""
    (_, first), *rest = AVAILABLE_TERMS
    total = values[first]
    for sign, name in rest:
        total = total + values[name] if sign > 0 else total - values[name]
    return total


def available_text(column: str = "{}") -> str:
    """The formula as SQL text, each state through `column` ("m.{}_after")."""
    (_, first), *rest = AVAILABLE_TERMS
    return " ".join([column.format(first)] + [
        f"{'+' if sign > 0 else '-'} {column.format(name)}" for sign, name in rest])


AVAILABLE_DESCRIPTION = " ".join(  # for GraphQL: "onHand - reserved"
    (f"{'+' if sign > 0 else '-'} " if i else "") + camel(name)
    for i, (sign, name) in enumerate(AVAILABLE_TERMS))


# Where moveStock takes units from and puts them: the sellable rest of on hand
# (AVAILABLE) or a movable state, by its upper-case name.
AVAILABLE = "AVAILABLE"
StockState = enum.Enum("StockState", [(AVAILABLE, AVAILABLE)] + [
    (s.name.upper(), s.name.upper()) for s in STATES if s.movable], type=str)


def state_column(stock_state: str) -> str | None:
    """The state a StockState names (None for AVAILABLE, the rest of on hand)."""
    value = StockState(stock_state).value
    return None if value == AVAILABLE else value.lower()


def move_delta(from_state: str, to_state: str, quantity: int) -> dict[str, int]:
    """moveStock's change: on hand stays, units leave one state for another."""
    delta: dict[str, int] = {}
    if (source := state_column(from_state)) is not None:
        delta[source] = -quantity
    if (target := state_column(to_state)) is not None:
        delta[target] = delta.get(target, 0) + quantity
    return delta


def adjust_delta(stock_state: str, quantity: int) -> dict[str, int]:
    """adjustStock's change: on hand by `quantity`, and the named state with it."""
    delta = {"on_hand": quantity}
    if (state := state_column(stock_state)) is not None:
        delta[state] = quantity
    return delta


class MovementKind(str, enum.Enum):
    RECEIVE = "RECEIVE"
    ADJUST = "ADJUST"
    SET = "SET"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"
    COMMIT = "COMMIT"
    EXPIRE = "EXPIRE"
    # Inbound shipments (service/inbound.py).
    INBOUND = "INBOUND"  # expected: incoming up
    INBOUND_RECEIVE = "INBOUND_RECEIVE"  # arrived: on hand up, incoming down by what was expected
    INBOUND_CANCEL = "INBOUND_CANCEL"  # will not come: incoming down
    # Transfers in two steps (service/transfers.py).
    TRANSFER_SHIP = "TRANSFER_SHIP"  # at the source: on hand down
    TRANSFER_INCOMING = "TRANSFER_INCOMING"  # at the destination: incoming up
    TRANSFER_RECEIVE = "TRANSFER_RECEIVE"  # landed: incoming down, on hand up
    TRANSFER_LOSS = "TRANSFER_LOSS"  # lost in transit: incoming down
    TRANSFER_CANCEL = "TRANSFER_CANCEL"  # cancelled: incoming down at the destination
    TRANSFER_RETURN = "TRANSFER_RETURN"  # cancelled: back on hand at the source
    MOVE = "MOVE"  # between available and a movable state; on hand unchanged
    BACKORDER_FILLED = "BACKORDER_FILLED"  # arrived stock fills a backordered line


class Effect(str, enum.Enum):
    """What a movement of a kind may do to one state (as an SQL condition on the
    delta; the audit checks every ledger row against it)."""

    NONE = "= 0"
    UP = "> 0"
    DOWN = "< 0"
    UP_OR_NONE = ">= 0"
    DOWN_OR_NONE = "<= 0"
    CHANGES = "<> 0"
    ANY = ""

    def allows(self, delta: int) -> bool:
        return {"= 0": delta == 0, "> 0": delta > 0, "< 0": delta < 0, ">= 0": delta >= 0,
                "<= 0": delta <= 0, "<> 0": delta != 0, "": True}[self.value]


@dataclass(frozen=True)
class KindRule:
    effects: Mapping[str, Effect]  # states not named: Effect.NONE
    # Pairs of states whose deltas are equal (a shipment lowers both on hand and
    # reserved by what it ships), or opposite (a filled backorder is reserved).
    equal: tuple[tuple[str, str], ...] = ()
    opposite: tuple[tuple[str, str], ...] = ()

    def effect(self, state: str) -> Effect:
        return self.effects.get(state, Effect.NONE)

    def allows(self, delta: Mapping[str, int]) -> bool:
        return (all(self.effect(n).allows(delta.get(n, 0)) for n in NAMES)
                and all(delta.get(a, 0) == delta.get(b, 0) for a, b in self.equal)
                and all(delta.get(a, 0) == -delta.get(b, 0) for a, b in self.opposite))


K, E = MovementKind, Effect
_MOVABLE = {s.name: E.ANY for s in STATES if s.movable}
KIND_RULES: dict[MovementKind, KindRule] = {
    K.RECEIVE: KindRule({"on_hand": E.UP_OR_NONE}),  # seeding records 0 too
    K.ADJUST: KindRule({"on_hand": E.CHANGES, **_MOVABLE}),  # a named state with on hand
    K.SET: KindRule({"on_hand": E.ANY}),
    K.TRANSFER_OUT: KindRule({"on_hand": E.DOWN}),
    K.TRANSFER_IN: KindRule({"on_hand": E.UP}),
    # A reservation holds what is available and backorders the rest (either may be 0).
    K.RESERVE: KindRule({"reserved": E.UP_OR_NONE, "backordered": E.UP_OR_NONE}),
    K.RELEASE: KindRule({"reserved": E.DOWN_OR_NONE, "backordered": E.DOWN_OR_NONE}),
    K.EXPIRE: KindRule({"reserved": E.DOWN_OR_NONE, "backordered": E.DOWN_OR_NONE}),
    K.COMMIT: KindRule({"on_hand": E.DOWN, "reserved": E.DOWN}, equal=(("on_hand", "reserved"),)),
    K.INBOUND: KindRule({"incoming": E.UP}),
    # An over-receipt adds more on hand than it takes out of incoming.
    K.INBOUND_RECEIVE: KindRule({"on_hand": E.UP, "incoming": E.DOWN_OR_NONE}),
    K.INBOUND_CANCEL: KindRule({"incoming": E.DOWN}),
    K.TRANSFER_SHIP: KindRule({"on_hand": E.DOWN}),
    K.TRANSFER_INCOMING: KindRule({"incoming": E.UP}),
    K.TRANSFER_RECEIVE: KindRule({"on_hand": E.UP, "incoming": E.DOWN}),
    K.TRANSFER_LOSS: KindRule({"incoming": E.DOWN}),
    K.TRANSFER_CANCEL: KindRule({"incoming": E.DOWN}),
    K.TRANSFER_RETURN: KindRule({"on_hand": E.UP}),
    K.MOVE: KindRule(_MOVABLE),
    K.BACKORDER_FILLED: KindRule({"reserved": E.UP, "backordered": E.DOWN},
                                 opposite=(("reserved", "backordered"),)),
}
del K, E
assert set(KIND_RULES) == set(MovementKind), "every movement kind needs its rule"
