-- items(first: 50) with nested stockLevels and locations: the product's three statements
-- (the item ids of the page are a subselect here instead of 50 parameters)
\set p random(0, 9)
SELECT items.tenant_id, items.id, items.sku, items.name, items.reorder_point, items.created_at
FROM items WHERE items.tenant_id = :tenant::uuid AND items.sku LIKE 'SKU-000' || :p::text || '%'
ORDER BY items.sku LIMIT 51;
SELECT stock_levels.item_id, stock_levels.location_id, items.sku, locations.code,
       stock_levels.on_hand, stock_levels.reserved, stock_levels.version, stock_levels.updated_at
FROM stock_levels
JOIN items ON items.tenant_id = stock_levels.tenant_id AND items.id = stock_levels.item_id
JOIN locations ON locations.tenant_id = stock_levels.tenant_id AND locations.id = stock_levels.location_id
WHERE stock_levels.tenant_id = :tenant::uuid AND stock_levels.item_id IN (
  SELECT id FROM items WHERE tenant_id = :tenant::uuid AND sku LIKE 'SKU-000' || :p::text || '%'
  ORDER BY sku LIMIT 50)
ORDER BY locations.code;
SELECT tenant_id, id, code, name, created_at FROM locations WHERE tenant_id = :tenant::uuid;
