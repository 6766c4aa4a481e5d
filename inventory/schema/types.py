"""Object types. Related objects load through the request's DataLoaders
(`info.context.loaders`), so a page costs the same few statements at any size."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Callable, Generic, Mapping, Optional, TypeVar
from uuid import UUID

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from ..domain import ids
from ..domain.channels import (
    ChannelAvailability as ChannelAvailabilityView,
    ChannelView,
    availability_in,
)
from ..domain.models import (
    ItemView,
    LocationView,
    MovementKind as DomainMovementKind,
    MovementView,
    ReservationStatus as DomainReservationStatus,
    ReservationView,
    StockLevelView,
    TransferView,
)
from ..domain.kits import kits_by_location
from ..domain.quantities import AVAILABLE_DESCRIPTION, NAMES, camel
from ..domain.reasons import Reason as DomainReason
from ..graphql_runtime.fast_reads import answers, batch
from .errors import ReservationStatus
from .scalars import Quantity
from .states import state_values, with_states

MovementKind = strawberry.enum(DomainMovementKind)
Reason = strawberry.enum(DomainReason, description="Why stock changed (beside the free-text "
                                                   "`reason`).")
# The movement kinds of inbound shipments; the other kinds with a shipment are transfers'.
_INBOUND_KINDS = {DomainMovementKind.INBOUND, DomainMovementKind.INBOUND_RECEIVE,
                  DomainMovementKind.INBOUND_CANCEL}


@strawberry.interface(description="An object with a global id, fetchable with `node(id)`.")
class Node:
    id: strawberry.ID


_ARCHIVED = "Archived: takes no new stock (ARCHIVED), keeps its levels and history."


def _item_id(item: "Item") -> strawberry.ID:
    return strawberry.ID(ids.encode("Item", item.item_id))


def _location_id(location: "Location") -> strawberry.ID:
    return strawberry.ID(ids.encode("Location", location.location_id))


def _level_id(level: "StockLevel") -> strawberry.ID:
    return strawberry.ID(ids.encode("StockLevel", level.item_id, level.location_id))


for _coordinate, _encode in (("Item.id", _item_id), ("Location.id", _location_id),
                             ("StockLevel.id", _level_id)):
    batch(_coordinate)(lambda context, objects, encode=_encode: [encode(o) for o in objects])


@strawberry.type
class Location(Node):
    code: str
    name: str
    created_at: datetime
    location_id: strawberry.Private[UUID]
    archived_at: Optional[datetime] = strawberry.field(default=None, description=_ARCHIVED)

    @classmethod
    def of(cls, v: LocationView) -> "Location":
        return cls(code=v.code, name=v.name, created_at=v.created_at, location_id=v.id,
                   archived_at=v.archived_at)

    # Ids are encoded when asked for (a page lists hundreds of objects).
    @strawberry.field
    def id(self) -> strawberry.ID:
        return _location_id(self)

    @strawberry.field(description=_ARCHIVED)
    def archived(self) -> bool:
        return self.archived_at is not None


@strawberry.type
@with_states(after="location_code", describe=True)
class StockLevel(Node):
    sku: str
    location_code: str
    available: Quantity = strawberry.field(description=AVAILABLE_DESCRIPTION)
    version: Quantity = strawberry.field(description="Increments on every change of this level.")
    updated_at: Optional[datetime]
    item_id: strawberry.Private[UUID]
    location_id: strawberry.Private[UUID]
    backorder_limit: Quantity = strawberry.field(
        default=0, description="How many units reservations may take beyond available here "
                               "(the item's backorderLimit unless setBackorderLimit set one).")
    # Known already when listed under an item: then `item` and `location` resolve
    # synchronously, with no awaitable per level (a page has hundreds of levels).
    item_view: strawberry.Private[Optional[ItemView]] = None
    location_view: strawberry.Private[Optional[LocationView]] = None

    @classmethod
    def of(cls, v: StockLevelView, item: ItemView | None = None,
           location: LocationView | None = None) -> "StockLevel":
        quantities = v.quantities
        return _make_level(
            state_values(quantities), sku=v.sku, location_code=v.location_code,
            available=quantities.available, backorder_limit=v.backorder_limit,
            version=v.version, updated_at=v.updated_at,
            item_id=v.item_id, location_id=v.location_id, item_view=item, location_view=location,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return _level_id(self)

    @strawberry.field
    def item(self, info: Info) -> "Item":
        if self.item_view is not None:
            return Item.of(self.item_view)
        return _load_item(info, self.item_id)  # an awaitable; graphql-core awaits it

    @strawberry.field
    def location(self, info: Info) -> Location:
        if self.location_view is not None:
            return Location.of(self.location_view)
        return _load_location(info, self.location_id)

    @strawberry.field(description="When the earliest open inbound shipment or transfer with "
                                  "units still on their way here is expected (null: none).")
    async def next_expected_at(self, info: Info) -> Optional[datetime]:
        return await info.context.loaders.next_expected_at.load(
            (self.item_id, self.location_id))


def _maker(cls: type) -> Callable[..., object]:
    """`cls(**values, **more)` for objects a page makes by the hundred: the same object
    (the defaults of the fields the dataclass `__init__` takes, then the
    values) without that `__init__`'s work per field. Every field without a
    default must be given, as to `cls(...)` (tests/test_fast_reads.py compares
    both)."""
    defaults = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: a default factory")
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
    if getattr(cls, "__post_init__", None) is not None:
        raise TypeError(f"{cls.__name__} has __post_init__")

    def make(values: Mapping[str, object], /, **more: object) -> object:
        made = object.__new__(cls)
        made.__dict__ = {**defaults, **values, **more}
        return made

    return make


_make_level = _maker(StockLevel)


async def _load_item(info: Info, item_id: UUID) -> "Item":
    return Item.of(await info.context.loaders.item.load(item_id))


async def _load_location(info: Info, location_id: UUID) -> Location:
    return Location.of(await info.context.loaders.location.load(location_id))


# Batches: how the fast path for reads (graphql_runtime/fast_reads.py) resolves
# a field for every object at one place of an answer at once; each answers
# what the field's resolver answers (tests/test_fast_reads.py).

def _known_or_loaded(known: list, loaders, loader, of, keys: list):
    """`of(view)` for each view known already, else loaded by key by the
    loader (one batch); an awaitable only when something must be loaded."""
    missing = list({key: None for view, key in zip(known, keys) if view is None})
    # One object per view (the views live while this runs, so their ids are
    # theirs): levels of one page share their locations.
    made: dict[int, object] = {}

    def one(view):
        found = made.get(id(view))
        if found is None:
            found = made[id(view)] = of(view)
        return found

    if not missing:
        return [one(view) for view in known]

    async def load() -> list:
        loaded = dict(zip(missing, await loaders.many(loader, missing)))
        return [one(view if view is not None else loaded[key]) for view, key in zip(known, keys)]

    return load()


@batch("StockLevel.item")
def _items_of_levels(context, levels: list[StockLevel]):
    return _known_or_loaded([level.item_view for level in levels], context.loaders,
                            context.loaders.item,
                            Item.of, [level.item_id for level in levels])


@batch("StockLevel.location")
def _locations_of_levels(context, levels: list[StockLevel]):
    return _known_or_loaded([level.location_view for level in levels], context.loaders,
                            context.loaders.location, Location.of,
                            [level.location_id for level in levels])


@batch("StockLevel.nextExpectedAt")
def _next_expected_of_levels(context, levels: list[StockLevel]):
    loaders = context.loaders
    return loaders.many(loaders.next_expected_at,
                        [(level.item_id, level.location_id) for level in levels])


@batch("Location.archived")
@batch("Item.archived")
def _archived(context, objects: list) -> list[bool]:
    return [o.archived_at is not None for o in objects]


@strawberry.type
class Item(Node):
    sku: str
    name: str
    reorder_point: Quantity
    created_at: datetime
    item_id: strawberry.Private[UUID]
    view: strawberry.Private[ItemView]
    version: Quantity = strawberry.field(
        default=0, description="Increments on every edit; `updateItem` compares it.")
    archived_at: Optional[datetime] = strawberry.field(default=None, description=_ARCHIVED)
    backorder_limit: Quantity = strawberry.field(
        default=0, description="Default for its levels: how many units reservations may take "
                               "beyond available (0: none).")

    @classmethod
    def of(cls, v: ItemView) -> "Item":
        return cls(sku=v.sku, name=v.name, reorder_point=v.reorder_point,
                   created_at=v.created_at, item_id=v.id, view=v, version=v.version,
                   archived_at=v.archived_at, backorder_limit=v.backorder_limit)

    @strawberry.field
    def id(self) -> strawberry.ID:
        return _item_id(self)

    @strawberry.field(description=_ARCHIVED)
    def archived(self) -> bool:
        return self.archived_at is not None

    async def _levels(self, info: Info) -> list[StockLevelView]:
        return await info.context.loaders.levels_of_item.load(self.item_id)

    def _stock_levels(self, levels: list[StockLevelView],
                      locations: list[LocationView]) -> list[StockLevel]:
        return [StockLevel.of(v, self.view, where) for v, where in zip(levels, locations)]

    @strawberry.field(description="One level per location that ever held this item.")
    async def stock_levels(self, info: Info) -> list[StockLevel]:
        levels = await self._levels(info)
        # One batched lookup for the locations of every item on the page.
        locations = await info.context.loaders.location.load_many([v.location_id for v in levels])
        return self._stock_levels(levels, locations)

    @strawberry.field(description="Made of `components`, with no stock of its own: its "
                                  "availability is what its components make.")
    def is_kit(self) -> bool:
        return self.view.is_kit

    @strawberry.field(description="A kit's components, in the order given (empty for a plain "
                                  "item).")
    async def components(self, info: Info) -> list["KitComponent"]:
        if not self.view.is_kit:
            return []
        parts = await info.context.loaders.kit_parts.load(self.item_id)
        return [KitComponent(sku=p.sku, quantity=p.quantity, item_id=p.item_id) for p in parts]

    async def _available_at(self, context) -> dict[UUID, tuple[str, int]]:
        """{location id: (code, available)}: a plain item's levels; for a kit,
        the whole kits its components make at each location where all of them
        have a level (domain/kits.py). `context`: the request's."""
        if not self.view.is_kit:
            levels = await context.loaders.levels_of_item.load(self.item_id)
            return {v.location_id: (v.location_code, v.available) for v in levels}
        parts = await context.loaders.kit_parts.load(self.item_id)
        per_part = await context.loaders.levels_of_item.load_many([p.item_id for p in parts])
        codes = {v.location_id: v.location_code for levels in per_part for v in levels}
        made = kits_by_location(parts, {(v.item_id, v.location_id): v.available
                                        for levels in per_part for v in levels})
        return {location: (codes[location], kits) for location, kits in made.items()}

    @strawberry.field(description="Available per location: a plain item's levels; for a kit, "
                                  "the whole kits its components make there (the minimum over "
                                  "components of floor(available / quantity per kit)).")
    async def available_by_location(self, info: Info) -> list["LocationAvailability"]:
        return [LocationAvailability(location_code=code, available=available, location_id=loc)
                for loc, (code, available) in sorted(
                    (await self._available_at(info.context)).items(), key=lambda kv: kv[1][0])]

    @strawberry.field
    async def total_on_hand(self, info: Info) -> Quantity:
        return _total_on_hand(self, await self._levels(info))

    @strawberry.field
    async def total_reserved(self, info: Info) -> Quantity:
        return _total_reserved(self, await self._levels(info))

    @strawberry.field(description="Summed over locations (for a kit: whole kits per location).")
    async def total_available(self, info: Info) -> Quantity:
        return _kits_total(await self._available_at(info.context))

    @strawberry.field(description="totalAvailable <= reorderPoint")
    async def low_stock(self, info: Info) -> bool:
        return _kits_total(await self._available_at(info.context)) <= self.reorder_point

    @strawberry.field(description="What this item has available to a sales channel: the sum "
                                  "over the channel's locations, and per location in the "
                                  "channel's order (for a kit: whole kits per location). An "
                                  "unknown channel is a NOT_FOUND error.")
    async def availability(self, info: Info, channel_code: str) -> "ChannelAvailability":
        channel = await info.context.loaders.channel.load(channel_code)
        if channel is None:
            raise GraphQLError(f"no channel with code {channel_code!r}",
                               extensions={"code": "NOT_FOUND", "field": "channelCode"})
        at = await self._available_at(info.context)
        return ChannelAvailability.of(
            availability_in(channel, {loc: available for loc, (_, available) in at.items()}))


@strawberry.type(description="One component of a kit.")
class KitComponent:
    sku: str
    quantity: Quantity = strawberry.field(description="Units of it in one kit.")
    item_id: strawberry.Private[UUID]

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return await _load_item(info, self.item_id)


def _total_on_hand(item: Item, levels: list[StockLevelView]) -> int:
    return sum(v.on_hand for v in levels)


def _total_reserved(item: Item, levels: list[StockLevelView]) -> int:
    return sum(v.reserved for v in levels)


def _kits_total(available_at: dict[UUID, tuple[str, int]]) -> int:
    return sum(available for _, available in available_at.values())


def _levels_of_items(context, items: list[Item]):
    loaders = context.loaders
    return loaders.many(loaders.levels_of_item, [i.item_id for i in items])


async def _totals_available(context, items: list[Item]) -> list[int]:
    """Each item's totalAvailable: the sum of its levels, one batch for all;
    a kit's, the whole kits its components make per location, summed (a kit
    at a time: its parts, then its components' levels)."""
    found = await _levels_of_items(context, items)
    return [_kits_total(await item._available_at(context)) if item.view.is_kit
            else sum(v.quantities.available for v in levels)
            for item, levels in zip(items, found)]


@batch("Item.isKit")
def _kits(context, items: list[Item]) -> list[bool]:
    return [item.view.is_kit for item in items]


@batch("Item.totalAvailable")
async def _total_available_of_items(context, items: list[Item]) -> list[int]:
    return await _totals_available(context, items)


@batch("Item.lowStock")
async def _low_stock_of_items(context, items: list[Item]) -> list[bool]:
    return [total <= item.reorder_point
            for item, total in zip(items, await _totals_available(context, items))]


def _per_item_levels(coordinate: str, of: Callable[[Item, list[StockLevelView]], object]) -> None:
    """Registers the batch of an Item field computed from the item's levels."""
    async def levels_batch(context, items: list[Item]) -> list:
        found = await _levels_of_items(context, items)
        return [of(item, levels) for item, levels in zip(items, found)]

    batch(coordinate)(levels_batch)


for _coordinate, _of in (("Item.totalOnHand", _total_on_hand),
                         ("Item.totalReserved", _total_reserved)):
    _per_item_levels(_coordinate, _of)


@batch("Item.stockLevels")
async def _stock_levels_of_items(context, items: list[Item]) -> list[list[StockLevel]]:
    found = await _levels_of_items(context, items)
    # One batched lookup for the locations of every level of every item. By
    # code, one per location id in the levels' rows (a string hashes once, a
    # uuid.UUID in Python code on every lookup).
    ids = {}
    for levels in found:
        for v in levels:
            ids.setdefault(v.location_code, v.location_id)
    loaders = context.loaders
    where = dict(zip(ids, await loaders.many(loaders.location, list(ids.values()))))
    return [item._stock_levels(levels, [where[v.location_code] for v in levels])
            for item, levels in zip(items, found)]


# What a level's answer takes from its view as it is, by GraphQL field: Python
# expressions over the view `v` and its quantities `q`. Every one is a non-null
# whole number or string, which the completion of a StockLevel's field
# (Quantity, String) would answer unchanged.
_LEVEL_VALUES = {
    **{camel(name): f"q[{name!r}]" for name in NAMES},
    "available": "q.available", "version": "v.version", "backorderLimit": "v.backorder_limit",
    "sku": "v.sku", "locationCode": "v.location_code",
}
_LOCATION_VALUES = {"code": "v.location_code", "__typename": repr("Location")}


def _dict_display(selection: tuple, values: dict[str, str]) -> str | None:
    """Python source of the answer's dict for `selection`, or None when it
    selects anything else than `values` (the response names are quoted with
    repr: never source of their own)."""
    parts = []
    for response, field, _ in selection:
        expression = values.get(field)
        if expression is None:
            return None
        parts.append(f"{response!r}: {expression}")
    return "{" + ", ".join(parts) + "}"


@answers("Item.stockLevels")
def _stock_level_answers(selection: tuple | None):
    """A page's levels answered from their views, without a StockLevel and a
    Location to complete per level, when the selection is numbers, strings and
    `location { code }` (the benchmark's page): the same values, by the same
    loader as the totals, so a page's totals and levels stay one reading."""
    if selection is None:
        return None
    parts = []
    for response, field, below in selection:
        if field == "location":
            display = _dict_display(below, _LOCATION_VALUES)
        elif field == "__typename":
            display = repr("StockLevel")
        else:
            display = _LEVEL_VALUES.get(field)
        if display is None:
            return None
        parts.append(f"{response!r}: {display}")
    one = eval("lambda v, q: {" + ", ".join(parts) + "}", {})  # noqa: S307 (our own source)

    async def answer(context, items: list[Item]) -> list[list[dict]]:
        found = await _levels_of_items(context, items)
        return [[one(v, v.quantities) for v in levels] for levels in found]

    return answer


@strawberry.type
class LocationAvailability:
    location_code: str
    available: Quantity
    location_id: strawberry.Private[UUID]

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return await _load_location(info, self.location_id)


@strawberry.type
class ChannelAvailability:
    channel_code: str
    available: Quantity = strawberry.field(description="Summed over the channel's locations.")
    locations: list[LocationAvailability] = strawberry.field(
        description="Per location of the channel, in its priority order.")

    @classmethod
    def of(cls, v: ChannelAvailabilityView) -> "ChannelAvailability":
        return cls(channel_code=v.channel_code, available=v.available, locations=[
            LocationAvailability(location_code=l.location_code, available=l.available,
                                 location_id=l.location_id) for l in v.locations])


@strawberry.type(description="A sales channel: the locations it ships from, in priority order.")
class Channel(Node):
    code: str
    name: str
    version: Quantity = strawberry.field(
        description="Increments on every change; updateChannel compares it.")
    created_at: datetime
    updated_at: datetime
    location_ids: strawberry.Private[list[UUID]]

    @classmethod
    def of(cls, v: ChannelView) -> "Channel":
        return cls(id=strawberry.ID(ids.encode("Channel", v.id)), code=v.code, name=v.name,
                   version=v.version, created_at=v.created_at, updated_at=v.updated_at,
                   location_ids=[l.location_id for l in v.locations])

    @strawberry.field(description="In priority order.")
    async def locations(self, info: Info) -> list[Location]:
        found = await info.context.loaders.location.load_many(self.location_ids)
        return [Location.of(v) for v in found]


@strawberry.type
class ReservationLine:
    sku: str
    location_code: str
    quantity: Quantity = strawberry.field(description="Reserved by the line.")
    item_id: strawberry.Private[UUID]
    location_id: strawberry.Private[UUID]
    line_number: int = strawberry.field(
        default=0, description="Names the line in a partial commitReservation or "
                               "releaseReservation.")
    committed_quantity: Quantity = strawberry.field(
        default=0, description="Shipped by commits so far.")
    released_quantity: Quantity = strawberry.field(
        default=0, description="Given back by releases so far.")
    held_quantity: Quantity = strawberry.field(
        default=0, description="Still reserved: quantity - committed - released while the "
                               "reservation is ACTIVE, else 0.")
    backordered: Quantity = strawberry.field(
        default=0, description="Of heldQuantity, how much is not yet here: filled in arrival "
                               "order as stock arrives (a stockLevelChanged event of kind "
                               "BACKORDER_FILLED); a commit ships only filled units.")
    kit_sku: Optional[str] = strawberry.field(
        default=None, description="This line is a component reserved for this kit (null: a "
                                  "plain line).")
    kit_line_number: Optional[int] = strawberry.field(
        default=None, description="The first line of this line's kit group (one group per kit "
                                  "line and location). Its lines move together: a partial "
                                  "commit or release naming any of them counts `quantity` in "
                                  "kits and takes that many kits from every line of the group.")
    per_kit: Optional[Quantity] = strawberry.field(
        default=None, description="Units of this component per kit.")

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return Item.of(await info.context.loaders.item.load(self.item_id))

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return Location.of(await info.context.loaders.location.load(self.location_id))


@strawberry.type
class Reservation(Node):
    status: ReservationStatus
    reference: Optional[str]
    expires_at: datetime
    created_at: datetime
    lines: list[ReservationLine]

    @classmethod
    def of(cls, v: ReservationView) -> "Reservation":
        active = v.status is DomainReservationStatus.ACTIVE
        return cls(
            id=strawberry.ID(ids.encode("Reservation", v.id)), status=v.status,
            reference=v.reference, expires_at=v.expires_at, created_at=v.created_at,
            lines=[
                ReservationLine(sku=l.sku, location_code=l.location_code, quantity=l.quantity,
                                item_id=l.item_id, location_id=l.location_id,
                                line_number=l.line_no, committed_quantity=l.committed,
                                released_quantity=l.released,
                                held_quantity=l.held if active else 0,
                                backordered=l.backordered if active else 0, kit_sku=l.kit_sku,
                                kit_line_number=l.kit_line, per_kit=l.per_kit)
                for l in v.lines
            ],
        )


@strawberry.type(description="One append-only ledger entry: a change of one stock level.")
@with_states(after="location_code", suffixes=("_delta", "_after"))
class Movement(Node):
    kind: MovementKind
    sku: str
    location_code: str
    version: Quantity
    reason: Optional[str]
    reference: Optional[str]
    reservation_id: Optional[strawberry.ID]
    created_at: datetime
    actor: Optional[str] = strawberry.field(
        default=None,
        description="Who made the change: key:<API key id>, jwt:<token subject> or "
                    "system:sweeper (null for entries older than authentication).")
    reason_code: Optional[Reason] = strawberry.field(
        default=None, description="Why, as a code (null: none given); `reason` is free text.")
    shipment_id: Optional[strawberry.ID] = strawberry.field(
        default=None, description="The InboundShipment or StockTransfer this entry belongs to.")
    kit_item_id: strawberry.Private[Optional[UUID]] = None

    @strawberry.field(description="The kit whose reservation (or its commit, release or "
                                  "expiry) moved this component (null: none).")
    async def kit(self, info: Info) -> Optional[Item]:
        return None if self.kit_item_id is None else await _load_item(info, self.kit_item_id)

    @classmethod
    def of(cls, v: MovementView) -> "Movement":
        return cls(
            id=strawberry.ID(ids.encode("Movement", v.id)), kind=v.kind, sku=v.sku,
            location_code=v.location_code, **state_values(v.delta, "_delta"),
            **state_values(v.after, "_after"), version=v.version, reason=v.reason,
            reference=v.reference,
            reservation_id=strawberry.ID(ids.encode("Reservation", v.reservation_id))
            if v.reservation_id else None,
            created_at=v.created_at, actor=v.actor, reason_code=v.reason_code,
            shipment_id=strawberry.ID(ids.encode(
                "InboundShipment" if v.kind in _INBOUND_KINDS else "StockTransfer",
                v.shipment_id)) if v.shipment_id else None,
            kit_item_id=v.kit_item_id,
        )


@strawberry.type
class Transfer:
    sku: str
    quantity: Quantity
    from_: StockLevel = strawberry.field(name="from")
    to: StockLevel

    @classmethod
    def of(cls, v: TransferView) -> "Transfer":
        return cls(sku=v.sku, quantity=v.quantity, from_=StockLevel.of(v.source),
                   to=StockLevel.of(v.destination))


# ---------------------------------------------------------------- Relay connections

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: Optional[str]
    end_cursor: Optional[str]


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        return [e.node for e in self.edges]


def connection(nodes_with_cursors: list[tuple[T, str]], has_next: bool, has_previous: bool):
    edges = [Edge(cursor=c, node=n) for n, c in nodes_with_cursors]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next, has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
