"""The ledger audit: checks every stock level against the ledger and the active
reservations, and conservation per item, in bounded pages.

It walks tenants, then items by keyset (`id > last` ORDER BY id LIMIT page), and
for each page of items reads only that page's levels, ledger sums (grouped in
the database, so a page costs a few rows per level, not its whole history) and
ACTIVE reservation lines. Memory is bounded by the page size whatever the size
of the tables. Each page is read in its own snapshot (REPEATABLE READ on
PostgreSQL, SERIALIZABLE on CockroachDB), so the audit can run against a live
system without false alarms and without holding one transaction open for the
whole walk. CockroachDB may abort even a read-only transaction with 40001: a
page so aborted is read again, from the start, in a new snapshot.

The quantity states and what each ledger kind may do to them come from
domain/quantities.py; every check below covers every state. Checks, per
level: each state equals its ledger sum, each ledger row's after-values follow
from the previous row's, version equals the number of ledger rows and the
versions have no gap, no state and no `available` negative, reserved and
backordered equal the ACTIVE reservation lines' filled and backordered parts,
backordered within the level's limit, and no backorder waiting while stock is
available; per item, its `available` column is the sum over its levels. Per
ledger kind: deltas have the sign the kind
implies (e.g. RESERVE moves only reserved, upwards; COMMIT lowers on_hand and
reserved by the same amount). Per item and state (conservation): the deltas of
every kind (receipts + adjustments + sets + transfers in - transfers out -
commits, for on hand) add up to the state summed over its locations; transfers
net to zero; as many TRANSFER_OUT as TRANSFER_IN rows. Stock on its way, per
inbound shipment line and per transfer leg: its ledger rows moved on hand by
what it received (a transfer's source by what it shipped less what came back)
and incoming by what it still expects (0 once closed); each level's incoming is
what the open shipments and transfers still expect there. Across the table: no
ledger row for an item that does not exist, no stock level of a kit.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Callable, TypeVar
from uuid import UUID

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from ..domain.quantities import KIND_RULES, NAMES, Effect, Quantities
from .dialect import SERIALIZATION_FAILURE, snapshot_isolation
from .retry import sqlstate_of

T = TypeVar("T")
PAGE_ATTEMPTS = 5

DEFAULT_PAGE_SIZE = 500



def _sign_condition(rule) -> str:
    """The SQL condition a ledger row of a kind must meet (its KindRule)."""
    parts = [f"{n}_delta {rule.effect(n).value}" for n in NAMES if rule.effect(n) is not Effect.ANY]
    parts += [f"{a}_delta = {b}_delta" for a, b in rule.equal]
    parts += [f"{a}_delta = -{b}_delta" for a, b in rule.opposite]
    return " AND ".join(parts) or "TRUE"


# The condition each kind's deltas must satisfy, from the domain's rules.
KIND_SIGNS: dict[str, str] = {kind.value: _sign_condition(rule) for kind, rule in KIND_RULES.items()}
_STATE_COLUMNS = ", ".join(NAMES)
_STATE_SUMS = ", ".join(f"COALESCE(SUM({n}_delta), 0) AS {n}" for n in NAMES)
_SIGN_OK = "CASE " + " ".join(
    f"WHEN kind = '{kind}' AND {cond} THEN 0" for kind, cond in KIND_SIGNS.items()
) + " ELSE 1 END"

_TENANTS = text(
    "SELECT tenant_id FROM items WHERE tenant_id > :after ORDER BY tenant_id LIMIT 1"
)
_ITEMS = text(
    "SELECT id, sku, available FROM items WHERE tenant_id = :t AND id > :after "
    "ORDER BY id LIMIT :n"
)
_LEVELS = text(f"""
    SELECT item_id, location_id, {_STATE_COLUMNS}, version, backorder_limit FROM stock_levels
    WHERE tenant_id = :t AND item_id >= :lo AND item_id <= :hi
""")
_LEDGER = text(f"""
    SELECT item_id, location_id, kind, {_STATE_SUMS},
           COUNT(*) AS n, MIN(version) AS min_version, MAX(version) AS max_version,
           SUM({_SIGN_OK}) AS bad_sign
    FROM movements
    WHERE tenant_id = :t AND item_id >= :lo AND item_id <= :hi
    GROUP BY item_id, location_id, kind
""")
# Each ledger row's after-values must follow from the previous row of its level
# (ordered by version) plus its own deltas; the first starts from zero. Sums
# alone cannot see a row that carries the right delta but a wrong after-value.
_CHAIN = text(f"""
    SELECT item_id, location_id, COUNT(*) AS broken, MIN(version) AS first_version
    FROM (
        SELECT item_id, location_id, version,
               {", ".join(f"{n}_after, {n}_delta, LAG({n}_after) OVER w AS prev_{n}"
                          for n in NAMES)}
        FROM movements
        WHERE tenant_id = :t AND item_id >= :lo AND item_id <= :hi
        WINDOW w AS (PARTITION BY item_id, location_id ORDER BY version)
    ) chain
    WHERE {" OR ".join(f"{n}_after <> COALESCE(prev_{n}, 0) + {n}_delta" for n in NAMES)}
    GROUP BY item_id, location_id
""")
_HELD = text("""
    SELECT rl.item_id, rl.location_id,
           SUM(rl.quantity - rl.committed - rl.released - rl.backordered) AS held,
           SUM(rl.backordered) AS waiting
    FROM reservations r
    JOIN reservation_lines rl ON rl.tenant_id = r.tenant_id AND rl.reservation_id = r.id
    WHERE r.tenant_id = :t AND r.status = 'ACTIVE' AND rl.item_id >= :lo AND rl.item_id <= :hi
    GROUP BY rl.item_id, rl.location_id
""")
# Stock on its way (inbound shipments, transfers in transit): what each
# shipment's ledger rows moved at each of its levels, and what its rows say.
_SHIPMENT_LEDGER = text("""
    SELECT shipment_id, item_id, location_id, SUM(on_hand_delta) AS on_hand,
           SUM(incoming_delta) AS incoming
    FROM movements
    WHERE tenant_id = :t AND item_id >= :lo AND item_id <= :hi AND shipment_id IS NOT NULL
    GROUP BY shipment_id, item_id, location_id
""")
_INBOUND_LINES = text("""
    SELECT l.shipment_id, l.item_id, l.location_id, l.quantity, l.received, s.status
    FROM inbound_lines l
    JOIN inbound_shipments s ON s.tenant_id = l.tenant_id AND s.id = l.shipment_id
    WHERE l.tenant_id = :t AND l.item_id >= :lo AND l.item_id <= :hi
""")
_TRANSFERS = text("""
    SELECT id, item_id, from_location_id, to_location_id, quantity, received, lost, returned
    FROM stock_transfers
    WHERE tenant_id = :t AND item_id >= :lo AND item_id <= :hi
""")
_ORPHANS = text("""
    SELECT m.tenant_id, m.item_id, COUNT(*) AS n FROM movements m
    WHERE (CAST(:t AS UUID) IS NULL OR m.tenant_id = CAST(:t AS UUID)) AND NOT EXISTS (
        SELECT 1 FROM items i WHERE i.tenant_id = m.tenant_id AND i.id = m.item_id)
    GROUP BY m.tenant_id, m.item_id
    LIMIT 100
""")
# A kit holds no stock: its components do (0016).
_KIT_LEVELS = text("""
    SELECT sl.tenant_id, sl.item_id, COUNT(*) AS n FROM stock_levels sl
    JOIN items i ON i.tenant_id = sl.tenant_id AND i.id = sl.item_id
    WHERE i.is_kit AND (CAST(:t AS UUID) IS NULL OR sl.tenant_id = CAST(:t AS UUID))
    GROUP BY sl.tenant_id, sl.item_id
    LIMIT 100
""")
_OVERDUE = text("""
    SELECT COUNT(*) FROM reservations
    WHERE status = 'ACTIVE'
      AND expires_at < now() - CAST(:grace AS DOUBLE PRECISION) * INTERVAL '1 second'
      AND (CAST(:t AS UUID) IS NULL OR tenant_id = CAST(:t AS UUID))
""")


@dataclass(frozen=True)
class Discrepancy:
    check: str
    tenant_id: UUID | None
    item_id: UUID | None
    location_id: UUID | None
    detail: str
    sku: str | None = None

    def __str__(self) -> str:
        where = f"tenant={self.tenant_id} item={self.item_id}"
        if self.sku:
            where += f" sku={self.sku}"
        if self.location_id:
            where += f" location={self.location_id}"
        return f"{self.check}: {where}: {self.detail}"


@dataclass
class AuditReport:
    tenants: int = 0
    items: int = 0
    levels: int = 0
    ledger_rows: int = 0
    active_reservation_lines_qty: int = 0
    pages: int = 0
    overdue_active_reservations: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def add(self, page: "AuditReport") -> None:
        """Adds the counts and findings of one page."""
        for f in fields(self):
            if f.name != "discrepancies":
                setattr(self, f.name, getattr(self, f.name) + getattr(page, f.name))
        self.discrepancies += page.discrepancies


Progress = Callable[[AuditReport], None]


def audit(
    conn: Connection,
    *,
    tenant_id: UUID | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    overdue_grace_s: float = 0.0,
    progress: Progress | None = None,
    isolation: str | None = None,
) -> AuditReport:
    """Runs every check, one page of items per transaction. `conn` must not be
    inside a transaction the caller wants to keep: pages end theirs. Pages run
    in `isolation`, by default the engine's snapshot (`snapshot_isolation`);
    SERIALIZABLE on PostgreSQL reads them as CockroachDB does, where a page can
    be aborted with 40001."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    report = AuditReport()
    page_conn = conn.execution_options(
        isolation_level=isolation or snapshot_isolation(conn.dialect))
    page_conn.rollback()  # start each page in a fresh snapshot
    for tenant in _tenants(page_conn, tenant_id):
        report.tenants += 1
        after = UUID(int=0)
        while True:
            def read_page(c: Connection, after=after) -> tuple[AuditReport, UUID | None]:
                page = AuditReport()
                items = c.execute(_ITEMS, {"t": tenant, "after": after, "n": page_size}).all()
                if items:
                    _check_page(c, tenant, {row.id: row.sku for row in items}, page,
                                {row.id: row.available for row in items})
                return page, (items[-1].id if items else None)

            page, last = _in_snapshot(page_conn, read_page)
            if last is None:
                break
            report.add(page)
            report.pages += 1
            after = last
            if progress:
                progress(report)

    def read_totals(c: Connection) -> tuple[list, list, int]:
        return (c.execute(_ORPHANS, {"t": tenant_id}).all(),
                c.execute(_KIT_LEVELS, {"t": tenant_id}).all(),
                c.execute(_OVERDUE, {"t": tenant_id, "grace": overdue_grace_s}).scalar_one())

    orphans, kit_levels, report.overdue_active_reservations = _in_snapshot(page_conn,
                                                                           read_totals)
    for row in kit_levels:
        report.discrepancies.append(Discrepancy(
            "a kit with stock levels of its own", row.tenant_id, row.item_id, None,
            f"{row.n} levels"))
    for row in orphans:
        report.discrepancies.append(Discrepancy(
            "ledger rows for an item that does not exist", row.tenant_id, row.item_id, None,
            f"{row.n} rows"))
    return report


def _in_snapshot(conn: Connection, read: Callable[[Connection], T]) -> T:
    """`read(conn)` in one snapshot of its own, read again from the start when
    the engine aborts it with 40001 (a bounded number of times)."""
    for attempt in range(1, PAGE_ATTEMPTS + 1):
        try:
            result = read(conn)
            conn.rollback()
            return result
        except DBAPIError as error:
            conn.rollback()
            if sqlstate_of(error) != SERIALIZATION_FAILURE or attempt == PAGE_ATTEMPTS:
                raise
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
    raise AssertionError("unreachable")


def _tenants(conn: Connection, only: UUID | None):
    if only is not None:
        yield only
        return
    after = UUID(int=0)
    while True:
        tenant = _in_snapshot(conn, lambda c: c.execute(_TENANTS, {"after": after}).scalar())
        if tenant is None:
            return
        yield tenant
        after = tenant


def _check_page(conn: Connection, tenant: UUID, skus: dict[UUID, str], report: AuditReport,
                item_available: dict[UUID, int]):
    bounds = {"t": tenant, "lo": min(skus), "hi": max(skus)}
    levels = {(r.item_id, r.location_id): r for r in conn.execute(_LEVELS, bounds)}
    ledger: dict[tuple[UUID, UUID], dict[str, object]] = defaultdict(dict)
    # The id range may also cover ids of items that do not exist: those rows
    # are the orphan check's, not this page's.
    for row in conn.execute(_LEDGER, bounds):
        if row.item_id in skus:
            ledger[(row.item_id, row.location_id)][row.kind] = row
    held, waiting = {}, {}
    for r in conn.execute(_HELD, bounds):
        if r.item_id in skus:
            held[(r.item_id, r.location_id)] = int(r.held)
            waiting[(r.item_id, r.location_id)] = int(r.waiting)
    report.items += len(skus)
    report.levels += len(levels)

    def found(check: str, item_id: UUID, location_id: UUID | None, detail: str) -> None:
        report.discrepancies.append(
            Discrepancy(check, tenant, item_id, location_id, detail, skus.get(item_id)))

    # Per item: each state summed over its levels, and each kind's deltas of it.
    per_item: dict[UUID, Quantities] = defaultdict(Quantities)
    per_item_kind: dict[UUID, dict[str, Quantities]] = defaultdict(lambda: defaultdict(Quantities))
    for key in sorted(set(levels) | set(ledger) | set(held)):
        item_id, location_id = key
        level = levels.get(key)
        kinds = ledger.get(key, {})
        rows = sum(int(k.n) for k in kinds.values())
        report.ledger_rows += rows
        report.active_reservation_lines_qty += held.get(key, 0) + waiting.get(key, 0)
        ledger_sums = Quantities()
        for kind, sums in kinds.items():
            ledger_sums += Quantities.of_row(sums)
            per_item_kind[item_id][kind] += Quantities.of_row(sums)
            if kind not in KIND_SIGNS:
                found("unknown ledger kind", item_id, location_id, f"{kind}: {sums.n} rows")
            elif sums.bad_sign:
                found("ledger delta has the wrong sign for its kind", item_id, location_id,
                      f"{sums.bad_sign} {kind} rows")
        if level is None:
            if rows:
                found("ledger rows for a level that does not exist", item_id, location_id,
                      f"{rows} rows")
            if held.get(key) or waiting.get(key):
                found("active reservation lines for a level that does not exist", item_id,
                      location_id, f"{held.get(key, 0)} held, {waiting.get(key, 0)} backordered")
            continue
        now = Quantities.of_row(level)
        per_item[item_id] += now
        if now != ledger_sums:
            found("level differs from ledger sums", item_id, location_id,
                  f"level {_show(now)}, ledger {_show(ledger_sums)}")
        if rows:
            lowest = min(int(k.min_version) for k in kinds.values())
            highest = max(int(k.max_version) for k in kinds.values())
        else:
            lowest = highest = 0
        if level.version != rows or highest != rows or (rows and lowest != 1):
            found("level version differs from its ledger rows", item_id, location_id,
                  f"version={level.version}, ledger rows={rows} versions {lowest}..{highest}")
        if now.negative():
            found("negative quantity", item_id, location_id,
                  f"{_show(now)} available={now.available}")
        if now.reserved != held.get(key, 0):
            found("reserved differs from active reservation lines", item_id, location_id,
                  f"reserved={now.reserved}, active lines hold {held.get(key, 0)}")
        if now.backordered != waiting.get(key, 0):
            found("backordered differs from active reservation lines", item_id, location_id,
                  f"backordered={now.backordered}, active lines wait for "
                  f"{waiting.get(key, 0)}")
        if now.backordered > level.backorder_limit:
            found("backordered beyond the level's limit", item_id, location_id,
                  f"backordered={now.backordered}, limit {level.backorder_limit}")
        if now.backordered and now.available > 0:
            found("backorders waiting while stock is available", item_id, location_id,
                  f"backordered={now.backordered}, available={now.available}")

    _check_stock_on_its_way(conn, bounds, skus, levels, found)

    for row in conn.execute(_CHAIN, bounds):
        if row.item_id in skus:
            found("ledger after-values do not follow from the previous row", row.item_id,
                  row.location_id, f"{row.broken} rows, first at version {row.first_version}")

    for item_id, kept in item_available.items():
        # The item's available (kept by the ledger statements for low stock) is
        # what its levels hold.
        if kept != per_item[item_id].available:
            found("item available differs from its levels", item_id, None,
                  f"item available={kept}, summed over its levels "
                  f"{per_item[item_id].available}")

    for item_id, kinds in per_item_kind.items():
        # Conservation per state: what every kind moved in and out (outgoing kinds
        # carry negative deltas) is what the item's levels hold.
        expected = sum(kinds.values(), Quantities())
        for state in NAMES:
            if expected[state] != per_item[item_id][state]:
                moved = " + ".join(f"{kind} {q[state]}" for kind, q in sorted(kinds.items())
                                   if q[state])
                found("conservation per item", item_id, None,
                      f"{state}: {moved or 0} = {expected[state]}, but {state} over locations "
                      f"is {per_item[item_id][state]}")
        transfers = kinds["TRANSFER_IN"] + kinds["TRANSFER_OUT"]
        if transfers.on_hand != 0:
            found("transfers do not net to zero", item_id, None,
                  f"in {kinds['TRANSFER_IN'].on_hand}, out {-kinds['TRANSFER_OUT'].on_hand}")
    # Row counts of transfer legs per item (a lost leg with a zero-sum twin).
    legs: dict[UUID, list[int]] = defaultdict(lambda: [0, 0])
    for (item_id, _), kinds in ledger.items():
        if "TRANSFER_OUT" in kinds:
            legs[item_id][0] += int(kinds["TRANSFER_OUT"].n)
        if "TRANSFER_IN" in kinds:
            legs[item_id][1] += int(kinds["TRANSFER_IN"].n)
    for item_id, (outs, ins) in legs.items():
        if outs != ins:
            found("transfer legs unpaired", item_id, None, f"{outs} out rows, {ins} in rows")


def _check_stock_on_its_way(conn: Connection, bounds: dict, skus: dict[UUID, str],
                            levels: dict, found: Callable[..., None]) -> None:
    """Each inbound shipment and transfer in transit against its ledger rows,
    level by level: on hand moved by what it received (a transfer's source: by
    what it shipped, less what came back), incoming by what it still expects
    (0 once closed); and each level's incoming is what they all still expect
    there, so no unit is incoming without a shipment or transfer."""
    # (shipment or transfer id, item, location) -> (on hand, incoming) its rows moved.
    expected: dict[tuple, tuple[int, int]] = {}
    for r in conn.execute(_INBOUND_LINES, bounds):
        still = 0 if r.status == "CANCELLED" else max(r.quantity - r.received, 0)
        expected[(r.shipment_id, r.item_id, r.location_id)] = (r.received, still)
    for r in conn.execute(_TRANSFERS, bounds):
        expected[(r.id, r.item_id, r.from_location_id)] = (r.returned - r.quantity, 0)
        expected[(r.id, r.item_id, r.to_location_id)] = (
            r.received, r.quantity - r.received - r.lost - r.returned)
    moved = {(r.shipment_id, r.item_id, r.location_id): (int(r.on_hand), int(r.incoming))
             for r in conn.execute(_SHIPMENT_LEDGER, bounds)}
    incoming: dict[tuple[UUID, UUID], int] = defaultdict(int)
    for key in sorted(set(expected) | set(moved), key=str):
        shipment_id, item_id, location_id = key
        if item_id not in skus:
            continue
        want, got = expected.get(key), moved.get(key, (0, 0))
        if want is None:
            found("ledger rows for a shipment or transfer that does not exist", item_id,
                  location_id, f"shipment {shipment_id}: on hand {got[0]}, incoming {got[1]}")
            continue
        incoming[(item_id, location_id)] += want[1]
        if got != want:
            found("shipment or transfer differs from its ledger rows", item_id, location_id,
                  f"{shipment_id}: moved on hand {got[0]}, incoming {got[1]}; its rows say "
                  f"on hand {want[0]}, incoming {want[1]}")
    for key, level in levels.items():
        if key[0] in skus and level.incoming != incoming.get(key, 0):
            found("incoming differs from what shipments and transfers expect", key[0], key[1],
                  f"incoming={level.incoming}, expected {incoming.get(key, 0)}")


def _show(q: Quantities) -> str:
    return " ".join(f"{n}={v}" for n, v in q.items())


def discrepancies(conn: Connection) -> list[str]:
    """Every discrepancy in the whole database, as readable lines (empty = good)."""
    return [str(d) for d in audit(conn).discrepancies]
