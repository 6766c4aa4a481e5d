// A small step chart in SVG: available stock over time (hand-written, no library).
const SVG = "http://www.w3.org/2000/svg";
const W = 600, H = 200, LEFT = 40, RIGHT = 12, TOP = 14, BOTTOM = 22;

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  return spanMs > 36 * 3600e3
    ? d.toLocaleDateString([], {month: "short", day: "numeric"})
    : d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: spanMs < 600e3 ? "2-digit" : undefined});
}

// points: [{t: ms, v: number}] in time order. The line is a step: a value holds
// until the next change, and the last one until now.
export function drawChart(container, points, {reorderPoint = null, now = Date.now()} = {}) {
  const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img"});
  svg.dataset.points = String(points.length);
  svg.dataset.last = points.length ? String(points[points.length - 1].v) : "";
  if (!points.length) {
    svg.appendChild(el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis"},
                       "no movements in the ledger yet"));
    container.replaceChildren(svg);
    return;
  }
  const t0 = points[0].t, t1 = Math.max(now, points[points.length - 1].t, t0 + 1000);
  const values = points.map(p => p.v);
  const top = Math.max(1, ...values, reorderPoint ?? 0);
  const bottom = Math.min(0, ...values);
  const x = t => LEFT + (W - LEFT - RIGHT) * (t - t0) / (t1 - t0);
  const y = v => TOP + (H - TOP - BOTTOM) * (1 - (v - bottom) / (top - bottom));

  for (const v of [bottom, (bottom + top) / 2, top]) {
    const rounded = Math.round(v);
    svg.appendChild(el("line", {x1: LEFT, x2: W - RIGHT, y1: y(rounded), y2: y(rounded), class: "grid"}));
    svg.appendChild(el("text", {x: LEFT - 6, y: y(rounded) + 3, "text-anchor": "end", class: "axis"},
                       rounded.toLocaleString()));
  }
  svg.appendChild(el("text", {x: LEFT, y: H - 6, class: "axis"}, timeLabel(t0, t1 - t0)));
  svg.appendChild(el("text", {x: W - RIGHT, y: H - 6, "text-anchor": "end", class: "axis"},
                     timeLabel(t1, t1 - t0)));
  if (reorderPoint !== null && reorderPoint > 0) {
    svg.appendChild(el("line", {x1: LEFT, x2: W - RIGHT, y1: y(reorderPoint), y2: y(reorderPoint),
                                class: "reorder"}));
  }
  let path = `M ${x(points[0].t)} ${y(points[0].v)}`;
  for (let i = 1; i < points.length; i++) {
    path += ` H ${x(points[i].t)} V ${y(points[i].v)}`;
  }
  const last = points[points.length - 1];
  path += ` H ${x(t1)}`;
  svg.appendChild(el("path", {d: `${path} V ${y(bottom)} H ${x(points[0].t)} Z`, class: "area"}));
  svg.appendChild(el("path", {d: path, class: "line"}));
  svg.appendChild(el("circle", {cx: x(t1), cy: y(last.v), r: 3.5, class: "dot"}));
  svg.appendChild(el("text", {x: x(t1) - 6, y: y(last.v) - 7, "text-anchor": "end", class: "label"},
                     last.v.toLocaleString()));
  container.replaceChildren(svg);
}
