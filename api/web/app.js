// allocator plan explorer: talks to the service's own /v1 API; no third-party CDN.
// Every value from a scenario or plan (names, ids, units, currency, messages) reaches the
// page as text: the DOM is built with el() below, never from HTML strings (no innerHTML),
// and the service's Content-Security-Policy allows no inline script.
"use strict";

const $ = (sel) => document.querySelector(sel);

// el("td", { class: "pos" }, "text", child, …): an element whose string children are text
// nodes, so markup inside them shows literally.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Plotly reads a few HTML-like tags (<b>, <a href>, <br>…) in titles, names and tick
// labels; escaped, a scenario's text shows as it is. (Titles are { text }: plotly.js 3+
// ignores a plain string.)
const ptext = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const KINDS = ["cloud", "first_party", "rnd", "consumer"];
const COLORS = { cloud: "#2563eb", first_party: "#f59e0b", rnd: "#10b981", consumer: "#a855f7" };
const state = { scenario: null, plan: null, planId: null, me: null, approval: null };

// The API key: in this tab's sessionStorage, or with "remember" in localStorage (where
// earlier versions kept it, so a key remembered then is still found).
const KEY = "allocator-api-key";
const storedKey = () => sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
function storeKey(value, remember) {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  if (value) (remember ? localStorage : sessionStorage).setItem(KEY, value);
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = storedKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

// ---------------------------------------------------------------------- roles
// GET /v1/me names the caller and their role; what the role may not do is hidden
// (elements with data-needs="planner|admin"; data-hide-from: shown only below that role).
const RANK = { viewer: 1, planner: 2, admin: 3 };
const can = (role) => !!state.me && RANK[state.me.role] >= RANK[role];

async function loadMe() {
  const who = $("#who");
  try {
    state.me = (await api("/v1/me")).body;
    who.textContent = state.me.auth === "open" ? "open service: no key needed" : `${state.me.name} · ${state.me.role}`;
    who.className = "";
  } catch (e) {
    state.me = null;
    who.textContent = storedKey() ? "key refused" : "this service needs a key";
    who.className = "error";
  }
  applyRole();
}

function applyRole() {
  for (const e of document.querySelectorAll("[data-needs]")) e.hidden = !can(e.dataset.needs);
  for (const e of document.querySelectorAll("[data-hide-from]")) e.hidden = !state.me || can(e.dataset.hideFrom);
  document.body.dataset.role = state.me ? state.me.role : "none";
  renderApproval();
}

async function api(path, opts) {
  const o = Object.assign({}, opts || {});
  o.headers = headers(o.headers);
  const r = await fetch(path, o);
  const text = await r.text();
  const body = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const msg = body && (body.detail || body.title) ? (body.title + ": " + (body.detail || "")) : r.statusText;
    const err = new Error(msg);
    err.problem = body;
    throw err;
  }
  return { body, response: r };
}

function status(text, isError) {
  const el = $("#status");
  el.textContent = text;
  el.className = isError ? "error" : "";
  el.setAttribute("role", isError ? "alert" : "status");
}

// money as the CLI and the summaries show it (allocator.numbers.money): 20.13B, -1.80k,
// 12.00; a value that rounds to zero has no sign
function money(v) {
  if (v === null || v === undefined) return "n/a";
  const a = Math.abs(v);
  const f = (x, s) => {
    const r = Math.round(x * 100) / 100;
    return (r === 0 ? 0 : r).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + s;
  };
  if (a >= 1e9) return f(v / 1e9, "B");
  if (a >= 1e6) return f(v / 1e6, "M");
  if (a >= 1e3) return f(v / 1e3, "k");
  return f(v, "");
}

function signed(v, attrs) {
  return effect(v, 1, attrs);
}

// a change shown with its sign, coloured by its effect on the objective (sign −1: a cost,
// whose rise is bad): class pos (green) or neg (red), data-effect "better" or "worse"
function effect(v, sign, attrs) {
  const e = v * sign;
  const cls = e > 0 ? "pos" : e < 0 ? "neg" : "";
  const a = Object.assign({ class: cls }, e ? { "data-effect": e > 0 ? "better" : "worse" } : {}, attrs || {});
  return el("span", a, (v > 0 ? "+" : "") + money(v));
}

const layout = (extra) => Object.assign({
  margin: { l: 50, r: 10, t: 30, b: 40 }, font: { size: 11 },
  legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom" },
}, extra || {});
const config = { displaylogo: false, responsive: true };
const axis = (text, extra) => Object.assign({ title: { text: ptext(text) }, automargin: true }, extra || {});
const cur = () => (state.plan && state.plan.currency) || "USD";

// ------------------------------------------------------------------ scenarios
let loadToken = 0;
let chooseToken = 0;

async function loadScenarios(select) {
  const token = ++loadToken;
  const { body } = await api("/v1/scenarios?limit=100");
  if (token !== loadToken) return; // a newer load (e.g. after a key change) wins
  const sel = $("#scenario");
  const first = !select && !state.scenario ? await openingScenario(body.items) : null;
  if (token !== loadToken) return;
  const keep = select || state.scenario || (first && first.id);
  sel.replaceChildren(...body.items.map((s) =>
    el("option", { value: s.id }, `${s.id} (${s.segments} segments, ${s.pools} pools)`)));
  if (keep && body.items.some((s) => s.id === keep)) sel.value = keep;
  if (sel.value && (select || sel.value !== state.scenario)) await chooseScenario(sel.value);
  if (first && first.run && state.scenario === first.id && !state.plan && !$("#run").disabled) await runPlan();
}

// The page opens on a plan: the scenario of the latest finished plan; else one whose plan
// job is under way (followed); else the first scenario, whose plan it starts (run: true).
async function openingScenario(items) {
  const ids = new Set(items.map((s) => s.id));
  for (const st of ["done", "running", "queued"]) {
    const { body } = await api(`/v1/plans?status=${st}&limit=20`);
    const hit = body.items.find((j) => ids.has(j.scenario_id));
    if (hit) return { id: hit.scenario_id, run: false };
  }
  return items.length ? { id: items[0].id, run: true } : null;
}

async function chooseScenario(id) {
  const token = ++chooseToken;
  state.scenario = id;
  state.plan = null;
  state.planId = null;
  loadApproval(id).catch((e) => $("#approval").replaceChildren(problemView(e)));
  if ($("#history").open) loadHistory().catch((e) => $("#history-body").replaceChildren(problemView(e)));
  state.planScenario = null;
  const { body } = await api(`/v1/plans?scenario=${encodeURIComponent(id)}&status=done&limit=1`);
  if (token !== chooseToken) return; // the user picked another scenario meanwhile
  const pending = await pendingJob(id);
  if (token !== chooseToken) return;
  if (body.items.length) {
    await showPlan(body.items[0].id);
  } else {
    clearCharts();
    status("no plan yet: press Run plan");
  }
  if (pending) {
    $("#run").disabled = true;
    try { await followJob(pending.links.self, id); } finally { $("#run").disabled = false; }
  }
}

async function upload(file) {
  if (isWorkbook(file)) return uploadWorkbook(file);
  const text = await file.text();
  const id = file.name.replace(/\.json$/i, "").replace(/[^A-Za-z0-9_.:-]+/g, "-") || "uploaded";
  try {
    await api(`/v1/scenarios/${encodeURIComponent(id)}`, {
      method: "PUT", body: text, headers: { "content-type": "application/json" },
    });
    status(`stored ${id}`);
    await loadScenarios(id);
  } catch (e) {
    status(refusal(e), true);
  }
}

// an upload's refusal in one line next to the upload control: the title and the first
// problems, "and N more" when there are more
function refusal(e, shown = 3) {
  const errs = (e.problem && e.problem.errors) || [];
  const more = errs.length > shown ? `; and ${errs.length - shown} more` : "";
  const listed = errs.slice(0, shown).map((x) => `${x.path}: ${x.message}`).join("; ");
  return errs.length ? `${(e.problem && e.problem.title) || "refused"}: ${listed}${more}` : e.message;
}

const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

function isWorkbook(file) {
  return /\.xlsx$/i.test(file.name) || file.type === XLSX;
}

// a scenario workbook goes up as its raw bytes; its problems name sheet!cell
async function uploadWorkbook(file) {
  const id = file.name.replace(/\.xlsx$/i, "").replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "uploaded";
  try {
    await api(`/v1/scenarios/${encodeURIComponent(id)}`, {
      method: "PUT", body: await file.arrayBuffer(), headers: { "content-type": XLSX },
    });
    status(`stored ${id}`);
    await loadScenarios(id);
  } catch (e) {
    status(refusal(e), true);
  }
}

// ----------------------------------------------------------------------- jobs
async function runPlan() {
  if (!state.scenario) return;
  $("#run").disabled = true;
  try {
    const { response } = await api(`/v1/scenarios/${encodeURIComponent(state.scenario)}/plans`, { method: "POST" });
    await followJob(response.headers.get("location"), state.scenario);
  } catch (e) { failed(e.problem || { title: e.message }); }
  $("#run").disabled = false;
}

// Poll a plan job until it finishes, showing its progress (phase, round, elapsed) from the
// job's JSON; stops quietly when the user picks another scenario meanwhile.
async function followJob(loc, scenario) {
  const started = Date.now();
  for (;;) {
    if (state.scenario !== scenario) return;
    const { body } = await api(loc);
    if (state.scenario !== scenario) return;
    if (body.status === "done") { status(`solved in ${body.plan.solver.time_s.toFixed(2)} s`); await showPlan(body.id, body); return; }
    if (body.status === "failed" || body.status === "cancelled") {
      failed(body.error || { title: `plan job ${body.status}` });
      return;
    }
    status(progressText(body, started));
    await new Promise((r) => setTimeout(r, 300));
  }
}

function progressText(job, started) {
  const pr = job.progress;
  const secs = pr ? pr.elapsed_s : (Date.now() - started) / 1000;
  const what = pr ? `${pr.phase}${pr.round ? ", round " + pr.round : ""}: ${pr.message}` : "";
  return `job ${job.id.slice(0, 8)} ${job.status}… ${secs.toFixed(1)} s${what ? " · " + what : ""}`;
}

// An analysis (what-if, frontier, counterfactual): the service answers at once (200), or for
// a scenario beyond its synchronous size runs it as a job (202 + Location /v1/jobs/{id}):
// then poll the job, showing its progress in `where`, and return its result.
async function analysis(path, opts, where) {
  const { body, response } = await api(path, opts);
  if (response.status !== 202) return body;
  const loc = response.headers.get("location") || body.links.self;
  const started = Date.now();
  let job = body;
  while (job.status === "queued" || job.status === "running") {
    if (where) where.textContent = `${job.kind} as a job (large scenario): ` + progressText(job, started);
    await new Promise((r) => setTimeout(r, 500));
    job = (await api(loc)).body;
  }
  if (job.status !== "done") {
    const p = job.error || { title: `job ${job.status}` };
    const err = new Error(p.title + ": " + (p.detail || ""));
    err.problem = p;
    throw err;
  }
  return job.result;
}

// a scenario whose plan job is still queued or running: show that job (no second one)
async function pendingJob(id) {
  for (const st of ["running", "queued"]) {
    const { body } = await api(`/v1/plans?scenario=${encodeURIComponent(id)}&status=${st}&limit=1`);
    if (body.items.length) return body.items[0];
  }
  return null;
}

async function showPlan(planId, job) {
  const j = job || (await api(`/v1/plans/${encodeURIComponent(planId)}`)).body;
  // a plan fetched for a scenario the user has left meanwhile (the opening scenario's,
  // a large one, arriving after the user picked and solved another) is not shown
  if (state.scenario && j.scenario_id !== state.scenario) return;
  state.plan = j.plan;
  state.planId = planId;
  state.planScenario = j.scenario_id; // the scenario id the shown plan belongs to
  $("#problem").replaceChildren();
  if (!job) status(`plan ${planId.slice(0, 8)} (revision ${j.scenario_revision})`);
  render();
  renderApproval();
}

// --------------------------------------------------------------------- charts
// a failed job's or request's problem, laid out under the header (cleared by the next plan)
function showProblem(problem) {
  const msg = problem.title + ": " + (problem.detail || "");
  $("#problem").replaceChildren(problemView(Object.assign(new Error(msg), { problem })));
}

// a plan that could not be made: the problem once, under the Run button's header (the
// status line says only that it failed)
function failed(problem) {
  status("plan failed (below)", true);
  showProblem(problem);
}

// the chart cards only with a plan to draw (no empty frames); a hint in their place
function showCharts(on) {
  $("#charts").hidden = !on;
  $("#no-plan").hidden = on;
}

function clearCharts() {
  showCharts(false);
  $("#plan-note").textContent = "";
  for (const id of ["chart-gpus", "chart-prices", "chart-util", "chart-money", "chart-frontier", "chart-whatif"]) {
    Plotly.purge(id);
  }
  $("#kpis").replaceChildren();
  $("#explain").replaceChildren();
  $("#whatif-result").replaceChildren();
}

function render() {
  const p = state.plan;
  if (!p) return;
  const t = p.totals;
  const kpis = [
    ["Objective (PV)", t.objective], ["Gross margin", t.gross_margin], ["Revenue", t.revenue],
    ["LTV", t.ltv], ["Rental cost", t.rental_cost],
  ];
  $("#kpis").replaceChildren(...kpis.map(([k, v]) => el("div", { class: "kpi" },
    el("div", { class: "label" }, k),
    el("div", { class: "value", "data-kpi": k }, money(v) + " " + p.currency))));
  // how it was solved and checked: a footnote, not a headline
  const s = p.solver || {};
  $("#plan-note").textContent = `Solved by ${s.backend || "?"}:${s.solver || "?"}/${s.algorithm || "?"} in ` +
    `${(s.time_s || 0).toFixed(2)} s; largest constraint violation ${p.max_violation.toFixed(6)} ` +
    "(relative, checked independently of the solver).";
  showCharts(true);
  renderGpus();
  renderPrices();
  renderUtil();
  renderMoney();
  renderFrontier();
  fillSelects();
}

function renderGpus() {
  const p = state.plan;
  const by = $("#gpus-by").value;
  let traces;
  if (by === "kind") {
    // the rentals line (not by kind) holds no GPUs: it is a money line only
    traces = Object.entries(p.by_kind).filter(([key]) => key !== "rentals").map(([, k]) => ({
      x: p.periods, y: k.gpus_by_period, name: ptext(k.kind), type: "bar", marker: { color: COLORS[k.kind] },
    }));
  } else {
    const key = by === "pool" ? "pool" : "region";
    const region = {};
    for (const r of p.pools) region[r.pool] = r.region;
    const sums = {};
    for (const a of p.allocations) {
      const k = key === "pool" ? a.pool : region[a.pool];
      sums[k] = sums[k] || Object.fromEntries(p.periods.map((x) => [x, 0]));
      sums[k][a.period] += a.gpus;
    }
    const keys = Object.keys(sums).sort();
    traces = keys.map((k, i) => ({
      x: p.periods, y: p.periods.map((x) => sums[k][x]), name: ptext(k), type: "bar",
      marker: { color: palette(i, keys.length) },
    }));
  }
  $("#gpus-title").textContent = { kind: "GPUs by segment kind", pool: "GPUs by pool", region: "GPUs by region" }[by];
  Plotly.react("chart-gpus", traces, layout({
    barmode: "stack", xaxis: axis("period"), yaxis: axis("GPUs"),
  }), config);
}

function renderPrices() {
  const p = state.plan;
  const pools = [...new Set(p.pools.map((r) => r.pool))];
  const z = pools.map((pool) => p.periods.map((per) => {
    const r = p.pools.find((x) => x.pool === pool && x.period === per);
    return r.shadow_price_per_gpu_hour;
  }));
  sizeToRows("chart-prices", pools.length);
  Plotly.react("chart-prices", [{
    type: "heatmap", x: p.periods, y: pools.map(ptext), z, colorscale: "YlOrRd", reversescale: true,
    colorbar: { title: { text: ptext(p.currency + "/GPU-h"), side: "right" } },
    hovertemplate: "%{y}, %{x}: %{z:.2f} " + ptext(p.currency) + " per GPU-hour<extra></extra>",
  }], layout({ margin: { l: 10, r: 10, t: 10, b: 40 }, xaxis: axis("period"), yaxis: axis("pool") }), config);
}

function renderUtil() {
  const p = state.plan;
  const pools = [...new Set(p.pools.map((r) => r.pool))];
  // a heatmap like the prices (readable with many pools): GPUs used as a share of usable
  // capacity (own GPUs after headroom, bought and rented ones), as the CLI reads it; the
  // share of all GPUs in the hover. A pool with no GPUs in a period has no utilisation: a
  // gap (null), not 0 %
  const cell = (pool, per) => p.pools.find((x) => x.pool === pool && x.period === per);
  const has = (r) => r && (r.gpus + (r.rented || 0) + (r.bought || 0)) > 0;
  const usable = (r) => (r.utilisation_of_usable === null || r.utilisation_of_usable === undefined ? r.utilisation : r.utilisation_of_usable);
  const z = pools.map((pool) => p.periods.map((per) => { const r = cell(pool, per); return has(r) ? usable(r) * 100 : null; }));
  const raw = pools.map((pool) => p.periods.map((per) => { const r = cell(pool, per); return has(r) ? r.utilisation * 100 : null; }));
  sizeToRows("chart-util", pools.length);
  Plotly.react("chart-util", [{
    type: "heatmap", x: p.periods, y: pools.map(ptext), z, customdata: raw, zmin: 0, zmax: 100, colorscale: "Blues", reversescale: true,
    colorbar: { title: { text: "% of usable", side: "right" } }, hoverongaps: false,
    hovertemplate: "%{y}, %{x}: %{z:.1f} % of usable capacity used (%{customdata:.1f} % of all its GPUs)<extra></extra>",
  }], layout({ margin: { l: 10, r: 10, t: 10, b: 40 }, xaxis: axis("period"), yaxis: axis("pool") }), config);
}

function renderMoney() {
  const p = state.plan;
  const kinds = Object.keys(p.by_kind);
  const trace = (field, name) => ({ x: kinds, y: kinds.map((k) => p.by_kind[k][field]), name, type: "bar" });
  Plotly.react("chart-money", [trace("revenue", "revenue"), trace("gross_margin", "gross margin"), trace("ltv", "LTV")],
    layout({ barmode: "group", xaxis: axis("segment kind"), yaxis: axis(p.currency + " (PV)") }), config);
}

// The exact frontier (every breakpoint), thinned by the service for drawing (body.drawn:
// the ends, this plan's point and its neighbours always kept, so this plan lies on the
// line); this plan is marked with a star at its own totals.
async function renderFrontier() {
  if (!can("planner")) { // it solves LPs
    Plotly.purge("chart-frontier");
    $("#chart-frontier").textContent = "The frontier is computed on request: it needs the planner role.";
    return;
  }
  const planId = state.planId;
  try {
    const body = await analysis(`/v1/scenarios/${encodeURIComponent(state.scenario)}/frontier`, {}, $("#chart-frontier"));
    if (state.planId !== planId) return; // another plan is shown meanwhile: its own frontier
    $("#chart-frontier").textContent = "";
    const pts = (body.drawn || body.points.map((_, i) => i)).map((i) => body.points[i]);
    const c = body.currency || cur();
    const t = state.plan.totals;
    const name = `frontier (${body.exact ? "exact" : "sampled"}, ${pts.length} of ${body.points.length} point${body.points.length === 1 ? "" : "s"} drawn)`;
    Plotly.react("chart-frontier", [{
      x: pts.map((q) => q.ltv), y: pts.map((q) => q.margin), mode: "lines+markers", type: "scatter",
      text: pts.map((q) => `LTV weight ${q.weight_low.toPrecision(4)}–${q.weight_high === null ? "∞" : q.weight_high.toPrecision(4)}`), name,
      hovertemplate: "%{text}: LTV %{x:.4s}, margin − churn %{y:.4s} " + ptext(c) + "<extra></extra>",
    }, {
      x: [t.ltv], y: [t.gross_margin - t.churn_cost], mode: "markers", type: "scatter",
      name: ptext(`this plan (LTV weight ${t.ltv_weight})`), marker: { size: 14, symbol: "star", color: "#b42318" },
    }], layout({
      xaxis: axis(`LTV (${c}, PV)`), yaxis: axis(`gross margin − churn cost (${c}, PV)`),
    }), config);
  } catch (e) {
    if (state.planId !== planId) return;
    $("#chart-frontier").textContent = "frontier unavailable: " + e.message;
  }
}

function fillSelects() {
  const p = state.plan;
  const pools = [...new Set(p.pools.map((r) => r.pool))];
  document.querySelector("#whatif select[name=pool]").replaceChildren(...pools.map((x) => el("option", { value: x }, x)));
  const segs = [...new Set(p.segments.map((s) => s.segment))];
  document.querySelector("#whatif select[name=segment]").replaceChildren(...segs.map((x) => el("option", { value: x }, x)));
  document.querySelector("#whatif select[name=from]").replaceChildren(...p.periods.map((x, t) => el("option", { value: t }, x)));
  const sel = $("#segment");
  sel.replaceChildren(...segs.map((x) => el("option", { value: x }, x)));
  explain(sel.value);
}

// -------------------------------------------------------------------- what-if
async function whatIf(ev) {
  ev.preventDefault();
  if (!state.plan) { status("run a plan first", true); return; }
  const f = new FormData(ev.target);
  const sid = encodeURIComponent(state.scenario);
  const scale = {};
  const contract = {};
  for (const k of KINDS) {
    const v = parseFloat(f.get(k));
    if (!isNaN(v) && v !== 1) scale[k] = v;
    const c = parseFloat(f.get("contract_" + k));
    if (!isNaN(c) && c !== 1) contract[k] = c;
  }
  const gpus = parseFloat(f.get("gpus")) || 0;
  const from = parseInt(f.get("from"), 10) || 0;
  const seg = f.get("segment");
  const segDemand = parseFloat(f.get("seg_demand"));
  const segPrice = parseFloat(f.get("seg_price"));
  const priority = f.get("priority");
  const out = $("#whatif-result");
  out.textContent = "solving…";
  try {
    let diff;
    if (priority) {
      const transforms = [{ type: "priority", kind: priority }];
      for (const [k, v] of Object.entries(contract)) transforms.unshift({ type: "scale_contract", target: k, factor: v });
      for (const [k, v] of Object.entries(scale)) transforms.unshift({ type: "scale_demand", target: k, factor: v });
      if (seg && !isNaN(segDemand) && segDemand !== 1) transforms.unshift({ type: "scale_demand", target: seg, factor: segDemand });
      if (seg && !isNaN(segPrice) && segPrice !== 1) transforms.unshift({ type: "price", target: seg, factor: segPrice });
      if (gpus) transforms.unshift({ type: "capacity", pool: f.get("pool"), gpus, from_period: state.plan.periods[from] });
      const body = await analysis(`/v1/scenarios/${sid}/counterfactual`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "page", transforms }),
      }, out);
      diff = { totals: body.totals, by_kind: body.by_kind, newKey: "counterfactual", title: body.title, verdict: body.verdict };
    } else {
      const overrides = { demand_scale: scale };
      if (Object.keys(contract).length) overrides.contract_scale = contract;
      // a segment's factor compounds with its kind's (the service applies kind, then segment)
      if (seg && !isNaN(segDemand) && segDemand !== 1) overrides.demand_scale[seg] = segDemand;
      if (seg && !isNaN(segPrice) && segPrice !== 1) overrides.price_change = { [seg]: segPrice };
      // GPUs from the chosen period on: one number per period, 0 before it
      if (gpus) overrides.capacity_change = { [f.get("pool")]: from ? state.plan.periods.map((_, t) => (t >= from ? gpus : 0)) : gpus };
      const body = await analysis(`/v1/scenarios/${sid}/what-if`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(overrides),
      }, out);
      diff = { totals: body.difference.totals, by_kind: body.difference.by_kind, newKey: "new" };
      state.whatIf = { scenario: state.scenario, revision: body.scenario_revision, overrides };
    }
    const rows = Object.entries(diff.by_kind).map(([k, v]) => el("tr", {}, el("td", {}, k),
      el("td", {}, signed(v.revenue.change)), el("td", {}, signed(v.gross_margin.change)), el("td", {}, signed(v.ltv.change))));
    out.replaceChildren(
      priority ? null : saveWhatIfForm(),
      diff.title ? el("p", { class: "verdict" }, `${diff.title}: ${diff.verdict}.`) : null,
      whatIfTerms(diff.totals, diff.newKey),
      el("div", { class: "table-wrap" }, el("table", {},
        el("tr", {}, ["kind", "revenue", "gross margin", "LTV"].map((h) => el("th", {}, h))), rows)));
    const kinds = Object.keys(diff.by_kind);
    const last = (v, key) => v.gpus_by_period[key][v.gpus_by_period[key].length - 1];
    Plotly.react("chart-whatif", [
      { x: kinds, y: kinds.map((k) => last(diff.by_kind[k], "base")), name: "base", type: "bar" },
      { x: kinds, y: kinds.map((k) => last(diff.by_kind[k], diff.newKey)), name: "what-if", type: "bar" },
    ], layout({ barmode: "group", xaxis: axis("segment kind"), yaxis: axis("GPUs, last period") }), config);
  } catch (e) {
    out.replaceChildren(problemView(e));
  }
}

// Every term of the objective, base, what-if and change, so the numbers add up on screen:
// objective = gross margin + LTV weight × LTV − churn cost − expansion cost, and
// gross margin = revenue − variable cost − rental cost − shortfall penalty.
function whatIfTerms(t, newKey) {
  const c = cur();
  const w = t.ltv_weight ? t.ltv_weight[newKey] : 1;
  const lines = [
    ["revenue", "", "revenue"], ["variable_cost", "−", "variable cost"], ["rental_cost", "−", "rental cost"],
    ["shortfall_penalty", "−", "shortfall penalty"], ["gross_margin", "=", "gross margin", "sub"],
    ["weighted_ltv", "+", `LTV × weight ${w}`], ["churn_cost", "−", "churn cost"],
    ["expansion_cost", "−", "expansion cost"], ["objective", "=", "objective", "total"],
  ];
  const cell = (v) => el("td", {}, v === undefined ? "n/a" : money(v));
  // coloured by the change's effect on the objective: a cost ("−" term) that rises is red
  const change = (k, op) => effect(t[k].change, op === "−" ? -1 : 1);
  const rows = lines.filter(([k]) => t[k]).map(([k, op, label, cls]) => el("tr", { class: cls || "", "data-term": k },
    el("td", {}, (op ? op + " " : "") + label), cell(t[k].base), cell(t[k][newKey]),
    el("td", {}, k === "objective" ? el("b", { "data-whatif": "objective" }, change(k, op)) : change(k, op))));
  return el("div", { class: "table-wrap" }, el("table", { class: "terms" },
    el("caption", {}, `What-if against the base plan (${c}, present value)`),
    el("tr", {}, ["term", "base", "what-if", "change"].map((h) => el("th", {}, h))), rows));
}

// A problem (RFC 9457 body) as an error block: the title and detail, the fields named in
// errors[] as a list, and an infeasibility diagnosis laid out as its conflicts and the
// smallest relaxation, each a list.
function problemView(e) {
  const p = e.problem || {};
  const d = p.diagnosis;
  // with a diagnosis the detail is its message, laid out below: the title alone here
  const parts = [el("p", { class: "error-title" }, d && d.message && p.title ? p.title : e.message)];
  const errs = p.errors || [];
  const MAX = 10;
  if (errs.length) {
    parts.push(el("ul", {}, errs.slice(0, MAX).map((x) => el("li", {}, `${x.path}: ${x.message}`)),
      errs.length > MAX ? el("li", { class: "more" }, `and ${errs.length - MAX} more`) : null));
  }
  if (d && d.message) {
    let list = null;
    for (const line of d.message.split("\n")) {
      const item = line.match(/^\s+-\s+(.*)$/);
      if (item && list) { list.append(el("li", {}, item[1])); continue; }
      parts.push(el("p", { class: "diag-head" }, line.trim()));
      list = el("ul", {});
      parts.push(list);
    }
  }
  return el("div", { class: "error", role: "alert" }, parts.filter((x) => x.tagName !== "UL" || x.childNodes.length));
}

// n distinct colours: plotly's ten, then evenly spaced hues
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
function palette(i, n) {
  if (n <= PALETTE.length) return PALETTE[i];
  return `hsl(${Math.round((i * 360) / n)}, ${60 + 15 * (i % 2)}%, ${45 + 10 * (i % 3)}%)`;
}

// a heatmap with one row per pool gets the height its rows need
function sizeToRows(id, rows) {
  document.getElementById(id).style.height = Math.max(320, Math.min(1400, 80 + 18 * rows)) + "px";
}

// -------------------------------------------------------------------- explain
async function explain(segment) {
  if (!state.planId || !segment) return;
  const planId = state.planId;
  try {
    const { body } = await api(`/v1/plans/${encodeURIComponent(planId)}/explain?segment=${encodeURIComponent(segment)}`);
    if (state.planId !== planId || $("#segment").value !== segment) return; // a newer choice wins
    state.explained = body;
    renderExplain();
  } catch (e) { $("#explain").replaceChildren(problemView(e)); }
}

// ------------------------------------------------------------------ downloads
async function download(path, name) {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) { status(`download failed: ${r.status}`, true); return; }
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ----------------------------------------------------------------------- wire
window.addEventListener("DOMContentLoaded", () => {
  const key = $("#apikey");
  const remember = $("#remember-key");
  key.value = storedKey();
  remember.checked = !!localStorage.getItem(KEY);
  key.addEventListener("change", () => {
    storeKey(key.value.trim(), remember.checked);
    loadMe().then(() => loadScenarios()).catch((e) => status(e.message, true));
  });
  remember.addEventListener("change", () => storeKey(key.value.trim(), remember.checked));
  $("#approve").addEventListener("click", () => approvePlan().catch((e) => $("#approve-status").replaceChildren(problemView(e))));
  $("#history").addEventListener("toggle", () => $("#history").open && loadHistory().catch((e) => $("#history-body").replaceChildren(problemView(e))));
  $("#scenario").addEventListener("change", (e) => chooseScenario(e.target.value).catch((x) => status(x.message, true)));
  $("#upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = ""; // so choosing the same file again uploads it again
    if (file) await upload(file);
  });
  $("#run").addEventListener("click", runPlan);
  $("#gpus-by").addEventListener("change", () => state.plan && renderGpus());
  $("#whatif").addEventListener("submit", whatIf);
  $("#segment").addEventListener("change", (e) => explain(e.target.value));
  $("#explain-period").addEventListener("change", renderExplain);
  $("#editor").addEventListener("toggle", () => $("#editor").open && loadEditor().catch((e) => editorStatus(e.message, true)));
  $("#compare").addEventListener("toggle", () => $("#compare").open && loadCompare().catch((e) => $("#compare-result").replaceChildren(problemView(e))));
  $("#compare-go").addEventListener("click", () => comparePlans().catch((e) => $("#compare-result").replaceChildren(problemView(e))));
  $("#editor-save").addEventListener("click", () => saveEditor().catch((e) => editorStatus(e, true)));
  $("#dl-json").addEventListener("click", () => state.planId && download(`/v1/plans/${encodeURIComponent(state.planId)}/plan`, `plan-${state.scenario}.json`));
  $("#dl-xlsx").addEventListener("click", () => state.planId && download(`/v1/plans/${encodeURIComponent(state.planId)}/plan?format=xlsx`, `plan-${state.scenario}.xlsx`));
  $("#dl-csv").addEventListener("click", () => state.planId && download(`/v1/plans/${encodeURIComponent(state.planId)}/allocations?format=csv`, `allocations-${state.scenario}.csv`));
  loadMe().then(() => loadScenarios()).catch((e) => status(e.message, true));
});

// Explain, one period at a time: per pool the value of a GPU-hour to the segment (its
// best mode), the effective value with its contract minimum, the pool's price and the
// margin over it, and the GPUs the plan gives; the binding constraints as a table; the
// sentences folded away.
function renderExplain() {
  const body = state.explained;
  if (!body || !state.plan) return;
  const periods = state.plan.periods;
  const sel = $("#explain-period");
  if (sel.options.length !== periods.length || [...sel.options].some((o, i) => o.value !== periods[i])) {
    const keep = sel.value;
    sel.replaceChildren(...periods.map((x) => el("option", { value: x }, x)));
    if (periods.includes(keep)) sel.value = keep;
  }
  const per = sel.value || periods[0];
  const c = cur();
  const f = (v) => (v === null || v === undefined ? "n/a" : v.toFixed(2));
  const contract = body.has_contract !== false;
  const pct = (v) => (v === undefined ? "n/a" : Math.round(v * 100) + " %");
  const rows = body.values.filter((v) => v.period === per).map((v) => {
    const m = v.margin_over_price;
    return el("tr", { "data-pool": v.pool }, el("td", {}, v.pool), el("td", {}, v.mode), el("td", {}, pct(v.revenue_share)),
      el("td", {}, v.gpus.toFixed(1)), el("td", {}, f(v.value_per_gpu_hour)),
      contract ? el("td", {}, f(v.effective_value_per_gpu_hour)) : null, el("td", {}, f(v.shadow_price_per_gpu_hour)),
      el("td", { class: m > 1e-9 ? "pos" : m < -1e-9 ? "neg" : "" }, f(m)), el("td", { class: "why" }, v.why_unused || ""));
  });
  const head = el("tr", {}, ["pool", "mode", "revenue share", "GPUs", `value (${c}/GPU-h)`,
    contract ? `with contract min (${c}/GPU-h)` : null, `price (${c}/GPU-h)`, `margin (${c}/GPU-h)`, "why no GPUs"]
    .filter((h) => h !== null).map((h) => el("th", {}, h)));
  const svc = (body.periods || []).find((x) => x.period === per);
  const num = (v) => v.toLocaleString(undefined, { maximumFractionDigits: 0 });
  const served = svc ? `: served ${num(svc.served)} of ${num(svc.demand)} ${body.unit}` +
    (svc.served >= svc.demand - 1e-6 ? " (demand fully served)" : "") : "";
  const binding = body.binding.filter((b) => !b.key.period || b.key.period === per);
  const bind = binding.length ? el("div", { class: "table-wrap" }, el("table", { class: "binding" },
    el("caption", {}, `What binds in ${per}`),
    el("tr", {}, ["constraint", "meaning", "dual"].map((h) => el("th", {}, h))),
    binding.map((b) => el("tr", {}, el("td", {}, `${b.constraint} ${Object.values(b.key).join(" ")}`),
      el("td", {}, b.meaning), el("td", {}, b.dual === null ? "n/a" : `${f(b.dual)} ${c} per ${dualUnit(b.constraint, body.unit)}`))))) : el("p", {}, `Nothing binds for it in ${per}.`);
  $("#explain").replaceChildren(
    el("p", { class: "explain-head" }, `${body.segment} (${body.kind}) in ${per}${served}`),
    el("div", { class: "table-wrap" }, el("table", { class: "explain" }, head, rows)),
    bind,
    el("details", {}, el("summary", {}, "In words"), body.sentences.map((x) => el("p", {}, x))));
}

// a binding row's dual is per unit of what the row counts: work units for the segment's
// demand, contract and tiers; GPUs for stability, share, kind and R&D limits
function dualUnit(constraint, unit) {
  return ["segment-demand", "segment-contract", "segment-tiers"].includes(constraint) ? unit : "GPU";
}

// ------------------------------------------------------------ scenario editor
// The stored scenario's numbers (pools' GPUs, segments' demand and revenue per unit) as
// inputs; saving PUTs the scenario with If-Match: the revision it was loaded at, so a
// revision saved by someone else meanwhile is not overwritten (412).
const editor = { id: null, etag: null, scenario: null };

function editorStatus(msg, isError) {
  const e = $("#editor-status");
  if (msg instanceof Error) {
    e.replaceChildren(problemView(msg));
  } else {
    e.textContent = msg;
  }
  e.className = isError ? "error" : "";
}

// pools × periods and segments × periods, one number input per cell, units in the headers
async function loadEditor() {
  if (!state.scenario) return;
  const { body, response } = await api(`/v1/scenarios/${encodeURIComponent(state.scenario)}`);
  Object.assign(editor, { id: state.scenario, etag: response.headers.get("etag"), scenario: body.scenario });
  const sc = body.scenario;
  const labels = sc.periods.map((x) => x.label);
  const cur = sc.currency || "USD";
  const perPeriod = (v) => (Array.isArray(v) ? v : labels.map(() => v));
  const cell = (attrs, v, label) => el("td", {}, el("input", Object.assign({
    type: "number", step: "any", min: "0", value: String(v), "aria-label": label }, attrs)));
  const periodHeads = labels.map((x) => el("th", {}, x));
  const pools = sc.pools.map((q, i) => el("tr", {}, el("td", {}, q.id),
    perPeriod(q.gpus).map((v, t) => cell({ "data-pool": i, "data-period": t }, v, `${q.id} GPUs in ${labels[t]}`))));
  const segs = sc.segments.map((g, i) => el("tr", {}, el("td", {}, g.id), el("td", { class: "unit" }, g.unit),
    cell({ "data-price": i }, g.revenue_per_unit, `${g.id} revenue per ${g.unit}`),
    perPeriod(g.demand).map((v, t) => cell({ "data-demand": i, "data-period": t }, v, `${g.id} demand in ${labels[t]} (${g.unit})`))));
  $("#editor-body").replaceChildren(
    el("div", { class: "table-wrap" }, el("table", { class: "editor" },
      el("caption", {}, "Pools: own GPUs per period"),
      el("tr", {}, el("th", {}, "pool"), periodHeads.map((h) => h.cloneNode(true))), pools)),
    el("div", { class: "table-wrap" }, el("table", { class: "editor" },
      el("caption", {}, `Segments: demand per period in each segment's unit; revenue in ${cur} per unit`),
      el("tr", {}, el("th", {}, "segment"), el("th", {}, "unit"), el("th", {}, `revenue (${cur} per unit)`),
        periodHeads.map((h) => h.cloneNode(true))), segs)));
  editorStatus(`revision ${body.revision}`);
}

// the stored scenario with the table's numbers: a per-period field becomes one number per
// period (a revenue stays one number)
function editedScenario() {
  const sc = JSON.parse(JSON.stringify(editor.scenario));
  const T = sc.periods.length;
  const grid = (sel, key) => {
    const out = {};
    for (const i of document.querySelectorAll(`#editor-body input[${sel}]`)) {
      const row = +i.dataset[key];
      (out[row] = out[row] || new Array(T))[+i.dataset.period] = Number(i.value);
    }
    return out;
  };
  for (const [i, v] of Object.entries(grid("data-pool", "pool"))) sc.pools[+i].gpus = v;
  for (const [i, v] of Object.entries(grid("data-demand", "demand"))) sc.segments[+i].demand = v;
  for (const i of document.querySelectorAll("#editor-body input[data-price]")) sc.segments[+i.dataset.price].revenue_per_unit = Number(i.value);
  return sc;
}

async function saveEditor() {
  if (!editor.scenario) return;
  const { body, response } = await api(`/v1/scenarios/${encodeURIComponent(editor.id)}`, {
    method: "PUT", body: JSON.stringify(editedScenario()),
    headers: { "content-type": "application/json", "If-Match": editor.etag },
  });
  editor.etag = response.headers.get("etag");
  editorStatus(`saved: revision ${body.revision}; press Run plan for its plan`);
  if (editor.id === state.scenario) await chooseScenario(editor.id);
}

// ------------------------------------------------------------- compare plans
// Two finished plans (of any scenarios) side by side: GPUs, revenue and gross margin by
// kind, GPUs used by pool or by period, each with the difference.
async function loadCompare() {
  const { body } = await api("/v1/plans?status=done&limit=100");
  const opts = () => body.items.map((j) => el("option", { value: j.id },
    `${j.scenario_id} r${j.scenario_revision} · ${j.id.slice(0, 8)} · ${j.finished_at || ""}`));
  $("#compare-a").replaceChildren(...opts());
  $("#compare-b").replaceChildren(...opts());
  if (state.planId) $("#compare-a").value = state.planId;
  if (body.items.length > 1) $("#compare-b").value = body.items.find((j) => j.id !== $("#compare-a").value).id;
}

function planRows(p, by) {
  const out = {};
  const add = (k, f, v) => { out[k] = out[k] || {}; out[k][f] = (out[k][f] || 0) + v; };
  if (by === "kind") {
    for (const [k, v] of Object.entries(p.by_kind)) {
      add(k, "GPUs (last period)", v.gpus_by_period[v.gpus_by_period.length - 1]);
      add(k, "revenue", v.revenue); add(k, "gross margin", v.gross_margin); add(k, "LTV", v.ltv);
    }
  } else {
    // by pool: average GPUs per period (a pool's GPUs summed over the periods is no count
    // of anything); by period: the fleet. "used" counts rented GPUs too: shown beside them
    const n = by === "pool" ? p.periods.length : 1;
    for (const r of p.pools) {
      const k = by === "pool" ? r.pool : r.period;
      add(k, "own GPUs", r.gpus / n); add(k, "rented GPUs", (r.rented || 0) / n); add(k, "GPUs used", r.used / n);
    }
  }
  return out;
}

// per pool, the segments (and their kinds) that gained or lost GPUs from plan a to plan b,
// average GPUs per period, largest first: "+120 chat (first_party), −80 cloud-x (cloud)"
function poolMoves(pa, pb) {
  const avg = (p) => {
    const out = {};
    const kind = Object.fromEntries(p.segments.map((s) => [s.segment, s.kind]));
    for (const a of p.allocations) {
      const k = `${a.segment} (${kind[a.segment] || a.kind || "?"})`;
      out[a.pool] = out[a.pool] || {};
      out[a.pool][k] = (out[a.pool][k] || 0) + a.gpus / p.periods.length;
    }
    return out;
  };
  const A = avg(pa), B = avg(pb);
  const moves = {};
  for (const pool of new Set([...Object.keys(A), ...Object.keys(B)])) {
    const segs = new Set([...Object.keys(A[pool] || {}), ...Object.keys(B[pool] || {})]);
    moves[pool] = [...segs].map((sg) => [sg, ((B[pool] || {})[sg] || 0) - ((A[pool] || {})[sg] || 0)])
      .filter(([, d]) => Math.abs(d) >= 0.05).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
  }
  return moves;
}

async function comparePlans() {
  const [a, b] = [$("#compare-a").value, $("#compare-b").value];
  if (!a || !b) return;
  const by = $("#compare-by").value;
  const [pa, pb] = await Promise.all([a, b].map(async (id) => (await api(`/v1/plans/${encodeURIComponent(id)}`)).body.plan));
  const ra = planRows(pa, by), rb = planRows(pb, by);
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])];
  if (by !== "period") keys.sort();
  const fields = [...new Set(Object.values(ra).concat(Object.values(rb)).flatMap((r) => Object.keys(r)))];
  const fmt = (v) => (v === undefined ? "n/a" : money(v));
  const unit = by === "pool" ? " (average per period)" : "";
  const head = el("tr", {}, el("th", {}, by), fields.flatMap((f) => [el("th", {}, `${f}${/GPUs/.test(f) ? unit : ""}: base`), el("th", {}, "other"), el("th", {}, "change")]),
    by === "pool" ? el("th", {}, "segments gaining (+) or losing (−) GPUs, average per period") : null);
  const moves = by === "pool" ? poolMoves(pa, pb) : null;
  const gpus = (v) => (v === undefined ? "n/a" : v.toLocaleString("en-US", { maximumFractionDigits: 1 }));
  const isGpus = (f) => /GPUs/.test(f);
  const moved = (k) => {
    const m = (moves && moves[k]) || [];
    const txt = m.slice(0, 4).map(([sg, d]) => `${d > 0 ? "+" : "−"}${gpus(Math.abs(d))} ${sg}`).join(", ");
    return el("td", { class: "moves" }, (txt || "no change") + (m.length > 4 ? `, and ${m.length - 4} more` : ""));
  };
  const rows = keys.map((k) => el("tr", { "data-key": k }, el("td", {}, k), fields.flatMap((f) => {
    const x = (ra[k] || {})[f], y = (rb[k] || {})[f];
    if (isGpus(f)) {
      const d = (y || 0) - (x || 0);
      return [el("td", {}, gpus(x)), el("td", {}, gpus(y)), el("td", {}, (d > 0 ? "+" : "") + gpus(d))];
    }
    return [el("td", {}, fmt(x)), el("td", {}, fmt(y)), el("td", {}, signed((y || 0) - (x || 0)))];
  }), moves ? moved(k) : null));
  const t = (p, k) => p.totals[k];
  $("#compare-result").replaceChildren(
    el("p", {}, `objective ${money(t(pa, "objective"))} → ${money(t(pb, "objective"))} (`, signed(t(pb, "objective") - t(pa, "objective")),
      `), ${pa.currency} present value`),
    el("div", { class: "table-wrap" }, el("table", { class: "compare" }, head, rows)));
}

// ------------------------------------------------------ save a what-if as a scenario
// The what-if's overrides, applied by the service as the what-if applied them
// (POST /v1/scenarios/{id}/what-if/save): under a new id (?as=: an id that exists is
// refused, nothing is overwritten), or as the scenario's next revision, only if it is still
// at the revision the what-if was computed on (If-Match; 412 otherwise).
function saveWhatIfForm() {
  const id = el("input", { type: "text", id: "whatif-save-id", value: `${state.scenario}-whatif`, "aria-label": "new scenario id" });
  const btn = el("button", { type: "button", id: "whatif-save" }, "Save as new scenario");
  const rev = el("button", { type: "button", id: "whatif-save-revision" }, "Save as new revision");
  const msg = el("span", { id: "whatif-save-status", role: "status" });
  const fail = (e) => msg.replaceChildren(problemView(e));
  btn.addEventListener("click", () => saveWhatIf(id.value.trim(), msg).catch(fail));
  rev.addEventListener("click", () => saveWhatIf(null, msg).catch(fail));
  return el("p", { class: "save-whatif" }, id, " ", btn, " ", rev, " ", msg);
}

async function saveWhatIf(newId, msg) {
  const w = state.whatIf;
  if (!w || newId === "") return;
  const path = `/v1/scenarios/${encodeURIComponent(w.scenario)}/what-if/save` + (newId ? `?as=${encodeURIComponent(newId)}` : "");
  const hdrs = { "content-type": "application/json" };
  if (!newId) hdrs["If-Match"] = `"${w.revision}"`;
  const { body } = await api(path, { method: "POST", body: JSON.stringify(w.overrides), headers: hdrs });
  msg.textContent = newId ? `stored as ${newId}` : `stored as revision ${body.revision} of ${w.scenario}`;
  await loadScenarios(newId || w.scenario);
}

// ------------------------------------------------------------- approved plan
// The scenario's approved plan (GET /v1/plans?scenario=&approved=true):
// who approved it, when and why, and a button to show it. Admins approve the plan shown.
const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 16) + " UTC" : "");

async function loadApproval(id) {
  state.approval = null;
  // the list form answers an empty page while there is none (the /plans/approved route's
  // 404 would be logged as an error by the browser)
  const { body } = await api(`/v1/plans?scenario=${encodeURIComponent(id)}&approved=true&limit=1`);
  if (state.scenario !== id) return;
  state.approval = body.items[0] || null;
  renderApproval();
}

function renderApproval() {
  const box = $("#approval");
  if (!box) return;
  const a = state.approval;
  if (!a) {
    box.replaceChildren(el("p", { class: "hint" }, state.scenario ? `${state.scenario} has no approved plan yet.` : "none"));
  } else {
    const show = el("button", { type: "button", id: "show-approved" }, "Show it");
    show.addEventListener("click", () => showPlan(a.id).catch((e) => status(e.message, true)));
    box.replaceChildren(el("p", { id: "approved-line" },
      `plan ${a.id.slice(0, 8)} (revision ${a.scenario_revision}) approved by ${a.approval.approved_by} on ${when(a.approval.approved_at)}`,
      state.planId === a.id ? " · shown" : ""),
    el("p", { class: "hint" }, `“${a.approval.comment}”`), show);
  }
  const btn = $("#approve");
  btn.disabled = !state.planId || !!(a && a.id === state.planId);
  btn.title = !state.planId ? "no plan shown" : a && a.id === state.planId ? "the plan shown is the approved plan" : "";
}

async function approvePlan() {
  const id = state.planId;
  const comment = $("#approve-comment").value.trim();
  if (!id) return;
  if (!comment) { $("#approve-status").textContent = "a comment is needed"; return; }
  const { body } = await api(`/v1/plans/${encodeURIComponent(id)}/approve`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ comment }),
  });
  $("#approve-status").textContent = `approved plan ${id.slice(0, 8)}` + (body.supersedes ? ` (supersedes ${body.supersedes.slice(0, 8)})` : "");
  $("#approve-comment").value = "";
  await loadApproval(body.scenario_id);
}

// -------------------------------------------------------------------- history
async function loadHistory() {
  if (!state.scenario) return;
  const id = state.scenario;
  const { body } = await api(`/v1/scenarios/${encodeURIComponent(id)}/revisions?limit=50`);
  if (state.scenario !== id) return;
  const rows = body.items.map((r) => el("tr", { "data-revision": r.revision }, el("td", {}, `r${r.revision}`),
    el("td", {}, r.saved_by || "unknown"), el("td", {}, when(r.saved_at)), el("td", {}, r.name)));
  $("#history-body").replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "history" },
    el("tr", {}, ["revision", "saved by", "when", "name"].map((h) => el("th", {}, h))), rows)),
  body.total > body.items.length ? el("p", { class: "hint" }, `the latest ${body.items.length} of ${body.total}`) : null);
}
