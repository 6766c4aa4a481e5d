"""Read consistency of the current operation: strong (the leader, the default) or
bounded staleness (a replica whose data is at most `max_staleness_ms` old, else
the leader), and what actually served its reads.

The GraphQL layer sets it per query operation (schema/consistency.py); the read
use cases (service/reads.py) consult it. A context variable carries it, so the
use cases' signatures stay as they are and mutations never see one.
"""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

LEADER = "leader"
REPLICA = "replica"
# A bound above an hour is a mistake, not a wish: refused as INVALID_INPUT.
MAX_STALENESS_LIMIT_MS = 3_600_000


@dataclass
class ReadConsistency:
    max_staleness_ms: int | None = None  # None: strong
    served_by: str = LEADER  # "replica" once any read was served by one
    staleness_ms: float = 0.0  # the largest staleness of any read served

    def served(self, by: str, staleness_ms: float) -> None:
        if by == REPLICA:
            self.served_by = REPLICA
        self.staleness_ms = max(self.staleness_ms, staleness_ms)

    def report(self) -> dict:
        return {"servedBy": self.served_by, "stalenessMs": round(self.staleness_ms)}


current: ContextVar[ReadConsistency | None] = ContextVar("read_consistency", default=None)


def check_bound(max_ms: object) -> str | None:
    """Why `max_ms` is not a usable bound, or None."""
    if not isinstance(max_ms, int) or isinstance(max_ms, bool):
        return "maxMs must be a whole number of milliseconds"
    if max_ms < 0:
        return "maxMs must not be negative"
    if max_ms > MAX_STALENESS_LIMIT_MS:
        return f"maxMs must be at most {MAX_STALENESS_LIMIT_MS} (one hour)"
    return None
