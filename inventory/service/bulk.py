"""bulkSetStock and bulkAdjustStock: up to 10,000 lines in one transaction.

Decide, then write: every line is checked (its own rules, its sku and
location, archived or not, no level twice), the levels are locked in key order
(so concurrent bulk requests and orders queue rather than deadlock) and each
line is decided against its level; then every changed line is written by ONE
statement (levels and one ledger row per changed line). Under ALL_OR_NOTHING a
failed line means nothing is written; under SKIP_FAILED the others are.

The idempotency key is claimed first, as by every mutation (service/runner.py),
and recorded only when something was written: as single mutations leave the
key usable after input that changed nothing, a request that wrote nothing
gives its key back.
"""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger, queries
from ..db.ledger import Why
from ..domain.bulk import (
    BulkLineResult, BulkResult, BulkStock, Decision, ErrorPolicy, LineStatus, decide,
)
from ..domain.commands import validate_idempotency_key
from ..domain.errors import UserError, invalid, not_found
from ..domain.models import MovementKind, StockLevelView
from ..domain.quantities import Quantities
from .backorders import fill_waiting
from .context import Ctx
from .resolve import archived_error, kit_has_no_stock
from .runner import claim, release, request_hash, store, transact


async def bulk_stock(ctx: Ctx, cmd: BulkStock, key: str | None):
    refused = cmd.validate() or validate_idempotency_key(key)
    if refused:
        return refused
    fingerprint = request_hash(cmd) if key else ""

    async def unit(conn: AsyncConnection):
        if key:
            (found,) = await claim(conn, ctx.tenant_id, [(cmd, key, fingerprint)])
            if found is not None:
                return found
        result = await _decide_and_write(conn, ctx, cmd, key)
        if key and result.applied:
            await store(conn, ctx.tenant_id, [(key, result)])
        elif key:
            await release(conn, ctx.tenant_id, [key])
        return result

    return await transact(ctx, unit, idempotent=key is not None)


async def _decide_and_write(conn: AsyncConnection, ctx: Ctx, cmd: BulkStock,
                            key: str | None) -> BulkResult:
    errors: dict[int, UserError] = {}
    level_of, archived = await _levels(conn, ctx, cmd, errors)
    current = await ledger.lock_level_rows(conn, ctx.tenant_id, list(level_of.values()))
    decided = _decide(cmd, level_of, current, archived, errors)
    if errors and cmd.error_policy is ErrorPolicy.ALL_OR_NOTHING:
        return BulkResult(cmd.error_policy, tuple(
            BulkLineResult(i, LineStatus.FAILED, error=errors[i]) if i in errors
            else BulkLineResult(i, LineStatus.NOT_APPLIED) for i in range(len(cmd.lines))))

    def on_hand_of(level) -> int:
        return current[level].quantities.on_hand if level in current else 0

    written = await ledger.set_on_hand_many(
        conn, ctx.tenant_id, MovementKind.ADJUST if cmd.adjust else MovementKind.SET,
        [(level_of[i], new, new - on_hand_of(level_of[i]), cmd.lines[i].reason)
         for i, new in sorted(decided.items()) if new != on_hand_of(level_of[i])],
        Why(None, None, None, key, ctx.actor))
    for level in sorted(written):  # stock arriving fills backorders waiting there first
        written[level] = await fill_waiting(conn, ctx.tenant_id, written[level], ctx.actor)
    results = []
    for i, line in enumerate(cmd.lines):
        if i in errors:
            results.append(BulkLineResult(i, LineStatus.FAILED, error=errors[i]))
            continue
        level = level_of[i]
        row = written.get(level) or current.get(level)
        results.append(BulkLineResult(
            i, LineStatus.APPLIED if level in written else LineStatus.UNCHANGED,
            row.view(line.sku, line.location_code) if row else StockLevelView(
                *level, line.sku, line.location_code, Quantities(), 0, None)))
    return BulkResult(cmd.error_policy, tuple(results))


async def _levels(conn: AsyncConnection, ctx: Ctx, cmd: BulkStock,
                  errors: dict[int, UserError]) -> tuple[dict, set]:
    """(line index -> (item id, location id) of each line that passes its own
    checks, names a known sku and location and a level no earlier line named,
    the archived names); the other lines get their error."""
    lines = cmd.lines
    errors.update({i: e for i, line in enumerate(lines) if (e := cmd.check_line(line))})
    item_ids, location_ids, archived = await queries.resolve_with_archived(
        conn, ctx.tenant_id, {l.sku for l in lines}, {l.location_code for l in lines})
    level_of: dict = {}
    first_line: dict = {}
    for i, line in enumerate(lines):
        if i in errors:
            continue
        if line.sku not in item_ids:
            errors[i] = not_found("sku", f"no item with sku {line.sku!r}")
        elif line.location_code not in location_ids:
            errors[i] = not_found("locationCode", f"no location with code {line.location_code!r}")
        else:
            level = (item_ids[line.sku], location_ids[line.location_code])
            if level in first_line:
                errors[i] = invalid("lines", f"line {i} names the same level as line "
                                             f"{first_line[level]}: one line per level")
            else:
                first_line[level], level_of[i] = i, level
    return level_of, archived


def _decide(cmd: BulkStock, level_of: dict, current: dict, archived: set,
            errors: dict[int, UserError]) -> dict[int, int]:
    """line index -> the new on hand of each line its level allows."""
    decided = {}
    for i, level in level_of.items():
        line, row = cmd.lines[i], current.get(level)
        on_hand = row.quantities.on_hand if row else 0
        decision = decide(cmd, line, on_hand, row.quantities.available if row else 0)
        if decision.error is None and decision.on_hand > on_hand:  # new stock
            if ("item", line.sku) in archived:
                decision = Decision(error=archived_error("sku", f"item {line.sku!r} is archived"))
            elif ("location", line.location_code) in archived:
                decision = Decision(error=archived_error(
                    "locationCode", f"location {line.location_code!r} is archived"))
            elif ("kit", line.sku) in archived:
                decision = Decision(error=kit_has_no_stock("sku", line.sku))
        if decision.error:
            errors[i] = decision.error
        else:
            decided[i] = decision.on_hand
    return decided
