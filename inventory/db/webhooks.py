"""Webhook rows: endpoints, deliveries, and the dispatcher's cursor and lease.

Every statement is plain SQL both engines accept. Deliveries are inserted with
ON CONFLICT DO NOTHING on (tenant, endpoint, event key): the dispatcher may read
a stretch of the ledger twice (after a crash, a lost lease, a failover) and
each event is still queued once per endpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.webhooks import DeliveryStatus, DeliveryView, WebhookView
from .tables import movements, webhook_deliveries, webhook_dispatch, webhooks
from .upsert import insert as pg_insert

wh, dl = webhooks, webhook_deliveries
DISPATCHER = "ledger"  # the one row of webhook_dispatch
_VIEW = (wh.c.id, wh.c.url, wh.c.events, wh.c.description, wh.c.enabled, wh.c.failure_streak,
         wh.c.created_at, wh.c.updated_at)


def _view(row: Any) -> WebhookView:
    return WebhookView(row.id, row.url, tuple(row.events.split(",")), row.description,
                       row.enabled, row.failure_streak, row.created_at, row.updated_at)


def _delivery(row: Any) -> DeliveryView:
    return DeliveryView(row.id, row.webhook_id, row.seq, row.event, row.payload,
                        DeliveryStatus(row.status), row.attempts, row.next_attempt_at,
                        row.deadline, row.last_status_code, row.last_error, row.created_at,
                        row.delivered_at)


# ---------------------------------------------------------------- endpoints

async def insert_webhook(conn: AsyncConnection, tenant_id: UUID, url: str,
                         events: tuple[str, ...], description: str | None,
                         secret: str) -> WebhookView:
    row = (await conn.execute(
        wh.insert().values(tenant_id=tenant_id, url=url, events=",".join(events),
                           description=description, secret=secret).returning(*_VIEW))).one()
    return _view(row)


async def list_webhooks(conn: AsyncConnection, tenant_id: UUID) -> list[WebhookView]:
    rows = await conn.execute(select(*_VIEW).where(wh.c.tenant_id == tenant_id)
                              .order_by(wh.c.created_at, wh.c.id))
    return [_view(r) for r in rows]


async def update_webhook(conn: AsyncConnection, tenant_id: UUID, webhook_id: UUID,
                         values: dict[str, Any]) -> WebhookView | None:
    if values.get("enabled"):
        values = {**values, "failure_streak": 0}  # re-enabled: a fresh start
    if "events" in values:
        values = {**values, "events": ",".join(values["events"])}
    row = (await conn.execute(
        update(wh).where(wh.c.tenant_id == tenant_id, wh.c.id == webhook_id)
        .values(**values, updated_at=func.now()).returning(*_VIEW))).first()
    return _view(row) if row else None


async def rotate_secret(conn: AsyncConnection, tenant_id: UUID, webhook_id: UUID,
                        secret: str, previous_until: datetime) -> WebhookView | None:
    """The new secret signs from now on; the old one also signs until
    `previous_until`, so receivers can switch without missing a delivery."""
    row = (await conn.execute(
        update(wh).where(wh.c.tenant_id == tenant_id, wh.c.id == webhook_id)
        .values(previous_secret=wh.c.secret, previous_secret_until=previous_until,
                secret=secret, updated_at=func.now()).returning(*_VIEW))).first()
    return _view(row) if row else None


async def delete_webhook(conn: AsyncConnection, tenant_id: UUID, webhook_id: UUID) -> bool:
    await conn.execute(delete(dl).where(dl.c.tenant_id == tenant_id,
                                        dl.c.webhook_id == webhook_id))
    gone = await conn.execute(delete(wh).where(wh.c.tenant_id == tenant_id,
                                               wh.c.id == webhook_id))
    return gone.rowcount > 0


# ---------------------------------------------------------------- deliveries

async def list_deliveries(conn: AsyncConnection, tenant_id: UUID, webhook_id: UUID,
                          status: DeliveryStatus | None, limit: int) -> list[DeliveryView]:
    """Newest first."""
    query = select(dl).where(dl.c.tenant_id == tenant_id, dl.c.webhook_id == webhook_id)
    if status is not None:
        query = query.where(dl.c.status == status.value)
    rows = await conn.execute(query.order_by(dl.c.seq.desc()).limit(limit))
    return [_delivery(r) for r in rows]


async def redeliver(conn: AsyncConnection, tenant_id: UUID, delivery_id: UUID,
                    deadline: datetime) -> DeliveryView | None:
    """Queues a delivery again (same webhook-id, so receivers can drop a repeat)."""
    row = (await conn.execute(
        update(dl).where(dl.c.tenant_id == tenant_id, dl.c.id == delivery_id)
        .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=func.now(),
                deadline=deadline, last_error=None, delivered_at=None)
        .returning(*dl.c))).first()
    return _delivery(row) if row else None


# ---------------------------------------------------------------- dispatcher

@dataclass(frozen=True)
class Endpoint:
    tenant_id: UUID
    id: UUID
    events: frozenset[str]
    next_seq: int


async def enabled_endpoints(conn: AsyncConnection, tenant_ids: list[UUID]
                            ) -> list[Endpoint]:
    rows = await conn.execute(
        select(wh.c.tenant_id, wh.c.id, wh.c.events, wh.c.next_seq)
        .where(wh.c.tenant_id.in_(tenant_ids), wh.c.enabled)
        .order_by(wh.c.tenant_id, wh.c.id))
    return [Endpoint(r.tenant_id, r.id, frozenset(r.events.split(",")), r.next_seq)
            for r in rows]


async def tenants_with_endpoints(conn: AsyncConnection, tenant_ids: list[UUID]) -> set[UUID]:
    rows = await conn.execute(select(wh.c.tenant_id).distinct()
                              .where(wh.c.tenant_id.in_(tenant_ids), wh.c.enabled))
    return {r.tenant_id for r in rows}


async def queue_deliveries(conn: AsyncConnection, rows: list[dict],
                           next_seqs: dict[tuple[UUID, UUID], int]) -> None:
    """Inserts deliveries (tenant_id, webhook_id, seq, event, event_key, payload,
    deadline) not queued before, and moves each endpoint's sequence on."""
    if rows:
        await conn.execute(pg_insert(dl).values(rows).on_conflict_do_nothing(
            index_elements=["tenant_id", "webhook_id", "event_key"]))
    for (tenant_id, webhook_id), seq in sorted(next_seqs.items()):
        await conn.execute(update(wh).where(wh.c.tenant_id == tenant_id, wh.c.id == webhook_id)
                           .values(next_seq=seq))


async def reservations_of(conn: AsyncConnection, tenant_id: UUID,
                          versions: list[tuple[UUID, UUID, int]]) -> dict[tuple, UUID]:
    """(item, location, version) of ledger rows -> the reservation they moved."""
    if not versions:
        return {}
    mv = movements
    rows = await conn.execute(
        select(mv.c.item_id, mv.c.location_id, mv.c.version, mv.c.reservation_id)
        .where(mv.c.tenant_id == tenant_id,
               tuple_(mv.c.item_id, mv.c.location_id, mv.c.version).in_(versions)))
    return {(r.item_id, r.location_id, r.version): r.reservation_id
            for r in rows if r.reservation_id is not None}


async def take_lease(conn: AsyncConnection, holder: str, lease_s: float
                     ) -> tuple[bool, str | None]:
    """(holds the lease now, the stored cursor). Taken when free, expired or
    already this holder's."""
    await conn.execute(pg_insert(webhook_dispatch).values(name=DISPATCHER)
                       .on_conflict_do_nothing(index_elements=["name"]))
    row = (await conn.execute(
        update(webhook_dispatch)
        .where(webhook_dispatch.c.name == DISPATCHER,
               (webhook_dispatch.c.holder == holder) | webhook_dispatch.c.holder.is_(None)
               | (webhook_dispatch.c.lease_until < func.now()))
        .values(holder=holder, lease_until=_after(lease_s))
        .returning(webhook_dispatch.c.ledger_cursor))).first()
    return (row is not None, row.ledger_cursor if row else None)


async def renew_lease(conn: AsyncConnection, holder: str, lease_s: float,
                      cursor: str | None = None) -> bool:
    """Extends the lease (and stores `cursor` when given) if `holder` still has
    it; False when another process took it over."""
    values: dict[str, Any] = {"lease_until": _after(lease_s)}
    if cursor is not None:
        values["ledger_cursor"] = cursor
    done = await conn.execute(
        update(webhook_dispatch)
        .where(webhook_dispatch.c.name == DISPATCHER, webhook_dispatch.c.holder == holder)
        .values(**values))
    return done.rowcount == 1


async def release_lease(conn: AsyncConnection, holder: str) -> None:
    await conn.execute(
        update(webhook_dispatch)
        .where(webhook_dispatch.c.name == DISPATCHER, webhook_dispatch.c.holder == holder)
        .values(holder=None, lease_until=None))


def _after(seconds: float):
    return func.now() + text(f"CAST('{float(seconds)} seconds' AS INTERVAL)")


# ---------------------------------------------------------------- sender

@dataclass(frozen=True)
class Due:
    """An endpoint's oldest pending delivery, due now, with what sending needs."""

    tenant_id: UUID
    id: UUID
    webhook_id: UUID
    payload: str
    attempts: int
    deadline: datetime
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None


async def due_deliveries(conn: AsyncConnection, limit: int) -> list[Due]:
    """Per enabled endpoint, its oldest pending delivery if it is due: a later
    one never overtakes it (deliveries go out in order per endpoint)."""
    older = dl.alias("older")
    head = (select(func.min(older.c.seq)).where(
        older.c.tenant_id == wh.c.tenant_id, older.c.webhook_id == wh.c.id,
        older.c.status == DeliveryStatus.PENDING.value).scalar_subquery())
    rows = await conn.execute(
        select(dl.c.tenant_id, dl.c.id, dl.c.webhook_id, dl.c.payload, dl.c.attempts,
               dl.c.deadline, wh.c.url, wh.c.secret, wh.c.previous_secret,
               wh.c.previous_secret_until)
        .select_from(wh.join(dl, and_(dl.c.tenant_id == wh.c.tenant_id,
                                      dl.c.webhook_id == wh.c.id)))
        .where(wh.c.enabled, dl.c.status == DeliveryStatus.PENDING.value, dl.c.seq == head,
               dl.c.next_attempt_at <= func.now())
        .limit(limit))
    return [Due(*r) for r in rows]


async def delivered(conn: AsyncConnection, due: Due, status_code: int) -> None:
    await conn.execute(
        update(dl).where(dl.c.tenant_id == due.tenant_id, dl.c.id == due.id,
                         dl.c.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.DELIVERED.value, attempts=dl.c.attempts + 1,
                last_status_code=status_code, last_error=None, delivered_at=func.now()))
    await conn.execute(
        update(wh).where(wh.c.tenant_id == due.tenant_id, wh.c.id == due.webhook_id,
                         wh.c.failure_streak != 0)
        .values(failure_streak=0))


async def attempt_failed(conn: AsyncConnection, due: Due, status_code: int | None,
                         error: str, retry_at: datetime | None, disable_after: int) -> None:
    """Schedules the next attempt, or (retry_at None) marks the delivery failed
    and counts it against its endpoint, disabling it at `disable_after` in a row."""
    values: dict[str, Any] = dict(attempts=dl.c.attempts + 1, last_status_code=status_code,
                                  last_error=error[:500])
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    else:
        values["status"] = DeliveryStatus.FAILED.value
    done = await conn.execute(
        update(dl).where(dl.c.tenant_id == due.tenant_id, dl.c.id == due.id,
                         dl.c.status == DeliveryStatus.PENDING.value).values(**values))
    if retry_at is None and done.rowcount:
        await conn.execute(
            update(wh).where(wh.c.tenant_id == due.tenant_id, wh.c.id == due.webhook_id)
            .values(failure_streak=wh.c.failure_streak + 1,
                    enabled=wh.c.failure_streak + 1 < disable_after))
