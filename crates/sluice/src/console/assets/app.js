// Sluice operator console. Plain JavaScript, no build step. Every value from the server is put in the page as
// text (never as HTML), and every write carries the session's CSRF token.
"use strict";

let csrf = "";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

const $ = (id) => document.getElementById(id);
const time = (ms) => (ms ? new Date(ms).toLocaleString() : "");
const age = (ms) => (ms == null ? "" : ms < 1000 ? ms + " ms" : ms < 120000 ? Math.round(ms / 1000) + " s" : Math.round(ms / 60000) + " min");

function problem(text) {
  const p = $("problem");
  p.textContent = text || "";
  p.hidden = !text;
}

async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (o.method && o.method !== "GET") {
    o.headers["X-CSRF-Token"] = csrf;
    if (o.body !== undefined) { o.headers["Content-Type"] = "application/json"; o.body = JSON.stringify(o.body); }
  }
  const r = await fetch(path, o);
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  const v = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(v.message || ("HTTP " + r.status));
  return v;
}

function fill(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...rows.map((cells) => cells instanceof Node ? cells : el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
}

// ---- overview, pushed by the server every 2 s ----
function showOverview(s) {
  $("events-in").textContent = s.events_in;
  $("events-in-rate").textContent = s.events_in_per_s.toFixed(1) + " /s";
  $("calls-out").textContent = s.calls_out;
  $("calls-out-rate").textContent = s.calls_out_per_s.toFixed(1) + " /s";
  $("outbox-pending").textContent = s.outbox.pending;
  $("outbox-oldest").textContent = s.outbox.oldest_pending_age_ms == null ? "" : "oldest " + age(s.outbox.oldest_pending_age_ms);
  $("dead-count").textContent = s.dead_letters;
  $("ratelimited").textContent = s.rate_limited_429 == null ? "n/a" : s.rate_limited_429;
  fill("lanes", s.lanes.map((l) => [l.lane, l.pending, age(l.oldest_age_ms), l.owner || "–"]));
  fill("storms", s.storms.map((t) => [t.route, t.active ? "STORM (digests)" : "calm", t.rate, t.above + " per " + age(t.window_ms)]));
  fill("budget", s.budget.map((b) => [b.method, b.scope === "channel" ? b.channel : "all channels (" + b.channels.length + ")", b.calls,
    b.allowance_per_minute, Math.round(b.used * 100) + "%", b.rate_limited == null ? "" : b.rate_limited]));
  fill("inhibitions", s.inhibitions.map((i) => [i.rule || "(a rule no longer configured)", (i.title || "") + " · " + (i.service || "") + " · " + i.severity,
    i.mutes.length ? i.mutes.map((m) => m.title + " (" + (m.service || "") + ")").join(", ") : "nothing yet", time(i.until_ms)]));
  $("replicas").textContent = s.replicas.length ? s.replicas.join(", ") : "none right now";
  fill("leaders", s.leaders.map((l) => [l.role, l.owner + (l.held ? "" : " (lapsed)"), time(l.until_ms)]));
  $("live-status").textContent = "live · " + s.backend + " · updated " + new Date(s.at_ms).toLocaleTimeString();
}

function live() {
  const src = new EventSource("/console/api/stream");
  src.addEventListener("snapshot", (e) => { problem(""); showOverview(JSON.parse(e.data)); });
  src.addEventListener("incidents", (e) => showIncidents(JSON.parse(e.data)));
  src.addEventListener("steps", (e) => showSteps(JSON.parse(e.data)));
  src.addEventListener("problem", (e) => problem(JSON.parse(e.data).message));
  src.onerror = () => { $("live-status").textContent = "reconnecting…"; };
}

// ---- events ----
// Opening the page and submitting the search each fetch the list; a slower, older answer must not
// replace a newer one, so only the latest request's answer is drawn.
let eventsAsked = 0;
async function searchEvents(ev) {
  if (ev) ev.preventDefault();
  const mine = ++eventsAsked;
  const q = new URLSearchParams({ id: $("q-id").value, source: $("q-source").value, service: $("q-service").value, state: $("q-state").value });
  try {
    const v = await api("/console/api/events?" + q);
    if (mine !== eventsAsked) return;
    fill("events", v.events.map((e) => {
      const link = el("a", { href: "#" }, e.id);
      link.addEventListener("click", (c) => { c.preventDefault(); showEvent(e.id); });
      return el("tr", {}, el("td", {}, time(e.received_at_ms)), el("td", { class: "mono" }, link), el("td", {}, e.source),
        el("td", {}, e.body.service || ""), el("td", {}, e.body.title || ""), el("td", {}, fateText(e.fate)));
    }));
    problem("");
  } catch (e) { problem(e.message); }
}

function fateText(f) {
  switch (f.kind) {
    case "queued": return "queued → " + f.rules.join(", ");
    case "merged": return "merged into " + f.into + " (×" + f.count + ")";
    case "resolved": return "resolved " + f.into;
    case "suppressed": return "suppressed by " + f.by;
    case "dropped": return "dropped by " + f.rule;
    default: return f.kind;
  }
}

// The channel the route named and, once sent, the id Slack answered with ("alerts → C0123").
function deliveredTo(d) {
  return d.state.channel && d.state.channel !== d.channel ? d.channel + " → " + d.state.channel : d.channel;
}

async function showEvent(id) {
  const box = $("event-detail");
  try {
    const e = await api("/console/api/events/" + encodeURIComponent(id));
    const deliveries = el("table", {}, el("thead", {}, el("tr", {}, ...["channel", "method", "state", "ts / reason", "attempts"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...e.deliveries.map((d) => el("tr", {}, el("td", {}, deliveredTo(d)), el("td", {}, d.method), el("td", {}, d.state.state),
        el("td", { class: "mono" }, d.state.ts || d.state.reason || d.last_error || ""), el("td", {}, d.attempts)))));
    const actions = el("ul", {}, ...e.actions.map((a) => el("li", {}, a.action + " by " + a.actor + " at " + time(a.at_ms))));
    box.replaceChildren(el("h3", {}, e.body.title || e.id), el("p", {}, "Fate: ", el("b", {}, fateText(e.fate)), " · received " + time(e.received_at_ms)),
      el("h4", {}, "Deliveries"), deliveries, el("h4", {}, "Actions"), e.actions.length ? actions : el("p", { class: "muted" }, "none"));
    box.hidden = false;
  } catch (err) { problem(err.message); }
}

// ---- dead letters ----
async function loadDead() {
  try {
    const v = await api("/console/api/dead-letters");
    fill("dead-letters", v.dead_letters.map((d) => {
      const b = el("button", { class: "replay", "data-id": d.item_id }, "Replay");
      b.addEventListener("click", () => replay({ id: d.item_id }));
      return el("tr", { "data-id": d.item_id }, el("td", {}, d.item_id), el("td", { class: "mono" }, d.event_id || ""), el("td", {}, d.channel),
        el("td", {}, d.method), el("td", { class: "reason" }, d.reason), el("td", {}, d.attempts), el("td", {}, time(d.dead_at_ms)), el("td", {}, b));
    }));
  } catch (e) { problem(e.message); }
}

async function replay(which) {
  try {
    const v = await api("/console/api/dead-letters/replay", { method: "POST", body: which });
    $("dlq-message").textContent = "Replayed " + v.replayed + ".";
    await loadDead();
  } catch (e) { $("dlq-message").textContent = "Replay refused: " + e.message; }
}

// ---- silences ----
function silenceRequest() {
  const matchers = $("silence-matchers").value.split("\n").map((s) => s.trim()).filter(Boolean);
  return { matchers, duration: $("silence-duration").value.trim(), comment: $("silence-comment").value };
}

async function previewSilence() {
  try {
    const v = await api("/console/api/silences/preview", { method: "POST", body: silenceRequest() });
    $("silence-preview-count").textContent = v.matches.length + " of " + v.open_alerts + " open";
    $("silence-preview").replaceChildren(...v.matches.map((a) =>
      el("li", {}, el("b", {}, a.title), " · " + (a.service || "") + " · " + a.severity + " · seen " + a.count + "× · ", el("span", { class: "mono" }, a.event_id))));
    $("silence-preview-box").hidden = false;
    $("silence-message").textContent = "";
  } catch (e) { $("silence-message").textContent = "Preview refused: " + e.message; }
}

async function createSilence(ev) {
  ev.preventDefault();
  try {
    const s = await api("/console/api/silences", { method: "POST", body: silenceRequest() });
    $("silence-message").textContent = "Created " + s.id + ".";
    await loadSilences();
  } catch (e) { $("silence-message").textContent = "Refused: " + e.message; }
}

async function loadSilences() {
  try {
    const v = await api("/console/api/silences");
    fill("silences", v.silences.map((s) => {
      const b = el("button", { class: "expire" }, "Expire");
      b.addEventListener("click", async () => {
        try { await api("/console/api/silences/" + encodeURIComponent(s.id) + "/expire", { method: "POST" }); $("silence-message").textContent = "Expired " + s.id + "."; }
        catch (e) { $("silence-message").textContent = "Refused: " + e.message; }
        loadSilences();
      });
      const m = s.matchers.map((x) => x.name + x.op + x.value).join(", ");
      return el("tr", {}, el("td", { class: "mono" }, s.id), el("td", { class: "mono" }, m), el("td", {}, time(s.ends_at_ms)), el("td", {}, s.author), el("td", {}, s.comment), el("td", {}, b));
    }));
  } catch (e) { problem(e.message); }
}

// ---- audit and approvals ----
async function loadAudit() {
  try {
    const v = await api("/console/api/audit");
    const ok = v.verification.intact;
    const verdict = $("audit-verify");
    verdict.textContent = ok ? "intact" : "BROKEN at record " + v.verification.first_broken_id;
    verdict.className = ok ? "ok" : "error";
    fill("audit", v.records.map((r) => [r.id, time(r.at_ms), r.actor, r.action, r.target, r.result]));
  } catch (e) { problem(e.message); }
}

async function loadApprovals() {
  try {
    const v = await api("/console/api/approvals");
    fill("approvals", v.approvals.map((a) => [a.id, a.state, a.requester, a.request.title || a.request.action || "", a.channel, time(a.created_at_ms),
      a.decided_at_ms ? "decided " + time(a.decided_at_ms) : "expires " + time(a.expires_at_ms)]));
  } catch (e) { problem(e.message); }
}

// ---- incidents, pushed with the overview; the open one's timeline is read again when it changes ----
let incidentShown = null;
let incidentVersion = null;
let incidentsDrawn = "";

function showIncidents(v) {
  // Pushed every 2 s: redrawn only when something changed, so a link is not replaced under the operator's click.
  const drawn = JSON.stringify(v.incidents);
  if (drawn === incidentsDrawn) return;
  incidentsDrawn = drawn;
  fill("incidents", v.incidents.map((i) => {
    const link = el("a", { href: "#", class: "incident-link", "data-id": i.id }, i.title);
    link.addEventListener("click", (c) => { c.preventDefault(); showIncident(i.id); });
    return el("tr", { "data-id": i.id }, el("td", { class: "mono" }, i.id), el("td", {}, link), el("td", {}, "SEV" + i.sev),
      el("td", { class: "status" }, i.status), el("td", {}, "#" + i.channel_name + (i.channel_id ? " (" + i.channel_id + ")" : "")),
      el("td", {}, i.declarer), el("td", {}, time(i.created_at_ms)), el("td", {}, i.resolved_at_ms ? time(i.resolved_at_ms) : ""));
  }));
  const open = incidentShown && v.incidents.find((i) => i.id === incidentShown);
  if (open && open.version !== incidentVersion) showIncident(incidentShown);
}

async function loadIncidents() {
  try { showIncidents(await api("/console/api/incidents")); } catch (e) { problem(e.message); }
}

async function showIncident(id) {
  const box = $("incident-detail");
  try {
    const v = await api("/console/api/incidents/" + encodeURIComponent(id));
    const i = v.incident;
    incidentShown = id;
    incidentVersion = i.version;
    const roles = Object.entries(i.roles || {}).map(([r, u]) => r + ": " + u).join(", ");
    const head = el("thead", {}, el("tr", {}, ...["#", "at", "by", "what", ""].map((h) => el("th", {}, h))));
    const lines = el("tbody", {}, ...v.timeline.map((t) => el("tr", {}, el("td", {}, t.seq), el("td", {}, time(t.at_ms)), el("td", {}, t.author),
      el("td", {}, t.kind), el("td", { class: "timeline-text" }, t.text))));
    box.replaceChildren(el("h3", { id: "incident-title" }, i.title),
      el("p", {}, "SEV" + i.sev + " · " + i.status + " · #" + i.channel_name + " · declared by " + i.declarer + " at " + time(i.created_at_ms) +
        (i.resolved_at_ms ? " · resolved " + time(i.resolved_at_ms) : "")),
      el("p", {}, "Roles: " + (roles || "none assigned")),
      el("h4", {}, "Timeline"), el("table", { id: "incident-timeline" }, head, lines));
    box.hidden = false;
  } catch (e) { problem(e.message); }
}

// ---- schedules and Workflow Builder steps, pushed with the overview ----
let stepsDrawn = "";

function showSteps(v) {
  const drawn = JSON.stringify([v.schedules, v.steps, v.step_runs]);
  if (drawn === stepsDrawn) return;
  stepsDrawn = drawn;
  fill("schedules", v.schedules.map((s) => [s.name, s.cron + " (" + s.time_zone + ")", s.channel, s.next_due_ms ? time(s.next_due_ms) : "never",
    s.runs.length ? s.runs.map((r) => time(r.due_ms) + " " + r.outcome + " by " + r.claimed_by).join("; ") : "none yet"]));
  $("steps-offered").textContent = v.steps.length ? v.steps.map((s) => s.action + " (" + s.title + ")").join(", ") : "none";
  fill("step-runs", v.step_runs.map((r) => [time(r.started_at_ms), r.step, r.execution_id || "", r.actor,
    r.state + (r.status == null ? "" : " (HTTP " + r.status + ")"), r.result || "", r.finished_at_ms ? time(r.finished_at_ms) : ""]));
}

async function loadSteps() {
  try { showSteps(await api("/console/api/steps")); } catch (e) { problem(e.message); }
}

// ---- the effective config ----
async function loadConfig() {
  try {
    const v = await api("/console/api/config");
    $("config-path").textContent = v.path || "(no file: this server cannot reload)";
    const c = v.check;
    const verdict = $("config-check");
    verdict.textContent = (c.ok ? "ok" : c.errors + " error(s)") + ", " + c.warnings + " warning(s)";
    verdict.className = c.ok ? "ok" : "error";
    $("config-problems").replaceChildren(...c.problems.map((p) =>
      el("li", { class: p.warning ? "" : "error" }, (p.warning ? "warning" : "error") + (p.line ? ": line " + p.line : "") + ": " + p.message + (p.fix ? " (fix: " + p.fix + ")" : ""))));
    $("config-settings").textContent = JSON.stringify(v.settings, null, 2);
  } catch (e) { problem(e.message); }
}

const loaders = { events: searchEvents, dead: loadDead, silences: loadSilences, audit: loadAudit, approvals: loadApprovals,
  incidents: loadIncidents, steps: loadSteps, config: loadConfig };

function show(page) {
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + page;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.page === page);
  if (loaders[page]) loaders[page]();
}

async function start() {
  try {
    const s = await api("/console/api/session");
    csrf = s.csrf;
    $("operator").textContent = s.operator;
  } catch (e) { return; }
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.page));
  $("logout").addEventListener("click", async () => { try { await api("/console/api/logout", { method: "POST" }); } finally { location.href = "/login"; } });
  $("event-search").addEventListener("submit", searchEvents);
  $("silence-preview-btn").addEventListener("click", previewSilence);
  $("silence-form").addEventListener("submit", createSilence);
  $("replay-all").addEventListener("click", () => replay({ all: true }));
  document.body.dataset.ready = "1";
  live();
}

start();
