// The live stock dashboard: stock levels (searchable, filtered by location,
// paged), totals per location, a low-stock panel, a feed of the latest ledger
// movements and a chart of available stock over time for one SKU. Data comes
// from the GraphQL API on this server: queries over HTTP, then the
// stockLevelChanged subscription over graphql-transport-ws, resumed with the
// last version of every level after a dropped connection.
import {drawChart} from "./chart.js";

const $ = id => document.getElementById(id);
const httpUrl = location.origin + "/graphql";
const wsUrl = httpUrl.replace(/^http/, "ws");
const KEY_STORE = "inventory-dashboard-key";
const PAGE_SIZE = 50;          // table rows on the page at once, whatever the number of levels
const ITEMS_PAGE = 500;        // the API's largest page
const FEED_SIZE = 40;
const LOW_SHOWN = 100;
const CHART_MOVEMENTS = 2000;  // ledger entries replayed for the chart
const CHART_POINTS = 5000;     // points kept as live changes extend it
const MAX_SINCE = 5000;        // the API's limit on `since` entries; beyond it, reload instead

const state = {
  apiKey: null,
  stopped: false,              // the key was refused: nothing more until a new key
  levels: new Map(),           // "sku\u0000code" -> level
  order: [],                   // keys, sorted by sku then location
  orderDirty: false,
  items: new Map(),            // sku -> {name, reorderPoint}
  locations: new Map(),        // code -> name
  filter: {text: "", location: "", lowOnly: false},
  filtered: null,              // keys matching the filter (null: recompute)
  page: 0,
  changed: new Set(),          // keys changed since the last render (flashed)
  feed: [],                    // movements, newest first
  feedSeen: new Set(),
  chart: null,                 // {sku, location, points, perLocation, pending, ready}
  socket: null,
  attempt: 0,
  retryDelay: 500,
  lostAt: null,
  loaded: false,               // the first full read of the levels is done
  updates: 0,
};

class KeyRefused extends Error {}

// ---------------------------------------------------------------- utilities

const levelKey = (sku, code) => sku + "\u0000" + code;
const fmt = n => Number(n).toLocaleString();
const signed = n => (n > 0 ? "+" : n < 0 ? "\u2212" : "") + fmt(Math.abs(n));
const clock = ms => new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});

function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

function setStatus(stateName, detail = "") {
  const status = $("status");
  status.textContent = stateName;
  status.dataset.state = stateName;
  $("status-detail").textContent = detail;
}

function banner(text, ok = false) {
  const element = $("banner");
  element.textContent = text;
  element.classList.toggle("ok", ok);
  element.hidden = !text;
}

// ---------------------------------------------------------------- the key

// The key comes from the URL fragment (#key=..., never sent to servers or
// written to their logs), else from this tab's sessionStorage, else the form.
function takeKeyFromFragment() {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (!key) return false;
  sessionStorage.setItem(KEY_STORE, key.trim());
  history.replaceState(null, "", location.pathname + location.search);  // out of the address bar
  return true;
}

function askForKey(message) {
  state.stopped = true;
  state.apiKey = null;
  sessionStorage.removeItem(KEY_STORE);
  if (state.socket) state.socket.close();
  setStatus(message ? "refused" : "signed-out");
  banner("");
  $("updated").textContent = "";
  $("auth-message").textContent = message || "";
  $("auth").hidden = false;
  $("main").hidden = true;          // no data without a valid key
  $("forget").hidden = true;
  $("auth-key").focus();
}

const REFUSED = "The server refused this API key: it is unknown, revoked or mistyped. " +
                "Enter a valid key.";
const NO_READ = "This API key lacks the inventory:read scope. Enter a key that has it.";

// ---------------------------------------------------------------- HTTP queries

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// One GraphQL request over HTTP. A rate-limited request (the key's read budget
// is charged each query's calculated cost) waits as told and is sent again.
async function gql(query, variables = {}) {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(httpUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + state.apiKey},
      body: JSON.stringify({query, variables}),
    });
    if (response.status === 401) throw new KeyRefused(REFUSED);
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : {};
    const error = body.errors?.[0];
    const code = error?.extensions?.code;
    if ((response.status === 429 || code === "RATE_LIMITED" || code === "OVERLOADED") && attempt < 20) {
      const wait = error?.extensions?.retryAfterMs ?? 1000 * (Number(response.headers.get("retry-after")) || 1);
      $("status").dataset.waits = String(Number($("status").dataset.waits || 0) + 1);
      $("status-detail").textContent = `the server asked to slow down: waiting ${(wait / 1000).toFixed(1)} s`;
      await sleep(wait);
      $("status-detail").textContent = "";
      continue;
    }
    if (code === "FORBIDDEN") throw new KeyRefused(NO_READ);
    if (code === "UNAUTHENTICATED") throw new KeyRefused(REFUSED);
    if (error) throw new Error(error.message);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return body.data;
  }
}

// The quantity states, as the server's domain lists them (/dashboard/states.json,
// read before anything else): [{field: "onHand", label: "On hand", inAvailable: 1}, ...].
// Queries, table columns, totals, the feed and the chart are built from it.
let STATES = [];
const stateFields = (suffix = "") => STATES.map(s => s.field + suffix).join(" ");
const availableOf = (m, suffix) => STATES.reduce((sum, s) => sum + s.inAvailable * m[s.field + suffix], 0);

async function loadStates() {
  const response = await fetch("/dashboard/states.json");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  STATES = (await response.json()).states;
  const head = $("levels").tHead.rows[0];
  const after = head.querySelector("th.location");
  after.after(...STATES.map(s => node("th", `state ${s.field}`, s.label)));
}

const ITEMS = () => `query($after: String) { items(first: ${ITEMS_PAGE}, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { sku name reorderPoint stockLevels { locationCode ${stateFields()} available version } } } }`;
const LOCATIONS = `query($after: String) { locations(first: ${ITEMS_PAGE}, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { code name } } }`;
const MOVEMENTS = () => `query($sku: String, $code: String, $first: Int, $after: String) {
  movements(sku: $sku, locationCode: $code, first: $first, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { id kind sku locationCode ${stateFields("Delta")} ${stateFields("After")} version
          reference reason actor createdAt } } }`;

async function loadLocations() {
  let after = null;
  do {
    const page = (await gql(LOCATIONS, {after})).locations;
    for (const l of page.nodes) state.locations.set(l.code, l.name);
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
  } while (after);
  fillLocationFilter();
}

// Every stock level, a page of items at a time, showing progress.
async function loadLevels() {
  let after = null;
  $("progress").hidden = false;
  do {
    const page = (await gql(ITEMS(), {after})).items;
    for (const item of page.nodes) {
      state.items.set(item.sku, {name: item.name, reorderPoint: item.reorderPoint});
      for (const l of item.stockLevels) applyLevel({sku: item.sku, ...l}, false);
    }
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    $("progress").textContent = after
      ? `Loading stock levels\u2026 ${fmt(state.levels.size)} so far`
      : `${fmt(state.levels.size)} stock levels loaded`;
    render();
  } while (after);
  $("progress").hidden = true;
}

// ---------------------------------------------------------------- levels

// Applies a level state if it is newer than the one shown; returns whether it was.
function applyLevel(l, live) {
  const k = levelKey(l.sku, l.locationCode);
  const known = state.levels.get(k);
  if (known && known.version >= l.version) return false;
  if (l.reorderPoint !== undefined) {
    if (!state.items.has(l.sku)) loadItemName(l.sku);  // an item created after the page loaded
    const item = state.items.get(l.sku) || {name: "", reorderPoint: l.reorderPoint};
    item.reorderPoint = l.reorderPoint;
    state.items.set(l.sku, item);
  }
  const level = {sku: l.sku, code: l.locationCode, available: l.available, version: l.version};
  for (const s of STATES) level[s.field] = l[s.field];
  state.levels.set(k, level);
  if (!known) {
    state.order.push(k);
    state.orderDirty = true;
    state.filtered = null;
    if (!state.locations.has(l.locationCode)) {
      state.locations.set(l.locationCode, "");
      fillLocationFilter();
    }
  }
  if (live) state.changed.add(k);
  return true;
}

async function loadItemName(sku) {
  try {
    const item = (await gql("query($sku: String!) { item(sku: $sku) { name } }", {sku})).item;
    if (item && state.items.has(sku)) {
      state.items.get(sku).name = item.name;
      state.filtered = null;  // the search also matches names
      scheduleRender();
    }
  } catch (error) {
    if (error instanceof KeyRefused) askForKey(error.message);
  }
}

const reorderOf = sku => state.items.get(sku)?.reorderPoint ?? 0;
const isLow = level => level.available <= reorderOf(level.sku);

function sortedKeys() {
  if (state.orderDirty) {
    state.order.sort();  // "sku\0code": by sku, then location
    state.orderDirty = false;
  }
  return state.order;
}

function matches(level) {
  const {text, location: code, lowOnly} = state.filter;
  if (code && level.code !== code) return false;
  if (lowOnly && !isLow(level)) return false;
  if (!text) return true;
  if (level.sku.toLowerCase().includes(text)) return true;
  return (state.items.get(level.sku)?.name || "").toLowerCase().includes(text);
}

function filteredKeys() {
  // low-only depends on values, so it is recomputed on every render.
  if (state.filtered === null || state.filter.lowOnly) {
    state.filtered = sortedKeys().filter(k => matches(state.levels.get(k)));
  }
  return state.filtered;
}

// ---------------------------------------------------------------- rendering

let renderQueued = false;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  // At most one render per frame however many changes arrive; the timer
  // covers frames that never come (a hidden tab).
  const run = () => { if (renderQueued) { renderQueued = false; render(); } };
  requestAnimationFrame(run);
  setTimeout(run, 250);
}

function render() {
  renderTable();
  renderTotals();
  renderLow();
  renderChart();
  state.changed.clear();
}

let shownKeys = [];             // the keys of the rows in the table, in order
let rowOf = new Map();          // key -> its <tr>

function fillRow(tr, k) {
  const l = state.levels.get(k);
  tr.dataset.available = String(l.available);
  tr.dataset.version = String(l.version);
  tr.classList.toggle("low", isLow(l));
  tr.classList.toggle("charted", state.chart?.sku === l.sku);
  const cells = tr.cells;
  cells[1].textContent = state.items.get(l.sku)?.name || "";
  STATES.forEach((s, i) => { cells[3 + i].textContent = fmt(l[s.field]); });
  cells[3 + STATES.length].textContent = fmt(l.available);
  cells[4 + STATES.length].textContent = fmt(reorderOf(l.sku));
}

function newRow(k) {
  const l = state.levels.get(k);
  const tr = node("tr");
  tr.dataset.sku = l.sku;
  tr.dataset.location = l.code;
  tr.append(node("td", "text sku", l.sku), node("td", "text name", state.items.get(l.sku)?.name || ""),
            node("td", "text", l.code), ...STATES.map(s => node("td", `state ${s.field}`)),
            node("td", "available"), node("td", "reorder"));
  return tr;
}

function renderTable() {
  const keys = filteredKeys();
  const pages = Math.max(1, Math.ceil(keys.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const start = state.page * PAGE_SIZE;
  const pageKeys = keys.slice(start, start + PAGE_SIZE);
  // Rows stay in place while the page shows the same levels, so a change
  // updates its cells (and flashes) without rebuilding the table.
  if (pageKeys.length !== shownKeys.length || pageKeys.some((k, i) => k !== shownKeys[i])) {
    rowOf = new Map(pageKeys.map(k => [k, newRow(k)]));
    $("levels").tBodies[0].replaceChildren(...rowOf.values());
    shownKeys = pageKeys;
  }
  for (const [k, tr] of rowOf) fillRow(tr, k);
  for (const k of state.changed) {
    const tr = rowOf.get(k);
    if (!tr) continue;
    tr.classList.remove("flash");
    void tr.offsetWidth;  // restarts the animation
    tr.classList.add("flash");
  }
  $("empty").hidden = keys.length > 0 || state.levels.size === 0;
  const levels = `stock level${state.levels.size === 1 ? "" : "s"}`;
  $("count").textContent = keys.length === state.levels.size
    ? `${fmt(keys.length)} ${levels}` : `${fmt(keys.length)} of ${fmt(state.levels.size)} ${levels}`;
  $("page-info").textContent = keys.length
    ? `${fmt(start + 1)}\u2013${fmt(Math.min(start + PAGE_SIZE, keys.length))} of ${fmt(keys.length)}` : "";
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
}

function renderTotals() {
  const totals = new Map();
  const zero = () => Object.fromEntries([...STATES.map(s => [s.field, 0]), ["available", 0], ["low", 0], ["levels", 0]]);
  for (const code of state.locations.keys()) totals.set(code, zero());
  for (const l of state.levels.values()) {
    const t = totals.get(l.code);
    for (const s of STATES) t[s.field] += l[s.field];
    t.available += l.available; t.levels += 1;
    if (isLow(l)) t.low += 1;
  }
  const cards = [];
  for (const code of [...totals.keys()].sort()) {
    const t = totals.get(code);
    const card = node("button", "total" + (state.filter.location === code ? " selected" : ""));
    card.type = "button";
    card.dataset.location = code;
    card.dataset.available = String(t.available);
    for (const s of STATES) card.dataset[s.field] = String(t[s.field]);
    card.title = state.filter.location === code ? "Show all locations" : `Show only ${code}`;
    const name = node("div", "name", state.locations.get(code) || "\u00a0");
    // On hand and reserved always; the other states where they hold something.
    const shown = STATES.filter((s, i) => i < 2 || t[s.field]);
    const small = node("div", "small", shown.map(s => `${s.label.toLowerCase()} ${fmt(t[s.field])}`).join(" \u00b7 "));
    const low = node("div", "small");
    low.append(t.low ? node("span", "lowc", `${fmt(t.low)} low`)
                      : `${fmt(t.levels)} level${t.levels === 1 ? "" : "s"}`);
    card.append(node("div", "code", code), name, node("div", "big", fmt(t.available)),
                node("div", "small", "available"), small, low);
    cards.push(card);
  }
  $("totals").replaceChildren(...cards);
}

function renderLow() {
  const code = state.filter.location;
  const low = [];
  for (const l of state.levels.values()) if ((!code || l.code === code) && isLow(l)) low.push(l);
  low.sort((a, b) => a.available - b.available || (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
  $("low-count").textContent = fmt(low.length);
  const entries = low.slice(0, LOW_SHOWN).map(l => {
    const li = node("li");
    li.dataset.sku = l.sku;
    li.dataset.location = l.code;
    li.dataset.available = String(l.available);
    li.title = `Chart ${l.sku}`;
    const qty = node("span", "qty");
    qty.append(node("span", "low-qty", fmt(l.available)), ` / ${fmt(reorderOf(l.sku))}`);
    li.append(node("span", "sku", l.sku), node("span", "where", l.code), qty);
    return li;
  });
  if (low.length > LOW_SHOWN) entries.push(node("li", "more", `and ${fmt(low.length - LOW_SHOWN)} more`));
  if (!low.length) entries.push(node("li", "more", "Nothing at or below its reorder point."));
  $("low-stock").replaceChildren(...entries);
}

// ---------------------------------------------------------------- the feed

function quantityText(m) {
  const parts = STATES.filter(s => m[s.field + "Delta"])
    .map(s => `${signed(m[s.field + "Delta"])} ${s.label.toLowerCase()}`);
  return parts.join(" \u00b7 ") || "no change";
}

function renderFeed(fresh = new Set()) {
  const entries = state.feed.map(m => {
    const li = node("li", fresh.has(m.id) ? "new" : "");
    li.dataset.id = m.id;
    li.dataset.kind = m.kind;
    li.dataset.sku = m.sku;
    li.dataset.location = m.locationCode;
    li.title = `Chart ${m.sku}`;
    const meta = [m.actor ? `by ${m.actor}` : "by (unknown)", m.reference ? `ref ${m.reference}` : null,
                  m.reason ? m.reason : null].filter(Boolean).join(" \u00b7 ");
    const actor = node("span", "meta", meta);
    actor.dataset.actor = m.actor || "";
    actor.dataset.reference = m.reference || "";
    li.append(node("span", `kind ${m.kind}`, m.kind.replace("_", " ")),
              node("span", "what", `${m.sku} @ ${m.locationCode}`),
              node("span", "qty", quantityText(m)),
              node("span", "when", clock(Date.parse(m.createdAt))), actor);
    return li;
  });
  if (!entries.length) entries.push(node("li", "more", "No movements yet."));
  $("feed").replaceChildren(...entries);
}

let feedRunning = null, feedAgain = false, feedTimer = null;

// Changes arrive on the socket without who made them or why: the feed reads
// the newest ledger entries, at most a few times a second however busy it is.
function scheduleFeed() {
  if (feedTimer) return;
  feedTimer = setTimeout(() => { feedTimer = null; refreshFeed(); }, 200);
}

async function refreshFeed(reset = false) {
  if (feedRunning) { feedAgain = true; return feedRunning; }
  feedRunning = (async () => {
    try {
      const code = state.filter.location || null;
      const nodes = (await gql(MOVEMENTS(), {code, first: FEED_SIZE})).movements.nodes;
      if (reset) { state.feed = []; state.feedSeen = new Set(); }
      const fresh = new Set();
      for (const m of nodes) {
        if (state.feedSeen.has(m.id)) continue;
        state.feedSeen.add(m.id);
        state.feed.push(m);
        if (!reset) fresh.add(m.id);
      }
      state.feed.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.version - a.version);
      for (const m of state.feed.splice(FEED_SIZE)) state.feedSeen.delete(m.id);
      renderFeed(fresh);
    } catch (error) {
      if (error instanceof KeyRefused) askForKey(error.message);
      // Otherwise the next change or reconnect refreshes it.
    }
  })();
  await feedRunning;
  feedRunning = null;
  if (feedAgain) { feedAgain = false; scheduleFeed(); }
}

// ---------------------------------------------------------------- the chart

// Replays the SKU's ledger (at the filtered location, or all of them) into
// points of total available over time; live changes then extend it.
async function openChart(sku) {
  if (!sku) return;
  const code = state.filter.location || null;
  const chart = {sku, location: code, points: [], perLocation: new Map(), pending: [], ready: false,
                 dirty: true};
  state.chart = chart;
  $("chart-sku").value = sku;
  $("chart-title").textContent = `${sku} \u00b7 ${code || "all locations"} \u00b7 replaying the ledger\u2026`;
  scheduleRender();
  const entries = [];
  let after = null;
  try {
    do {
      const page = (await gql(MOVEMENTS(), {sku, code, first: 500, after})).movements;
      entries.push(...page.nodes);
      after = page.pageInfo.hasNextPage && entries.length < CHART_MOVEMENTS ? page.pageInfo.endCursor : null;
    } while (after && state.chart === chart);
  } catch (error) {
    if (error instanceof KeyRefused) { askForKey(error.message); return; }
    if (state.chart === chart) $("chart-title").textContent = `${sku}: could not read the ledger (${error.message}); retrying on reconnect`;
    return;
  }
  if (state.chart !== chart) return;  // another SKU was chosen meanwhile
  entries.reverse();  // oldest first
  for (const m of entries) {
    chartPoint(chart, m.locationCode, m.version, availableOf(m, "After"), Date.parse(m.createdAt));
  }
  chart.ready = true;
  chart.dirty = true;
  for (const c of chart.pending) chartPoint(chart, c.locationCode, c.version, c.available, Date.parse(c.at));
  chart.pending = [];
  const older = entries.length >= CHART_MOVEMENTS ? ` (last ${fmt(CHART_MOVEMENTS)} movements)` : "";
  $("chart-title").textContent = `${sku} \u00b7 ${code || "all locations"} \u00b7 total available${older}`;
  scheduleRender();
}

function chartPoint(chart, code, version, available, t) {
  const known = chart.perLocation.get(code);
  if (known && known.version >= version) return;
  chart.perLocation.set(code, {version, available});
  let total = 0;
  for (const l of chart.perLocation.values()) total += l.available;
  const last = chart.points[chart.points.length - 1];
  chart.points.push({t: last ? Math.max(t, last.t) : t, v: total});
  if (chart.points.length > CHART_POINTS) chart.points.splice(0, chart.points.length - CHART_POINTS);
  chart.dirty = true;
}

function chartChange(change) {
  const chart = state.chart;
  if (!chart || chart.sku !== change.sku) return;
  if (chart.location && chart.location !== change.locationCode) return;
  if (!chart.ready) { chart.pending.push(change); return; }
  chartPoint(chart, change.locationCode, change.version, change.available, Date.parse(change.at));
}

function renderChart() {
  const chart = state.chart;
  if (!chart || !chart.dirty) return;
  chart.dirty = false;
  drawChart($("chart"), chart.ready ? chart.points : [], {reorderPoint: reorderOf(chart.sku)});
  $("chart").dataset.sku = chart.sku;
  $("chart").dataset.ready = String(chart.ready);
}

// ---------------------------------------------------------------- the socket

const SUBSCRIPTION = () => `subscription($since: [LevelVersionInput!]) { stockLevelChanged(since: $since) {
  sku locationCode ${stateFields()} available version reorderPoint kind at } }`;

// graphql-transport-ws, the small part of it a subscriber needs.
function connect() {
  if (state.stopped) return;
  const ws = new WebSocket(wsUrl, "graphql-transport-ws");
  state.socket = ws;
  let open = true;
  // The socket authenticates in connection_init (the key never goes in the URL).
  ws.onopen = () => ws.send(JSON.stringify(
    {type: "connection_init", payload: {authorization: "Bearer " + state.apiKey}}));
  ws.onmessage = message => {
    const msg = JSON.parse(message.data);
    if (msg.type === "connection_ack") {
      resumed(ws);
    } else if (msg.type === "ping") {
      ws.send(JSON.stringify({type: "pong"}));
    } else if (msg.type === "next") {
      if (msg.payload.errors) {
        if (msg.payload.errors[0].extensions?.code === "FORBIDDEN") { askForKey(NO_READ); return; }
        ws.close();  // e.g. SUBSCRIPTION_OVERFLOW: resubscribe with `since`
        return;
      }
      const change = msg.payload.data?.stockLevelChanged;
      if (change && applyLevel(change, true)) {
        state.updates += 1;
        chartChange(change);
        $("updated").textContent = `${fmt(state.updates)} live updates \u00b7 last ${clock(Date.now())}`;
        scheduleRender();
        scheduleFeed();
      }
    } else if (msg.type === "error" || msg.type === "complete") {
      if (msg.type === "error" && msg.payload?.[0]?.extensions?.code === "FORBIDDEN") { askForKey(NO_READ); return; }
      ws.close();
    }
  };
  ws.onclose = event => {
    if (!open) return;
    open = false;
    // 4403: connection_init refused (bad or revoked key); 4401: not initialised.
    if (event.code === 4403 || event.code === 4401) { askForKey(REFUSED); return; }
    if (state.stopped) return;
    connectionLost();
  };
}

function subscribe(ws, since) {
  ws.send(JSON.stringify({id: "levels", type: "subscribe", payload: {query: SUBSCRIPTION(), variables: {since}}}));
}

const sinceList = () => [...state.levels.values()].map(
  l => ({sku: l.sku, locationCode: l.code, version: l.version}));

// The socket is (again) open and accepted. After a drop, subscribing with the
// last version of every level makes the server replay what was missed. The
// first time, or with more levels than the API takes in `since`, the page
// subscribes first and then reads every level: versions decide which is newer.
async function resumed(ws) {
  const wasLost = state.lostAt !== null;
  const first = !state.loaded;
  try {
    if (!first && state.levels.size <= MAX_SINCE) {
      subscribe(ws, sinceList());
    } else {
      subscribe(ws, null);
      setStatus(first ? "loading" : "reconnecting", "reading stock levels");
      await loadLevels();
    }
    if (first || wasLost) await refreshFeed(first);
  } catch (error) {
    if (error instanceof KeyRefused) { askForKey(error.message); return; }
    if (state.socket === ws) ws.close();  // and retry
    return;
  }
  if (state.socket !== ws || ws.readyState !== WebSocket.OPEN) return;
  state.loaded = true;
  setStatus("live");
  state.attempt = 0;
  state.retryDelay = 500;
  if (first) {
    const pick = [...state.levels.values()].find(isLow) || state.levels.values().next().value;
    if (!state.chart && pick) openChart(pick.sku);
  }
  if (wasLost) {
    const lost = state.lostAt;
    state.lostAt = null;
    banner(`Reconnected at ${clock(Date.now())} after ${Math.max(1, Math.round((Date.now() - lost) / 1000))} s; ` +
           "changes made meanwhile were replayed from the ledger.", true);
    setTimeout(() => { if (state.lostAt === null && $("banner").classList.contains("ok")) banner(""); }, 8000);
    if (state.chart) openChart(state.chart.sku);
  } else {
    banner("");
  }
}

function connectionLost() {
  if (state.lostAt === null) state.lostAt = Date.now();
  state.attempt += 1;
  const delay = state.retryDelay * (0.75 + Math.random() / 2);
  state.retryDelay = Math.min(state.retryDelay * 2, 5000);
  setStatus("reconnecting", `attempt ${state.attempt}, next in ${(delay / 1000).toFixed(1)} s`);
  banner(`Connection to the server lost at ${clock(state.lostAt)}. Reconnecting\u2026 ` +
         "The figures below may be out of date until then.");
  setTimeout(connect, delay);
}

// ---------------------------------------------------------------- start

// Checks the key (and reads the locations) over HTTP, then opens the socket,
// which reads everything else once it is subscribed.
async function start() {
  if (state.stopped) return;
  setStatus("connecting", "checking the key");
  try {
    if (!STATES.length) await loadStates();
    await loadLocations();
  } catch (error) {
    if (error instanceof KeyRefused) { askForKey(error.message); return; }
    if (state.stopped) return;
    state.attempt += 1;
    setStatus("reconnecting", `attempt ${state.attempt}: ${error.message}`);
    banner("Cannot reach the server. Retrying\u2026");
    setTimeout(start, state.retryDelay);
    state.retryDelay = Math.min(state.retryDelay * 2, 5000);
    return;
  }
  setStatus("connecting", "opening the live feed");
  connect();
}

function fillLocationFilter() {
  const select = $("location-filter");
  const chosen = select.value;
  const options = [new Option("All locations", "")];
  for (const code of [...state.locations.keys()].sort()) {
    const name = state.locations.get(code);
    options.push(new Option(name ? `${code} \u2013 ${name}` : code, code));
  }
  select.replaceChildren(...options);
  select.value = chosen;
}

function setLocation(code) {
  state.filter.location = code;
  $("location-filter").value = code;
  state.filtered = null;
  state.page = 0;
  render();
  refreshFeed(true);
  if (state.chart) openChart(state.chart.sku);
}

function wire() {
  let searchTimer = null;
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.filter.text = $("search").value.trim().toLowerCase();
      state.filtered = null;
      state.page = 0;
      renderTable();
    }, 120);
  });
  $("location-filter").addEventListener("change", event => setLocation(event.target.value));
  $("low-only").addEventListener("change", event => {
    state.filter.lowOnly = event.target.checked;
    state.filtered = null;
    state.page = 0;
    renderTable();
  });
  $("prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); renderTable(); });
  $("next").addEventListener("click", () => { state.page += 1; renderTable(); });
  $("totals").addEventListener("click", event => {
    const card = event.target.closest(".total");
    if (card) setLocation(state.filter.location === card.dataset.location ? "" : card.dataset.location);
  });
  for (const id of ["levels", "low-stock", "feed"]) {
    $(id).addEventListener("click", event => {
      const row = event.target.closest("[data-sku]");
      if (row) openChart(row.dataset.sku);
    });
  }
  $("chart-sku").addEventListener("change", event => {
    const sku = event.target.value.trim();
    if (state.items.has(sku)) openChart(sku);
    else $("chart-title").textContent = `No item ${sku || "with that SKU"}; pick a SKU from the table.`;
  });
  $("auth").addEventListener("submit", event => {
    event.preventDefault();
    const key = $("auth-key").value.trim();
    $("auth-key").value = "";
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    location.reload();  // no state, socket or timer of the previous key survives
  });
  $("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY_STORE); location.reload(); });
  // A new #key=... typed into the address bar of an open page: start over with it.
  window.addEventListener("hashchange", () => { if (takeKeyFromFragment()) location.reload(); });
  // The browser knows the network is gone before the socket does.
  window.addEventListener("offline", () => { if (state.socket) state.socket.close(); });
}

wire();
// The chart's last value holds until now: move its time axis along.
setInterval(() => { if (state.chart?.ready) { state.chart.dirty = true; scheduleRender(); } }, 10000);
takeKeyFromFragment();
state.apiKey = sessionStorage.getItem(KEY_STORE);
if (!state.apiKey) {
  askForKey("");
} else {
  $("main").hidden = false;
  $("forget").hidden = false;
  start();
}
