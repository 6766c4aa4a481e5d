"""bulkSetStock and bulkAdjustStock: input -> command -> use case -> payload."""
from __future__ import annotations

from strawberry.types import Info

from ..domain.bulk import BulkLine, BulkStock
from ..schema.bulk import BulkAdjustStockInput, BulkSetStockInput
from ..service.bulk import bulk_stock
from .mutations import payload


async def bulk_set_stock(info: Info, input: BulkSetStockInput):
    cmd = BulkStock(lines=tuple(BulkLine(l.sku, l.location_code, l.on_hand, l.reason)
                                for l in input.lines), error_policy=input.error_policy)
    return payload(await bulk_stock(info.context.ctx, cmd, input.idempotency_key))


async def bulk_adjust_stock(info: Info, input: BulkAdjustStockInput):
    cmd = BulkStock(lines=tuple(BulkLine(l.sku, l.location_code, l.delta, l.reason)
                                for l in input.lines), error_policy=input.error_policy,
                    adjust=True)
    return payload(await bulk_stock(info.context.ctx, cmd, input.idempotency_key))
