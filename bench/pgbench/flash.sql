-- flash-sale baseline: every client decrements the same single row (available - 1)
-- in a SERIALIZABLE transaction; run with --max-tries so 40001s are retried.
-- bench_flash has the stock_levels row shape and keys but no ledger (bench only).
BEGIN ISOLATION LEVEL SERIALIZABLE;
UPDATE bench_flash SET reserved = reserved + 1, version = version + 1, updated_at = now()
WHERE tenant_id = :tenant::uuid AND item_id = :flash_item::uuid
  AND location_id = :flash_location::uuid AND on_hand >= reserved + 1;
COMMIT;
