"""`inventory import levels FILE.csv`: stock levels from a spreadsheet.

Columns: `sku`, `locationCode`, then `onHand` (set the level) or `delta`
(adjust it), and optionally `reason`. The file is read twice, streamed: first
every row is checked (numbers, names, that its sku and location exist) and
nothing is written if any row is bad; then the rows are applied through the
`bulkSetStock` / `bulkAdjustStock` use case, a thousand at a time, each request
with an idempotency key made of the file's SHA-256 and its lines, so running
the same file again changes nothing (an edited file is a new file: all its rows
apply again).
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..db import queries
from ..domain.commands import AdjustStock, SetStock
from ..domain.errors import UserError
from .context import Ctx
from ..domain.bulk import BulkLine, BulkStock, ErrorPolicy
from .bulk import bulk_stock

REQUIRED = ("sku", "locationCode")
QUANTITY = ("onHand", "delta")
OPTIONAL = ("reason",)
LOOKUP_BATCH = 1000
CHUNK = 1000  # rows per bulk request when applying
Progress = Callable[[int, int], None]  # (bytes read, file size)


class BadFile(ValueError):
    """The file as a whole cannot be imported (its header, its encoding)."""


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Row:
    line: int
    command: SetStock | AdjustStock


@dataclass
class Summary:
    rows: int = 0
    applied: int = 0
    problems: list[Problem] | None = None


def _header(fields: list[str] | None) -> str:
    """The quantity column the header names; BadFile for any other header."""
    fields = [f.strip() for f in fields or []]
    quantity = [f for f in fields if f in QUANTITY]
    unknown = [f for f in fields if f not in (*REQUIRED, *QUANTITY, *OPTIONAL)]
    if (unknown or len(quantity) != 1 or any(r not in fields for r in REQUIRED)
            or len(set(fields)) != len(fields)):
        raise BadFile(f"line 1: the header must be sku,locationCode,onHand or "
                      f"sku,locationCode,delta, optionally with reason; got {','.join(fields)!r}")
    return quantity[0]


def rows(path: Path, progress: Progress | None = None) -> Iterator[Row | Problem]:
    """Each data row as a command, or the problem with it (line numbers are the
    file's, the header being line 1)."""
    size = path.stat().st_size
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text, skipinitialspace=True)
        try:
            column = _header(reader.fieldnames)
            for record in reader:
                if progress and reader.line_num % 1000 == 0:
                    progress(raw.tell(), size)
                yield _row(reader.line_num, record, column)
        except UnicodeDecodeError as error:
            raise BadFile(f"line {reader.line_num + 1}: not UTF-8 ({error.reason})") from None
        except csv.Error as error:
            raise BadFile(f"line {reader.line_num}: {error}") from None
        if progress:
            progress(size, size)


def _row(line: int, record: dict, column: str) -> Row | Problem:
    if None in record or any(v is None for v in record.values()):
        return Problem(line, "wrong number of fields")
    sku, code = record["sku"].strip(), record["locationCode"].strip()
    raw = record[column].strip()
    reason = (record.get("reason") or "").strip() or None
    try:
        quantity = int(raw)
    except ValueError:
        return Problem(line, f"{column} {raw!r} is not a whole number")
    command = (SetStock(sku=sku, location_code=code, on_hand=quantity, reason=reason)
               if column == "onHand" else
               AdjustStock(sku=sku, location_code=code, delta=quantity, reason=reason))
    error = command.validate()
    if error:
        return Problem(line, f"{error.field}: {error.message}")
    return Row(line, command)


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


async def check(ctx: Ctx, path: Path, progress: Progress | None = None) -> Summary:
    """Every problem of the file (nothing is written)."""
    summary = Summary(problems=[])
    pending: list[Row] = []

    async def unknown_names() -> None:
        async with ctx.db.reader.connect() as conn:
            items, locs = await queries.resolve(
                conn, ctx.tenant_id, {r.command.sku for r in pending},
                {r.command.location_code for r in pending})
        for r in pending:
            if r.command.sku not in items:
                summary.problems.append(Problem(r.line, f"unknown sku {r.command.sku!r}"))
            elif r.command.location_code not in locs:
                summary.problems.append(
                    Problem(r.line, f"unknown locationCode {r.command.location_code!r}"))
        pending.clear()

    for found in rows(path, progress):
        summary.rows += 1
        if isinstance(found, Problem):
            summary.problems.append(found)
            continue
        pending.append(found)
        if len(pending) >= LOOKUP_BATCH:
            await unknown_names()
    if pending:
        await unknown_names()
    summary.problems.sort(key=lambda p: p.line)
    return summary


async def apply(ctx: Ctx, path: Path, progress: Progress | None = None) -> Summary:
    """Applies the rows (after `check` found no problem) through the bulk use
    case, up to CHUNK rows a request (a new request also when a level comes
    again, so each level's rows apply in file order), each request keyed by the
    file's hash and its first and last line. Rows the stock rules refuse (a
    delta below what is reserved) are problems; the others apply."""
    prefix = f"import:{digest(path)[:40]}:"
    summary = Summary(problems=[])
    chunk: list[Row] = []
    levels: set[tuple[str, str]] = set()

    async def flush() -> None:
        adjust = isinstance(chunk[0].command, AdjustStock)
        cmd = BulkStock(lines=tuple(
            BulkLine(r.command.sku, r.command.location_code,
                     r.command.delta if adjust else r.command.on_hand, r.command.reason)
            for r in chunk), error_policy=ErrorPolicy.SKIP_FAILED, adjust=adjust)
        result = await bulk_stock(ctx, cmd, f"{prefix}{chunk[0].line}-{chunk[-1].line}")
        if isinstance(result, UserError):  # the whole request (contention, outage)
            summary.problems.extend(Problem(r.line, f"{result.code.value}: {result.message}")
                                    for r in chunk)
        else:
            for row, line in zip(chunk, result.lines):
                if line.error is not None:
                    summary.problems.append(
                        Problem(row.line, f"{line.error.code.value}: {line.error.message}"))
                else:
                    summary.applied += 1
        chunk.clear()
        levels.clear()

    for row in rows(path, progress):
        summary.rows += 1
        if isinstance(row, Problem):  # the file changed since it was checked
            summary.problems.append(row)
            continue
        level = (row.command.sku, row.command.location_code)
        if chunk and (level in levels or len(chunk) >= CHUNK):
            await flush()
        chunk.append(row)
        levels.add(level)
    if chunk:
        await flush()
    return summary
