-- Shared by every scenario: parameters from the environment, request
-- builders for the product (GraphQL) and for bench/minimal_app.py, per-thread
-- counters, and one machine-readable summary line for bench/run.py.
local M = {}

M.mode = os.getenv("BENCH_MODE") or "graphql"          -- graphql | minimal
M.items = tonumber(os.getenv("BENCH_ITEMS") or "1000")
M.locations = tonumber(os.getenv("BENCH_LOCATIONS") or "4")
M.write_items = tonumber(os.getenv("BENCH_WRITE_ITEMS") or "500")
M.flash_sku = os.getenv("BENCH_FLASH_SKU") or "FLASH-000001"
M.apq = os.getenv("BENCH_APQ") == "1"

local threads = {}
local counter = 0

function M.setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function M.init()
  math.randomseed(os.time() * 1000 + (tid or 0))
  ok, gql_errors, rejected, apq_misses = 0, 0, 0, 0
end

function M.sku(n) return string.format("SKU-%06d", n) end
function M.code(n) return string.format("WH-%02d", n) end

local headers = { ["Content-Type"] = "application/json" }
-- The service needs a credential (bench/run.py creates an all-scopes key and
-- passes it here); the minimal app ignores the header, so both get the same bytes.
local api_key = os.getenv("BENCH_API_KEY")
if api_key and api_key ~= "" then headers["Authorization"] = "Bearer " .. api_key end

function M.post(path, body)
  return wrk.format("POST", path, headers, body)
end

-- A GraphQL request; with BENCH_APQ=1 the hash travels instead of the document
-- after the first request of each connection registered it.
local registered = {}
function M.graphql(query, hash, variables)
  if M.apq and hash then
    if registered[hash] then
      return M.post("/graphql", '{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"'
        .. hash .. '"}},"variables":' .. variables .. '}')
    end
    registered[hash] = true
    return M.post("/graphql", '{"query":"' .. query .. '","extensions":{"persistedQuery":'
      .. '{"version":1,"sha256Hash":"' .. hash .. '"}},"variables":' .. variables .. '}')
  end
  return M.post("/graphql", '{"query":"' .. query .. '","variables":' .. variables .. '}')
end

-- Success is a 200 whose body has the scenario's marker; a typed rejection
-- (INSUFFICIENT_STOCK ...) is counted apart from GraphQL/HTTP errors.
M.marker = nil
function M.response(status, hdrs, body)
  if status ~= 200 then return end
  if M.apq and body:find("PERSISTED_QUERY_NOT_FOUND", 1, true) then
    -- This connection reached a worker that has not stored the document (each
    -- process keeps its own): as a client would, send the document again next time.
    registered = {}
    apq_misses = apq_misses + 1
    return
  end
  if body:find('"errors":', 1, true) then
    gql_errors = gql_errors + 1
  elseif M.marker and not body:find(M.marker, 1, true) then
    rejected = rejected + 1
  else
    ok = ok + 1
  end
end

function M.done(summary, latency, requests)
  local agg = { ok = 0, gql_errors = 0, rejected = 0, apq_misses = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(agg) do agg[k] = agg[k] + (t:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d,"ok":%d,"gql_errors":%d,"rejected":%d,' ..
    '"apq_misses":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    agg.ok, agg.gql_errors, agg.rejected, agg.apq_misses))
end

return M
