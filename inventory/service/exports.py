"""Exports as CSV or JSON lines, streamed: `inventory export` and the HTTP
routes /export/levels.csv, /export/movements.jsonl (and the other two pairings)
write what `encoded` yields, chunk by chunk."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, AsyncIterator
from uuid import UUID

import orjson

from ..db import export
from ..domain import ids
from .context import Ctx

WHAT = ("levels", "movements")
FORMATS = ("csv", "jsonl")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_GLOBAL_IDS = {"id": "Movement", "reservationId": "Reservation"}


class BadExport(ValueError):
    """What the caller asked for cannot be exported (unknown kind, format or time)."""


def parse_since(text: str | None) -> datetime | None:
    """ISO 8601 with a time zone (2026-11-29T10:00:00Z), or None."""
    if not text:
        return None
    try:
        since = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadExport(f"since {text!r} is not an ISO 8601 time") from None
    if since.tzinfo is None:
        raise BadExport(f"since {text!r} needs a time zone (e.g. 2026-11-29T10:00:00Z)")
    return since


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, UUID):
        return ids.encode(_GLOBAL_IDS[name], value) if name in _GLOBAL_IDS else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def encoded(ctx: Ctx, what: str, fmt: str, since: datetime | None = None
                  ) -> AsyncIterator[bytes]:
    """The export, a chunk of rows per bytes yielded (CSV with a header row)."""
    if what not in WHAT or fmt not in FORMATS:
        raise BadExport(f"export {what}.{fmt}: use levels or movements, csv or jsonl")
    if what == "levels":
        columns, query = export.LEVEL_COLUMNS, export.levels_query(ctx.tenant_id)
    else:
        columns, query = export.MOVEMENT_COLUMNS, export.movements_query(ctx.tenant_id, since)
    names = [name for name, _ in columns]
    if fmt == "csv":
        yield _csv([names])
    async for rows in export.stream(ctx.db.reader, query):
        plain = [[_plain(n, v) for n, v in zip(names, row)] for row in rows]
        if fmt == "csv":
            yield _csv(plain)
        else:
            yield b"".join(orjson.dumps(dict(zip(names, row))) + b"\n" for row in plain)


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()
