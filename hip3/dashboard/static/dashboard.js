// The hip3 dashboard page: polls /api/state about once a second and draws it.
// No libraries and nothing fetched from elsewhere, so it works offline. Text from the bot is
// only ever set as textContent, never parsed as HTML.
"use strict";

const POLL_MS = 1000;
const CONFIRM_MS = 4000;
const MAX_POINTS = 3600; // as many samples as the server keeps
const TOKEN_KEY = "hip3-dashboard-token";

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let series = [];
let lastSampleMs = 0;
let state = null;

const $ = (id) => document.getElementById(id);

function authHeaders() {
  return token ? { Authorization: "Bearer " + token } : {};
}

function setText(id, value, cls) {
  const el = $(id);
  el.textContent = value === null || value === undefined ? "-" : String(value);
  if (cls !== undefined) el.className = cls;
}

function cell(row, value, field, cls) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "-" : String(value);
  if (field) td.dataset.field = field;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fillTable(tableId, items, columns, emptyText) {
  const body = $(tableId).tBodies[0];
  const rows = [];
  if (items.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, emptyText, null, "empty");
    td.colSpan = columns;
    rows.push(tr);
  }
  return { body, rows };
}

function signClass(text) {
  if (text === null || text === undefined) return "";
  const n = Number(text);
  return n > 0 ? "pos" : n < 0 ? "neg" : "";
}

function quote(px, sz) {
  return px === null ? "-" : px + " × " + sz;
}

function renderMarkets(markets) {
  const { body, rows } = fillTable("markets", markets, 9, "no markets");
  for (const m of markets) {
    const tr = document.createElement("tr");
    tr.dataset.coin = m.coin;
    cell(tr, m.coin, "coin");
    cell(tr, m.ready, "ready", m.ready);
    cell(tr, m.data, "data", m.data === "fresh" ? "fresh" : "stale");
    const bid = cell(tr, quote(m.bid_px, m.bid_sz), "bid");
    bid.dataset.px = m.bid_px ?? "";
    const ask = cell(tr, quote(m.ask_px, m.ask_sz), "ask");
    ask.dataset.px = m.ask_px ?? "";
    cell(tr, m.oracle_px, "oracle_px");
    cell(tr, m.mark_px, "mark_px");
    const edge = m.edge_bps === null ? "-" : m.edge_bps.toFixed(1) + " " + m.edge_side;
    cell(tr, edge, "edge", m.edge_bps > 0 ? "pos" : "");
    cell(tr, m.bbo_age_s === null ? "never" : m.bbo_age_s.toFixed(1) + " s", "bbo_age");
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function renderPositions(positions) {
  const { body, rows } = fillTable("positions", positions, 8, "none");
  for (const p of positions) {
    const tr = document.createElement("tr");
    tr.dataset.coin = p.coin;
    cell(tr, p.coin);
    cell(tr, p.size, "size", signClass(p.size));
    cell(tr, p.entry_px);
    cell(tr, p.reference_px);
    cell(tr, p.notional);
    cell(tr, p.unrealized, "unrealized", signClass(p.unrealized));
    cell(tr, p.realized, "realized", signClass(p.realized));
    cell(tr, p.fees);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function renderOrders(orders) {
  const { body, rows } = fillTable("orders", orders.listed, 7, "none");
  for (const o of orders.listed) {
    const tr = document.createElement("tr");
    cell(tr, o.cloid.slice(0, 14) + "…").title = o.cloid;
    cell(tr, o.coin);
    cell(tr, o.side, null, o.side === "buy" ? "pos" : "neg");
    cell(tr, o.px);
    cell(tr, o.size);
    cell(tr, o.state);
    cell(tr, o.purpose);
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  const more = orders.count - orders.listed.length;
  setText("orders-count", orders.count + " open" + (more > 0 ? ", " + more + " not listed" : ""));
}

function ago(ms, now) {
  const s = Math.max(0, (now - ms) / 1000);
  return s < 100 ? s.toFixed(0) + " s ago" : (s / 60).toFixed(0) + " min ago";
}

function renderHardStop(s) {
  const hs = s.hardstop;
  setText("hs-state", hs.state, hs.state);
  setText("hs-state-2", hs.state, hs.state);
  const items = hs.reasons.map((r) => {
    const li = document.createElement("li");
    li.textContent = r;
    return li;
  });
  $("hs-reasons").replaceChildren(...items);
  const d = s.dead_mans_switch;
  let text;
  if (!d.enabled) {
    text = "off (dead_mans_switch.enabled = false)";
  } else if (d.state === "unavailable") {
    text = d.detail;  // "dead man's switch unavailable: ..." (the exchange's volume gate)
  } else {
    text = (d.renewing ? "renewing" : "not renewing (connection not live)") +
      ` every ${d.interval_s} s, cancels ${d.lead_s} s after the last renewal;` +
      ` ${d.renewals} answered, ${d.refused} refused`;
    if (d.last_renewal_ms) {
      text += `; last renewed ${ago(d.last_renewal_ms, s.time_ms)}, fires at ` +
        new Date(d.last_renewal_ms + d.lead_s * 1000).toLocaleTimeString() + " unless renewed";
    }
  }
  $("dms").textContent = text;
  const canSend = s.operator_enabled && !s.finished;
  if (!$("btn-hardstop").classList.contains("confirm")) {
    $("btn-hardstop").disabled = !(canSend && hs.state === "armed");
  }
  $("btn-reset").disabled = !(canSend && hs.state === "halted");
  if (!s.operator_enabled) {
    $("op-help").textContent = "The operator buttons are off: the bot was started without a " +
      "token (set the environment variable named by dashboard.token_env).";
  }
}

function render(s) {
  state = s;
  setText("mode", s.mode + " · " + s.network);
  const c = s.connection;
  setText("conn-state", c.state, c.state);
  setText("conn-epoch", c.epoch);
  setText("ready-trading", c.ready_trading ? "yes" : "no", c.ready_trading ? "yes" : "no");
  $("waiting").textContent = c.waiting_for.length
    ? "waiting for: " + c.waiting_for.slice(0, 8).join(", ") + (c.waiting_for.length > 8 ? " …" : "")
    : "";
  renderMarkets(s.markets);
  renderPositions(s.positions);
  renderOrders(s.open_orders);
  renderHardStop(s);
  setText("pnl-net", s.pnl.net, signClass(s.pnl.net));
  setText("pnl-realized", s.pnl.realized, signClass(s.pnl.realized));
  setText("pnl-unrealized", s.pnl.unrealized, signClass(s.pnl.unrealized));
  setText("pnl-fees", s.pnl.fees);
  const k = s.counters;
  setText("fills", k.fills);
  setText("signals", k.signals);
  setText("entries", k.entries);
  setText("exits", k.exits);
  const blocked = Object.entries(k.blocked).sort((a, b) => b[1] - a[1]);
  const finals = Object.entries(k.orders_final).sort();
  $("blocked").textContent =
    (blocked.length ? "blocked: " + blocked.map(([r, n]) => r + " " + n).join(" · ") : "no gate blocks") +
    (finals.length ? "  |  orders: " + finals.map(([r, n]) => r + " " + n).join(" · ") : "");
  for (const sample of s.series) series.push(sample);
  if (series.length > MAX_POINTS) series = series.slice(series.length - MAX_POINTS);
  if (series.length) lastSampleMs = series[series.length - 1].t_ms;
  drawChart($("chart-pnl"), [
    { key: "net", color: "#58a6ff", label: "net" },
    { key: "realized", color: "#3fb950", label: "realized" },
  ]);
  drawChart($("chart-fees"), [{ key: "fees", color: "#d29922", label: "fees" }]);
  const when = new Date(s.time_ms).toLocaleTimeString();
  setText("updated", (s.finished ? "bot finished · " : "live · ") + when, s.finished ? "stale" : "muted");
}

// --- charts: one SVG polyline per series, scaled to the data, with a zero line ----------

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceNumber(v) {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(4);
}

function drawChart(svg, lines) {
  const W = 640, H = 180, L = 56, R = 8, T = 18, B = 22;
  const parts = [];
  if (series.length === 0) {
    parts.push(svgEl("text", { x: L, y: H / 2 }, "no samples yet"));
    svg.replaceChildren(...parts);
    return;
  }
  const t0 = series[0].t_ms, t1 = series[series.length - 1].t_ms;
  let lo = 0, hi = 0; // zero always in range, so the sign is visible at a glance
  for (const s of series) for (const l of lines) { lo = Math.min(lo, s[l.key]); hi = Math.max(hi, s[l.key]); }
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.08; hi += pad; lo -= pad;
  const x = (t) => L + (t1 === t0 ? (W - L - R) : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  for (const v of [hi, (hi + lo) / 2, lo]) {
    parts.push(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    parts.push(svgEl("text", { x: 4, y: y(v) + 4 }, niceNumber(v)));
  }
  parts.push(svgEl("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "zero" }));
  parts.push(svgEl("text", { x: L, y: H - 6 }, new Date(t0).toLocaleTimeString()));
  parts.push(svgEl("text", { x: W - R, y: H - 6, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  let legendX = L;
  for (const l of lines) {
    const pts = series.map((s) => x(s.t_ms).toFixed(1) + "," + y(s[l.key]).toFixed(1)).join(" ");
    parts.push(svgEl("polyline", { points: pts, stroke: l.color, "data-series": l.key }));
    const last = series[series.length - 1][l.key];
    parts.push(svgEl("text", { x: legendX, y: 12, fill: l.color, style: "fill:" + l.color },
      l.label + " " + niceNumber(last)));
    legendX += 130;
  }
  svg.replaceChildren(...parts);
}

// --- polling -------------------------------------------------------------------------------

async function poll() {
  try {
    const r = await fetch("/api/state?since_ms=" + lastSampleMs, {
      headers: authHeaders(), cache: "no-store",
    });
    if (r.status === 401) {
      setText("updated", "this dashboard needs the token to show anything", "no");
    } else if (!r.ok) {
      setText("updated", "the bot answered " + r.status, "stale");
    } else {
      render(await r.json());
    }
  } catch (e) {
    setText("updated", "no answer from the bot (stopped?)", "stale");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// --- operator buttons: a first click arms, a second within a few seconds sends -------------

function message(text, cls) {
  const el = $("op-msg");
  el.textContent = text;
  el.className = cls;
}

async function send(path, what) {
  if (!token) {
    message("enter the operator token first", "error");
    return;
  }
  try {
    const r = await fetch(path, { method: "POST", headers: authHeaders(), cache: "no-store" });
    const body = await r.json().catch(() => ({}));
    if (r.status === 202) message(what + " sent to the bot", "ok");
    else message(what + " refused: " + r.status + " " + (body.error || ""), "error");
  } catch (e) {
    message(what + " not sent: no answer from the bot", "error");
  }
}

function twoStep(button, label, confirmLabel, action) {
  let timer = null;
  button.addEventListener("click", () => {
    if (!button.classList.contains("confirm")) {
      button.classList.add("confirm");
      button.textContent = confirmLabel;
      timer = setTimeout(() => {
        button.classList.remove("confirm");
        button.textContent = label;
        if (state) renderHardStop(state);
      }, CONFIRM_MS);
      return;
    }
    clearTimeout(timer);
    button.classList.remove("confirm");
    button.textContent = label;
    action();
  });
}

function start() {
  $("token").value = token;
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    message(token ? "token set for this tab" : "token cleared", "ok");
  });
  twoStep($("btn-hardstop"), "Trip HardStop", "Click again to trip HardStop",
    () => send("/api/hardstop", "HardStop"));
  twoStep($("btn-reset"), "Reset HardStop", "Click again to reset HardStop",
    () => send("/api/reset", "reset"));
  poll();
}

document.addEventListener("DOMContentLoaded", start);
