-- stockLevel(sku, locationCode): the product's single join
\set i random(1, :items)
\set l random(1, :locations)
SELECT stock_levels.item_id, stock_levels.location_id, items.sku, locations.code,
       stock_levels.on_hand, stock_levels.reserved, stock_levels.version, stock_levels.updated_at
FROM stock_levels
JOIN items ON items.tenant_id = stock_levels.tenant_id AND items.id = stock_levels.item_id
JOIN locations ON locations.tenant_id = stock_levels.tenant_id AND locations.id = stock_levels.location_id
WHERE stock_levels.tenant_id = :tenant::uuid AND items.sku = 'SKU-' || lpad(:i::text, 6, '0')
  AND locations.code = 'WH-' || lpad(:l::text, 2, '0');
