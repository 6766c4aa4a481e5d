"""Why stock changed: a code from a fixed list, beside the free-text `reason`
every stock mutation already takes (both are kept on the ledger row)."""
from __future__ import annotations

import enum


class Reason(str, enum.Enum):
    RECEIVED = "RECEIVED"
    CORRECTION = "CORRECTION"
    CYCLE_COUNT = "CYCLE_COUNT"
    DAMAGED = "DAMAGED"
    THEFT_OR_LOSS = "THEFT_OR_LOSS"
    RETURN = "RETURN"
    PROMOTION = "PROMOTION"
    OTHER = "OTHER"
