"""Checks the invariants against the database itself: every stock level equals
the sum of its ledger rows, `reserved` equals its ACTIVE reservation lines,
and no quantity is negative. Returns human-readable discrepancies (empty = good).
"""
from __future__ import annotations

from sqlalchemy import Connection, text

# Each query returns rows describing violations only.
CHECKS: dict[str, str] = {
    "level differs from ledger sums": """
        SELECT l.tenant_id, l.item_id, l.location_id, l.on_hand, l.reserved, l.version,
               COALESCE(SUM(m.on_hand_delta), 0) AS ledger_on_hand,
               COALESCE(SUM(m.reserved_delta), 0) AS ledger_reserved,
               COUNT(m.id) AS ledger_rows
        FROM stock_levels l
        LEFT JOIN movements m ON m.tenant_id = l.tenant_id AND m.item_id = l.item_id
                              AND m.location_id = l.location_id
        GROUP BY l.tenant_id, l.item_id, l.location_id, l.on_hand, l.reserved, l.version
        HAVING l.on_hand <> COALESCE(SUM(m.on_hand_delta), 0)
            OR l.reserved <> COALESCE(SUM(m.reserved_delta), 0)
            OR l.version <> COUNT(m.id)
    """,
    "reserved differs from active reservation lines": """
        SELECT l.tenant_id, l.item_id, l.location_id, l.reserved, COALESCE(a.held, 0) AS held
        FROM stock_levels l
        LEFT JOIN (
            SELECT rl.tenant_id, rl.item_id, rl.location_id, SUM(rl.quantity) AS held
            FROM reservation_lines rl
            JOIN reservations r ON r.tenant_id = rl.tenant_id AND r.id = rl.reservation_id
            WHERE r.status = 'ACTIVE'
            GROUP BY rl.tenant_id, rl.item_id, rl.location_id
        ) a ON a.tenant_id = l.tenant_id AND a.item_id = l.item_id AND a.location_id = l.location_id
        WHERE l.reserved <> COALESCE(a.held, 0)
    """,
    "negative quantity": """
        SELECT tenant_id, item_id, location_id, on_hand, reserved FROM stock_levels
        WHERE on_hand < 0 OR reserved < 0 OR on_hand < reserved
    """,
    "ledger rows for a level that does not exist": """
        SELECT m.tenant_id, m.item_id, m.location_id, COUNT(*) AS n FROM movements m
        LEFT JOIN stock_levels l ON l.tenant_id = m.tenant_id AND l.item_id = m.item_id
                                AND l.location_id = m.location_id
        WHERE l.item_id IS NULL
        GROUP BY m.tenant_id, m.item_id, m.location_id
    """,
}


def discrepancies(conn: Connection) -> list[str]:
    found = []
    for name, sql in CHECKS.items():
        for row in conn.execute(text(sql)):
            found.append(f"{name}: {dict(row._mapping)}")
    return found
