"""Webhook resolvers: input -> command -> use case -> payload."""
from __future__ import annotations

from typing import Optional
from uuid import UUID

import strawberry
from strawberry.types import Info

from ..domain import ids
from ..domain.errors import invalid
from ..domain.webhooks import CreateWebhook, UpdateWebhook
from ..schema.webhooks import (
    CreateWebhookInput,
    DeleteWebhookInput,
    RedeliverWebhookInput,
    RotateWebhookSecretInput,
    UpdateWebhookInput,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from ..service import webhooks
from .errors import invalid_argument
from .mutations import payload
from .queries import MAX_PAGE


def _id(type_name: str, global_id: str) -> UUID | None:
    try:
        return ids.decode_as(type_name, global_id)[0]
    except ids.MalformedId:
        return None


def _malformed(field: str, type_name: str):
    return payload(invalid(field, f"{field} is not a {type_name} id"))


async def create_webhook(info: Info, input: CreateWebhookInput):
    cmd = CreateWebhook(url=input.url, events=tuple(input.events),
                        description=input.description)
    return payload(await webhooks.create_webhook(info.context.ctx, cmd, input.idempotency_key))


async def update_webhook(info: Info, input: UpdateWebhookInput):
    webhook_id = _id("Webhook", input.id)
    if webhook_id is None:
        return _malformed("id", "Webhook")
    cmd = UpdateWebhook(webhook_id=webhook_id, url=input.url,
                        events=None if input.events is None else tuple(input.events),
                        description=input.description, enabled=input.enabled)
    return payload(await webhooks.update_webhook(info.context.ctx, cmd))


async def _on(type_name: str, field: str, global_id: str, use_case, info: Info):
    """`use_case(ctx, id)` for the id of `type_name` the input names."""
    found = _id(type_name, global_id)
    if found is None:
        return _malformed(field, type_name)
    return payload(await use_case(info.context.ctx, found))


async def delete_webhook(info: Info, input: DeleteWebhookInput):
    return await _on("Webhook", "id", input.id, webhooks.delete_webhook, info)


async def rotate_webhook_secret(info: Info, input: RotateWebhookSecretInput):
    return await _on("Webhook", "id", input.id, webhooks.rotate_secret, info)


async def redeliver_webhook(info: Info, input: RedeliverWebhookInput):
    return await _on("WebhookDelivery", "deliveryId", input.delivery_id, webhooks.redeliver,
                     info)


async def list_webhooks(info: Info) -> list[Webhook]:
    return [Webhook.of(v) for v in await webhooks.list_webhooks(info.context.ctx)]


async def webhook_deliveries(info: Info, webhook_id: strawberry.ID,
                             status: Optional[WebhookDeliveryStatus] = None,
                             first: int = 50) -> list[WebhookDelivery]:
    """Newest first."""
    found = _id("Webhook", webhook_id)
    if found is None:
        raise invalid_argument("webhookId", "webhookId is not a Webhook id")
    if not 0 <= first <= MAX_PAGE:
        raise invalid_argument("first", f"first must be between 0 and {MAX_PAGE}")
    return [WebhookDelivery.of(v) for v in
            await webhooks.list_deliveries(info.context.ctx, found, status, first)]
