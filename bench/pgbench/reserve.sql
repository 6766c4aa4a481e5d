-- single-line reserveStock: the product's SERIALIZABLE transaction, statement for statement
-- (ids by subselect on the unique sku/code indexes; the product has them cached)
\set i random(1, :witems)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT item_id, location_id, on_hand, reserved FROM stock_levels
WHERE tenant_id = :tenant::uuid AND (item_id, location_id) IN (
  SELECT i.id, l.id FROM items i, locations l
  WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i::text, 6, '0')
    AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
ORDER BY item_id, location_id FOR UPDATE;
INSERT INTO reservations (tenant_id, status, reference, expires_at)
VALUES (:tenant::uuid, 'ACTIVE', NULL, now() + make_interval(0, 0, 0, 0, 0, 0, 3600))
RETURNING id AS rid, created_at, expires_at \gset
INSERT INTO reservation_lines (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
SELECT :tenant::uuid, :rid::uuid, 0, i.id, l.id, 1 FROM items i, locations l
WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i::text, 6, '0')
  AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01';
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (
    SELECT i.id, l.id FROM items i, locations l
    WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i::text, 6, '0')
      AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, :rid::uuid, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed;
COMMIT;
