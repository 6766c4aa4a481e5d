"""Where a reservation's units come from: lines that name their location take
it; lines that name a sales channel are allocated over the channel's locations
(domain/allocation.py); kit lines are expanded into their components
(domain/kits.py). Decided under the locks of every level any line could
touch, taken in key order, so concurrent orders queue instead of deadlocking
and the last units go to exactly one of them.

Backorders are part of the plan: a line that available stock cannot give
backorders the rest, up to each level's backorder limit (the level's own, or
its item's for a level never stocked: a preorder), where
`domain.allocation.allocate_backordering` says (for a line given by channel:
the first location in the channel's order whose backorder room covers the
rest). Beyond every limit the line is short: INSUFFICIENT_STOCK, its shortage
saying what could still be backordered. A kit line takes no backorders: its
whole kits come from its components' available stock only, whatever their
limits, so a shortfall on it is INSUFFICIENT_STOCK (backorderable 0)."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import channels as channel_rows
from ..db import ledger, queries
from ..domain.allocation import allocate_backordering, could_backorder, could_give
from ..domain.commands import ReserveStock
from ..domain.errors import Rejected, Shortage, UserError, insufficient_stock, not_found
from ..domain.models import ReservationLineView
from . import kits
from .resolve import ids_for


async def plan(conn: AsyncConnection, tenant_id: UUID, cmd: ReserveStock
               ) -> list[ReservationLineView] | UserError:
    """The reservation lines (one per location a request line takes units from,
    in request order; a kit line gives one line per component there, its kit
    group), or INSUFFICIENT_STOCK listing every line that cannot be had. Locks
    the levels; writes nothing.

    A kit line is expanded into its components before anything is checked, and
    every line's units are counted against one running tally per level under
    the locks: lines sharing a component (two kits, or a kit and the component
    bought alone) are summed, so they cannot oversell. Each kit unit comes
    whole from one location: a location offers as many kits as its components
    make there; with allowSplit a kit line may take whole kits from several."""
    found = await channel_rows.channels_by_codes(
        conn, tenant_id, [l.channel_code for l in cmd.lines if l.channel_code])
    for i, line in enumerate(cmd.lines):
        if line.channel_code and line.channel_code not in found:
            raise Rejected(not_found(f"lines[{i}].channelCode",
                                     f"no channel with code {line.channel_code!r}"))
    items, locs = await ids_for(conn, tenant_id, [
        (l.sku, f"lines[{i}].sku", l.location_code, f"lines[{i}].locationCode")
        for i, l in enumerate(cmd.lines)])
    parts = await kits.parts_of(conn, tenant_id, [l.sku for l in cmd.lines])
    # Per request line, what one unit of it takes: [(item id, sku, units)].
    needs = [[(p.item_id, p.sku, p.quantity) for p in parts[l.sku]] if parts.get(l.sku)
             else [(items[l.sku], l.sku, 1)] for l in cmd.lines]
    # Per request line, the locations it may take from: (location id, code).
    candidates = [
        [(locs[l.location_code], l.location_code)] if l.location_code
        else [(c.location_id, c.code) for c in found[l.channel_code].locations]
        for l in cmd.lines]
    keys = sorted({(item, location) for need, where in zip(needs, candidates)
                   for item, _, _ in need for location, _ in where})
    levels = await ledger.lock_level_rows(conn, tenant_id, keys)
    available = {key: row.quantities.available for key, row in levels.items()}
    room = {key: row.backorderable for key, row in levels.items()}
    # Never stocked: the item's limit (a preorder makes the level). Only plain
    # lines backorder, so a kit's components' limits are not read.
    unstocked = sorted({(need[0][0], location) for line, need, where in
                        zip(cmd.lines, needs, candidates) if not parts.get(line.sku)
                        for location, _ in where} - levels.keys())
    if unstocked:
        limits = await queries.item_backorder_limits(
            conn, tenant_id, sorted({item for item, _ in unstocked}))
        room.update({key: limits.get(key[0], 0) for key in unstocked})
    taken: dict[int, list[tuple[UUID, str, int, int]]] = {}
    shortages = []
    # Lines with a location first: they have no choice; channels share the rest.
    order = sorted(range(len(cmd.lines)), key=lambda i: cmd.lines[i].channel_code is not None)
    for i in order:
        line, need = cmd.lines[i], needs[i]
        if parts.get(line.sku):
            # Whole kits per location; a kit takes no backorders (no room).
            offered = [((location, code), min(max(available.get((item, location), 0), 0) // units
                                              for item, _, units in need), 0)
                       for location, code in candidates[i]]
        else:
            item_id = need[0][0]
            offered = [((location, code), available.get((item_id, location), 0),
                        room.get((item_id, location), 0)) for location, code in candidates[i]]
        chosen = allocate_backordering(line.quantity, offered, cmd.allocation)
        if chosen is None:
            shortages.append((i, Shortage(
                line.sku, line.location_code or line.channel_code, line.quantity,
                could_give([(where, a) for where, a, _ in offered], cmd.allocation),
                channel_code=line.channel_code, backorderable=could_backorder(offered))))
            continue
        for (location, _), count, backordered in chosen:
            for item, _, units in need:
                key = (item, location)
                available[key] = available.get(key, 0) - (count - backordered) * units
                room[key] = room.get(key, 0) - backordered * units
        taken[i] = [(location, code, count, backordered)
                    for (location, code), count, backordered in chosen]
    if shortages:
        return insufficient_stock([shortage for _, shortage in sorted(shortages)])
    lines: list[ReservationLineView] = []
    for i, line in enumerate(cmd.lines):
        kit_id = items[line.sku] if parts.get(line.sku) else None
        for location, code, count, backordered in taken[i]:
            group = len(lines)
            for item, sku, units in needs[i]:
                lines.append(ReservationLineView(
                    item, location, sku, code, count * units, len(lines),
                    backordered=backordered * units,
                    **({} if kit_id is None else dict(
                        kit_item_id=kit_id, kit_sku=line.sku, kit_line=group, per_kit=units))))
    return lines
