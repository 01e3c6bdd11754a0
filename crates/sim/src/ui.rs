//! The page at `/` ([`PAGE`]): the simulated workspace as a person sees it during `sluice demo`.
//! Self-contained (no external assets, no framework): a little vanilla JS polls `/sim/state` every
//! second and renders Block Kit readably. Everything from the state is HTML-escaped before the
//! few mrkdwn rules are applied, so a message cannot inject markup into the page.
//!
//! When the app can be reached (an `app_base_url` is set or a Socket Mode connection is open),
//! buttons are live: a click POSTs `/sim/user/click` as the member chosen in the header, and the
//! app receives a real `block_actions` interaction.

pub const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice · Slack simulator</title>
<style>
  :root { --bg:#f8f8f8; --fg:#1d1c1d; --muted:#616061; --line:#dddddd; --accent:#1264a3; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color:var(--fg); background:var(--bg); display:flex; height:100vh; }
  nav { width:230px; background:#3f0e40; color:#cfc3cf; padding:12px 0; overflow:auto; flex:none; }
  nav h1 { font-size:16px; color:#fff; margin:0 16px 12px; }
  nav a { display:flex; justify-content:space-between; padding:4px 16px; color:inherit; text-decoration:none; cursor:pointer; }
  nav a.active { background:#1164a3; color:#fff; }
  nav .count { font-size:12px; opacity:.8; }
  main { flex:1; overflow:auto; padding:0 0 40px; background:#fff; }
  header.top { position:sticky; top:0; background:#fff; border-bottom:1px solid var(--line); padding:10px 20px; display:flex; gap:16px; align-items:baseline; }
  header.top h2 { margin:0; font-size:18px; }
  header.top .topic, header.top .stats { color:var(--muted); font-size:13px; }
  .msg { padding:8px 20px; border-bottom:1px solid #f0f0f0; }
  .msg.reply { margin-left:44px; border-left:3px solid var(--line); }
  .meta { font-size:12px; color:var(--muted); margin-bottom:4px; }
  .meta b { color:var(--fg); font-size:14px; }
  .edited { color:var(--muted); font-size:12px; }
  .hdr { font-size:18px; font-weight:700; margin:4px 0; }
  .sec { margin:4px 0; white-space:pre-wrap; }
  .fields { display:grid; grid-template-columns:1fr 1fr; gap:4px 24px; margin:4px 0; }
  .fields div { white-space:pre-wrap; }
  .ctx { color:var(--muted); font-size:13px; margin:4px 0; display:flex; gap:8px; flex-wrap:wrap; }
  .div { border:0; border-top:1px solid var(--line); margin:8px 0; }
  .actions { display:flex; gap:8px; flex-wrap:wrap; margin:6px 0; }
  button.bk { font:inherit; font-size:14px; font-weight:600; padding:4px 12px; border-radius:4px; border:1px solid #bbb; background:#fff; cursor:not-allowed; color:var(--fg); }
  button.bk.live { cursor:pointer; }
  button.bk.live:hover { filter:brightness(0.93); }
  header.top select { font:inherit; font-size:13px; margin-left:auto; }
  .ephemeral { background:#f4f8fb; }
  button.bk.primary { background:#007a5a; color:#fff; border-color:#007a5a; }
  button.bk.danger { background:#e01e5a; color:#fff; border-color:#e01e5a; }
  select.bk { font:inherit; font-size:14px; padding:3px; }
  code { background:#f4f4f4; border:1px solid #e8e8e8; border-radius:3px; padding:0 3px; font-size:13px; }
  .reactions span { display:inline-block; border:1px solid var(--line); border-radius:10px; padding:0 6px; margin-right:4px; font-size:12px; }
  .empty { padding:40px 20px; color:var(--muted); }
  .fallback { color:var(--muted); }
</style>
</head>
<body>
<nav><h1>Slack simulator</h1><div id="channels"></div></nav>
<main><header class="top"><h2 id="title">#…</h2><span class="topic" id="topic"></span><span class="stats" id="stats"></span><select id="actor" title="the member who clicks"></select></header>
<div id="messages"><p class="empty">Loading…</p></div></main>
<script>
"use strict";
let current = location.hash.slice(1) || null;
let lastRendered = "";
let names = {};
let live = false;   // the app can receive clicks
let msgCtx = null;  // {channel, ts} of the message being rendered
let note = "";      // the outcome of the last click

function esc(s) {
  return String(s == null ? "" : s).replace(/&(?!(amp|lt|gt);)/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
// Slack's text is already escaped (&amp; &lt; &gt;); links and mentions are <url|label> and <@U1>.
function mrkdwn(s) {
  let h = esc(s);
  h = h.replace(/&lt;(https?:[^|&]*?)\|(.*?)&gt;/g, '<a href="$1" rel="noreferrer">$2</a>')
       .replace(/&lt;(https?:[^&]*?)&gt;/g, '<a href="$1" rel="noreferrer">$1</a>')
       .replace(/&lt;@(\w+)&gt;/g, (m, id) => "<b>@" + esc(names[id] || id) + "</b>")
       .replace(/&lt;!(channel|here|everyone)&gt;/g, "<b>@$1</b>")
       .replace(/&lt;!subteam\^(\w+)(?:\|([^&]*))?&gt;/g, (m, id, label) => "<b>" + (label || "@" + id) + "</b>")
       .replace(/`([^`\n]+)`/g, "<code>$1</code>")
       .replace(/(^|[\s(])\*([^*\n]+)\*/g, "$1<b>$2</b>")
       .replace(/(^|[\s(])_([^_\n]+)_/g, "$1<i>$2</i>")
       .replace(/(^|[\s(])~([^~\n]+)~/g, "$1<s>$2</s>");
  return h;
}
function text(t) {
  if (!t) return "";
  return t.type === "mrkdwn" ? mrkdwn(t.text) : esc(t.text);
}
function element(e) {
  if (!e || !e.type) return "";
  if (e.type === "button" || e.type === "workflow_button") {
    const style = e.style ? " " + esc(e.style) : "";
    if (live && msgCtx && e.action_id && !e.url) {
      return '<button class="bk live' + style + '" data-action="' + esc(e.action_id) + '" data-ch="' + esc(msgCtx.channel) + '" data-ts="' + esc(msgCtx.ts) + '" title="' + esc(e.action_id) + '">' + esc(e.text && e.text.text) + "</button>";
    }
    return '<button class="bk' + style + '" disabled title="' + esc(e.action_id || "") + '">' + esc(e.text && e.text.text) + "</button>";
  }
  if (e.type === "image") return '<img src="' + esc(e.image_url) + '" alt="' + esc(e.alt_text) + '" width="24" height="24">';
  if (e.options || e.option_groups) {
    const opts = (e.options || []).map(o => "<option>" + esc(o.text && o.text.text) + "</option>").join("");
    return '<select class="bk" disabled><option>' + esc(e.placeholder ? e.placeholder.text : "Select…") + "</option>" + opts + "</select>";
  }
  return '<button class="bk" disabled>' + esc(e.type) + "</button>";
}
function block(b) {
  switch (b.type) {
    case "header": return '<div class="hdr">' + esc(b.text && b.text.text) + "</div>";
    case "section": {
      let h = "";
      if (b.text) h += '<div class="sec">' + text(b.text) + "</div>";
      if (b.fields) h += '<div class="fields">' + b.fields.map(f => "<div>" + text(f) + "</div>").join("") + "</div>";
      if (b.accessory) h += '<div class="actions">' + element(b.accessory) + "</div>";
      return h;
    }
    case "context": return '<div class="ctx">' + (b.elements || []).map(e => e.type === "image" ? element(e) : "<span>" + text(e) + "</span>").join("") + "</div>";
    case "actions": return '<div class="actions">' + (b.elements || []).map(element).join("") + "</div>";
    case "divider": return '<hr class="div">';
    case "image": return '<div><img src="' + esc(b.image_url) + '" alt="' + esc(b.alt_text) + '" style="max-width:360px"></div>';
    case "markdown": return '<div class="sec">' + mrkdwn(b.text) + "</div>";
    default: return '<div class="fallback">[' + esc(b.type) + " block]</div>";
  }
}
function message(m, isReply) {
  const when = new Date(parseFloat(m.ts) * 1000).toLocaleTimeString();
  let h = '<div class="msg' + (isReply ? " reply" : "") + '" id="m' + esc(m.ts) + '"><div class="meta"><b>' + esc(names[m.user] || m.user) + "</b> " + esc(when) + " · ts " + esc(m.ts);
  if (m.edits) h += ' <span class="edited">(edited ' + m.edits + "×)</span>";
  if (m.reply_broadcast) h += ' <span class="edited">(also sent to the channel)</span>';
  h += "</div>";
  msgCtx = {channel: m.channel, ts: m.ts};
  if (Array.isArray(m.blocks) && m.blocks.length) h += m.blocks.map(block).join("");
  else h += '<div class="sec">' + mrkdwn(m.text) + "</div>";
  msgCtx = null;
  if (m.reactions && m.reactions.length) h += '<div class="reactions">' + m.reactions.map(r => "<span>:" + esc(r[0]) + ": " + r[1].length + "</span>").join("") + "</div>";
  return h + "</div>";
}
function render(state) {
  const chans = state.channels || [];
  names = {};
  names[state.bot_user_id] = "Sluice (bot)";
  for (const u of state.users || []) names[u.id] = u.name;
  live = !!state.app_base_url || state.socket_connections > 0;
  const actor = document.getElementById("actor");
  if (!actor.options.length) actor.innerHTML = (state.users || []).map(u => '<option value="' + esc(u.id) + '">as ' + esc(u.name) + "</option>").join("");
  actor.style.display = live ? "" : "none";
  if (!current && chans.length) current = chans[0].id;
  document.getElementById("channels").innerHTML = chans.map(c =>
    '<a data-id="' + esc(c.id) + '" class="' + (c.id === current ? "active" : "") + '">' +
    "<span>" + (c.is_im ? "@" + esc(names[c.name] || c.name) : "#" + esc(c.name)) + '</span><span class="count">' + c.messages.length + "</span></a>").join("");
  document.getElementById("stats").textContent = state.calls + " calls · " + state.count_429 + " × 429" + (note ? " · " + note : "");
  const ch = chans.find(c => c.id === current);
  if (!ch) { document.getElementById("messages").innerHTML = '<p class="empty">No channels yet. Post to one and it appears here.</p>'; return; }
  document.getElementById("title").textContent = ch.is_im ? "@" + (names[ch.name] || ch.name) : "#" + ch.name;
  document.getElementById("topic").textContent = ch.topic;
  const parents = ch.messages.filter(m => !m.thread_ts);
  let h = "";
  for (const p of parents) {
    h += message(p, false);
    for (const r of ch.messages.filter(m => m.thread_ts === p.ts)) h += message(r, true);
  }
  const me = document.getElementById("actor").value;
  for (const e of (state.ephemerals || []).filter(e => e.channel === ch.id && e.user === me)) {
    h += '<div class="msg ephemeral"><div class="meta"><b>Sluice (bot)</b> · only visible to ' + esc(names[e.user] || e.user) + "</div>" +
      (Array.isArray(e.blocks) && e.blocks.length ? e.blocks.map(block).join("") : '<div class="sec">' + mrkdwn(e.text) + "</div>") + "</div>";
  }
  document.getElementById("messages").innerHTML = h || '<p class="empty">No messages in this channel yet.</p>';
}
document.getElementById("channels").addEventListener("click", ev => {
  const a = ev.target.closest("a[data-id]");
  if (!a) return;
  current = a.dataset.id; location.hash = current; lastRendered = ""; poll();
});
document.getElementById("messages").addEventListener("click", async ev => {
  const b = ev.target.closest("button.bk.live");
  if (!b) return;
  b.disabled = true;
  const body = {channel: b.dataset.ch, ts: b.dataset.ts, action_id: b.dataset.action, user: document.getElementById("actor").value};
  try {
    const r = await fetch("/sim/user/click", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
    const out = await r.json();
    note = out.ok ? (out.status === 200 ? "click delivered" : "app answered " + out.status) : out.error;
  } catch (e) { note = "click failed"; }
  lastRendered = ""; poll();
});
document.getElementById("actor").addEventListener("change", () => { lastRendered = ""; poll(); });
async function poll() {
  try {
    const r = await fetch("/sim/state", {cache: "no-store"});
    const body = await r.text();
    if (body !== lastRendered) { lastRendered = body; render(JSON.parse(body)); }
  } catch (e) { document.getElementById("stats").textContent = "simulator not reachable"; }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
"##;
