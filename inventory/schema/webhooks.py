"""Webhook types and inputs (docs/webhooks.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional
from uuid import UUID

import strawberry

from ..domain import ids
from ..domain.webhooks import DeliveryStatus as DomainDeliveryStatus
from ..domain.webhooks import DeliveryView, WebhookSecretView, WebhookView

WebhookDeliveryStatus = strawberry.enum(DomainDeliveryStatus, name="WebhookDeliveryStatus")
_EVENTS = ("Event names: stock_level.changed, stock_level.low, stock_level.out_of_stock, "
           "stock_level.back_in_stock, reservation.expired.")


@strawberry.type(description="An endpoint that receives signed events (Standard Webhooks).")
class Webhook:
    id: strawberry.ID
    url: str
    events: list[str] = strawberry.field(description=_EVENTS)
    description: Optional[str]
    enabled: bool = strawberry.field(description="false once disabled after repeated failed "
                                                 "deliveries (or by updateWebhook)")
    failure_streak: int = strawberry.field(description="Deliveries FAILED in a row.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, v: WebhookView) -> "Webhook":
        return cls(id=strawberry.ID(ids.encode("Webhook", v.id)), url=v.url,
                   events=list(v.events), description=v.description, enabled=v.enabled,
                   failure_streak=v.failure_streak, created_at=v.created_at,
                   updated_at=v.updated_at)


@strawberry.type(description="A webhook with its signing secret, shown only by "
                             "createWebhook and rotateWebhookSecret: store it then.")
class WebhookSecret:
    webhook: Webhook
    secret: str = strawberry.field(description="whsec_<base64>: verify signatures with it "
                                               "(any Standard Webhooks library).")

    @classmethod
    def of(cls, v: WebhookSecretView) -> "WebhookSecret":
        return cls(webhook=Webhook.of(v.webhook), secret=v.secret)


@strawberry.type
class DeletedWebhook:
    id: strawberry.ID

    @classmethod
    def of(cls, webhook_id: UUID) -> "DeletedWebhook":
        return cls(id=strawberry.ID(ids.encode("Webhook", webhook_id)))


@strawberry.type(description="One event for one endpoint and its attempts so far.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Also sent as webhook-id (msg_<hex>).")
    webhook_id: strawberry.ID
    sequence: int = strawberry.field(description="Deliveries of an endpoint go out in this "
                                                 "order.")
    event: str
    payload: str = strawberry.field(description="The JSON body, as signed.")
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime
    deadline: datetime = strawberry.field(description="Retried until then, then FAILED.")
    last_status_code: Optional[int]
    last_error: Optional[str]
    created_at: datetime
    delivered_at: Optional[datetime]

    @classmethod
    def of(cls, v: DeliveryView) -> "WebhookDelivery":
        return cls(id=strawberry.ID(ids.encode("WebhookDelivery", v.id)),
                   webhook_id=strawberry.ID(ids.encode("Webhook", v.webhook_id)),
                   sequence=v.seq, event=v.event, payload=v.payload, status=v.status,
                   attempts=v.attempts, next_attempt_at=v.next_attempt_at, deadline=v.deadline,
                   last_status_code=v.last_status_code, last_error=v.last_error,
                   created_at=v.created_at, delivered_at=v.delivered_at)


_KEY = "Makes the mutation safe to retry: a replay returns the first result."


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(description="http(s) URL; private, loopback and link-local "
                                            "addresses are refused unless the operator "
                                            "allows them.")
    events: list[str] = strawberry.field(description=_EVENTS)
    description: Optional[str] = None
    idempotency_key: Optional[str] = strawberry.field(default=None, description=_KEY)


@strawberry.input
class UpdateWebhookInput:
    id: strawberry.ID
    url: Optional[str] = None
    events: Optional[list[str]] = None
    description: Optional[str] = None
    enabled: Optional[bool] = strawberry.field(
        default=None, description="true re-enables a disabled endpoint (its failure streak "
                                  "starts again at 0).")


@strawberry.input
class DeleteWebhookInput:
    id: strawberry.ID


@strawberry.input
class RotateWebhookSecretInput:
    id: strawberry.ID


@strawberry.input
class RedeliverWebhookInput:
    delivery_id: strawberry.ID
