-- One script for every scenario: BENCH_SCENARIO picks the request.
--   level   random stockLevel(sku, locationCode) read
--   page    items(first: 50) with nested stockLevels and their locations
--   reserve single-line reserveStock of 1 unit of a random item at WH-01
--   order   5-line reserveStock (5 distinct items at WH-01)
--   flash   single-line reserveStock of 1 unit of one hot SKU
--   mix     90% level reads, 10% single-line reserves
--   order3          3-line reserveStock, each line at WH-01
--   order3-channel  the same orders by SKU: each line through channel BENCH_CHANNEL
--                   (4 locations, PRIORITY; WH-01 first, so it takes the same units)
local c = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")
local scenario = os.getenv("BENCH_SCENARIO") or "level"

local LEVEL_Q = "query($s:String!,$c:String!){stockLevel(sku:$s,locationCode:$c)" ..
  "{onHand reserved available version}}"
local PAGE_Q = "query($p:String!){items(first:50,filter:{skuPrefix:$p}){edges{node{sku " ..
  "totalAvailable stockLevels{onHand reserved available location{code}}}}}}"
local RESERVE_Q = "mutation($i:ReserveStockInput!){reserveStock(input:$i){__typename " ..
  "... on Reservation{id status expiresAt} ... on UserError{code message}}}"
local H = {  -- sha256 of each document, for BENCH_APQ=1 (bench/run.py checks them)
  level = os.getenv("BENCH_HASH_LEVEL"), page = os.getenv("BENCH_HASH_PAGE"),
  reserve = os.getenv("BENCH_HASH_RESERVE"),
}

local function level()
  local sku, code = c.sku(math.random(1, c.items)), c.code(math.random(1, c.locations))
  if c.mode == "minimal" then
    return c.post("/level", '{"sku":"' .. sku .. '","code":"' .. code .. '"}')
  end
  return c.graphql(LEVEL_Q, H.level, '{"s":"' .. sku .. '","c":"' .. code .. '"}')
end

local function page()
  -- SKU-0000xx .. SKU-0009xx: 10 prefixes of up to 100 items, first 50 of each
  local prefix = string.format("SKU-000%d", math.random(0, math.min(9, math.floor(c.items / 100))))
  if c.mode == "minimal" then return c.post("/page", '{"prefix":"' .. prefix .. '"}') end
  return c.graphql(PAGE_Q, H.page, '{"p":"' .. prefix .. '"}')
end

local CHANNEL = os.getenv("BENCH_CHANNEL") or "BENCH-WEB"

local function reserve(skus, by_channel)
  if c.mode == "minimal" then
    local parts = {}
    for i, s in ipairs(skus) do parts[i] = '["' .. s .. '","WH-01"]' end
    return c.post("/reserve", '{"lines":[' .. table.concat(parts, ",") .. ']}')
  end
  local parts = {}
  for i, s in ipairs(skus) do
    local where = by_channel and ('"channelCode":"' .. CHANNEL .. '"') or '"locationCode":"WH-01"'
    parts[i] = '{"sku":"' .. s .. '",' .. where .. ',"quantity":1}'
  end
  return c.graphql(RESERVE_Q, H.reserve,
    '{"i":{"lines":[' .. table.concat(parts, ",") .. '],"ttlSeconds":3600}}')
end

local function order_skus(n)
  -- n distinct items: a random start, stepping by 37 around the write range
  local base, skus = math.random(0, c.write_items - 1), {}
  for k = 0, n - 1 do skus[k + 1] = c.sku(1 + (base + 37 * k) % c.write_items) end
  return skus
end

local build = {
  level = level,
  page = page,
  reserve = function() return reserve({ c.sku(math.random(1, c.write_items)) }) end,
  order = function() return reserve(order_skus(5)) end,
  order3 = function() return reserve(order_skus(3)) end,
  ["order3-channel"] = function() return reserve(order_skus(3), true) end,
  flash = function() return reserve({ c.flash_sku }) end,
  mix = function()
    if math.random() < 0.9 then return level() end
    return reserve({ c.sku(math.random(1, c.write_items)) })
  end,
}

if scenario == "reserve" or scenario == "order" or scenario == "flash"
    or scenario == "order3" or scenario == "order3-channel" then
  c.marker = c.mode == "minimal" and '"reservation"' or '"Reservation"'
end

setup = c.setup
init = c.init
response = c.response
done = c.done
request = build[scenario]
