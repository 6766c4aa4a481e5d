"""Checks a finished run against the database: the ledger audit, every
acknowledged write present exactly once and recorded as made by the workload's
credential (movements.actor), no idempotency key applied twice, no failed call
with an effect, and no ACTIVE reservation left past its expiry."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from ..db.audit import audit
from ..domain.ids import decode_as
from .workload import KEY_PREFIX, Call

# Ledger kinds one application of each operation writes (one row per line).
EXPECTED_KINDS = {
    "receiveStock": {"RECEIVE"}, "adjustStock": {"ADJUST"}, "setStock": {"SET"},
    "moveStock": {"MOVE"},
    "transferStock": {"TRANSFER_OUT", "TRANSFER_IN"}, "reserveStock": {"RESERVE"},
    "commitReservation": {"COMMIT"}, "releaseReservation": {"RELEASE"},
    "createInboundShipment": {"INBOUND"}, "receiveInbound": {"INBOUND_RECEIVE"},
    "cancelInbound": {"INBOUND_CANCEL"},
    "shipTransfer": {"TRANSFER_SHIP", "TRANSFER_INCOMING"},
    "receiveTransfer": {"TRANSFER_RECEIVE", "TRANSFER_LOSS"},
    "cancelTransfer": {"TRANSFER_CANCEL", "TRANSFER_RETURN"},
}
FINAL_STATUS = {"commitReservation": "COMMITTED", "releaseReservation": "RELEASED"}


@dataclass
class CheckReport:
    violations: list[str] = field(default_factory=list)
    audit_summary: str = ""
    acknowledged_checked: int = 0
    actor: str | None = None  # the actor every workload ledger row must carry
    unresolved_applied: int = 0
    unresolved_not_applied: int = 0


def check(engine: Engine, calls: list[Call], overdue_grace_s: float,
          actor: str | None = None) -> CheckReport:
    """`actor`: the ledger's actor for the workload's key (`key:<id>`); None skips that check."""
    report = CheckReport(actor=actor)
    v = report.violations
    with engine.connect() as conn:
        result = audit(conn, overdue_grace_s=overdue_grace_s)
        report.audit_summary = (f"{result.items} items, {result.levels} levels, "
                                f"{result.ledger_rows} ledger rows, {result.pages} pages")
        v += [f"audit: {d}" for d in result.discrepancies]
        if result.overdue_active_reservations:
            v.append(f"{result.overdue_active_reservations} ACTIVE reservations past their "
                     f"expiry + {overdue_grace_s:.1f}s (sweeper interval)")

        rows: dict[str, list[tuple[str, object, object, int]]] = defaultdict(list)
        # Per key: rows whose actor is not the workload's (NULL counts), and one of them.
        foreign: dict[str, tuple[int, str | None]] = {}
        for key, kind, item, location, n, others, other in conn.execute(text(
                "SELECT idempotency_key, kind, item_id, location_id, count(*), "
                "sum(CASE WHEN actor = :a THEN 0 ELSE 1 END), "
                "max(CASE WHEN actor = :a THEN NULL ELSE coalesce(actor, 'NULL') END) "
                "FROM movements WHERE idempotency_key LIKE :p GROUP BY 1, 2, 3, 4"),
                {"p": KEY_PREFIX + "%", "a": actor or ""}):
            rows[key].append((kind, item, location, n))
            if actor is not None and others:
                foreign[key] = (foreign.get(key, (0, None))[0] + others, other)
        stored_keys = set(conn.execute(text(
            "SELECT key FROM idempotency_keys WHERE key LIKE :p"), {"p": KEY_PREFIX + "%"}
        ).scalars())
        statuses = dict(conn.execute(text(
            "SELECT CAST(id AS TEXT), status FROM reservations")).all())

    for key, groups in rows.items():
        for kind, item, location, n in groups:
            if n > 1:
                v.append(f"idempotency key {key} applied {n} times ({kind} at {item}/{location})")
    for call in calls:
        written = sum(g[3] for g in rows.get(call.key, []))
        kinds = {g[0] for g in rows.get(call.key, [])}
        if call.outcome == "ok":
            report.acknowledged_checked += 1
            if written != call.lines or not kinds <= EXPECTED_KINDS[call.op]:
                v.append(f"acknowledged {call.op} {call.key}: expected {call.lines} ledger rows "
                         f"of {sorted(EXPECTED_KINDS[call.op])}, found {written} {sorted(kinds)}")
            if call.key not in stored_keys:
                v.append(f"acknowledged {call.op} {call.key}: idempotency record missing")
            if call.key in foreign:
                n, other = foreign[call.key]
                v.append(f"acknowledged {call.op} {call.key}: {n} ledger rows not by {actor} "
                         f"(e.g. {other})")
            if call.op in FINAL_STATUS:
                (reservation_id,) = decode_as("Reservation", call.result["id"])
                status = statuses.get(str(reservation_id))
                if status != FINAL_STATUS[call.op]:
                    v.append(f"acknowledged {call.op} {call.key}: reservation is {status}")
        elif call.outcome == "failed":
            if written:
                v.append(f"{call.op} {call.key} failed with {call.code} but wrote {written} rows")
        elif call.outcome == "unresolved":
            if call.lines is not None and written not in (0, call.lines):
                v.append(f"unresolved {call.op} {call.key} partly applied: {written} of "
                         f"{call.lines} rows")
            if written:
                report.unresolved_applied += 1
                if call.key in foreign:
                    v.append(f"unresolved {call.op} {call.key}: {foreign[call.key][0]} ledger "
                             f"rows not by {actor} (e.g. {foreign[call.key][1]})")
            else:
                report.unresolved_not_applied += 1
    return report
