// draizer web monitor. One EventSource on api/v2/stream: the API pushes a frame every half second (see
// services/api/monitor.py for its fields); this script only draws it. Text goes in with textContent, never as
// HTML: a field holds whatever a venue or an alert said.
"use strict";

const SVG = "http://www.w3.org/2000/svg"; // the SVG namespace name (not fetched)
const STALE_MS = 3000; // no frame for this long: the connection is shown as stale
const TOKEN_KEY = "draizer.token";

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function td(text, cls) {
  return el("td", cls, text);
}

// ----- formatting
function usd(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  const s = Math.abs(x).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return (x < 0 ? "−" : "") + s;
}
function signClass(x) {
  return x > 0 ? "pos" : x < 0 ? "neg" : "";
}
function count(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
}
function price(p) {
  if (!p) return "–";
  if (p >= 1000) return p.toFixed(2);
  if (p >= 1) return p.toFixed(4);
  return p.toPrecision(5);
}
function qty(q) {
  if (typeof q === "string") return q; // an order's exact decimal text, as the executor sent it
  if (!q) return "0";
  return Number(q.toPrecision(6)).toString();
}
function micros(us) {
  if (us === null || us === undefined || !Number.isFinite(us)) return "–";
  if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
  if (us >= 1e3) return (us / 1e3).toFixed(2) + " ms";
  return us.toFixed(us >= 100 ? 0 : 1) + " µs";
}
function ago(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 120) return seconds.toFixed(1) + " s";
  return Math.round(seconds / 60) + " min";
}
function clock(ms) {
  return new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
}
function sum(obj) {
  return Object.values(obj || {}).reduce((a, b) => a + b, 0);
}
function badge(text, cls) {
  return el("span", "badge " + (cls || text), text);
}

// ----- connection
let lastFrameAt = 0;
const seenOpps = new Set();
const seenExecs = new Set();

function setConn(state, text) {
  const c = $("conn");
  c.dataset.state = state;
  c.textContent = text || state;
}

function connect() {
  const es = new EventSource("api/v2/stream");
  es.addEventListener("frame", (e) => {
    lastFrameAt = Date.now();
    setConn("live");
    try {
      render(JSON.parse(e.data));
    } catch (err) {
      console.error("monitor: frame not drawn", err);
    }
  });
  es.addEventListener("error", () => setConn("reconnecting")); // EventSource retries by itself
}

// A local timer, not a request: flags a stream that went quiet without closing.
setInterval(() => {
  if (lastFrameAt && Date.now() - lastFrameAt > STALE_MS) setConn("stale", "stale: no update for " +
    Math.round((Date.now() - lastFrameAt) / 1000) + " s");
}, 1000);

// ----- drawing
function render(f) {
  $("instance").textContent = f.instance;
  const mode = $("mode");
  mode.textContent = f.mode || "";
  mode.classList.toggle("live", f.mode === "live");
  const waiting = $("waiting");
  if (!f.available) {
    waiting.hidden = false;
    waiting.textContent = "Waiting for the engine: " + f.detail;
    $("snapshot").textContent = "";
  } else {
    waiting.hidden = f.writer_alive;
    waiting.textContent = f.writer_alive ? "" :
      "The bridge (pid " + f.writer_pid + ") is not running: these are the last numbers it published.";
    $("snapshot").textContent = "snapshot #" + f.seq + ", " + ago(f.snapshot_age_s) + " old";
    renderKpis(f);
    renderOpps(f.opportunities);
    renderLatency(f.latency);
    renderFeeds(f.feeds, f.services);
    renderFunding(f.funding, f.now_ms);
    renderRejections(f.totals.rejections_by_reason);
  }
  if (f.tape) {
    renderHalt(f.tape.risk);
    renderExecs(f.tape);
    renderPnl(f.tape, f.available ? f.totals.pnl_usd : null, f.now_ms);
    renderRisk(f.tape.risk);
    renderBudget(f.tape.venues, f.now_ms);
    renderAlerts(f.tape.alerts);
  }
}

function renderKpis(f) {
  const t = f.totals;
  $("k-opps").textContent = count(t.opportunities);
  $("k-decisions").textContent = count(t.approved) + " / " + count(t.rejected);
  $("k-execs").textContent = count(sum(t.executions));
  $("k-fills").textContent = count(t.fills);
  const pnl = $("k-pnl");
  pnl.textContent = usd(t.pnl_usd) + " USD";
  pnl.className = "value " + signClass(t.pnl_usd);
  $("k-fees").textContent = usd(t.fees_usd) + " USD";
  const lat = f.latency.tick_to_order;
  $("k-latency").textContent = lat ? micros(lat.p50_us) + " / " + micros(lat.p99_us) : "–";
}

function renderHalt(risk) {
  const halt = $("halt");
  halt.dataset.halted = risk.halted ? "1" : "0";
  halt.hidden = !risk.halted;
  halt.replaceChildren();
  if (risk.halted) {
    halt.append("TRADING HALTED");
    halt.append(el("span", "why", risk.halt_reasons.join("; ")));
  }
}

function renderOpps(opps) {
  const body = $("opps").tBodies[0];
  const rows = opps.map((o) => {
    const tr = el("tr", seenOpps.has(o.id) ? "" : "fresh");
    tr.dataset.id = o.id;
    tr.append(td(ago(o.age_s)), td(o.id), td(o.strategy), td(o.symbol));
    const legs = el("td");
    for (const leg of o.legs) {
      const line = el("span", "leg");
      line.append(el("span", leg.side, leg.side.toUpperCase()), " " + leg.venue + " " + qty(leg.qty) + " " + leg.symbol +
        " @ " + price(leg.price) + " · quote " + micros(leg.quote_age_us));
      legs.append(line);
    }
    tr.append(legs, td(o.spread_bps.toFixed(2), "num"), td(usd(o.notional_usd), "num"),
      td(usd(o.expected_profit_usd, 4), "num " + signClass(o.expected_profit_usd)));
    const decision = td();
    const known = ["approved", "pending"].includes(o.decision);
    decision.append(badge(o.decision, known ? o.decision : "rejected"));
    tr.append(decision);
    return tr;
  });
  body.replaceChildren(...rows);
  seenOpps.clear();
  for (const o of opps) seenOpps.add(o.id);
}

function renderExecs(tape) {
  const body = $("execs").tBodies[0];
  $("execs-note").textContent = count(tape.executions_seen) + " seen since the monitor started at " + clock(tape.since_ms);
  const rows = tape.executions.map((e) => {
    const tr = el("tr", seenExecs.has(e.opportunity_id) ? "" : "fresh");
    tr.dataset.id = e.opportunity_id;
    tr.append(td(clock(e.done_ms)), td(e.opportunity_id), td(e.strategy), td(e.symbol));
    const outcome = td();
    outcome.append(badge(e.outcome));
    tr.append(outcome);
    const orders = el("td");
    for (const leg of e.legs) {
      const line = el("span", "leg");
      line.append((leg.role === "leg" ? "" : leg.role + " "), el("span", leg.side, leg.side.toUpperCase()),
        " " + leg.venue + " " + qty(leg.filled_qty) + " / " + qty(leg.qty) + " " + (leg.status || ""));
      orders.append(line);
    }
    tr.append(orders, td(usd(e.fees_usd, 4), "num"), td(usd(e.pnl_usd, 4), "num " + signClass(e.pnl_usd)),
      td(e.note || "", "note"));
    return tr;
  });
  body.replaceChildren(...rows);
  seenExecs.clear();
  for (const e of tape.executions) seenExecs.add(e.opportunity_id);
}

function renderPnl(tape, engineTotal, nowMs) {
  const chart = $("pnl-chart");
  const W = 600, H = 220, L = 58, R = 8, T = 10, B = 22;
  // Each strategy's total holds until its next execution: the line runs on to now.
  const series = Object.entries(tape.pnl_by_strategy).map(([name, pts]) => [name, [...pts, [nowMs, pts[pts.length - 1][1]]]]);
  let t0 = tape.since_ms, t1 = Math.max(t0 + 1000, nowMs), lo = 0, hi = 0;
  for (const [, pts] of series) {
    for (const [t, v] of pts) {
      t1 = Math.max(t1, t);
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (hi - lo < 0.01) { hi += 0.01; lo -= 0.01; }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  const kids = [
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), class: "zero" }),
  ];
  for (const [v, label] of [[hi, usd(hi)], [lo, usd(lo)], [0, "0"]]) {
    const t = svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" });
    t.textContent = label;
    kids.push(t);
  }
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 6, "text-anchor": anchor });
    label.textContent = clock(t);
    kids.push(label);
  }
  const legend = [];
  series.forEach(([name, pts], i) => {
    const line = svg("polyline", { points: pts.map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1)).join(" "),
      class: "s" + (i % 4) });
    line.dataset.strategy = name;
    kids.push(line);
    const last = pts[pts.length - 1][1];
    const item = el("span");
    item.append(el("span", "sw s" + (i % 4)), name + " ", el("span", signClass(last), usd(last)));
    legend.push(item);
  });
  chart.replaceChildren(...kids);
  if (!series.length) legend.push(el("span", "dim", "no executions yet"));
  if (engineTotal !== null) {
    const seen = series.reduce((a, [, pts]) => a + pts[pts.length - 1][1], 0);
    const before = engineTotal - seen;
    const note = el("span", "dim", "engine total " + usd(engineTotal) +
      (Math.abs(before) >= 0.005 ? " (" + usd(before) + " before the monitor started)" : ""));
    legend.push(note);
  }
  $("pnl-legend").replaceChildren(...legend);
}

const LOG_LO = 0, LOG_HI = 6; // 1 µs .. 1 s
function logPos(us) {
  const v = Math.log10(Math.max(us, 1));
  return Math.min(100, Math.max(0, ((v - LOG_LO) / (LOG_HI - LOG_LO)) * 100));
}

function renderLatency(latency) {
  const rows = Object.entries(latency).map(([stage, s]) => {
    const tr = el("tr", stage === "tick_to_order" ? "headline" : "");
    tr.append(td(stage.replaceAll("_", " ")), td(micros(s.p50_us), "num"), td(micros(s.p99_us), "num"),
      td(micros(s.avg_us), "num"));
    const cell = td();
    const range = el("div", "range");
    const span = el("span");
    span.style.left = logPos(s.p50_us) + "%";
    span.style.width = Math.max(0, logPos(s.p99_us) - logPos(s.p50_us)) + "%";
    const mark = el("i");
    mark.style.left = logPos(s.p50_us) + "%";
    range.title = "p50 " + micros(s.p50_us) + ", p99 " + micros(s.p99_us);
    range.append(span, mark);
    cell.append(range);
    tr.append(cell, td(count(s.count), "num"));
    return tr;
  });
  $("latency").tBodies[0].replaceChildren(...rows);
}

function renderRisk(risk) {
  const state = $("risk-state");
  state.dataset.halted = risk.halted ? "1" : "0";
  state.textContent = !risk.heard ? "risk not heard from yet" : risk.halted ? "HALTED: " + risk.halt_reasons.join("; ")
    : "trading";
  const rows = Object.entries(risk.breakers).map(([name, b]) => {
    const tr = el("tr");
    tr.dataset.breaker = name;
    const st = td();
    st.append(badge(b.open ? "open" : "closed", b.open ? "open-yes" : "open-no"));
    tr.append(td(name.replaceAll("_", " ")), st,
      td(b.left_s !== null && b.left_s !== undefined ? b.left_s.toFixed(0) + " s" : b.open ? "until resumed" : "", "num"));
    return tr;
  });
  const kill = el("tr");
  kill.dataset.breaker = "kill_switch";
  const ks = td();
  ks.append(badge(risk.kill_switch ? "engaged" : "off", risk.kill_switch ? "open-yes" : "open-no"));
  kill.append(td("kill switch"), ks, td(risk.kill_switch ? "until resumed" : "", "num"));
  $("breakers").tBodies[0].replaceChildren(kill, ...rows);
  const facts = $("risk-facts");
  facts.replaceChildren();
  const fact = (k, v, cls) => facts.append(el("span", "k", k), el("span", cls || "", v));
  fact("daily PnL", usd(risk.daily_pnl_usd) + " of −" + usd(risk.max_daily_loss_usd) + " allowed",
    signClass(risk.daily_pnl_usd));
  fact("in flight", count(risk.in_flight));
  fact("heard", risk.age_s === null ? "never" : ago(risk.age_s) + " ago");
}

function renderRejections(byReason) {
  const entries = Object.entries(byReason || {}).sort((a, b) => b[1] - a[1]).slice(0, 8);
  const total = entries.reduce((a, [, n]) => a + n, 0) || 1;
  const rows = entries.map(([reason, n]) => {
    const row = el("div", "row");
    const meter = el("div", "meter");
    const fill = el("span");
    fill.style.width = ((100 * n) / total).toFixed(1) + "%";
    meter.append(fill);
    row.append(el("span", "", reason), meter, el("span", "num", count(n)));
    return row;
  });
  $("rejections").replaceChildren(...(rows.length ? rows : [el("span", "dim", "none")]));
}

function renderAlerts(alerts) {
  const items = alerts.slice(0, 8).map((a) => {
    const li = el("li");
    li.append(el("span", "when", clock(a.at_ms)), el("strong", "", a.source + " " + a.kind + ": "), a.message);
    return li;
  });
  $("alerts").replaceChildren(...(items.length ? items : [el("li", "dim", "none")]));
}

function meter(used, limit) {
  const cell = el("div", "budget-cell");
  const m = el("div", "meter");
  const fill = el("span");
  const share = limit ? Math.min(1, used / limit) : 0;
  fill.style.width = (share * 100).toFixed(1) + "%";
  if (share >= 1) m.classList.add("full");
  else if (share >= 0.7) m.classList.add("hot");
  m.append(fill);
  cell.append(m, el("span", "", count(used) + (limit ? " / " + count(limit) : "")));
  return cell;
}

function renderBudget(venues, nowMs) {
  const rows = Object.entries(venues).map(([name, v]) => {
    const tr = el("tr");
    tr.dataset.venue = name;
    tr.append(td(name));
    for (const [used, limit] of [[v.orders_10s, v.orders_limit_10s], [v.weight_1m, v.weight_limit_1m]]) {
      const c = td();
      c.append(meter(used, limit));
      tr.append(c);
    }
    tr.append(td(count(v.orders_1d) + (v.orders_limit_1d ? " / " + count(v.orders_limit_1d) : ""), "num"));
    const state = td();
    if (!v.reachable) state.append(badge("unreachable", "rejected"));
    else if (v.blocked_until_ms > nowMs) state.append(badge("blocked " + Math.ceil((v.blocked_until_ms - nowMs) / 1000) + " s",
      "rejected"));
    else state.append(badge("ok", "approved"));
    if (v.open_orders) state.append(" " + count(v.open_orders) + " open");
    tr.append(state);
    return tr;
  });
  $("budget").tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow(5, "no venue state from the executor yet")]));
}

function emptyRow(span, text) {
  const tr = el("tr");
  const c = td(text, "dim");
  c.colSpan = span;
  tr.append(c);
  return tr;
}

function renderFeeds(feeds, services) {
  const rows = Object.entries(feeds).map(([venue, f]) => {
    const tr = el("tr");
    tr.dataset.venue = venue;
    const state = td();
    state.append(badge(f.state, f.state));
    const stale = td(count(f.stale), "num" + (f.stale ? " neg" : ""));
    if (f.stale_symbols && f.stale_symbols.length) stale.title = f.stale_symbols.join(", ");
    tr.append(td(venue), state, td(ago(f.heartbeat_age_s), "num"),
      td(f.quotes === null || f.quotes === undefined ? "funding only" : count(f.quotes), "num"), td(count(f.live), "num"),
      stale);
    return tr;
  });
  $("feeds").tBodies[0].replaceChildren(...rows);
  const chips = Object.entries(services).map(([name, s]) => {
    const up = s.state === "RUNNING" && s.heartbeat_age_s !== null && s.heartbeat_age_s < 5;
    const chip = el("span", "chip " + (up ? "up" : "down"), name + " " + s.state.toLowerCase());
    chip.title = "heartbeat " + ago(s.heartbeat_age_s) + " ago";
    return chip;
  });
  $("services").replaceChildren(...chips);
}

function countdown(s) {
  if (s < 60) return Math.floor(s) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function renderFunding(funding, nowMs) {
  const table = $("funding");
  const venues = [...new Set(Object.values(funding).flatMap((v) => Object.keys(v)))].sort();
  const head = el("tr");
  head.append(el("th", "", "symbol"), ...venues.map((v) => el("th", "num", v)), el("th", "num", "next"));
  table.tHead.replaceChildren(head);
  const now = nowMs;
  const rows = Object.entries(funding).sort().map(([symbol, byVenue]) => {
    const tr = el("tr");
    tr.append(td(symbol));
    let next = Infinity;
    for (const v of venues) {
      const f = byVenue[v];
      tr.append(td(f ? (f.rate * 100).toFixed(4) + " %" : "–", "num " + (f ? signClass(f.rate) : "")));
      if (f) next = Math.min(next, f.next_funding_ms);
    }
    tr.append(td(Number.isFinite(next) ? countdown(Math.max(0, next - now) / 1000) : "–", "num"));
    return tr;
  });
  table.tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow(2, "no funding reported")]));
}

// ----- kill and resume: the API's own write endpoints, with the token as a bearer
async function command(path, what) {
  const msg = $("action-msg");
  const token = $("token").value.trim();
  if (!token) {
    msg.className = "err";
    msg.textContent = "enter the API token first";
    $("token").focus();
    return;
  }
  for (const b of [$("kill"), $("resume")]) b.disabled = true;
  msg.className = "";
  msg.textContent = what + "…";
  try {
    const r = await fetch(path, { method: "POST", headers: { Authorization: "Bearer " + token } });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      sessionStorage.setItem(TOKEN_KEY, token);
      msg.className = "ok";
      msg.textContent = what + ": done (" + (body.halted ? "halted" : "trading allowed") + ")";
    } else {
      msg.className = "err";
      msg.textContent = what + " refused: " + r.status + " " + (body.detail || r.statusText);
    }
  } catch (err) {
    msg.className = "err";
    msg.textContent = what + " failed: " + err;
  } finally {
    for (const b of [$("kill"), $("resume")]) b.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("kill").addEventListener("click", () => command("api/v2/kill", "kill switch"));
  $("resume").addEventListener("click", () => command("api/v2/resume", "resume"));
  $("control").addEventListener("submit", (e) => e.preventDefault());
  connect();
});
