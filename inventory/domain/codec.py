"""Round-trips results (models and errors) through JSON.

Used to store the first result of an idempotent mutation so that a replay can
return exactly what the first call returned, even after the stock has moved on.
"""
from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from . import bulk, channels, errors, models, shipments, webhooks
from .quantities import NAMES, Quantities
from .reasons import Reason

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        models.LocationView,
        models.ItemView,
        models.StockLevelView,
        models.ReservationLineView,
        models.ReservationView,
        models.TransferView,
        models.MovementView,
        errors.UserError,
        errors.Shortage,
        shipments.InboundLineView,
        shipments.InboundShipmentView,
        shipments.ReceiptLineView,
        shipments.InboundReceiptView,
        shipments.StockTransferView,
        channels.ChannelView,
        channels.ChannelLocationView,
        webhooks.WebhookView,
        webhooks.WebhookSecretView,
        bulk.BulkResult,
        bulk.BulkLineResult,
    )
}
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls for cls in (models.ReservationStatus, models.MovementKind, errors.ErrorCode,
                                  bulk.ErrorPolicy, bulk.LineStatus,
                                  shipments.InboundStatus, shipments.TransferStatus, Reason)
}


def dump(value: Any) -> Any:
    if isinstance(value, Quantities):
        return {"$quantities": dict(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        body = {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$type": type(value).__name__, **body}
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "value": value.value}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value


def load(data: Any) -> Any:
    if isinstance(data, list):
        return tuple(load(v) for v in data)
    if not isinstance(data, dict):
        return data
    if "$uuid" in data:
        return UUID(data["$uuid"])
    if "$datetime" in data:
        return datetime.fromisoformat(data["$datetime"])
    if "$enum" in data:
        return _ENUMS[data["$enum"]](data["value"])
    if "$quantities" in data:  # a state added since it was stored reads as 0
        return Quantities({k: v for k, v in data["$quantities"].items() if k in NAMES})
    cls = _TYPES[data["$type"]]
    fields = {k: load(v) for k, v in data.items() if k != "$type"}
    if cls is models.StockLevelView and "quantities" not in fields:
        # Stored before the states were grouped: on_hand and reserved inline.
        fields["quantities"] = Quantities({n: fields.pop(n) for n in NAMES if n in fields})
    return cls(**fields)
