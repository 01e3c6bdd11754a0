//! Slack's `mrkdwn` as the simulator page shows it: [`to_html`] turns message text into HTML that is
//! safe to put in the page, the way a Slack client would draw it.
//!
//! Slack's text arrives escaped (`&amp;`, `&lt;`, `&gt;`) and its control sequences are the only raw
//! `<…>` in it: `<@U1>`, `<#C1>`, `<!subteam^S1>`, `<!channel>`, `<!date^…|fallback>`, `<url|text>`.
//! So the text is first split into those sequences and literal text (whose entities are decoded:
//! `&lt;!channel&gt;` is the literal text `<!channel>`, not a mention), every piece is HTML-escaped,
//! and only then are the formatting rules (`*bold*`, `_italic_`, `~strike~`, `` `code` ``,
//! ```` ```pre``` ````, `:emoji:`) applied. Nothing from the input reaches the output unescaped, so a
//! message cannot inject markup or attributes into the page.
//!
//! Mentions are shown by name from the workspace ([`Names`]); dates in the viewer's time zone
//! ([`Viewer`]); permalinks to messages of this workspace jump to the message inside the simulator.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone};
use chrono_tz::Tz;

/// Names of the workspace's people, groups and channels, by id.
pub trait Names {
    fn user(&self, id: &str) -> Option<String>;
    /// The handle of a user group (`oncall`, without the `@`).
    fn group(&self, id: &str) -> Option<String>;
    fn channel(&self, id: &str) -> Option<String>;
}

/// Who is looking: their time zone (dates are shown in it) and the time now (for "Today", "3 minutes ago").
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    /// Their offset from UTC now: what a date is shown in when the zone is not known.
    pub offset: FixedOffset,
    /// Their zone (`Europe/Berlin`), when the browser named one: a date is shown with the offset it had then,
    /// so a July date seen in December is in summer time, as Slack's clients show it.
    pub zone: Option<Tz>,
    pub now_unix: i64,
}

impl Viewer {
    /// `offset_minutes` east of UTC (JavaScript's `-new Date().getTimezoneOffset()`); out of range is UTC.
    pub fn new(offset_minutes: i32, now_unix: i64) -> Self {
        let offset = FixedOffset::east_opt(offset_minutes.saturating_mul(60))
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC is a valid offset"));
        Self {
            offset,
            zone: None,
            now_unix,
        }
    }

    /// The same viewer in the IANA zone `name` (`Intl.DateTimeFormat().resolvedOptions().timeZone`); an unknown
    /// name keeps the offset.
    pub fn in_zone(self, name: Option<&str>) -> Self {
        Self {
            zone: name.and_then(|n| n.parse::<Tz>().ok()),
            ..self
        }
    }

    /// `unix` seconds as the viewer's clock showed them.
    fn at(&self, unix: i64) -> Option<DateTime<FixedOffset>> {
        match self.zone {
            Some(zone) => zone
                .timestamp_opt(unix, 0)
                .single()
                .map(|t| t.fixed_offset()),
            None => self.offset.timestamp_opt(unix, 0).single(),
        }
    }
}

/// Escapes text for an HTML element or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Slack's three entities back to the characters they stand for (what the user sees).
fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where rendered pieces wait while the formatting rules run over the text around them: one character of
/// Unicode's private use area each, which the input cannot contain (it is replaced on the way in).
const SLOT_BASE: u32 = 0xF0000;

fn slot(i: usize) -> char {
    char::from_u32(SLOT_BASE + i as u32).unwrap_or('\u{FFFD}')
}

fn slot_index(c: char) -> Option<usize> {
    let n = c as u32;
    (SLOT_BASE..SLOT_BASE + 0xFFFD)
        .contains(&n)
        .then(|| (n - SLOT_BASE) as usize)
}

struct Slots(Vec<String>);

impl Slots {
    fn put(&mut self, html: String) -> char {
        self.0.push(html);
        slot(self.0.len() - 1)
    }

    /// Puts every piece back, including pieces inside pieces (a mention inside `code`).
    fn fill(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match slot_index(c).and_then(|i| self.0.get(i)) {
                Some(html) => out.push_str(&self.fill(html)),
                None => out.push(c),
            }
        }
        out
    }
}

/// `text` (Slack mrkdwn) as HTML.
pub fn to_html(text: &str, names: &dyn Names, viewer: &Viewer) -> String {
    let text: String = text
        .chars()
        .map(|c| {
            if slot_index(c).is_some() {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    let mut slots = Slots(Vec::new());
    // 1. Control sequences become slots; the literal text between them is decoded then escaped.
    let mut s = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('<') {
        s.push_str(&escape(&decode(&rest[..open])));
        let after = &rest[open + 1..];
        match after.find(['>', '<']) {
            Some(close) if after.as_bytes()[close] == b'>' => {
                let html = control(&after[..close], names, viewer);
                s.push(slots.put(html));
                rest = &after[close + 1..];
            }
            _ => {
                // A stray `<` (Slack would have escaped it): shown as is.
                s.push_str("&lt;");
                rest = after;
            }
        }
    }
    s.push_str(&escape(&decode(rest)));
    // 2. Code first: nothing inside it is formatted.
    let s = code_spans(&s, "```", "pre", &mut slots);
    let s = code_spans(&s, "`", "code", &mut slots);
    // 3. Emoji, then the emphasis marks.
    let s = emoji(&s);
    let s = emphasis(&s, '*', "b");
    let s = emphasis(&s, '_', "i");
    let s = emphasis(&s, '~', "s");
    slots.fill(&s)
}

/// A `plain_text` object as HTML: Slack's three entities shown as the characters they stand for, escaped, with emoji
/// shortcodes shown (Slack's `emoji: true`), nothing else.
pub fn plain_to_html(text: &str) -> String {
    emoji(&escape(&decode(text)))
}

/// One `<…>` control sequence (without the brackets) as HTML.
fn control(inner: &str, names: &dyn Names, viewer: &Viewer) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(l)),
        None => (inner, None),
    };
    let label_html = |fallback: &str| escape(&decode(label.unwrap_or(fallback)));
    if let Some(id) = target.strip_prefix('@') {
        let name = names.user(id).or_else(|| label.map(decode));
        return format!(
            r#"<span class="mention" data-user="{}">@{}</span>"#,
            escape(id),
            escape(&name.unwrap_or_else(|| id.to_string()))
        );
    }
    if let Some(id) = target.strip_prefix('#') {
        let name = names
            .channel(id)
            .or_else(|| label.map(decode))
            .unwrap_or_else(|| id.to_string());
        return format!(
            "<a class=\"mention channel\" href=\"#{}\">#{}</a>",
            escape(id),
            escape(&name)
        );
    }
    if let Some(special) = target.strip_prefix('!') {
        if let Some(id) = special.strip_prefix("subteam^") {
            let handle = names
                .group(id)
                .map(|h| format!("@{h}"))
                .or_else(|| label.map(decode))
                .unwrap_or_else(|| format!("@{id}"));
            return format!(r#"<span class="mention group">{}</span>"#, escape(&handle));
        }
        if matches!(special, "channel" | "here" | "everyone") {
            return format!(r#"<span class="mention broadcast">@{special}</span>"#);
        }
        if let Some(spec) = special.strip_prefix("date^") {
            return date(spec, label, viewer);
        }
        // Something this simulator does not know: Slack shows the fallback text.
        return label_html(&format!("<{inner}>"));
    }
    if let Some(href) = safe_href(target) {
        let shown = label.map(decode).unwrap_or_else(|| decode(target));
        if let Some((channel, ts)) = permalink_target(target) {
            return format!(
                r##"<a class="permalink" href="#{}/{}">{}</a>"##,
                escape(&channel),
                escape(&ts),
                escape(&shown)
            );
        }
        return format!(
            r#"<a href="{}" target="_blank" rel="noreferrer noopener">{}</a>"#,
            escape(&href),
            escape(&shown)
        );
    }
    // Not a link Slack would make (`javascript:`…): the text, never an href.
    label_html(&decode(target))
}

/// The URL if it is one a link may point to (http, https, mailto), as the user would see it.
fn safe_href(target: &str) -> Option<String> {
    let url = decode(target);
    let lower = url.to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p))
        .then_some(url)
}

/// `(channel, ts)` of a permalink the simulator handed out (`…slack.com/archives/C1/p1700000000000100`).
fn permalink_target(url: &str) -> Option<(String, String)> {
    let url = decode(url);
    let after = url.split_once("/archives/")?.1;
    let (channel, rest) = after.split_once('/')?;
    let digits = rest.strip_prefix('p')?;
    let digits = digits.split(['?', '#']).next()?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !channel.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((
        channel.to_string(),
        format!("{}.{}", &digits[..10], &digits[10..]),
    ))
}

/// `<!date^1392734382^{date_short} at {time}^optional_link|fallback>`.
fn date(spec: &str, fallback: Option<&str>, viewer: &Viewer) -> String {
    let fallback = || escape(&decode(fallback.unwrap_or("")));
    let mut parts = spec.splitn(3, '^');
    let (Some(epoch), Some(format)) = (parts.next(), parts.next()) else {
        return fallback();
    };
    let link = parts.next().and_then(safe_href);
    let Some(when) = epoch.parse::<i64>().ok().and_then(|e| viewer.at(e)) else {
        return fallback();
    };
    let shown = format_date(&decode(format), when, viewer);
    let iso = when.to_rfc3339();
    match link {
        Some(href) => format!(
            r#"<a href="{}" target="_blank" rel="noreferrer noopener"><time datetime="{}">{}</time></a>"#,
            escape(&href),
            escape(&iso),
            escape(&shown)
        ),
        None => format!(
            r#"<time datetime="{}">{}</time>"#,
            escape(&iso),
            escape(&shown)
        ),
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Slack's date tokens, in the viewer's time zone. Text around the tokens is kept.
fn format_date(format: &str, when: DateTime<FixedOffset>, viewer: &Viewer) -> String {
    let day_word = || {
        let today = viewer.at(viewer.now_unix).map(|n| n.date_naive())?;
        match (when.date_naive() - today).num_days() {
            0 => Some("Today"),
            -1 => Some("Yesterday"),
            1 => Some("Tomorrow"),
            _ => None,
        }
    };
    let date_long = || {
        format!(
            "{}, {} {}, {}",
            when.format("%A"),
            when.format("%B"),
            ordinal(when.day()),
            when.year()
        )
    };
    let date_mid = || {
        format!(
            "{} {}, {}",
            when.format("%B"),
            ordinal(when.day()),
            when.year()
        )
    };
    let date_short = || format!("{} {}, {}", when.format("%b"), when.day(), when.year());
    let ago = || {
        let secs = viewer.now_unix - when.timestamp();
        let (n, unit) = match secs.abs() {
            s if s < 60 => return "just now".to_string(),
            s if s < 3600 => (s / 60, "minute"),
            s if s < 86_400 => (s / 3600, "hour"),
            s => (s / 86_400, "day"),
        };
        let plural = if n == 1 { "" } else { "s" };
        if secs >= 0 {
            format!("{n} {unit}{plural} ago")
        } else {
            format!("in {n} {unit}{plural}")
        }
    };
    let mut out = String::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let token = &after[..close];
        let shown = match token {
            "date_num" => when.format("%Y-%m-%d").to_string(),
            "date" => date_mid(),
            "date_short" => date_short(),
            "date_long" => date_long(),
            "date_pretty" => day_word().map(String::from).unwrap_or_else(date_mid),
            "date_short_pretty" => day_word().map(String::from).unwrap_or_else(date_short),
            "date_long_pretty" => day_word().map(String::from).unwrap_or_else(date_long),
            "time" => when.format("%-I:%M %p").to_string(),
            "time_secs" => when.format("%-I:%M:%S %p").to_string(),
            "ago" => ago(),
            other => format!("{{{other}}}"),
        };
        out.push_str(&shown);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `` `code` `` and ```` ```pre``` ```` (on already escaped text) into slots.
fn code_spans(s: &str, fence: &str, tag: &str, slots: &mut Slots) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find(fence) {
        let after = &rest[open + fence.len()..];
        let close = after
            .find(fence)
            .filter(|&c| c > 0 && (fence.len() > 1 || !after[..c].contains('\n')));
        let Some(close) = close else {
            out.push_str(&rest[..open + fence.len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..open]);
        let inner = after[..close].trim_start_matches('\n');
        out.push(slots.put(format!("<{tag}>{inner}</{tag}>")));
        rest = &after[close + fence.len()..];
    }
    out.push_str(rest);
    out
}

/// `:rocket:` → 🚀 for every shortcode the emoji table knows; others stay as typed (as in Slack, where a
/// custom emoji this workspace lacks shows as its name).
fn emoji(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find(':') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with(':') {
            if let Some(e) = emojis::get_by_shortcode(&after[..name_len]) {
                out.push_str(e.as_str());
                rest = &after[name_len + 1..];
                continue;
            }
        }
        out.push(':');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Whether `c` may stand next to an emphasis mark on its outer side (`*bold*` but not `2*3*4`).
fn outer_boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| !c.is_alphanumeric())
}

/// `*x*` → `<b>x</b>` on one line, where the marks sit at word boundaries and hug the text.
fn emphasis(s: &str, mark: char, tag: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let opens = c == mark
            && outer_boundary(i.checked_sub(1).map(|p| chars[p]))
            && chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != mark);
        if opens {
            let close = (i + 2..chars.len())
                .take_while(|&j| chars[j] != '\n')
                .find(|&j| {
                    chars[j] == mark
                        && !chars[j - 1].is_whitespace()
                        && outer_boundary(chars.get(j + 1).copied())
                });
            if let Some(j) = close {
                let inner: String = chars[i + 1..j].iter().collect();
                out.push_str(&format!("<{tag}>{inner}</{tag}>"));
                i = j + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ws;
    impl Names for Ws {
        fn user(&self, id: &str) -> Option<String> {
            (id == "U0001").then(|| "alice".into())
        }
        fn group(&self, id: &str) -> Option<String> {
            (id == "S0001").then(|| "oncall".into())
        }
        fn channel(&self, id: &str) -> Option<String> {
            (id == "C000001").then(|| "alerts".into())
        }
    }

    /// 2014-02-18 14:39:42 UTC, a Tuesday.
    const EPOCH: i64 = 1_392_734_382;

    fn html(s: &str) -> String {
        to_html(s, &Ws, &Viewer::new(0, EPOCH + 120))
    }

    #[test]
    fn slack_text_renders_like_slack() {
        for (input, want) in [
            ("plain", "plain"),
            ("*bold* _it_ ~gone~", "<b>bold</b> <i>it</i> <s>gone</s>"),
            ("a `x *y*` b", "a <code>x *y*</code> b"),
            ("```line1\n*no*```", "<pre>line1\n*no*</pre>"),
            ("2*3*4 and snake_case_name", "2*3*4 and snake_case_name"),
            ("* not bold *", "* not bold *"),
            (":rocket: :white_check_mark:", "🚀 ✅"),
            (":not-an-emoji-here:", ":not-an-emoji-here:"),
            ("10:30:45", "10:30:45"),
            (
                "<@U0001> on call",
                r#"<span class="mention" data-user="U0001">@alice</span> on call"#,
            ),
            (
                "<@U0009|zed>",
                r#"<span class="mention" data-user="U0009">@zed</span>"#,
            ),
            (
                "<#C000001>",
                "<a class=\"mention channel\" href=\"#C000001\">#alerts</a>",
            ),
            (
                "<!subteam^S0001>",
                r#"<span class="mention group">@oncall</span>"#,
            ),
            (
                "<!subteam^S0099|@dbas>",
                r#"<span class="mention group">@dbas</span>"#,
            ),
            (
                "<!channel> <!here>",
                r#"<span class="mention broadcast">@channel</span> <span class="mention broadcast">@here</span>"#,
            ),
            (
                "*<!here> now*",
                r#"<b><span class="mention broadcast">@here</span> now</b>"#,
            ),
            ("&lt;!channel&gt;", "&lt;!channel&gt;"),
            ("a &amp; b &lt; c", "a &amp; b &lt; c"),
            (
                "<https://x.io/a?b=1&amp;c=2|the x>",
                r#"<a href="https://x.io/a?b=1&amp;c=2" target="_blank" rel="noreferrer noopener">the x</a>"#,
            ),
            (
                "<https://x.io>",
                r#"<a href="https://x.io" target="_blank" rel="noreferrer noopener">https://x.io</a>"#,
            ),
            (
                "<https://sluice-sim.slack.com/archives/C000001/p1700000000000100|card>",
                r##"<a class="permalink" href="#C000001/1700000000.000100">card</a>"##,
            ),
            (
                "<!date^1392734382^{date_short} at {time}|Feb 18>",
                r#"<time datetime="2014-02-18T14:39:42+00:00">Feb 18, 2014 at 2:39 PM</time>"#,
            ),
            (
                "<!date^1392734382^{date_long} {time_secs}|x>",
                r#"<time datetime="2014-02-18T14:39:42+00:00">Tuesday, February 18th, 2014 2:39:42 PM</time>"#,
            ),
            (
                "<!date^1392734382^{date_pretty}, {ago}|x>",
                r#"<time datetime="2014-02-18T14:39:42+00:00">Today, 2 minutes ago</time>"#,
            ),
            (
                "<!date^1392734382^{date_num}|x>",
                r#"<time datetime="2014-02-18T14:39:42+00:00">2014-02-18</time>"#,
            ),
            ("<!date^notanumber^{date}|the fallback>", "the fallback"),
            ("<!unknownthing|shown>", "shown"),
        ] {
            assert_eq!(html(input), want, "{input:?}");
        }
    }

    #[test]
    fn plain_text_shows_entities_as_characters_and_emoji_but_no_formatting() {
        for (input, want) in [
            (
                "Disk full &lt;!channel&gt; on db-3",
                "Disk full &lt;!channel&gt; on db-3",
            ),
            (":warning: *not bold*", "⚠️ *not bold*"),
            ("<b>x</b> &amp; y", "&lt;b&gt;x&lt;/b&gt; &amp; y"),
        ] {
            assert_eq!(plain_to_html(input), want, "{input:?}");
        }
    }

    #[test]
    fn a_date_is_shown_in_the_viewers_time_zone() {
        let tokyo = Viewer::new(9 * 60, EPOCH);
        let out = to_html("<!date^1392734382^{date_short} {time}|x>", &Ws, &tokyo);
        assert!(out.contains(">Feb 18, 2014 11:39 PM<"), "{out}");
        let la = Viewer::new(-8 * 60, EPOCH);
        let out = to_html("<!date^1392734382^{date_short} {time}|x>", &Ws, &la);
        assert!(out.contains(">Feb 18, 2014 6:39 AM<"), "{out}");
    }

    #[test]
    fn a_date_across_a_daylight_saving_change_has_the_offset_of_its_own_day() {
        // Seen in Berlin in February (CET, +1): 1 July 2014 12:00 UTC was 14:00 there (CEST, +2).
        let july = "<!date^1404216000^{date_short} {time}|x>";
        let berlin = Viewer::new(60, EPOCH).in_zone(Some("Europe/Berlin"));
        let out = to_html(july, &Ws, &berlin);
        assert!(out.contains(">Jul 1, 2014 2:00 PM<"), "{out}");
        // Without a zone only today's offset is known; an unknown zone keeps it.
        let offset_only = Viewer::new(60, EPOCH).in_zone(Some("Mars/Olympus_Mons"));
        let out = to_html(july, &Ws, &offset_only);
        assert!(out.contains(">Jul 1, 2014 1:00 PM<"), "{out}");
    }

    #[test]
    fn hostile_text_never_becomes_markup() {
        for input in [
            "<script>alert(1)</script>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "<img src=x onerror=alert(1)>",
            r#"<https://x.io/" onmouseover="alert(1)|x>"#,
            "<javascript:alert(1)|click me>",
            "<https://x.io|<b>hi</b>>",
            r#"<@U0009|"><script>alert(1)</script>>"#,
            r#"<!subteam^S9|"><img src=x onerror=alert(1)>>"#,
            r#"<!date^1^{date}^javascript:alert(1)|x>"#,
            "`<script>` ```<iframe>```",
            "\u{F0000}\u{F0001}<@U0001>",
            "*<i>* _\"'_",
        ] {
            let out = html(input);
            for bad in ["<script", "<img", "<iframe", "href=\"javascript"] {
                assert!(!out.contains(bad), "{input:?} gave {out:?}");
            }
            // Every tag in the output is one this module writes.
            for tag in out.split('<').skip(1) {
                let name: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                assert!(
                    ["b", "i", "s", "code", "pre", "span", "a", "time"].contains(&name.as_str()),
                    "{input:?} gave tag {name:?} in {out:?}"
                );
            }
        }
        assert_eq!(
            html("<javascript:alert(1)|click me>"),
            "click me",
            "a javascript: link is shown as its text"
        );
        assert_eq!(
            html(r#"<https://x.io/" onmouseover="alert(1)|x>"#),
            r#"<a href="https://x.io/&quot; onmouseover=&quot;alert(1)" target="_blank" rel="noreferrer noopener">x</a>"#
        );
    }
}
