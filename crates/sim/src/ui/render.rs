//! The workspace as one person sees it, rendered to HTML on the server ([`render`]): the channel list, one
//! channel's messages with their threads and reactions, that person's ephemerals, and the modal open on their
//! screen. Every piece of text goes through [`crate::mrkdwn`] or [`escape`], so nothing from a message reaches the
//! page as markup.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::model::{Message, View};
use crate::mrkdwn::{self, escape, Names, Viewer};
use crate::state::{Ephemeral, State, BOT_USER_ID};

/// Who is looking at what: `GET /sim/render` and `GET /sim/stream` take these as query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Look {
    /// Channel id or name; the first channel when absent or unknown.
    pub channel: Option<String>,
    /// The member the page acts as ("who am I"); the first member when absent.
    pub user: Option<String>,
    /// The viewer's offset from UTC in minutes east (JavaScript's `-getTimezoneOffset()`).
    pub tz: i32,
    /// The viewer's IANA time zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`), for dates on another
    /// side of a daylight-saving change.
    pub zone: Option<String>,
}

/// The reactions the picker offers (Slack's most used), by shortcode.
pub const PICKER: &[&str] = &[
    "eyes",
    "white_check_mark",
    "+1",
    "rocket",
    "fire",
    "tada",
    "rotating_light",
    "x",
];

impl Names for State {
    fn user(&self, id: &str) -> Option<String> {
        if id == BOT_USER_ID {
            return Some("Sluice".into());
        }
        self.users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.name.clone())
    }

    fn group(&self, id: &str) -> Option<String> {
        self.usergroups
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.handle.clone())
    }

    fn channel(&self, id: &str) -> Option<String> {
        self.channels
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
    }
}

/// Everything the page shows for `look`, as JSON: HTML pieces and the few values the script needs.
pub fn render(state: &State, look: &Look) -> Value {
    let now = state.clock.now();
    let viewer = Viewer::new(look.tz, state.unix_secs(now) as i64).in_zone(look.zone.as_deref());
    let me = look
        .user
        .clone()
        .filter(|u| state.users.iter().any(|m| &m.id == u))
        .or_else(|| state.users.first().map(|u| u.id.clone()))
        .unwrap_or_default();
    let live = state.cfg.app_base_url.is_some() || state.socket.open_count() > 0;
    let ci = look
        .channel
        .as_deref()
        .and_then(|c| state.channel_index(c))
        .or((!state.channels.is_empty()).then_some(0));
    let r = Renderer {
        state,
        viewer,
        live,
    };
    let nav: String = state
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let label = if c.is_im {
                format!("@{}", state.user(&c.name).unwrap_or_else(|| c.name.clone()))
            } else {
                format!("#{}", c.name)
            };
            format!(
                r#"<a data-id="{}" class="{}"><span>{}</span><span class="count">{}</span></a>"#,
                escape(&c.id),
                if Some(i) == ci { "active" } else { "" },
                escape(&label),
                c.messages.iter().filter(|m| m.thread_ts.is_none()).count()
            )
        })
        .collect();
    let (channel, title, topic, messages) = match ci {
        Some(i) => {
            let c = &state.channels[i];
            let title = if c.is_im {
                format!("@{}", state.user(&c.name).unwrap_or_else(|| c.name.clone()))
            } else {
                format!("#{}", c.name)
            };
            let mut h = String::new();
            for m in c.messages.iter().filter(|m| m.thread_ts.is_none()) {
                let replies: Vec<&Message> = c
                    .messages
                    .iter()
                    .filter(|r| r.thread_ts.as_deref() == Some(m.ts.as_str()))
                    .collect();
                h.push_str(&r.message(m, &replies));
            }
            for e in state
                .ephemerals
                .iter()
                .filter(|e| e.channel == c.id && e.user == me)
            {
                h.push_str(&r.ephemeral(e));
            }
            if h.is_empty() {
                h = r#"<p class="empty">No messages in this channel yet.</p>"#.into();
            }
            (c.id.clone(), title, c.topic.clone(), h)
        }
        None => (
            String::new(),
            "No channels".into(),
            String::new(),
            r#"<p class="empty">No channels yet. Post to one and it appears here.</p>"#.into(),
        ),
    };
    let modal = state
        .views
        .values()
        .filter(|v| v.kind == "modal" && v.user.as_deref() == Some(me.as_str()))
        .filter(|v| !state.closed_views.contains(&v.id))
        .max_by_key(|v| v.id.clone());
    let picker: String = PICKER
        .iter()
        .filter_map(|name| {
            emojis::get_by_shortcode(name).map(|e| {
                format!(
                    r#"<button type="button" data-emoji="{}" title=":{}:">{}</button>"#,
                    escape(name),
                    escape(name),
                    e.as_str()
                )
            })
        })
        .collect();
    json!({
        "channel": channel,
        "title": title,
        "topic": topic,
        "nav": nav,
        "messages": messages,
        "me": me,
        "users": state.users.iter().map(|u| json!({"id": u.id, "name": u.name})).collect::<Vec<_>>(),
        "live": live,
        "stats": format!("{} calls · {} × 429", state.calls.len(), state.count_429()),
        "modal": modal.map(|v| json!({
            "id": v.id,
            "key": format!("{}:{}", v.id, v.hash),
            "html": r.modal(v),
            "errors": state.view_errors.get(&v.id).cloned().unwrap_or_default(),
        })),
        "picker": picker,
    })
}

struct Renderer<'a> {
    state: &'a State,
    viewer: Viewer,
    live: bool,
}

/// Where a button sits: a message (clicks are `block_actions` on it) or an ephemeral.
enum Place<'a> {
    Message { channel: &'a str, ts: &'a str },
    Ephemeral { ts: &'a str },
    Modal,
}

fn text_of(t: &Value) -> &str {
    t.get("text").and_then(Value::as_str).unwrap_or("")
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

impl Renderer<'_> {
    fn mrkdwn(&self, s: &str) -> String {
        mrkdwn::to_html(s, self.state, &self.viewer)
    }

    /// A text object: mrkdwn rendered, plain_text escaped (emoji shortcodes still shown, as Slack's `emoji: true`).
    fn text(&self, t: &Value) -> String {
        let s = text_of(t);
        if str_of(t, "type") == "mrkdwn" {
            self.mrkdwn(s)
        } else {
            mrkdwn::plain_to_html(s)
        }
    }

    fn name(&self, user: &str) -> String {
        self.state.user(user).unwrap_or_else(|| user.to_string())
    }

    fn time(&self, ts: &str) -> String {
        let secs = ts
            .split('.')
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        self.mrkdwn(&format!("<!date^{secs}^{{time_secs}}|{ts}>"))
    }

    fn body(&self, text: &str, blocks: &Value, place: &Place) -> String {
        match blocks.as_array().filter(|b| !b.is_empty()) {
            Some(blocks) => blocks.iter().map(|b| self.block(b, place, None)).collect(),
            None => format!(r#"<div class="sec">{}</div>"#, self.mrkdwn(text)),
        }
    }

    fn message(&self, m: &Message, replies: &[&Message]) -> String {
        let place = Place::Message {
            channel: &m.channel,
            ts: &m.ts,
        };
        let mut h = format!(
            r#"<div class="msg" id="m{ts}" data-ch="{ch}" data-ts="{ts}"><div class="meta"><b>{name}</b> {time}"#,
            ts = escape(&m.ts),
            ch = escape(&m.channel),
            name = escape(&self.name(&m.user)),
            time = self.time(&m.ts),
        );
        if m.edits > 0 {
            h.push_str(r#" <span class="edited">(edited)</span>"#);
        }
        if m.reply_broadcast {
            h.push_str(r#" <span class="edited">(also sent to the channel)</span>"#);
        }
        if self.live {
            h.push_str(r#"<span class="msg-tools"><button type="button" class="tool react-btn" title="Add reaction">☺+</button><button type="button" class="tool reply-btn" title="Reply in thread">Reply</button></span>"#);
        }
        h.push_str("</div>");
        h.push_str(&self.body(&m.text, &m.blocks, &place));
        if !m.reactions.is_empty() {
            h.push_str(r#"<div class="reactions">"#);
            for (name, users) in &m.reactions {
                let shown = emojis::get_by_shortcode(name)
                    .map(|e| e.as_str().to_string())
                    .unwrap_or_else(|| format!(":{name}:"));
                let who: Vec<String> = users.iter().map(|u| self.name(u)).collect();
                h.push_str(&format!(
                    r#"<button type="button" class="reaction" data-emoji="{}" title="{}">{} {}</button>"#,
                    escape(name),
                    escape(&who.join(", ")),
                    escape(&shown),
                    users.len()
                ));
            }
            h.push_str("</div>");
        }
        if !replies.is_empty() {
            h.push_str(&format!(
                r#"<div class="thread"><div class="reply-count">{} {}</div>"#,
                replies.len(),
                if replies.len() == 1 {
                    "reply"
                } else {
                    "replies"
                }
            ));
            for r in replies {
                let place = Place::Message {
                    channel: &r.channel,
                    ts: &r.ts,
                };
                h.push_str(&format!(
                    r#"<div class="msg reply" id="m{ts}" data-ch="{ch}" data-ts="{ts}"><div class="meta"><b>{name}</b> {time}</div>{body}</div>"#,
                    ts = escape(&r.ts),
                    ch = escape(&r.channel),
                    name = escape(&self.name(&r.user)),
                    time = self.time(&r.ts),
                    body = self.body(&r.text, &r.blocks, &place),
                ));
            }
            h.push_str("</div>");
        }
        h + "</div>"
    }

    fn ephemeral(&self, e: &Ephemeral) -> String {
        format!(
            r#"<div class="msg ephemeral" id="e{ts}"><div class="meta"><b>Sluice</b> {time} <span class="only-you">Only visible to you</span></div>{body}</div>"#,
            ts = escape(&e.ts),
            time = self.time(&e.ts),
            body = self.body(&e.text, &e.blocks, &Place::Ephemeral { ts: &e.ts }),
        )
    }

    fn block(&self, b: &Value, place: &Place, errors: Option<&Map<String, Value>>) -> String {
        match str_of(b, "type") {
            "header" => format!(
                r#"<div class="hdr">{}</div>"#,
                self.text(b.get("text").unwrap_or(&Value::Null))
            ),
            "section" => {
                let mut h = String::from(r#"<div class="section">"#);
                if let Some(t) = b.get("text") {
                    h.push_str(&format!(r#"<div class="sec">{}</div>"#, self.text(t)));
                }
                if let Some(fields) = b.get("fields").and_then(Value::as_array) {
                    h.push_str(r#"<div class="fields">"#);
                    for f in fields {
                        h.push_str(&format!("<div>{}</div>", self.text(f)));
                    }
                    h.push_str("</div>");
                }
                if let Some(a) = b.get("accessory") {
                    h.push_str(&format!(
                        r#"<div class="actions">{}</div>"#,
                        self.element(a, place)
                    ));
                }
                h + "</div>"
            }
            "context" => {
                let parts: String = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .map(|es| {
                        es.iter()
                            .map(|e| match str_of(e, "type") {
                                "image" => self.element(e, place),
                                _ => format!("<span>{}</span>", self.text(e)),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(r#"<div class="ctx">{parts}</div>"#)
            }
            "actions" => {
                let parts: String = b
                    .get("elements")
                    .and_then(Value::as_array)
                    .map(|es| es.iter().map(|e| self.element(e, place)).collect())
                    .unwrap_or_default();
                format!(r#"<div class="actions">{parts}</div>"#)
            }
            "divider" => r#"<hr class="div">"#.into(),
            "image" => format!(
                r#"<div><img src="{}" alt="{}" class="block-image"></div>"#,
                escape(&safe_src(str_of(b, "image_url"))),
                escape(str_of(b, "alt_text"))
            ),
            "markdown" => format!(
                r#"<div class="sec">{}</div>"#,
                self.mrkdwn(str_of(b, "text"))
            ),
            "input" => self.input(b, errors),
            "rich_text" => format!(r#"<div class="sec">{}</div>"#, escape(&rich_text_plain(b))),
            other => format!(r#"<div class="fallback">[{} block]</div>"#, escape(other)),
        }
    }

    fn element(&self, e: &Value, place: &Place) -> String {
        let kind = str_of(e, "type");
        let label = self.text(e.get("text").unwrap_or(&Value::Null));
        let style = match str_of(e, "style") {
            "primary" => " primary",
            "danger" => " danger",
            _ => "",
        };
        match kind {
            "button" | "workflow_button" => {
                if let Some(url) = e.get("url").and_then(Value::as_str) {
                    return format!(
                        r#"<a class="bk{style}" href="{}" target="_blank" rel="noreferrer noopener">{label}</a>"#,
                        escape(&safe_src(url))
                    );
                }
                let action = escape(str_of(e, "action_id"));
                match place {
                    Place::Message { channel, ts } if self.live => format!(
                        r#"<button type="button" class="bk live{style}" data-action="{action}" data-ch="{}" data-ts="{}">{label}</button>"#,
                        escape(channel),
                        escape(ts)
                    ),
                    Place::Ephemeral { ts } if self.live => format!(
                        r#"<button type="button" class="bk live{style}" data-action="{action}" data-eph="{}">{label}</button>"#,
                        escape(ts)
                    ),
                    _ => format!(
                        r#"<button type="button" class="bk{style}" disabled>{label}</button>"#
                    ),
                }
            }
            "image" => format!(
                r#"<img src="{}" alt="{}" width="20" height="20">"#,
                escape(&safe_src(str_of(e, "image_url"))),
                escape(str_of(e, "alt_text"))
            ),
            _ if e.get("options").is_some() || kind.ends_with("_select") || kind == "overflow" => {
                let placeholder = e
                    .get("placeholder")
                    .map(|p| self.text(p))
                    .unwrap_or_else(|| "Select…".into());
                let opts: String = options_of(e)
                    .iter()
                    .map(|o| {
                        format!(
                            "<option>{}</option>",
                            self.text(o.get("text").unwrap_or(&Value::Null))
                        )
                    })
                    .collect();
                format!(
                    r#"<select class="bk" disabled><option>{placeholder}</option>{opts}</select>"#
                )
            }
            other => format!(
                r#"<button type="button" class="bk" disabled>{}</button>"#,
                escape(other)
            ),
        }
    }

    /// An input block of a modal: its label, the control, its hint and the app's error for it.
    fn input(&self, b: &Value, errors: Option<&Map<String, Value>>) -> String {
        let block_id = str_of(b, "block_id");
        let el = b.get("element").unwrap_or(&Value::Null);
        let kind = str_of(el, "type");
        let action_id = str_of(el, "action_id");
        let label = self.text(b.get("label").unwrap_or(&Value::Null));
        let optional = if b.get("optional").and_then(Value::as_bool) == Some(true) {
            r#" <span class="optional">(optional)</span>"#
        } else {
            ""
        };
        let placeholder = escape(el.get("placeholder").map(text_of).unwrap_or(""));
        let initial = |key: &str| escape(str_of(el, key));
        let name = format!("{block_id}.{action_id}");
        let control = match kind {
            "plain_text_input" if el.get("multiline").and_then(Value::as_bool) == Some(true) => {
                format!(
                    r#"<textarea name="{}" placeholder="{placeholder}">{}</textarea>"#,
                    escape(&name),
                    initial("initial_value")
                )
            }
            // What the person types is sent to the app as a `block_suggestion` (page.js); its options fill the list.
            "external_select" => format!(
                r#"<input type="text" name="{0}" placeholder="{placeholder}" list="opts-{0}" autocomplete="off" data-external="1"><datalist id="opts-{0}"></datalist>"#,
                escape(&name)
            ),
            "plain_text_input" | "email_text_input" | "url_text_input" => {
                format!(
                    r#"<input type="text" name="{}" placeholder="{placeholder}" value="{}">"#,
                    escape(&name),
                    initial("initial_value")
                )
            }
            "number_input" => format!(
                r#"<input type="number" name="{}" placeholder="{placeholder}" value="{}" min="{}" max="{}" step="{}">"#,
                escape(&name),
                initial("initial_value"),
                initial("min_value"),
                initial("max_value"),
                if el.get("is_decimal_allowed").and_then(Value::as_bool) == Some(true) {
                    "any"
                } else {
                    "1"
                }
            ),
            "datepicker" => format!(
                r#"<input type="date" name="{}" value="{}">"#,
                escape(&name),
                initial("initial_date")
            ),
            "users_select" => {
                let chosen = str_of(el, "initial_user");
                let opts: String = self
                    .state
                    .users
                    .iter()
                    .map(|u| {
                        format!(
                            r#"<option value="{}"{}>{}</option>"#,
                            escape(&u.id),
                            if u.id == chosen { " selected" } else { "" },
                            escape(&u.name)
                        )
                    })
                    .collect();
                format!(
                    r#"<select name="{}"><option value="">Select a person</option>{opts}</select>"#,
                    escape(&name)
                )
            }
            "checkboxes" | "radio_buttons" => {
                let checked: Vec<&str> = match el.get("initial_options").and_then(Value::as_array) {
                    Some(os) => os.iter().map(|o| str_of(o, "value")).collect(),
                    None => el
                        .get("initial_option")
                        .map(|o| vec![str_of(o, "value")])
                        .unwrap_or_default(),
                };
                let input_type = if kind == "checkboxes" {
                    "checkbox"
                } else {
                    "radio"
                };
                options_of(el)
                    .iter()
                    .map(|o| {
                        let value = str_of(o, "value");
                        format!(
                            r#"<label class="choice"><input type="{input_type}" name="{}" value="{}" data-text="{}"{}> {}</label>"#,
                            escape(&name),
                            escape(value),
                            escape(text_of(o.get("text").unwrap_or(&Value::Null))),
                            if checked.contains(&value) { " checked" } else { "" },
                            self.text(o.get("text").unwrap_or(&Value::Null))
                        )
                    })
                    .collect()
            }
            _ if kind.ends_with("_select") => {
                let chosen = el
                    .get("initial_option")
                    .map(|o| str_of(o, "value"))
                    .unwrap_or("");
                let opts: String = options_of(el)
                    .iter()
                    .map(|o| {
                        let value = str_of(o, "value");
                        format!(
                            r#"<option value="{}" data-text="{}"{}>{}</option>"#,
                            escape(value),
                            escape(text_of(o.get("text").unwrap_or(&Value::Null))),
                            if value == chosen { " selected" } else { "" },
                            escape(text_of(o.get("text").unwrap_or(&Value::Null)))
                        )
                    })
                    .collect();
                format!(
                    r#"<select name="{}"><option value="">{}</option>{opts}</select>"#,
                    escape(&name),
                    if placeholder.is_empty() {
                        "Select an option".to_string()
                    } else {
                        placeholder.clone()
                    }
                )
            }
            other => format!(r#"<span class="fallback">[{} input]</span>"#, escape(other)),
        };
        let hint = b
            .get("hint")
            .map(|h| format!(r#"<div class="hint">{}</div>"#, self.text(h)))
            .unwrap_or_default();
        let error = errors
            .and_then(|e| e.get(block_id))
            .and_then(Value::as_str)
            .unwrap_or("");
        format!(
            r#"<div class="input" data-block="{}" data-action="{}" data-type="{}"><label class="input-label">{label}{optional}</label>{control}{hint}<div class="field-error">{}</div></div>"#,
            escape(block_id),
            escape(action_id),
            escape(kind),
            escape(error)
        )
    }

    fn modal(&self, v: &View) -> String {
        let d = &v.definition;
        let title = self.text(d.get("title").unwrap_or(&Value::Null));
        let close = d.get("close").map(text_of).unwrap_or("Cancel");
        let errors = self.state.view_errors.get(&v.id);
        let blocks: String = d
            .get("blocks")
            .and_then(Value::as_array)
            .map(|bs| {
                bs.iter()
                    .map(|b| self.block(b, &Place::Modal, errors))
                    .collect()
            })
            .unwrap_or_default();
        let submit = d
            .get("submit")
            .map(|s| {
                format!(
                    r#"<button type="submit" class="bk primary" id="modal-submit">{}</button>"#,
                    escape(text_of(s))
                )
            })
            .unwrap_or_default();
        format!(
            r#"<form class="modal" id="modal" data-view="{id}" role="dialog" aria-modal="true" aria-labelledby="modal-title"><header><h3 id="modal-title">{title}</h3><button type="button" class="modal-x" data-close title="Close">×</button></header><div class="modal-body">{blocks}</div><footer><button type="button" class="bk" data-close id="modal-cancel">{close}</button>{submit}</footer></form>"#,
            id = escape(&v.id),
            close = escape(close),
        )
    }
}

fn options_of(e: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = e
        .get("options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(groups) = e.get("option_groups").and_then(Value::as_array) {
        for g in groups {
            out.extend(
                g.get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    out
}

/// An image URL the page may load: http(s) only.
fn safe_src(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        url.to_string()
    } else {
        String::new()
    }
}

/// A rich_text block's words, without its styling.
fn rich_text_plain(b: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(t)) = o.get("text") {
                    out.push_str(t);
                }
                if let Some(e) = o.get("elements") {
                    walk(e, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(b, &mut out);
    out
}
