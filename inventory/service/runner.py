"""Runs a validated command as one idempotent, retried, SERIALIZABLE transaction.

The idempotency record is written in the same transaction as the effect, so a
key takes effect at most once; its stored result is what every replay returns.
`execute` claims the key first (inserts its record, then runs the work, then
stores the result in it): a failed work rolls the claim back with everything
else, and no transaction reads the keys' index before writing it, which under
SERIALIZABLE made concurrent requests with different keys conflict.
Typed rejections (e.g. INSUFFICIENT_STOCK) are results too: they commit the key
so a replay gets the same answer.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Awaitable, Callable
from uuid import UUID

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import queries
from ..db.dialect import NUMERIC_OUT_OF_RANGE
from ..db.retry import (
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    RetriesExhausted,
    RetryTransaction,
    run_transaction,
    sqlstate_of,
)
from ..domain import codec
from ..domain.commands import Command, validate_idempotency_key
from ..domain.errors import ErrorCode, Rejected, UserError
from .context import Ctx

log = logging.getLogger(__name__)
Work = Callable[[AsyncConnection], Awaitable[Any]]


def request_hash(command: Command) -> str:
    canonical = json.dumps(command.canonical(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def replay_many(conn: AsyncConnection, tenant_id: UUID,
                      wanted: list[tuple[Command, str, str]]) -> list[Any | None]:
    """For each (command, key, fingerprint), in one statement: the stored
    answer when the key was used before (IDEMPOTENCY_KEY_REUSED when it was
    used for a different request); None when no record of it is seen."""
    found = await queries.find_idempotency_records(conn, tenant_id, [k for _, k, _ in wanted])
    answers: list[Any | None] = []
    for command, key, fingerprint in wanted:
        if key not in found:
            answers.append(None)
            continue
        operation, stored_hash, stored = found[key]
        if operation != command.operation or stored_hash != fingerprint:
            answers.append(key_reused(key, operation))
        else:
            answers.append(codec.load(stored))
    return answers


def key_reused(key: str, operation: str) -> UserError:
    return UserError(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        f"idempotencyKey {key!r} was already used for a different "
        f"request ({operation}); use a new key for a new request",
        field="idempotencyKey",
    )


async def claim(conn: AsyncConnection, tenant_id: UUID,
                wanted: list[tuple[Command, str, str]]) -> list[Any | None]:
    """Claims the keys of (command, key, fingerprint) before the work they
    guard, in one statement (their records are inserted; `store` writes the
    answers in the same transaction, `release` gives back a key left unused):
    None for each one whose key it claimed (every copy of a key given twice,
    of which the first is recorded), else what a replay answers (the stored
    result, or IDEMPOTENCY_KEY_REUSED for a different request). A key taken
    by a transaction this snapshot does not see runs the whole unit again
    (RetryTransaction), which then replays it."""
    records: dict[str, tuple[str, str, str]] = {}
    for command, key, fingerprint in wanted:
        records.setdefault(key, (key, command.operation, fingerprint))
    claimed = await queries.claim_idempotency_keys(conn, tenant_id, list(records.values()))
    taken = [w for w in wanted if w[1] not in claimed]
    replays = iter(await replay_many(conn, tenant_id, taken))
    answers: list[Any | None] = []
    for _, key, _ in wanted:
        if key in claimed:
            answers.append(None)
        elif (answer := next(replays)) is None:  # committed after this snapshot began
            raise RetryTransaction()
        else:
            answers.append(answer)
    return answers


async def store(conn: AsyncConnection, tenant_id: UUID, answers: list[tuple[str, Any]]) -> None:
    """The (key, result) answers of keys `claim` claimed in this transaction."""
    await queries.store_idempotency_results(
        conn, tenant_id, [(key, codec.dump(result)) for key, result in answers])


async def release(conn: AsyncConnection, tenant_id: UUID, keys: list[str]) -> None:
    """Gives back keys `claim` claimed in this transaction whose requests are
    not answered by it: nothing stays recorded under them."""
    await queries.release_idempotency_keys(conn, tenant_id, keys)


async def execute(
    ctx: Ctx,
    command: Command,
    idempotency_key: str | None,
    work: Callable[[AsyncConnection, str | None], Awaitable[Any]],
) -> Any:
    """Validates, then runs `work(conn, key)` in the retry runner; returns the
    domain result or a `UserError` (never raises for expected failures)."""
    error = command.validate() or validate_idempotency_key(idempotency_key)
    if error:
        return error
    fingerprint = request_hash(command) if idempotency_key else ""

    async def unit(conn: AsyncConnection) -> Any:
        if idempotency_key:
            (found,) = await claim(conn, ctx.tenant_id, [(command, idempotency_key, fingerprint)])
            if found is not None:
                return found
        result = await work(conn, idempotency_key)
        if idempotency_key:
            await store(conn, ctx.tenant_id, [(idempotency_key, result)])
        return result

    return await transact(ctx, unit, idempotent=idempotency_key is not None)


async def transact(ctx: Ctx, unit: Work, *, idempotent: bool,
                   single_statement: bool = False) -> Any:
    """Runs `unit` as one retried SERIALIZABLE transaction; expected failures
    come back as a `UserError`. `single_statement`: see `run_transaction`.
    Nothing is announced: the change feed reads committed ledger rows."""
    try:
        return await run_transaction(ctx.db, unit, idempotent=idempotent,
                                     single_statement=single_statement)
    except Rejected as rejected:
        return rejected.error
    except RetriesExhausted as exc:
        return UserError(
            ErrorCode.TRANSACTION_CONFLICT,
            f"too much contention: the transaction conflicted {exc.attempts} times; "
            "retry the request (with the same idempotencyKey)",
            retry_after_ms=50,
        )
    except DatabaseUnavailable as exc:
        log.warning("database unavailable: %s", exc)
        return UserError(
            ErrorCode.UNAVAILABLE,
            "the database is unavailable; retry shortly (with the same idempotencyKey)",
            retry_after_ms=1000,
        )
    except CommitOutcomeUnknown:
        return UserError(
            ErrorCode.RESULT_UNKNOWN,
            "the database connection was lost while committing, so the outcome is unknown; "
            "check the state before retrying, or always send an idempotencyKey so that "
            "retries are safe",
        )
    except sa_exc.DBAPIError as exc:
        if sqlstate_of(exc) == NUMERIC_OUT_OF_RANGE:
            return UserError(
                ErrorCode.INVALID_INPUT,
                "the resulting quantity would exceed the largest storable value",
                field="quantity",
            )
        raise
