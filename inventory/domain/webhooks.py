"""Webhooks in the domain: the events, what a valid endpoint is, which target
addresses are allowed, the retry schedule, and the views use cases return.

Pure Python: resolving a host name is I/O and happens in the service
(service/webhooks.py), which then asks `forbidden_address` about each address.
"""
from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable
from urllib.parse import urlsplit
from uuid import UUID

from .commands import Command, _optional_text, first_error
from .errors import ErrorCode, UserError, invalid

MAX_URL = 2000
SECRET_PREFIX = "whsec_"


class WebhookEvent(str, enum.Enum):
    STOCK_LEVEL_CHANGED = "stock_level.changed"
    STOCK_LEVEL_LOW = "stock_level.low"
    STOCK_LEVEL_OUT_OF_STOCK = "stock_level.out_of_stock"
    STOCK_LEVEL_BACK_IN_STOCK = "stock_level.back_in_stock"
    RESERVATION_EXPIRED = "reservation.expired"


EVENT_NAMES = tuple(e.value for e in WebhookEvent)


class DeliveryStatus(str, enum.Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


def level_events(available_before: int, available: int, reorder_point: int
                 ) -> list[WebhookEvent]:
    """The events one new version of a stock level raises, in the order sent."""
    found = [WebhookEvent.STOCK_LEVEL_CHANGED]
    if available <= reorder_point < available_before:
        found.append(WebhookEvent.STOCK_LEVEL_LOW)
    if available == 0 < available_before:
        found.append(WebhookEvent.STOCK_LEVEL_OUT_OF_STOCK)
    if available_before == 0 < available:
        found.append(WebhookEvent.STOCK_LEVEL_BACK_IN_STOCK)
    return found


def check_url(url: str) -> UserError | None:
    """An absolute http(s) URL with a host and no credentials in it."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isprintable():
        return invalid("url", f"url must be 1-{MAX_URL} printable characters")
    try:
        parts = urlsplit(url)
        parts.port  # raises for a port that is not a number or out of range
    except ValueError:
        return invalid("url", "url is not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return invalid("url", "url must be an absolute http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        return invalid("url", "url must not carry credentials")
    if any(c.isspace() for c in url):
        return invalid("url", "url must not contain spaces")
    return None


def check_events(events: Iterable[str]) -> UserError | None:
    events = list(events)
    if not events:
        return invalid("events", "events must name at least one event")
    unknown = [e for e in events if e not in EVENT_NAMES]
    if unknown:
        return invalid("events", f"unknown event {unknown[0]!r}; known events: "
                                 f"{', '.join(EVENT_NAMES)}")
    if len(set(events)) != len(events):
        return invalid("events", "events must not repeat")
    return None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`127.0.0.0/8,::1/128` -> networks (ValueError for a bad one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def forbidden_address(address: str, allowed: Iterable[Network] = ()) -> bool:
    """True for anything but a public unicast address (private, loopback,
    link-local, shared, reserved, multicast, unspecified), unless an operator
    allowed its network. Server-side request forgery goes for those."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return False
    return not ip.is_global or ip.is_multicast


def forbidden(host: str) -> UserError:
    return UserError(ErrorCode.FORBIDDEN_ADDRESS,
                     f"{host!r} resolves to a private, loopback, link-local or otherwise "
                     "non-public address; webhooks may only call public addresses",
                     field="url")


def next_attempt(now: datetime, attempts: int, base_s: float, deadline: datetime,
                 max_backoff_s: float = 3600.0) -> datetime | None:
    """When to try again after `attempts` failed attempts: doubling from `base_s`
    up to an hour, the last try at the deadline; None once the deadline passed."""
    if now >= deadline:
        return None
    backoff = min(base_s * 2 ** max(attempts - 1, 0), max_backoff_s)
    return min(now + timedelta(seconds=backoff), deadline)


@dataclass(frozen=True)
class CreateWebhook(Command):
    url: str
    events: tuple[str, ...]
    description: str | None = None
    operation = "createWebhook"

    def validate(self) -> UserError | None:
        return first_error(check_url(self.url), check_events(self.events),
                           _optional_text("description", self.description))


@dataclass(frozen=True)
class UpdateWebhook(Command):
    webhook_id: UUID
    url: str | None = None
    events: tuple[str, ...] | None = None
    description: str | None = None
    enabled: bool | None = None
    operation = "updateWebhook"

    def validate(self) -> UserError | None:
        return first_error(None if self.url is None else check_url(self.url),
                           None if self.events is None else check_events(self.events),
                           _optional_text("description", self.description))


@dataclass(frozen=True)
class WebhookView:
    id: UUID
    url: str
    events: tuple[str, ...]
    description: str | None
    enabled: bool
    failure_streak: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WebhookSecretView:
    """A webhook with its signing secret: only a create or a rotation returns it."""

    webhook: WebhookView
    secret: str


@dataclass(frozen=True)
class DeliveryView:
    id: UUID
    webhook_id: UUID
    seq: int
    event: str
    payload: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    deadline: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class WebhookSettings:
    """The operator's webhook settings (INVENTORY_WEBHOOK*, read by config.py)."""

    worker: bool = True  # this process may dispatch and send (one does, by lease)
    allowed_networks: tuple[Network, ...] = ()  # targets allowed although not public
    retry_window_s: float = 24 * 3600.0  # a delivery is retried this long, then FAILED
    backoff_s: float = 5.0  # first retry delay, doubling up to an hour
    disable_after: int = 5  # deliveries FAILED in a row that disable an endpoint
    timeout_s: float = 10.0  # per attempt
    lease_s: float = 10.0  # a dead worker's lease is taken over after this long
    poll_s: float = 0.2  # ledger and queue polls of the worker
    secret_grace_s: float = 24 * 3600.0  # a rotated-out secret also signs this long
