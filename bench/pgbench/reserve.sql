-- single-line reserveStock without an idempotency key: the product's statement (ids by
-- subselect on the unique sku/code indexes; the product has them cached): one
-- data-modifying statement (guarded level change, ledger row, reservation and line).
-- The product sends it alone in autocommit on a session whose default isolation is
-- SERIALIZABLE; here BEGIN ISOLATION LEVEL SERIALIZABLE, the
-- statement and COMMIT go in one pipeline, one round trip as well, so that the read
-- scripts sharing these sessions (mix) keep the default isolation, as the service's do.
\set i random(1, :witems)
\startpipeline
BEGIN ISOLATION LEVEL SERIALIZABLE;
WITH r AS (SELECT gen_random_uuid() AS id),
changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (
    SELECT i.id, l.id FROM items i, locations l
    WHERE i.tenant_id = :tenant::uuid AND i.sku = 'SKU-' || lpad(:i::text, 6, '0')
      AND l.tenant_id = :tenant::uuid AND l.code = 'WH-01')
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reason, reference,
                         reservation_id, idempotency_key, actor)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         NULL, NULL, r.id, NULL, 'bench' FROM changed, r),
line AS (
  INSERT INTO reservation_lines (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
  SELECT tenant_id, r.id, 0, item_id, location_id, 1 FROM changed, r),
head AS (
  INSERT INTO reservations (tenant_id, id, status, reference, expires_at)
  SELECT tenant_id, r.id, 'ACTIVE', NULL, now() + 3600 * INTERVAL '1 second' FROM changed, r
  RETURNING created_at, expires_at)
SELECT changed.item_id, changed.location_id, changed.on_hand, changed.reserved, changed.version,
       changed.updated_at, head.created_at, head.expires_at FROM changed, head;
COMMIT;
\endpipeline
