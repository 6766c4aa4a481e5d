"""Sales channels: a code, a name and the ordered locations a channel ships
from; what is available to a channel (pure Python)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable
from uuid import UUID

from .commands import Command, _code, _name, first_error
from .errors import UserError, invalid

MAX_CHANNEL_LOCATIONS = 100


@dataclass(frozen=True)
class ChannelLocationView:
    location_id: UUID
    code: str


@dataclass(frozen=True)
class ChannelView:
    id: UUID
    code: str
    name: str
    version: int
    locations: tuple[ChannelLocationView, ...]  # in priority order
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LocationAvailability:
    location_id: UUID
    location_code: str
    available: int


@dataclass(frozen=True)
class ChannelAvailability:
    """What one item has available to one channel: the sum, and per location
    of the channel (in its order, 0 where no stock was ever recorded)."""

    channel_code: str
    available: int
    locations: tuple[LocationAvailability, ...]


def availability_in(channel: ChannelView, available_at: dict[UUID, int]) -> ChannelAvailability:
    """`available_at`: location id -> available of the item there (absent: 0)."""
    per_location = tuple(
        LocationAvailability(l.location_id, l.code, available_at.get(l.location_id, 0))
        for l in channel.locations)
    return ChannelAvailability(channel.code, sum(l.available for l in per_location),
                               per_location)


def _location_codes(field_name: str, codes: Iterable[str]) -> UserError | None:
    codes = list(codes)
    if not codes:
        return invalid(field_name, "a channel needs at least one location")
    if len(codes) > MAX_CHANNEL_LOCATIONS:
        return invalid(field_name, f"a channel has at most {MAX_CHANNEL_LOCATIONS} locations")
    seen: set[str] = set()
    for i, code in enumerate(codes):
        error = _code(f"{field_name}[{i}]", code, "locationCode")
        if error:
            return error
        if code in seen:
            return invalid(f"{field_name}[{i}]", f"location {code!r} is listed twice")
        seen.add(code)
    return None


@dataclass(frozen=True)
class CreateChannel(Command):
    code: str
    name: str
    location_codes: tuple[str, ...]
    operation = "createChannel"

    def validate(self) -> UserError | None:
        return first_error(_code("code", self.code, "code"), _name("name", self.name),
                           _location_codes("locationCodes", self.location_codes))


@dataclass(frozen=True)
class UpdateChannel(Command):
    """Compare-and-swap: applies only if the channel is still at
    `expected_version`. Fields left None keep their value."""

    code: str
    expected_version: int
    name: str | None = None
    location_codes: tuple[str, ...] | None = None
    operation = "updateChannel"

    def validate(self) -> UserError | None:
        if self.name is None and self.location_codes is None:
            return invalid("name", "give a new name, new locationCodes, or both")
        if self.expected_version < 1:
            return invalid("expectedVersion", "expectedVersion must be at least 1")
        return first_error(
            _code("code", self.code, "code"),
            None if self.name is None else _name("name", self.name),
            None if self.location_codes is None
            else _location_codes("locationCodes", self.location_codes))
