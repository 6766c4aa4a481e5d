"""Webhook use cases (endpoints, secrets, deliveries) and the one HTTP attempt
of a delivery: the SSRF guard, the Standard Webhooks headers and signature."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import secrets
import socket
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from standardwebhooks.webhooks import Webhook
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import webhooks as rows
from ..domain.errors import UserError, invalid, not_found
from ..domain.webhooks import (
    SECRET_PREFIX,
    CreateWebhook,
    DeliveryStatus,
    UpdateWebhook,
    WebhookSecretView,
    WebhookSettings,
    forbidden,
    forbidden_address,
)
from .context import Ctx
from .runner import execute, transact

MAX_DELIVERIES_PAGE = 500


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (empty when it does not resolve)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


async def check_target(url: str, settings: WebhookSettings) -> UserError | None:
    """FORBIDDEN_ADDRESS when any address of the URL's host is not public (and
    not in an allowed network); INVALID_INPUT when the host does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    addresses = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        return invalid("url", f"the host {host!r} does not resolve")
    if any(forbidden_address(a, settings.allowed_networks) for a in addresses):
        return forbidden(host)
    return None


async def create_webhook(ctx: Ctx, cmd: CreateWebhook, key: str | None):
    refused = cmd.validate() or await check_target(cmd.url, ctx.webhooks)
    if refused:
        return refused
    secret = new_secret()

    async def work(conn: AsyncConnection, key: str | None):
        created = await rows.insert_webhook(conn, ctx.tenant_id, cmd.url, cmd.events,
                                            cmd.description, secret)
        return WebhookSecretView(created, secret)

    return await execute(ctx, cmd, key, work)


async def update_webhook(ctx: Ctx, cmd: UpdateWebhook):
    refused = cmd.validate() or (
        None if cmd.url is None else await check_target(cmd.url, ctx.webhooks))
    if refused:
        return refused
    values = {f.name: getattr(cmd, f.name) for f in dataclasses.fields(cmd)
              if f.name != "webhook_id" and getattr(cmd, f.name) is not None}

    async def unit(conn: AsyncConnection):
        return (await rows.update_webhook(conn, ctx.tenant_id, cmd.webhook_id, values)
                or _unknown())

    return await transact(ctx, unit, idempotent=True)  # setting the same values again is harmless


async def delete_webhook(ctx: Ctx, webhook_id: UUID):
    async def unit(conn: AsyncConnection):
        return webhook_id if await rows.delete_webhook(conn, ctx.tenant_id, webhook_id) \
            else _unknown()

    return await transact(ctx, unit, idempotent=True)


async def rotate_secret(ctx: Ctx, webhook_id: UUID):
    secret = new_secret()
    until = datetime.now(timezone.utc) + timedelta(seconds=ctx.webhooks.secret_grace_s)

    async def unit(conn: AsyncConnection):
        rotated = await rows.rotate_secret(conn, ctx.tenant_id, webhook_id, secret, until)
        return WebhookSecretView(rotated, secret) if rotated else _unknown()

    return await transact(ctx, unit, idempotent=False)


async def list_webhooks(ctx: Ctx):
    async with ctx.db.reader.connect() as conn:
        return await rows.list_webhooks(conn, ctx.tenant_id)


async def list_deliveries(ctx: Ctx, webhook_id: UUID, status: DeliveryStatus | None,
                          limit: int):
    async with ctx.db.reader.connect() as conn:
        return await rows.list_deliveries(conn, ctx.tenant_id, webhook_id, status, limit)


async def redeliver(ctx: Ctx, delivery_id: UUID):
    """Queues a delivery again, with a fresh retry window."""
    deadline = datetime.now(timezone.utc) + timedelta(seconds=ctx.webhooks.retry_window_s)

    async def unit(conn: AsyncConnection):
        return (await rows.redeliver(conn, ctx.tenant_id, delivery_id, deadline)
                or not_found("deliveryId", "no webhook delivery with this id"))

    return await transact(ctx, unit, idempotent=True)


def _unknown() -> UserError:
    return not_found("id", "no webhook with this id")


# ---------------------------------------------------------------- one attempt

def signed_headers(due: rows.Due, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers: the delivery's id (the same on every attempt),
    the attempt's time, and a v1 signature per secret in force (two while a
    rotated-out secret is in its grace period)."""
    msg_id = f"msg_{due.id.hex}"
    keys = [due.secret]
    if due.previous_secret and due.previous_secret_until and due.previous_secret_until > now:
        keys.append(due.previous_secret)
    signature = " ".join(Webhook(k).sign(msg_id, now, due.payload) for k in keys)
    return {"content-type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


async def attempt(client: httpx.AsyncClient, due: rows.Due, settings: WebhookSettings
                  ) -> tuple[bool, int | None, str]:
    """Sends one delivery once: (delivered, HTTP status, error). The target is
    checked again at each attempt (its DNS may have changed since it was
    created); redirects are not followed (they could lead anywhere)."""
    parts = urlsplit(due.url)
    addresses = await resolve(parts.hostname or "",
                              parts.port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        return False, None, f"{parts.hostname} does not resolve"
    if any(forbidden_address(a, settings.allowed_networks) for a in addresses):
        return False, None, f"{parts.hostname} resolves to a forbidden address"
    try:
        response = await client.post(due.url, content=due.payload.encode(),
                                     headers=signed_headers(due, datetime.now(timezone.utc)))
    except (httpx.HTTPError, OSError) as error:
        return False, None, f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return True, response.status_code, ""
    return False, response.status_code, f"HTTP {response.status_code}"
