"""Where a reservation's units come from: lines that name their location take
it; lines that name a sales channel are allocated over the channel's locations
(domain/allocation.py). Decided under the locks of every level any line could
touch, taken in key order, so concurrent orders queue instead of deadlocking
and the last units go to exactly one of them."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import channels as channel_rows
from ..db import ledger
from ..domain.allocation import allocate, could_give
from ..domain.commands import ReserveStock
from ..domain.errors import Rejected, Shortage, UserError, insufficient_stock, not_found
from ..domain.models import ReservationLineView
from .resolve import ids_for


async def plan(conn: AsyncConnection, tenant_id: UUID, cmd: ReserveStock
               ) -> list[ReservationLineView] | UserError:
    """The reservation lines (one per location a request line takes units from,
    in request order), or INSUFFICIENT_STOCK listing every line that cannot be
    had. Locks the levels; writes nothing."""
    found = await channel_rows.channels_by_codes(
        conn, tenant_id, [l.channel_code for l in cmd.lines if l.channel_code])
    for i, line in enumerate(cmd.lines):
        if line.channel_code and line.channel_code not in found:
            raise Rejected(not_found(f"lines[{i}].channelCode",
                                     f"no channel with code {line.channel_code!r}"))
    items, locs = await ids_for(conn, tenant_id, [
        (l.sku, f"lines[{i}].sku", l.location_code, f"lines[{i}].locationCode")
        for i, l in enumerate(cmd.lines)])
    # Per request line, the locations it may take from: (location id, code).
    candidates = [
        [(locs[l.location_code], l.location_code)] if l.location_code
        else [(c.location_id, c.code) for c in found[l.channel_code].locations]
        for l in cmd.lines]
    levels = await ledger.lock_levels(conn, tenant_id, sorted({
        (items[l.sku], location) for l, where in zip(cmd.lines, candidates)
        for location, _ in where}))
    available = {key: quantities.available for key, quantities in levels.items()}
    taken: dict[int, list[tuple[UUID, str, int]]] = {}
    shortages = []
    # Lines with a location first: they have no choice; channels share the rest.
    order = sorted(range(len(cmd.lines)), key=lambda i: cmd.lines[i].channel_code is not None)
    for i in order:
        line, item_id = cmd.lines[i], items[cmd.lines[i].sku]
        offered = [((location, code), available.get((item_id, location), 0))
                   for location, code in candidates[i]]
        parts = allocate(line.quantity, offered, cmd.allocation)
        if parts is None:
            shortages.append((i, Shortage(
                line.sku, line.location_code or line.channel_code, line.quantity,
                could_give(offered, cmd.allocation), channel_code=line.channel_code)))
            continue
        for (location, _), units in parts:
            available[(item_id, location)] = available.get((item_id, location), 0) - units
        taken[i] = [(location, code, units) for (location, code), units in parts]
    if shortages:
        return insufficient_stock([shortage for _, shortage in sorted(shortages)])
    lines = []
    for i, line in enumerate(cmd.lines):
        for location, code, units in taken[i]:
            lines.append(ReservationLineView(items[line.sku], location, line.sku, code, units,
                                             len(lines)))
    return lines
