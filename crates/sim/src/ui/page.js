"use strict";
// The page only swaps in what the simulator rendered (GET /sim/stream, server-sent events) and sends what the
// person does to /sim/user/*. Nothing here turns message text into HTML: the server did, escaped.
const $ = id => document.getElementById(id);
const tz = -new Date().getTimezoneOffset();
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
let current = decodeURIComponent(location.hash.slice(1)).split("/")[0] || localStorage.getItem("sim.channel") || "";
let me = localStorage.getItem("sim.user") || "";
let jumpTo = decodeURIComponent(location.hash.slice(1)).split("/")[1] || null;
let source = null;
let last = {};
let modalKey = null;
let threadTs = null;
let pickFor = null;
let usersKey = "";

function connect() {
  if (source) source.close();
  const q = new URLSearchParams({tz: String(tz), zone});
  if (current) q.set("channel", current);
  if (me) q.set("user", me);
  source = new EventSource("/sim/stream?" + q);
  source.addEventListener("view", ev => apply(JSON.parse(ev.data)));
  source.onopen = () => { $("live-status").textContent = "live"; };
  source.onerror = () => { $("live-status").textContent = "reconnecting…"; };
}

function apply(v) {
  if (v.channel && v.channel !== current) { current = v.channel; }
  me = v.me;
  const key = JSON.stringify(v.users);
  if (key !== usersKey) {
    usersKey = key;
    const actor = $("actor");
    actor.textContent = "";
    for (const u of v.users) {
      const o = document.createElement("option");
      o.value = u.id; o.textContent = u.name;
      actor.appendChild(o);
    }
  }
  $("actor").value = me;
  if (v.nav !== last.nav) $("channels").innerHTML = v.nav;
  $("title").textContent = v.title;
  $("topic").textContent = v.topic;
  $("stats").textContent = v.stats;
  $("message-input").placeholder = "Message " + v.title + (v.live ? ", or a slash command such as /ops help" : "");
  if (v.messages !== last.messages) {
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.innerHTML = v.messages;
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
  $("picker").innerHTML = v.picker;
  showModal(v.modal);
  if (jumpTo) {
    const m = document.getElementById("m" + jumpTo);
    if (m) { m.scrollIntoView({block: "center"}); m.classList.add("flash"); jumpTo = null; }
  }
  last = v;
}

function showModal(m) {
  const layer = $("modal-layer");
  if (!m) { layer.hidden = true; layer.textContent = ""; modalKey = null; return; }
  if (m.key !== modalKey) { layer.innerHTML = m.html; modalKey = m.key; }
  layer.hidden = false;
  for (const box of layer.querySelectorAll(".input[data-block]")) {
    const err = (m.errors || {})[box.dataset.block] || "";
    box.querySelector(".field-error").textContent = err;
    box.classList.toggle("has-error", err !== "");
  }
}

async function act(action, body) {
  body.user = me;
  try {
    const r = await fetch("/sim/user/" + action, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
    const out = await r.json();
    if (!out.ok) { note(out.error); return out; }
    if (out.status === undefined || out.status === null) note(action + " done");
    else note(out.status >= 200 && out.status < 300 ? action + " delivered" : "the app answered " + out.status);
    return out;
  } catch (e) { note(action + " failed: " + e); return {ok: false}; }
}
function note(t) { $("note").textContent = t || ""; }

function go(channel, ts) {
  current = channel; jumpTo = ts || null; threadTs = null; $("thread-bar").hidden = true;
  localStorage.setItem("sim.channel", current);
  connect();
}

window.addEventListener("hashchange", () => {
  const [ch, ts] = decodeURIComponent(location.hash.slice(1)).split("/");
  if (ch) go(ch, ts);
});
$("channels").addEventListener("click", ev => {
  const a = ev.target.closest("a[data-id]");
  if (a) location.hash = a.dataset.id;
});
$("actor").addEventListener("change", ev => {
  me = ev.target.value; localStorage.setItem("sim.user", me); modalKey = null; connect();
});
$("messages").addEventListener("click", ev => {
  const b = ev.target.closest("button.bk.live");
  if (b) {
    b.disabled = true;
    if (b.dataset.eph) act("click_ephemeral", {ts: b.dataset.eph, action_id: b.dataset.action});
    else act("click", {channel: b.dataset.ch, ts: b.dataset.ts, action_id: b.dataset.action});
    return;
  }
  const msg = ev.target.closest(".msg[data-ts]");
  if (!msg) return;
  if (ev.target.closest(".reaction")) {
    act("react", {channel: msg.dataset.ch, ts: msg.dataset.ts, emoji: ev.target.closest(".reaction").dataset.emoji});
  } else if (ev.target.closest(".react-btn")) {
    const r = ev.target.getBoundingClientRect();
    const p = $("picker");
    pickFor = {channel: msg.dataset.ch, ts: msg.dataset.ts};
    p.style.top = (r.bottom + 4) + "px"; p.style.left = Math.max(8, r.right - 320) + "px"; p.hidden = false;
    ev.stopPropagation();
  } else if (ev.target.closest(".reply-btn")) {
    threadTs = msg.dataset.ts;
    $("thread-bar").hidden = false;
    $("message-input").focus();
  }
});
$("picker").addEventListener("click", ev => {
  const b = ev.target.closest("button[data-emoji]");
  if (b && pickFor) act("react", {channel: pickFor.channel, ts: pickFor.ts, emoji: b.dataset.emoji});
  $("picker").hidden = true; pickFor = null;
});
document.addEventListener("click", ev => {
  if (!ev.target.closest("#picker") && !ev.target.closest(".react-btn")) $("picker").hidden = true;
});
$("thread-cancel").addEventListener("click", () => { threadTs = null; $("thread-bar").hidden = true; });
$("message-input").addEventListener("keydown", ev => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("composer").requestSubmit(); }
});
$("composer").addEventListener("submit", async ev => {
  ev.preventDefault();
  const input = $("message-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  const slash = text.match(/^(\/\S+)\s*([\s\S]*)$/);
  if (slash && !threadTs) await act("command", {command: slash[1], text: slash[2], channel: current});
  else await act("message", {channel: current, text, thread_ts: threadTs});
});

function modalValues(form) {
  const values = {};
  const opt = (text, value) => ({text: {type: "plain_text", text: text, emoji: true}, value: value});
  for (const box of form.querySelectorAll(".input[data-block]")) {
    const t = box.dataset.type;
    let v;
    if (t === "checkboxes") {
      v = {type: t, selected_options: [...box.querySelectorAll("input:checked")].map(i => opt(i.dataset.text, i.value))};
    } else if (t === "radio_buttons") {
      const i = box.querySelector("input:checked");
      v = {type: t, selected_option: i ? opt(i.dataset.text, i.value) : null};
    } else if (t === "datepicker") {
      v = {type: t, selected_date: box.querySelector("input").value || null};
    } else if (t === "users_select") {
      v = {type: t, selected_user: box.querySelector("select").value || null};
    } else if (t === "external_select") {
      // Only an option the app offered can be chosen, as in Slack: its text maps back to its value.
      const input = box.querySelector("input");
      const val = input.value.trim();
      const offered = input.offered || {};
      v = {type: t, selected_option: Object.hasOwn(offered, val) ? opt(val, offered[val]) : null};
    } else if (t.endsWith("_select")) {
      const s = box.querySelector("select");
      v = {type: t, selected_option: s.value ? opt(s.selectedOptions[0].dataset.text, s.value) : null};
    } else {
      const i = box.querySelector("input, textarea");
      v = {type: t, value: i && i.value !== "" ? i.value : null};
    }
    (values[box.dataset.block] = values[box.dataset.block] || {})[box.dataset.action] = v;
  }
  return values;
}
// An external select asks the app for options as the person types (Slack's block_suggestion, min_query_length 0).
let suggestTimer = null;
$("modal-layer").addEventListener("input", ev => {
  const input = ev.target.closest("input[data-external]");
  if (!input) return;
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(() => suggest(input), 150);
});
async function suggest(input) {
  const box = input.closest(".input[data-block]");
  const out = await act("options", {action_id: box.dataset.action, block_id: box.dataset.block, value: input.value});
  let answer = {};
  try { answer = JSON.parse(out.body || "{}"); } catch (e) { note("the app's options are not JSON"); return; }
  const flat = (answer.options || []).concat(...(answer.option_groups || []).map(g => g.options || []));
  const list = input.list;
  list.replaceChildren();
  input.offered = {};
  for (const o of flat) {
    const text = (o.text && o.text.text) || o.value;
    input.offered[text] = o.value;
    const el = document.createElement("option");
    el.value = text;
    list.appendChild(el);
  }
}
$("modal-layer").addEventListener("submit", ev => {
  ev.preventDefault();
  const form = ev.target.closest("form.modal");
  act("submit", {view_id: form.dataset.view, values: modalValues(form)});
});
$("modal-layer").addEventListener("click", ev => {
  if (!ev.target.closest("[data-close]")) return;
  const form = ev.target.closest("form.modal");
  act("close", {view_id: form.dataset.view, values: modalValues(form)});
});
connect();
