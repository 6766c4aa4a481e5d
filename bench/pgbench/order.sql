-- 5-line reserveStock: lock five levels in key order, one reservation, five lines,
-- five guarded level changes with their ledger rows (items base+37k around the write range)
\set b random(0, :witems - 1)
\set i0 1 + (:b + 0) % :witems
\set i1 1 + (:b + 37) % :witems
\set i2 1 + (:b + 74) % :witems
\set i3 1 + (:b + 111) % :witems
\set i4 1 + (:b + 148) % :witems
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT item_id, location_id, on_hand, reserved FROM stock_levels
WHERE tenant_id = :tenant::uuid AND (item_id, location_id) IN (
  SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i0::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
  UNION ALL SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i1::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
  UNION ALL SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i2::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
  UNION ALL SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i3::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
  UNION ALL SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i4::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
ORDER BY item_id, location_id FOR UPDATE;
INSERT INTO reservations (tenant_id, status, reference, expires_at)
VALUES (:tenant::uuid, 'ACTIVE', NULL, now() + make_interval(0, 0, 0, 0, 0, 0, 3600))
RETURNING id AS rid, created_at, expires_at \gset
INSERT INTO reservation_lines (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
SELECT :tenant::uuid, :rid::uuid, 0, i.id, l.id, 1 FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i0::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
UNION ALL SELECT :tenant::uuid, :rid::uuid, 1, i.id, l.id, 1 FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i1::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
UNION ALL SELECT :tenant::uuid, :rid::uuid, 2, i.id, l.id, 1 FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i2::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
UNION ALL SELECT :tenant::uuid, :rid::uuid, 3, i.id, l.id, 1 FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i3::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01'
UNION ALL SELECT :tenant::uuid, :rid::uuid, 4, i.id, l.id, 1 FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i4::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01';
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i0::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, :rid::uuid, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed;
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i1::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, :rid::uuid, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed;
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i2::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, :rid::uuid, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed;
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i3::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, :rid::uuid, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed;
WITH changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (SELECT i.id, l.id FROM items i, locations l WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i4::text, 6, '0') AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, :rid::uuid, NULL FROM changed)
SELECT item_id, location_id, on_hand, reserved, version, updated_at FROM changed;
COMMIT;
