// tollhouse dashboard. Every value from the ledger reaches the page through
// textContent or an attribute setter, never as HTML, so nothing is parsed as markup.
"use strict";

const API = "/tollhouse/ui/api/";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2",
  "#db2777", "#65a30d", "#475569", "#ea580c"];
window.tollhouse = { charts: {}, ready: false };

// The overview's first view arrives inside the page (server.py ``first_view``): drawn
// before the load event, so a plain headless screenshot shows it. Each is used once.
let initial = null;
function firstView(key) {
  if (initial === null) {
    const node = document.getElementById("initial");
    try { initial = node ? JSON.parse(node.textContent) : {}; } catch (e) { initial = {}; }
  }
  const found = initial[key];
  delete initial[key];
  return found;
}

async function api(name, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v) query.set(k, v);
  const ready = firstView(name + "?" + query.toString());
  if (ready !== undefined) return ready;
  const response = await fetch(API + name + "?" + query.toString(), { credentials: "same-origin" });
  if (!response.ok) throw new Error(name + ": " + response.status + " " + await response.text());
  return response.json();
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

// One precision everywhere: four decimals (cents hide what small calls cost) up to
// $1,000, cents above; a nonzero amount too small to show is "<$0.0001", never $0.
function money(value) {
  const n = Number(value);
  if (value === null || value === undefined || !isFinite(n)) return "—";
  const a = Math.abs(n), sign = n < 0 ? "-" : "";
  if (a !== 0 && a < 0.00005) return sign + "<$0.0001";
  const digits = a < 1000 ? 4 : 2;
  return sign + "$" + a.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const WINDOWS = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400 };
function failed(t) {  // how many, and their share: what went wrong, at a glance
  if (t.errors === undefined) return "—";
  return count(t.errors) + (t.requests ? ` (${(100 * t.errors / t.requests).toFixed(1)} %)` : "");
}
function count(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
function share(x) { return x === null || x === undefined ? "—" : (100 * x).toFixed(1) + " %"; }

// columns: [heading, row => value, {num: true, link: row => href}]
function table(id, columns, rows, empty) {
  const node = document.getElementById(id);
  node.replaceChildren();
  if (!rows.length) {
    const tr = el("tr"); tr.append(el("td", empty || "Nothing in this period.", { class: "empty" }));
    node.append(tr); return;
  }
  const head = el("tr");
  for (const [title, , opts] of columns) head.append(el("th", title, opts && opts.num ? { class: "num" } : {}));
  const thead = el("thead"); thead.append(head);
  const tbody = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    for (const [, get, opts] of columns) {
      const td = el("td", null, opts && opts.num ? { class: "num" } : {});
      const value = get(row);
      if (opts && opts.link) {
        const a = el("a", value); a.href = opts.link(row); td.append(a);
      } else td.textContent = value === null || value === undefined ? "—" : String(value);
      tr.append(td);
    }
    tbody.append(tr);
  }
  node.append(thead, tbody);
}

function cards(totals) {
  const node = document.getElementById("totals");
  node.replaceChildren();
  const shown = [["Spend", money(totals.cost_usd)], ["Requests", count(totals.requests)],
    ["Input tokens", count(totals.input_tokens)], ["Output tokens", count(totals.output_tokens)],
    ["Failed calls", failed(totals)], ["Unpriced calls", count(totals.unpriced_requests)]];
  // Rows the ledger refused (kept aside with why): shown only when there are some.
  if (totals.quarantined) shown.push(["Quarantined rows", count(totals.quarantined)]);
  for (const [label, value] of shown) {
    const card = el("div", null, { class: "card" });
    card.append(el("span", label, { class: "label" }), el("span", value, { class: "value" }));
    node.append(card);
  }
}

// ``span``: seconds of the period shown (none: all time): the axis spans all of it,
// not only the buckets that had spend.
function chart(id, data, span) {
  const node = document.getElementById(id);
  node.replaceChildren();
  if (window.tollhouse.charts[id]) window.tollhouse.charts[id].destroy();
  delete window.tollhouse.charts[id];
  const tableRows = data.series.map(s => ({ name: s.name, total: s.total_usd }));
  table(id + "-table", [[data.by, r => r.name], ["cost", r => money(r.total), { num: true }]], tableRows);
  if (!data.days.length) { node.append(el("p", "No spend in this period.", { class: "empty" })); return; }
  const xs = data.days.map(d => Date.parse(d + (d.length > 10 ? ":00:00Z" : "T00:00:00Z")) / 1000);
  const half = data.bucket === "hour" ? 1800 : 43200;
  const series = [{}].concat(data.series.map((s, i) => ({
    label: s.name, stroke: COLORS[i % COLORS.length], width: 2,
    points: { show: true, size: 5 }, value: (u, v) => v === null ? "—" : money(v),
  })));
  const opts = {
    width: Math.max(240, node.clientWidth || 800), height: 260, series: series,
    axes: [{}, { values: (u, ticks) => ticks.map(v => "$" + Number(v.toPrecision(3))), size: 70 }],
    // One bucket alone: uPlot would stretch the axis over years around it; show that bucket.
    scales: { x: { time: true, range: (u, min, max) => {
      const now = Date.now() / 1000;
      if (span) return [Math.min(min, now - span), Math.max(max, now)];
      return xs.length === 1 ? [xs[0] - half, xs[0] + half] : [min, max];
    } } },
  };
  const plot = new uPlot(opts, [xs].concat(data.series.map(s => s.cost)), node);
  window.tollhouse.charts[id] = plot;
}

function budgetAlerts(budgets) {
  const node = document.getElementById("budget-alerts");
  node.replaceChildren();
  for (const b of budgets.filter(b => b.over)) {
    node.append(el("p", `Over budget: ${b.project} spent ${money(b.spent_usd)} of its ${b.mode} ` +
      `${b.period} budget of ${money(b.limit_usd)}`, { class: "alert" }));
  }
}

function budgetsTable(id, budgets) {
  table(id, [
    ["project", b => b.project, { link: b => "project?name=" + encodeURIComponent(b.project) }],
    ["period", b => b.period + " (" + b.window + ")"], ["mode", b => b.mode],
    ["limit", b => money(b.limit_usd), { num: true }], ["spent", b => money(b.spent_usd), { num: true }],
    ["used", b => share(b.used_share) + (b.over ? " ⚠ over" : ""), { num: true }],
  ], budgets, "No budgets configured ([projects.NAME] budget_daily_usd / budget_monthly_usd).");
}

function filters() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.search);
  for (const field of form.elements) if (field.name && params.get(field.name)) field.value = params.get(field.name);
  form.addEventListener("change", () => {
    const next = new URLSearchParams(location.search);
    for (const field of form.elements) if (field.name) next.set(field.name, field.value);
    history.replaceState(null, "", "?" + next.toString());
    render();
  });
  return () => Object.fromEntries([...form.elements].filter(f => f.name).map(f => [f.name, f.value]));
}

let current = () => ({});
let render = async () => {};

const TOP = (key, by) => [
  [key, r => r.name, by ? { link: r => by + encodeURIComponent(r.name) } : undefined],
  ["requests", r => count(r.requests), { num: true }], ["cost", r => money(r.cost_usd), { num: true }],
];

async function overview() {
  const f = current();
  const [ov, series, budgets, deals, unpriced, trust] = await Promise.all([
    api("overview", { since: f.since }), api("timeseries", { since: f.since, by: f.by, bucket: f.since === "24h" ? "hour" : "day" }),
    api("budgets"), api("commitments"), api("unpriced", { since: f.since }), api("trust", { since: f.since }),
  ]);
  cards(ov);
  chart("chart", series, WINDOWS[f.since]);
  table("top-projects", TOP("project", "project?name="), ov.top.project);
  table("top-models", TOP("model", "requests?model="), ov.top.model);
  table("top-providers", TOP("provider", "requests?provider="), ov.top.provider);
  budgetAlerts(budgets);
  budgetsTable("budgets", budgets);
  table("commitments", [
    ["provider", d => d.provider], ["discount", d => share(Number(d.discount)), { num: true }],
    ["committed / yr", d => d.annual_usd ? money(d.annual_usd) : "—", { num: true }],
    ["spent this year", d => d.spent_usd ? money(d.spent_usd) : "—", { num: true }],
    ["run-rate / yr", d => d.run_rate_usd ? money(d.run_rate_usd) : "—", { num: true }],
    ["shortfall", d => d.projected_shortfall_usd ? money(d.projected_shortfall_usd) : "—", { num: true }],
  ], deals, "No commitments configured ([commitments.PROVIDER]).");
  table("unpriced", [["provider", r => r.provider], ["model", r => r.model],
    ["calls", r => count(r.requests), { num: true }], ["last", r => r.last.slice(0, 16)]],
    unpriced, "Every call in this period has a price.");
  trustPanel(trust);
  await Promise.all([tagPanel(), interestPanel(f.since)]);
}

// Principal (spend that landed on commits) vs interest (rework), per month.
async function interestPanel(since) {
  const view = await api("interest", { since: since });
  document.getElementById("interest-about").textContent = view.hint ||
    `rework: rewrites within ${view.weeks} weeks, or calls tagged ${view.purposes.join(" / ")}`;
  table("interest-months", [["month", m => m.month],
    ["principal", m => money(m.principal_usd), { num: true }],
    ["interest", m => money(m.interest_usd), { num: true }],
    ["rate", m => share(m.rate === null ? null : Number(m.rate)), { num: true }]],
    view.months, view.hint || "No calls with git context in this period.");
  table("interest-repos", [["repository", r => r.repository],
    ["principal", r => r.error ? r.error : money(r.principal_usd), { num: true }],
    ["interest", r => r.error ? "—" : money(r.interest_usd), { num: true }],
    ["rate", r => r.rate === null || r.rate === undefined ? "—" : share(Number(r.rate)), { num: true }],
    ["AI lines rewritten", r => r.error ? "—" : `${count(r.rewritten_lines)} of ${count(r.ai_lines)}`, { num: true }]],
    view.repos, view.hint || "No repositories configured.");
  const rework = view.repos.flatMap(r => (r.rework || []).map(c => ({ ...c, repository: r.repository })));
  rework.sort((a, b) => Number(b.spend_usd) - Number(a.spend_usd));
  table("interest-rework", [["commit", c => c.commit.slice(0, 12)], ["when", c => c.time.slice(0, 10)],
    ["lines", c => count(c.lines), { num: true }], ["reverts", c => c.reverts ? c.reverts.slice(0, 12) : "—"],
    ["spend", c => money(c.spend_usd), { num: true }]], rework.slice(0, 10), "No rework commits.");
  interestChart(view.months);
}

function interestChart(months) {
  const id = "interest-chart", node = document.getElementById(id);
  node.replaceChildren();
  if (window.tollhouse.charts[id]) window.tollhouse.charts[id].destroy();
  delete window.tollhouse.charts[id];
  if (!months.length) return;
  const xs = months.map(m => Date.parse(m.month + "-01T00:00:00Z") / 1000);
  const half = 15 * 86400;
  const line = (label, color) => ({ label: label, stroke: color, width: 2,
    points: { show: true, size: 6 }, value: (u, v) => v === null ? "—" : money(v) });
  const opts = {
    width: Math.max(320, node.clientWidth || 800), height: 220,
    series: [{}, line("principal", COLORS[0]), line("interest", COLORS[1])],
    axes: [{}, { values: (u, ticks) => ticks.map(v => "$" + Number(v.toPrecision(3))), size: 70 }],
    scales: { x: { time: true, range: (u, min, max) => xs.length === 1 ? [xs[0] - half, xs[0] + half] : [min, max] } },
  };
  const data = [xs, months.map(m => Number(m.principal_usd)), months.map(m => Number(m.interest_usd))];
  window.tollhouse.charts[id] = new uPlot(opts, data, node);
}

function trustPanel(t) {
  table("trust", [["measure", r => r[0]], ["value", r => r[1], { num: true }]], [
    ["tasks", count(t.tasks)], ["degraded tasks", count(t.degraded_tasks)],
    ["degraded-task share", share(t.degraded_task_share)],
    ["irreversible actions", count(t.irreversible_actions)],
    ["tainted irreversible fired", count(t.tainted_irreversible_fired)],
    ["held actions", count(t.held_actions)],
    ["cache validity miss rate", share(t.cache_validity_miss_rate)],
    ["fallback divergence (mean)", t.divergence.mean === null ? "—" : t.divergence.mean.toFixed(3)],
  ]);
}

async function tagPanel() {
  const select = document.getElementById("tag-key");
  const f = current();
  const found = await api("tags", { since: f.since, key: select.value });
  select.replaceChildren(...found.keys.map(k => el("option", k, { value: k })));
  select.value = found.key;
  table("tags", [["value", r => r.value, { link: r => "requests?tag=" + encodeURIComponent(found.key + "=" + r.value) }],
    ["requests", r => count(r.requests), { num: true }], ["share of requests", r => share(r.request_share), { num: true }],
    ["cost", r => money(r.cost_usd), { num: true }], ["share of cost", r => share(r.cost_share), { num: true }]],
    found.values, "No tags in this period (send X-Tollhouse-Tag-Purpose: bugfix).");
}

async function capacity() {
  const found = await api("capacity");
  const rows = Object.entries(found.upstreams).map(([name, s]) => ({ name, ...s }));
  table("capacity", [["upstream", r => r.name], ["in flight", r => count(r.in_flight), { num: true }],
    ["queued", r => count(r.queue_depth), { num: true }], ["admitted", r => count(r.admitted), { num: true }],
    ["429s received", r => count(r.rate_limited_received), { num: true }],
    ["timeouts", r => count(r.timeouts), { num: true }], ["breaker", r => r.breaker],
    ["cooling down", r => r.cooling_down_until ? "yes" : "no"]], rows, "No upstreams configured.");
  const when = t => t ? new Date(t * 1000).toLocaleTimeString() : "on its probe";
  table("ejections", [["provider", r => r.provider], ["model", r => r.model || "all models"],
    ["state", r => r.state], ["reason", r => r.reason], ["since", r => when(r.since)],
    ["until", r => when(r.until)]], found.ejections, "Nothing ejected: every model is admitted.");
  table("blocks", [["provider", r => r.provider], ["model", r => r.model === "*" ? "all models" : r.model],
    ["by", r => r.source === "config" ? "the config" : r.by], ["reason", r => r.reason || ""],
    ["since", r => r.since ? new Date(r.since * 1000).toLocaleString() : ""]],
    found.blocks || [], "Nothing blocked.");
  const classes = ["rate_limit", "overloaded", "server", "timeout", "connection", "model_gone", "client"];
  table("capacity-hour", [["provider", r => r.provider], ["model", r => r.model],
    ["attempts", r => count(r.attempts), { num: true }],
    ["429 rate", r => share(r.attempts ? r.received_429 / r.attempts : null), { num: true }],
    ["errors", r => classes.filter(c => r[c]).map(c => c + " " + r[c]).join(", ") || "none"],
    ["avg wait ms", r => r.avg_queue_wait_ms.toFixed(1), { num: true }]],
    found.last_hour, "No upstream attempts in the last hour.");
  document.getElementById("capacity-at").textContent = "updated " + new Date().toLocaleTimeString();
}

async function projectPage() {
  const name = new URLSearchParams(location.search).get("name") || "";
  const f = current();
  const report = await api("project", { name, since: f.since });
  document.getElementById("project-name").textContent = name;
  document.title = "tollhouse · " + name;
  document.getElementById("period").textContent = f.since === "all" ? "All recorded usage" :
    "Period: " + (report.since || "").slice(0, 10) + " to " + new Date().toISOString().slice(0, 10) + " (UTC)";
  document.getElementById("project-requests").href = "requests?project=" + encodeURIComponent(name);
  cards(report);
  budgetAlerts(report.budgets);
  chart("chart", report.daily);
  table("by-model", [["model", r => r.model], ["provider", r => r.provider],
    ["requests", r => count(r.requests), { num: true }], ["input", r => count(r.input_tokens), { num: true }],
    ["output", r => count(r.output_tokens), { num: true }], ["cost", r => money(r.cost_usd), { num: true }]],
    report.by_model);
  const holder = document.getElementById("tag-sections");
  holder.replaceChildren();
  for (const [key, values] of Object.entries(report.tags)) {
    const section = el("section");
    const id = "tag-" + key.replace(/[^a-z0-9_-]/gi, "_");
    section.append(el("h2", "By " + key), el("table", null, { id }));
    holder.append(section);
    table(id, [[key, r => r.value], ["requests", r => count(r.requests), { num: true }],
      ["cost", r => money(r.cost_usd), { num: true }], ["share of cost", r => share(r.cost_share), { num: true }]], values);
  }
}

async function requestsPage() {
  const form = document.getElementById("request-filters");
  const params = new URLSearchParams(location.search);
  for (const field of form.elements) if (field.name && params.get(field.name)) field.value = params.get(field.name);
  const load = async () => {
    const f = Object.fromEntries([...form.elements].filter(x => x.name).map(x => [x.name, x.value]));
    const rows = await api("requests", f);
    document.getElementById("request-count").textContent =
      rows.length + (rows.length === 1 ? " request" : " requests");
    table("requests", [["time (UTC)", r => r.ts.slice(0, 19).replace("T", " ")],
      ["project", r => r.project, { link: r => "project?name=" + encodeURIComponent(r.project) }],
      ["provider", r => r.provider], ["model", r => r.model], ["status", r => r.status, { num: true }],
      ["trust", r => r.trust], ["in", r => count(r.input_tokens), { num: true }],
      ["out", r => count(r.output_tokens), { num: true }],
      ["cost", r => r.cost_usd === null ? r.price_source : money(r.cost_usd), { num: true }],
      ["ms", r => Math.round(r.latency_ms), { num: true }],
      ["tags", r => Object.entries(JSON.parse(r.tags || "{}")).map(([k, v]) => k + "=" + v).join(" ")],
      ["error", r => r.error || ""]], rows, "No requests match.");
    const older = document.getElementById("older");  // the next page, by keyset: any depth
    older.hidden = !rows.length || rows.length < Number(f.limit || 100);
    if (rows.length) {
      const next = new URLSearchParams(Object.entries(f).filter(([, v]) => v));
      next.set("before", rows[rows.length - 1].cursor);
      older.href = "?" + next.toString();
    }
    return f;
  };
  form.addEventListener("submit", async event => {
    event.preventDefault();
    form.elements.before.value = "";
    const f = await load();
    const next = new URLSearchParams(Object.entries(f).filter(([, v]) => v));
    history.replaceState(null, "", "?" + next.toString());
    window.tollhouse.ready = true;
  });
  await load();
}

async function start() {
  const page = document.body.dataset.page;
  try {
    if (page === "overview") {
      current = filters(); render = async () => { await overview(); };
      document.getElementById("tag-key").addEventListener("change", () => tagPanel());
      await Promise.all([overview(), capacity()]);
      setInterval(() => capacity().catch(showError), 5000);
    } else if (page === "project") {
      current = filters(); render = projectPage;
      document.getElementById("print").addEventListener("click", () => window.print());
      await projectPage();
    } else if (page === "requests") {
      await requestsPage();
    }
    window.tollhouse.ready = true;
  } catch (err) { showError(err); }
}

function showError(err) {
  const p = el("p", "Could not load: " + err.message, { class: "alert" });
  document.querySelector("main").prepend(p);
}

document.addEventListener("DOMContentLoaded", start);
