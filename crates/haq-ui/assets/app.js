// haq ui: one page, routed by the URL's #fragment, polling the store's JSON every second.
"use strict";

// Set once per page load: a test reads it to tell a live update from a reload.
window.haqBoot = Date.now() + "-" + Math.random();

const COLORS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457"];
const view = document.getElementById("view");
let refresh = null; // the current view's poll, or null
let busy = false;

const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(5).replace(/\.?0+$/, "")) : v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");
const secs = (s) => (s === null || s === undefined ? "" : s < 90 ? s.toFixed(1) + " s" : s < 5400 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(2) + " h");
const bytes = (n) => (n < 1024 ? n + " B" : n < 1 << 20 ? (n / 1024).toFixed(1) + " KiB" : (n / (1 << 20)).toFixed(1) + " MiB");
const state = (s) => `<span class="state ${esc(s)}">${esc(s)}</span>`;

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) {
    const e = new Error(body.error || r.statusText);
    e.status = r.status;
    throw e;
  }
  return body;
}

function banner(message) {
  const b = document.getElementById("banner");
  b.hidden = !message;
  b.textContent = message || "";
}

function live(ok) {
  const l = document.getElementById("live");
  l.classList.toggle("off", !ok);
  l.textContent = ok ? "live" : "no answer";
}

// ---- charts: SVG line charts, one or more series each ----

function lineChart(title, series, opts = {}) {
  const W = opts.width || 420, T = 22, B = 30, R = 10;
  const legend = series.filter((s) => s.label).length;
  const H = (opts.height || 220) + 14 * legend;
  const plotBottom = H - B - 14 * legend;
  const xs = series.flatMap((s) => s.xs), ys = series.flatMap((s) => s.ys).filter(Number.isFinite);
  const points = series.reduce((n, s) => n + s.xs.length, 0);
  if (!xs.length || !ys.length) {
    return `<svg class="chart" width="${W}" height="${H}" data-title="${esc(title)}" data-points="0"><text class="title" x="10" y="15">${esc(title)}</text><text x="10" y="${H / 2}">no points yet</text></svg>`;
  }
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.01 || 0.5; y0 -= pad; y1 += pad; }
  const ticks = [0, 0.5, 1].map((f) => y0 + f * (y1 - y0));
  const labels = ticks.map((y) => axisLabel(y, y1 - y0));
  const L = 12 + 6.5 * Math.max(...labels.map((l) => l.length));
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (plotBottom - T);
  let svg = `<svg class="chart" width="${W}" height="${H}" data-title="${esc(title)}" data-points="${points}" data-series="${series.length}">`;
  svg += `<text class="title" x="${L}" y="15">${esc(title)}</text>`;
  ticks.forEach((y, i) => {
    svg += `<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/><text x="${L - 4}" y="${py(y) + 4}" text-anchor="end">${esc(labels[i])}</text>`;
  });
  const axisY = plotBottom + 16;
  svg += `<text x="${L}" y="${axisY}">${esc(fmt(x0))}</text><text x="${W - R}" y="${axisY}" text-anchor="end">${esc(fmt(x1))}</text>`;
  if (opts.xlabel) svg += `<text x="${(L + W - R) / 2}" y="${axisY}" text-anchor="middle">${esc(opts.xlabel)}</text>`;
  let row = 0;
  series.forEach((s, i) => {
    const d = s.xs.map((x, j) => (Number.isFinite(s.ys[j]) ? `${px(x).toFixed(1)},${py(s.ys[j]).toFixed(1)}` : null)).filter(Boolean).join(" ");
    const color = s.color || COLORS[i % COLORS.length];
    svg += `<polyline fill="none" stroke="${color}" stroke-width="1.5" ${s.dash ? 'stroke-dasharray="4 3"' : ""} points="${d}"><title>${esc(s.label)}</title></polyline>`;
    // A curve of a few points (a final cost, one epoch) shows its points too.
    if (s.xs.length < 30) {
      s.xs.forEach((x, j) => {
        if (Number.isFinite(s.ys[j])) svg += `<circle cx="${px(x).toFixed(1)}" cy="${py(s.ys[j]).toFixed(1)}" r="2.5" fill="${color}"><title>${esc(s.label)} ${fmt(x)}: ${fmt(s.ys[j])}</title></circle>`;
      });
    }
    if (s.label) {
      const y = axisY + 8 + 14 * row++;
      svg += `<line x1="${L}" x2="${L + 18}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2" ${s.dash ? 'stroke-dasharray="4 3"' : ""}/><text class="legend" x="${L + 24}" y="${y + 4}">${esc(s.label)}</text>`;
    }
  });
  return svg + "</svg>";
}

// An axis label with enough digits to tell the ticks of a narrow range apart.
function axisLabel(v, range) {
  const digits = Math.max(0, Math.min(12, Math.ceil(-Math.log10(range || 1)) + 2));
  return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-4 && range < 1e-4) ? v.toExponential(3) : v.toFixed(digits);
}

const bestSoFar = (ys) => { let b = -Infinity; return ys.map((y) => (b = Math.max(b, y))); };

// ---- the DAG ----

async function showDag() {
  view.innerHTML = `<h2>Workflow</h2><div id="dag" class="dag"></div><h3>Stages</h3><div id="stages"></div>`;
  refresh = async () => {
    const d = await get("/api/dag");
    document.getElementById("where").textContent = `${d.workflow} · ${d.store}`;
    const depth = {};
    const byName = Object.fromEntries(d.stages.map((s) => [s.name, s]));
    const level = (s) => depth[s.name] ?? (depth[s.name] = s.needs.length ? 1 + Math.max(...s.needs.map((n) => level(byName[n]))) : 0);
    d.stages.forEach(level);
    const cols = [];
    d.stages.forEach((s) => (cols[depth[s.name]] ||= []).push(s));
    const BW = 210, BH = 30, GX = 60, GY = 6, pos = {};
    cols.forEach((col, c) => col.forEach((s, r) => (pos[s.name] = [10 + c * (BW + GX), 10 + r * (BH + GY)])));
    const W = 20 + cols.length * (BW + GX), H = 20 + Math.max(...cols.map((c) => c.length)) * (BH + GY);
    let svg = `<svg width="${W}" height="${H}">`;
    for (const s of d.stages) for (const n of s.needs) {
      const [x1, y1] = pos[n], [x2, y2] = pos[s.name];
      svg += `<line x1="${x1 + BW}" y1="${y1 + BH / 2}" x2="${x2}" y2="${y2 + BH / 2}"/>`;
    }
    for (const s of d.stages) {
      const [x, y] = pos[s.name];
      const p = s.progress ? ` · ${s.progress.key} ${s.progress.step}${s.progress.of ? "/" + s.progress.of : ""}` : "";
      svg += `<g data-stage="${esc(s.name)}" data-state="${s.state}" onclick="openStage(${s.run ?? "null"}, '${s.kind}')">` +
        `<rect x="${x}" y="${y}" width="${BW}" height="${BH}" fill="var(--${s.state})"><title>${esc(s.name)}: ${esc(s.detail)}</title></rect>` +
        `<text x="${x + 6}" y="${y + 13}">${esc(s.name)}</text><text x="${x + 6}" y="${y + 25}">${esc(s.state + p)}</text></g>`;
    }
    document.getElementById("dag").innerHTML = svg + "</svg>";
    document.getElementById("stages").innerHTML = `<table><tr><th>stage</th><th>state</th><th>detail</th></tr>` +
      d.stages.map((s) => `<tr data-row="${esc(s.name)}"><td>${s.run ? `<a href="${stageLink(s.run, s.kind)}">${esc(s.name)}</a>` : esc(s.name)}</td><td>${state(s.state)}</td><td>${esc(s.detail)}${s.progress ? ` · ${esc(s.progress.key)} at step ${s.progress.step}${s.progress.of ? " of " + s.progress.of : ""}, ${secs(s.progress.ago)} ago` : ""}</td></tr>`).join("") + "</table>";
  };
}

const stageLink = (run, kind) => (kind === "search" ? `#/search/${run}` : `#/run/${run}`);
window.openStage = (run, kind) => { if (run !== null) location.hash = stageLink(run, kind); };

// ---- the runs table ----

const runsState = { sort: "id", desc: true, filter: "", selected: new Set(), allParams: false };

function matches(run, filter) {
  return filter.split(/\s+/).filter(Boolean).every((term) => {
    const eq = term.match(/^([^=<>]+)(=|<|>)(.*)$/);
    if (!eq) return [run.stage, run.kind, run.status].some((v) => v.includes(term));
    const [, key, op, want] = eq;
    const have = key in run ? run[key] : key in (run.params || {}) ? run.params[key] : (run.metrics || {})[key];
    if (have === undefined) return false;
    if (op === "=") return fmt(have) === want;
    return op === "<" ? have < Number(want) : have > Number(want);
  });
}

async function showRuns() {
  view.innerHTML = `<h2>Runs</h2><div class="toolbar"><input id="filter" type="text" placeholder="filter: search  status=done  method=ddpg  val_top1>90" value="${esc(runsState.filter)}">` +
    `<label><input id="allParams" type="checkbox" ${runsState.allParams ? "checked" : ""}> every param</label><button id="compare">Compare selected</button><span id="count" class="muted"></span></div><div id="runs"></div>`;
  let last = [];
  const draw = () => {
    const rows = last.filter((r) => matches(r, runsState.filter));
    const paramKeys = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort()
      .filter((k) => runsState.allParams || new Set(rows.map((r) => fmt(r.params[k]))).size > 1);
    const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics || {})))].sort();
    const value = (r, k) => (k.startsWith("param:") ? r.params[k.slice(6)] : k.startsWith("metric:") ? (r.metrics || {})[k.slice(7)] : r[k]);
    const k = runsState.sort, dir = runsState.desc ? -1 : 1;
    rows.sort((a, b) => { const x = value(a, k), y = value(b, k); return x === y ? 0 : x === undefined ? 1 : y === undefined ? -1 : (x < y ? -1 : 1) * dir; });
    const cols = [["id", "id"], ["stage", "stage"], ["status", "status"], ["started_at", "started"], ["duration", "duration"]]
      .concat(paramKeys.map((p) => ["param:" + p, p]), metricKeys.map((m) => ["metric:" + m, m]));
    const cell = (r, key) => {
      const v = value(r, key);
      if (key === "status") return `<td>${state(v)}</td>`;
      if (key === "stage") return `<td><a href="${stageLink(r.id, r.kind)}">${esc(v)}</a></td>`;
      if (key === "started_at") return `<td>${when(v)}</td>`;
      if (key === "duration") return `<td class="num">${secs(v)}</td>`;
      return `<td class="${typeof v === "number" ? "num" : ""}">${esc(fmt(v))}</td>`;
    };
    document.getElementById("count").textContent = `${rows.length} of ${last.length} runs`;
    document.getElementById("runs").innerHTML = `<table><tr><th></th>${cols.map(([key, label]) => `<th data-sort="${esc(key)}" title="${key.startsWith("metric:") ? "final value" : ""}">${esc(label)}${k === key ? (runsState.desc ? " ▼" : " ▲") : ""}</th>`).join("")}</tr>` +
      rows.map((r) => `<tr data-run="${r.id}"><td><input type="checkbox" data-pick="${r.id}" ${runsState.selected.has(r.id) ? "checked" : ""}></td>${cols.map(([key]) => cell(r, key)).join("")}</tr>`).join("") + "</table>";
  };
  document.getElementById("filter").oninput = (e) => { runsState.filter = e.target.value; draw(); };
  document.getElementById("allParams").onchange = (e) => { runsState.allParams = e.target.checked; draw(); };
  document.getElementById("compare").onclick = () => { if (runsState.selected.size) location.hash = "#/compare/" + [...runsState.selected].join(","); };
  document.getElementById("runs").onclick = (e) => {
    const key = e.target.dataset.sort, pick = e.target.dataset.pick;
    if (key) { runsState.desc = runsState.sort === key ? !runsState.desc : false; runsState.sort = key; draw(); }
    if (pick) { const id = Number(pick); e.target.checked ? runsState.selected.add(id) : runsState.selected.delete(id); }
  };
  refresh = async () => { last = await get("/api/runs"); draw(); };
}

// ---- one run ----

function kvTable(obj) {
  return `<table class="kv">${Object.entries(obj).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(fmt(v))}</td></tr>`).join("")}</table>`;
}

function artifactTable(list) {
  if (!list.length) return `<p class="muted">none</p>`;
  return `<table><tr><th>name</th><th>digest</th><th>size</th><th>type</th></tr>${list.map((a) =>
    `<tr><td>${esc(a.name)}</td><td><a class="digest" href="/artifact/${a.digest}" title="${a.digest}" data-digest="${a.digest}">${a.digest.slice(0, 12)}</a></td><td class="num">${bytes(a.size)}</td><td>${esc(a.media_type)}</td></tr>`).join("")}</table>`;
}

async function showRun(id) {
  view.innerHTML = `<div id="head"></div><h3>Metrics</h3><div id="charts" class="charts"></div><div id="detail"></div><h3>Log (tail)</h3><pre id="log" class="log"></pre>`;
  let done = false;
  refresh = async () => {
    if (done) return;
    const [r, m, log] = await Promise.all([get(`/api/run/${id}`), get(`/api/run/${id}/metrics`), fetch(`/api/run/${id}/log`).then((x) => x.text())]);
    document.getElementById("head").innerHTML = `<h2>${esc(r.stage)} ${state(r.status)} <span class="muted">run ${r.id}, ${esc(r.kind)}, attempt ${r.attempts}</span></h2>` +
      `<p>started ${when(r.started_at)}${r.ended_at ? `, took ${secs(r.duration)}` : ""}${r.kind === "search" ? ` · <a href="#/search/${r.id}">search view</a>` : ""}</p>${r.error ? `<p class="state failed">${esc(r.error)}</p>` : ""}`;
    document.getElementById("charts").innerHTML = Object.entries(m.curves).map(([k, c]) =>
      lineChart(c.total > c.steps.length ? `${k} (${c.steps.length} of ${c.total} points)` : k, [{ label: "", xs: c.steps, ys: c.values }])).join("") || `<p class="muted">no metrics yet</p>`;
    document.getElementById("detail").innerHTML = `<h3>Params</h3>${kvTable(r.params)}<h3>Inputs</h3>${artifactTable(r.inputs)}<h3>Outputs</h3>${artifactTable(r.outputs)}` +
      `<h3>Checkpoints</h3>${r.checkpoints.length ? r.checkpoints.map((c) => `step ${c.step}: <a class="digest" href="/artifact/${c.digest}">${c.digest.slice(0, 12)}</a>`).join("<br>") : `<p class="muted">none</p>`}`;
    const pre = document.getElementById("log");
    pre.textContent = log;
    pre.scrollTop = pre.scrollHeight;
    done = r.status !== "running";
  };
}

// ---- compare ----

async function showCompare(ids) {
  view.innerHTML = `<h2>Compare runs ${ids.map(esc).join(", ")}</h2><div id="charts" class="charts"></div><h3>Params</h3><div id="params"></div>`;
  refresh = async () => {
    const runs = await Promise.all(ids.map((id) => get(`/api/run/${id}`)));
    const curves = await Promise.all(ids.map((id) => get(`/api/run/${id}/metrics`)));
    // Curves first (the longest), then the metrics logged once.
    const length = (k) => Math.max(...curves.map((c) => (c.curves[k] ? c.curves[k].total : 0)));
    const keys = [...new Set(curves.flatMap((c) => Object.keys(c.curves)))].sort((a, b) => length(b) - length(a) || (a < b ? -1 : 1));
    const label = (r) => `run ${r.id} ${r.stage}`;
    document.getElementById("charts").innerHTML = keys.map((k) => lineChart(k, curves.map((c, i) => ({
      label: label(runs[i]), xs: (c.curves[k] || { steps: [] }).steps, ys: (c.curves[k] || { values: [] }).values,
    })), { width: 520, height: 260 })).join("");
    const params = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
    document.getElementById("params").innerHTML = `<table><tr><th>param</th>${runs.map((r) => `<th data-compared="${r.id}">${esc(label(r))}</th>`).join("")}</tr>` +
      params.map((p) => {
        const vals = runs.map((r) => fmt(r.params[p]));
        return `<tr class="${new Set(vals).size > 1 ? "diff" : ""}"><td>${esc(p)}</td>${vals.map((v) => `<td>${esc(v)}</td>`).join("")}</tr>`;
      }).join("") + "</table>";
    if (runs.every((r) => r.status !== "running")) refresh = null;
  };
}

// ---- a search ----

function bitsChart(layers, policy) {
  const W = 14, H = 120, n = policy.length;
  let svg = `<svg class="chart bits" width="${60 + n * W}" height="${H + 60}" data-layers="${n}">`;
  for (let b = 2; b <= 8; b += 2) svg += `<text x="30" y="${H + 10 - (b / 8) * H}" text-anchor="end">${b}</text>`;
  policy.forEach((l, i) => {
    const x = 40 + i * W, w = l.w_bits, a = l.a_bits ?? 0;
    const shape = layers && layers[i] ? layers[i].shape || layers[i] : null;
    const name = layers && layers[i] && layers[i].name ? " " + layers[i].name : "";
    const mark = !shape ? "" : shape.kind === "depthwise" ? "dw" : shape.kind === "linear" ? "fc" : shape.kernel === 1 ? "pw" : "";
    const letter = { dw: "d", pw: "p", fc: "f" }[mark] || "";
    svg += `<rect class="w" x="${x}" y="${H + 10 - (w / 8) * H}" width="${W / 2 - 1}" height="${(w / 8) * H}"><title>layer ${i}${name}${mark ? " (" + mark + ")" : ""}: w${w} a${a || "-"}</title></rect>`;
    svg += `<rect class="a" x="${x + W / 2 - 1}" y="${H + 10 - (a / 8) * H}" width="${W / 2 - 1}" height="${(a / 8) * H}"/>`;
    svg += `<text x="${x + W / 2}" y="${H + 24}" text-anchor="middle">${i}</text>`;
    if (mark) svg += `<text x="${x + W / 2}" y="${H + 36}" text-anchor="middle" data-mark="${mark}">${letter}</text>`;
  });
  return svg + `<text x="40" y="${H + 52}">dark: weight bits, light: activation bits; d depthwise, p pointwise, f linear</text></svg>`;
}

async function showSearch(id) {
  view.innerHTML = `<div id="head"></div><div id="charts" class="charts"></div><div id="policy"></div>`;
  refresh = async () => {
    const s = await get(`/api/search/${id}`);
    const mine = await get(`/api/run/${id}/metrics`);
    const ctl = s.control ? await get(`/api/run/${s.control.id}/metrics`) : null;
    const r = s.run;
    document.getElementById("head").innerHTML = `<h2>${esc(r.stage)} ${state(r.status)} <span class="muted">run ${r.id}: ${esc(r.params.method)} on ${esc(r.params.hardware)}, ${esc(r.params.objective)}</span></h2>` +
      `<p><a href="#/run/${r.id}">run page</a>${s.control ? ` · control: <a href="#/search/${s.control.id}">${esc(s.control.stage)}</a> ${state(s.control.status)} · <a href="#/compare/${r.id},${s.control.id}">compare</a>` : ""}</p>`;
    const series = [];
    const add = (m, name, dash) => {
      const c = m.curves.reward;
      if (!c) return;
      series.push({ label: `${name} reward`, xs: c.steps, ys: c.values, dash });
      series.push({ label: `${name} best so far`, xs: c.steps, ys: bestSoFar(c.values), dash });
    };
    add(mine, r.params.method || "search", false);
    if (ctl) add(ctl, "random (control)", true);
    const others = ["accuracy", "cost"].filter((k) => mine.curves[k]).map((k) => lineChart(k, [{ label: "", xs: mine.curves[k].steps, ys: mine.curves[k].values }], { xlabel: "episode" }));
    document.getElementById("charts").innerHTML = lineChart("reward per episode", series, { width: 640, height: 300, xlabel: "episode" }) + others.join("");
    const p = s.policy;
    document.getElementById("policy").innerHTML = p && p.layers ? `<h3>Chosen policy: episode ${p.episode}, reward ${fmt(p.reward)}, top-1 ${fmt(p.accuracy)}%</h3>${bitsChart(s.layers, p.layers)}` +
      `<h3>Its cost</h3><table><tr><th>model</th><th>batch</th><th>totals</th></tr>${Object.entries(p.costs || {}).map(([hw, c]) => `<tr><td>${esc(hw)}</td><td>${c.batch}</td><td>${esc(Object.entries(c).filter(([k]) => k !== "batch").map(([k, v]) => `${k} ${fmt(v)}`).join(", "))}</td></tr>`).join("")}</table>`
      : `<p class="muted">The chosen policy appears when the search completes.</p>`;
    if (r.status !== "running" && (!s.control || s.control.status !== "running")) refresh = null;
  };
}

// ---- routing and polling ----

function showReport() {
  view.innerHTML = `<iframe class="report" src="/report/index.html"></iframe>`;
  refresh = null;
}

async function route() {
  // A poll of the previous page still under way would write into this one.
  refresh = null;
  while (busy) await new Promise((r) => setTimeout(r, 20));
  const [, page, arg] = (location.hash || "#/").split("/");
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("here", a.dataset.nav === (page || "dag")));
  refresh = null;
  banner(null);
  if (page === "runs") await showRuns();
  else if (page === "run") await showRun(Number(arg));
  else if (page === "search") await showSearch(Number(arg));
  else if (page === "compare") await showCompare((arg || "").split(",").filter(Boolean));
  else if (page === "report") showReport();
  else await showDag();
  await tick();
}

async function tick() {
  if (!refresh || busy) return;
  busy = true;
  const current = refresh;
  try {
    await current();
    live(true);
    banner(null);
  } catch (e) {
    live(e.status !== undefined);
    banner(e.status === 404 ? `Not found: ${e.message}` : e.status === 503 ? `The store cannot be read: ${e.message}` : `${e.message}`);
    if (e.status === 404) refresh = null;
  } finally {
    busy = false;
  }
}

window.addEventListener("hashchange", route);
setInterval(tick, 1000);
route();
