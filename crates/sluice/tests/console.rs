//! The operator console in a real browser: Debian's Chromium, headless, driven over WebDriver (chromedriver) by
//! fantoccini, against the real binary and the Slack simulator. One browser session walks through the console as an
//! operator would: log in (a wrong key and a key without `admin` refused), watch the overview change live as
//! events arrive, preview and create a silence, find an event and its deliveries, replay a dead letter, read the
//! audit log, log out; and a cross-origin write with a valid session is refused. A second session follows an
//! incident declared by slash command (list and timeline, pushed live) and a schedule's runs.
//!
//! Without `chromium` and `chromedriver` the test says it skipped, unless `SLUICE_REQUIRE_BROWSER=1` (CI), when it
//! fails. On failure a screenshot of the page is saved to `target/browser-screenshots/`.

mod common;

use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

use common::browser::{click, path_of, type_into, wait_text, Browser};
use common::fixture::Fixture;
use common::proc::*;

const VIEWER_KEY: &str = "console-viewer-key";

async fn get_json(url: String) -> Value {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post_event(base: &str, e: Value) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .bearer_auth(KEY)
        .json(&e)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn audited(records: &Value, action: &str, actor: &str) -> bool {
    records["records"].as_array().is_some_and(|rs| {
        rs.iter()
            .any(|r| r["action"] == action && r["actor"] == actor)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_watches_live_silences_with_a_preview_and_replays_a_dead_letter() {
    let Some(browser) = Browser::open("console browser test").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A workspace as strict as Slack: `nowhere` does not exist, so a post to it is dead-lettered.
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into()],
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    std::fs::write(dir.path().join("viewer-key"), VIEWER_KEY).unwrap();
    let routing = r#"
[[api_key]]
name = "viewer"
key_file = "viewer-key"
scopes = ["read"]

[routing]
default = { channels = ["alerts"] }

[[routing.rule]]
name = "lost"
match = { "labels.ch" = "nowhere" }
channels = ["nowhere"]
"#;
    let cfg = write_config(dir.path(), sim_run.addr, routing);
    let sluice = start_sluice(&cfg);
    let base = format!("http://{}", sluice.addr);

    let client = browser.client.clone();
    browser
        .run("operator-console", walk_through(client, base, sim))
        .await;
}

async fn walk_through(c: Client, base: String, sim: Simulator) {
    // A post to a channel that does not exist: dead-lettered with the reason, while we log in.
    let lost = post_event(
        &base,
        json!({"title": "Lost card", "severity": "warning", "status": "firing", "source": "e2e",
               "labels": {"ch": "nowhere"}}),
    )
    .await;

    // Logging in: the console is behind a session; a wrong key and a key without `admin` are refused.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        path_of(&c).await,
        "/login",
        "no session: sent to the login page"
    );
    type_into(&c, "#key", "not-a-key").await;
    click(&c, "#login-submit").await;
    wait_text(&c, "#login-error", "the refusal", |t| t.contains("refused")).await;
    assert_eq!(path_of(&c).await, "/login");
    type_into(&c, "#key", VIEWER_KEY).await;
    click(&c, "#login-submit").await;
    wait_text(&c, "#login-error", "the scope named", |t| {
        t.contains("admin")
    })
    .await;
    type_into(&c, "#key", KEY).await;
    click(&c, "#login-submit").await;
    wait_text(&c, "#operator", "the operator's key name", |t| t == "e2e").await;
    assert_eq!(path_of(&c).await, "/");
    let cookie = c.get_named_cookie("sluice_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    assert_eq!(
        format!("{:?}", cookie.same_site()),
        "Some(Strict)",
        "{cookie:?}"
    );

    // The overview is live: events sent now show in its count without a reload.
    wait_text(&c, "#live-status", "the first snapshot", |t| {
        t.starts_with("live")
    })
    .await;
    let before: u64 = wait_text(&c, "#events-in", "a count", |t| t.parse::<u64>().is_ok())
        .await
        .parse()
        .unwrap();
    c.execute("window.__notReloaded = 42;", vec![])
        .await
        .unwrap();
    for i in 0..5 {
        post_event(
            &base,
            json!({"title": format!("Burst {i}"), "severity": "info", "status": "firing", "source": "e2e",
                   "service": "burst"}),
        )
        .await;
    }
    let after = wait_text(&c, "#events-in", "the count to rise by 5", |t| {
        t.parse::<u64>().is_ok_and(|n| n >= before + 5)
    })
    .await;
    let marker = c
        .execute("return window.__notReloaded;", vec![])
        .await
        .unwrap();
    assert_eq!(
        marker,
        json!(42),
        "the page updated in place ({before} → {after})"
    );

    // The burst's cards count against the alerts channel's one-a-second budget.
    wait_text(&c, "#budget tbody", "the alerts channel's budget", |t| {
        t.lines()
            .any(|l| l.contains("chat.postMessage") && l.contains("alerts") && l.contains("60"))
    })
    .await;

    // A silence created with a preview of the open alerts it would mute.
    post_event(
        &base,
        json!({"title": "Checkout latency high", "severity": "critical", "status": "firing", "source": "e2e",
               "service": "checkout", "dedup_key": "checkout-latency"}),
    )
    .await;
    post_event(
        &base,
        json!({"title": "Payments errors", "severity": "warning", "status": "firing", "source": "e2e",
               "service": "payments", "dedup_key": "payments-errors"}),
    )
    .await;
    click(&c, "nav button[data-page=silences]").await;
    type_into(&c, "#silence-matchers", "service=checkout").await;
    type_into(&c, "#silence-comment", "checkout maintenance").await;
    click(&c, "#silence-preview-btn").await;
    let preview = wait_text(&c, "#silence-preview", "the matching alert", |t| {
        t.contains("Checkout latency high")
    })
    .await;
    assert!(!preview.contains("Payments errors"), "{preview}");
    let count = wait_text(&c, "#silence-preview-count", "the count", |t| {
        t.starts_with("1 of ")
    })
    .await;
    assert!(count.ends_with(" open"), "{count}");
    click(&c, "#silence-create-btn").await;
    wait_text(&c, "#silence-message", "the new silence", |t| {
        t.starts_with("Created sil_")
    })
    .await;
    wait_text(&c, "#silences", "the silence listed", |t| {
        t.contains("service=checkout") && t.contains("e2e")
    })
    .await;
    let silences = get_json(format!("{base}/v1/silences")).await;
    let list = silences["silences"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{silences}");
    assert_eq!(list[0]["author"], "e2e");
    assert_eq!(list[0]["comment"], "checkout maintenance");

    // Events: found by service; one event's fate and deliveries.
    click(&c, "nav button[data-page=events]").await;
    type_into(&c, "#q-service", "checkout").await;
    click(&c, "#event-search button[type=submit]").await;
    // The page lists every event when it opens and the search's answer replaces the list: wait
    // for the answer, which names the checkout alert and nothing else.
    let rows = wait_text(&c, "#events tbody", "only the checkout alert", |t| {
        t.contains("Checkout latency high") && !t.contains("Payments errors")
    })
    .await;
    assert!(!rows.contains("Burst"), "{rows}");
    click(&c, "#events tbody a").await;
    let detail = wait_text(&c, "#event-detail", "its deliveries", |t| {
        t.contains("Deliveries") && t.contains("chat.postMessage")
    })
    .await;
    assert!(detail.contains("queued → default"), "{detail}");
    assert!(detail.contains("alerts"), "the channel: {detail}");

    // A dead letter, with its reason, replayed from the console once its channel exists.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(format!("{base}/v1/dead-letters")).await["dead_letters"]
        .as_array()
        .is_none_or(|d| d.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the post to #nowhere was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    click(&c, "nav button[data-page=dead]").await;
    let row = wait_text(&c, "#dead-letters tbody", "the dead letter", |t| {
        t.contains(&lost)
    })
    .await;
    assert!(
        row.contains("channel_not_found"),
        "the reason is shown: {row}"
    );
    sim.create_channel_as_user("nowhere", false, &["U0001".into()], true)
        .unwrap();
    click(&c, "#dead-letters button.replay").await;
    wait_text(&c, "#dlq-message", "the replay", |t| t == "Replayed 1.").await;
    wait_until(
        "the replayed card in #nowhere",
        Duration::from_secs(20),
        || !sim.messages("nowhere").is_empty(),
    )
    .await;
    wait_text(&c, "#dead-letters tbody", "an empty list", |t| {
        !t.contains(&lost)
    })
    .await;

    // The audit log names the operator for each write, and its chain verifies.
    click(&c, "nav button[data-page=audit]").await;
    wait_text(&c, "#audit-verify", "the verification", |t| t == "intact").await;
    let log = wait_text(&c, "#audit tbody", "the writes", |t| {
        t.contains("dlq.replay") && t.contains("silence.create")
    })
    .await;
    assert!(log.contains("e2e"), "{log}");
    let audit = get_json(format!("{base}/v1/audit")).await;
    for action in ["console.login", "silence.create", "dlq.replay"] {
        assert!(audited(&audit, action, "e2e"), "{action} by e2e: {audit}");
    }

    // A write from another origin is refused even with the session cookie and its CSRF token.
    let http = reqwest::Client::new();
    let session = format!("sluice_session={}", cookie.value());
    let me: Value = http
        .get(format!("{base}/console/api/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrf"].as_str().unwrap().to_string();
    let body = json!({"matchers": ["service=payments"], "duration": "1h"});
    let foreign = http
        .post(format!("{base}/console/api/silences"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let v: Value = foreign.json().await.unwrap();
    assert_eq!(v["error"], "cross_origin", "{v}");
    let no_token = http
        .post(format!("{base}/console/api/silences"))
        .header("cookie", &session)
        .header("origin", &base)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403, "a write without the CSRF token");
    assert_eq!(
        get_json(format!("{base}/v1/silences")).await["silences"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "neither refused write created a silence"
    );

    // The config in force, checked, with the key's variable named and its value nowhere.
    click(&c, "nav button[data-page=config]").await;
    wait_text(&c, "#config-check", "the check result", |t| {
        t.starts_with("ok")
    })
    .await;
    let settings = wait_text(&c, "#config-settings", "the settings", |t| {
        t.contains("\"lost\"")
    })
    .await;
    assert!(
        !settings.contains(KEY) && !settings.contains(VIEWER_KEY),
        "{settings}"
    );

    // Logging out ends the session on the server.
    click(&c, "#logout").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while path_of(&c).await != "/login" {
        assert!(Instant::now() < deadline, "logout did not lead to /login");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = http
        .get(format!("{base}/console/api/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401, "the old cookie opens nothing");
}

/// Runs `/ops <text>` as `user` in `channel`, as Slack would (signed), and checks Sluice took it.
async fn ops(sim: &Simulator, text: &str, channel: &str, user: &str) {
    let d = sim
        .slash_command("/ops", text, channel, user)
        .await
        .unwrap();
    assert_eq!(d.status, 200, "{text}: {}", d.body);
}

/// Incidents and schedules in the console: an incident declared by slash command while the Incidents page is open
/// appears in its list without a reload, its timeline opens and follows a status change made in the war room, and
/// the Steps & schedules page shows an every-minute schedule's next due time and the run it just made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_follows_a_declared_incident_and_a_schedule_live() {
    let Some(browser) = Browser::open("console incidents browser test").await else {
        return;
    };
    // A strict workspace: the war room is made by Sluice, the channels a person made exist already.
    let sim = Simulator::new(SimConfig::default());
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let people: Vec<String> = ["U0001", "U0002", "U0003"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for name in ["ops", "incidents"] {
        sim.create_channel_as_user(name, false, &people, true)
            .unwrap();
    }
    let extra = r#"
[actions]
command = "/ops"
outgoing_secret_file = "outgoing"

[[incident_type]]
name = "default"
announce_channel = "incidents"
channel = "inc-{{ slug }}"

[[schedule]]
name = "minutely-stats"
cron = "* * * * *"
time_zone = "UTC"
channel = "ops"
report = "stats"

[routing]
default = { channels = ["ops"] }
"#;
    let s = Fixture::builder()
        .sim((sim, sim_run))
        .signed()
        .response_urls()
        .config(move |_| extra.to_string())
        .start()
        .await;
    let base = format!("http://{}", s.addr());

    let client = browser.client.clone();
    browser
        .run(
            "operator-console-incidents",
            follow_an_incident(client, base, s.sim.clone()),
        )
        .await;
}

async fn follow_an_incident(c: Client, base: String, sim: Simulator) {
    c.goto(&format!("{base}/login")).await.unwrap();
    type_into(&c, "#key", KEY).await;
    click(&c, "#login-submit").await;
    wait_text(&c, "#operator", "the operator's key name", |t| t == "e2e").await;
    wait_text(&c, "#live-status", "the first snapshot", |t| {
        t.starts_with("live")
    })
    .await;
    click(&c, "nav button[data-page=incidents]").await;
    c.execute("window.__notReloaded = 7;", vec![])
        .await
        .unwrap();

    // Declared in Slack while the page is open: it appears without a reload.
    ops(&sim, "incident declare Checkout errors 2", "ops", "U0003").await;
    let row = wait_text(&c, "#incidents tbody", "the declared incident", |t| {
        t.contains("Checkout errors")
    })
    .await;
    for shown in ["SEV2", "investigating", "#inc-checkout-errors", "U0003"] {
        assert!(row.contains(shown), "{shown} in {row:?}");
    }
    assert_eq!(
        c.execute("return window.__notReloaded;", vec![])
            .await
            .unwrap(),
        json!(7),
        "the list was pushed, not reloaded"
    );

    // Its timeline.
    click(&c, "#incidents a.incident-link").await;
    wait_text(&c, "#incident-title", "the incident's title", |t| {
        t == "Checkout errors"
    })
    .await;
    wait_text(&c, "#incident-timeline", "the declaration", |t| {
        t.contains("declared")
    })
    .await;

    // A status set in the war room shows in the open timeline, pushed.
    let room = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(ch) = sim.channel("inc-checkout-errors") {
                break ch.id;
            }
            assert!(Instant::now() < deadline, "no war room");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    ops(
        &sim,
        "incident status identified \"bad deploy\"",
        &room,
        "U0003",
    )
    .await;
    wait_text(&c, "#incident-timeline", "the status change", |t| {
        t.contains("bad deploy")
    })
    .await;
    wait_text(&c, "#incidents tbody", "the new status in the list", |t| {
        t.contains("identified")
    })
    .await;

    // Steps & schedules: the every-minute schedule, when it is next due, and the minute it claimed.
    click(&c, "nav button[data-page=steps]").await;
    let schedules = wait_text(&c, "#schedules tbody", "the schedule and its run", |t| {
        t.contains("minutely-stats") && t.contains(" run by ")
    })
    .await;
    assert!(schedules.contains("* * * * * (UTC)"), "{schedules}");
    wait_text(&c, "#steps-offered", "no steps offered", |t| t == "none").await;
}

/// The real server counts failed logins per connecting address (in its database): five wrong keys from 127.0.0.2
/// hold that address up (429, Retry-After), while the right key from 127.0.0.1 still opens a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_throttles_failed_logins_by_the_address_they_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, "");
    let sluice = start_sluice(&cfg);
    let base = format!("http://{}", sluice.addr);
    let client = |from: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(from))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let (guesser, operator) = (client([127, 0, 0, 2]), client([127, 0, 0, 1]));
    let login = |c: &reqwest::Client, key: &str| {
        c.post(format!("{base}/login")).form(&[("key", key)]).send()
    };
    for n in 1..=5 {
        let r = login(&guesser, &format!("guess-{n}")).await.unwrap();
        assert_eq!(r.status(), 401, "failure {n}");
    }
    let held = login(&guesser, KEY).await.unwrap();
    assert_eq!(held.status(), 429);
    let wait: u64 = held.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&wait),
        "until the oldest failure leaves the 15-minute window: {wait}"
    );
    let ok = login(&operator, KEY).await.unwrap();
    assert_eq!(ok.status(), 303, "another address logs in");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sluice_console_login_refused_total{limit=\"per_client\"} 1"),
        "{metrics}"
    );
    let audit = get_json(format!("{base}/v1/audit?limit=100")).await;
    let from: Vec<&Value> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "console.login" && r["result"] == "unknown_key")
        .map(|r| &r["detail"]["client"])
        .collect();
    assert_eq!(from.len(), 5, "{audit}");
    assert!(from.iter().all(|c| *c == "127.0.0.2"), "{from:?}");
}

// ---- The console's sessions and write checks, called without a socket (these need no browser). ----

mod without_a_browser {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::Router;
    use http_body_util::BodyExt;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::common;

    struct Answer {
        status: StatusCode,
        headers: axum::http::HeaderMap,
        body: String,
    }

    async fn call(router: &Router, req: Request<Body>) -> Answer {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    fn login(key: &str) -> Request<Body> {
        Request::post("/login")
            .header("host", "127.0.0.1:8080")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("key={key}")))
            .unwrap()
    }

    /// Logs in with the admin key: the session cookie and its CSRF token.
    async fn session(router: &Router) -> (String, String) {
        let a = call(router, login(common::KEY)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let set = a.headers["set-cookie"].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let me = call(
            router,
            Request::get("/console/api/session")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let v: Value = serde_json::from_str(&me.body).unwrap();
        assert_eq!(v["operator"], "ci");
        (cookie, v["csrf"].as_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn only_an_admin_key_opens_a_session_and_its_cookie_is_http_only_and_strict() {
        let dir = tempfile::tempdir().unwrap();
        let router = sluice::server::app(common::state(dir.path(), "").await);

        let home = call(&router, Request::get("/").body(Body::empty()).unwrap()).await;
        assert_eq!(home.status, StatusCode::SEE_OTHER);
        assert_eq!(home.headers["location"], "/login");
        let api = call(
            &router,
            Request::get("/console/api/overview")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{}", api.body);
        assert!(api.body.contains("/login"), "{}", api.body);

        let wrong = call(&router, login("nope")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(
            wrong.body.contains("That key was refused"),
            "{}",
            wrong.body
        );
        assert!(wrong.headers.get("set-cookie").is_none());
        let read_only = call(&router, login(common::READ_ONLY_KEY)).await;
        assert_eq!(read_only.status, StatusCode::FORBIDDEN);
        assert!(
            read_only.body.contains("\"admin\" scope"),
            "{}",
            read_only.body
        );

        let ok = call(&router, login(common::KEY)).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER);
        let set = ok.headers["set-cookie"].to_str().unwrap();
        for part in ["sluice_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
        let mut behind_tls = login(common::KEY);
        behind_tls
            .headers_mut()
            .insert("x-forwarded-proto", "https".parse().unwrap());
        let tls = call(&router, behind_tls).await;
        assert!(tls.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure"));

        let (cookie, _) = session(&router).await;
        let overview = call(
            &router,
            Request::get("/console/api/overview")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
        let v: Value = serde_json::from_str(&overview.body).unwrap();
        for field in [
            "events_in",
            "calls_out",
            "outbox",
            "lanes",
            "storms",
            "replicas",
            "dead_letters",
        ] {
            assert!(!v[field].is_null(), "{field} in {v}");
        }
        let page = call(
            &router,
            Request::get("/")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("/console/assets/app.js"));
        assert!(page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }

    #[tokio::test]
    async fn a_console_write_needs_its_origin_and_the_sessions_csrf_token() {
        let dir = tempfile::tempdir().unwrap();
        let state = common::state(dir.path(), "").await;
        let router = sluice::server::app(state.clone());
        let (cookie, csrf) = session(&router).await;
        let silence = json!({"matchers": ["service=checkout"], "duration": "1h"}).to_string();
        let post = |origin: Option<&str>, token: Option<&str>| {
            let mut r = Request::post("/console/api/silences")
                .header("host", "127.0.0.1:8080")
                .header("cookie", &cookie)
                .header("content-type", "application/json");
            if let Some(o) = origin {
                r = r.header("origin", o);
            }
            if let Some(t) = token {
                r = r.header("x-csrf-token", t);
            }
            r.body(Body::from(silence.clone())).unwrap()
        };
        let cases = [
            (
                Some("http://evil.example"),
                Some(csrf.as_str()),
                "cross_origin",
            ),
            (Some("http://127.0.0.1:8080"), None, "csrf"),
            (Some("http://127.0.0.1:8080"), Some("0000"), "csrf"),
        ];
        for (origin, token, code) in cases {
            let a = call(&router, post(origin, token)).await;
            assert_eq!(
                a.status,
                StatusCode::FORBIDDEN,
                "{origin:?} {token:?}: {}",
                a.body
            );
            let v: Value = serde_json::from_str(&a.body).unwrap();
            assert_eq!(v["error"], code, "{v}");
        }
        assert!(state.store.silences(true, 0).await.unwrap().is_empty());

        let ok = call(&router, post(Some("http://127.0.0.1:8080"), Some(&csrf))).await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
        let bad = call(
            &router,
            Request::post("/console/api/silences/preview")
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .body(Body::from(
                    r#"{"matchers": ["service=~("], "duration": "1h"}"#,
                ))
                .unwrap(),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
        assert!(
            bad.body.contains("matchers[0]"),
            "the field is named: {}",
            bad.body
        );
        let audit = state.store.audit(0, 100).await.unwrap();
        assert!(
            audit.iter().any(|r| r.action == "silence.create"
                && r.actor == "ci"
                && r.detail["via"] == "console"),
            "{audit:?}"
        );
    }

    fn login_from(key: &str, ip: &str) -> Request<Body> {
        let mut r = login(key);
        let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        r.extensions_mut().insert(axum::extract::ConnectInfo(addr));
        r
    }

    /// Two failures per two seconds per address (the default is five per 15 minutes), so a test can wait it out.
    const SHORT_THROTTLE: &str = "[console]\nlogin_failures_per_client = 2\nlogin_failures_total = 100\nlogin_window = \"2s\"\n";

    fn retry_after(a: &Answer) -> u64 {
        a.headers["retry-after"].to_str().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn failed_logins_from_one_address_are_refused_with_429_until_the_window_passes() {
        let dir = tempfile::tempdir().unwrap();
        let state = common::state(dir.path(), SHORT_THROTTLE).await;
        let router = sluice::server::app(state.clone());
        for _ in 0..2 {
            let a = call(&router, login_from("guess", "10.0.0.1")).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        }
        // Throttled: even the right key is refused, so a guesser learns nothing.
        let held = call(&router, login_from(common::KEY, "10.0.0.1")).await;
        assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.body);
        let wait = retry_after(&held);
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
        assert!(held.body.contains("try again in"), "{}", held.body);
        assert!(held.headers.get("set-cookie").is_none());
        // Another address is not held up.
        let other = call(&router, login_from(common::KEY, "10.0.0.2")).await;
        assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);

        let audit = state.store.audit(0, 100).await.unwrap();
        let refusals: Vec<_> = audit
            .iter()
            .filter(|r| r.action == "console.login" && r.result == "unknown_key")
            .collect();
        assert_eq!(refusals.len(), 2, "{audit:?}");
        assert!(refusals.iter().all(|r| r.detail["client"] == "10.0.0.1"));
        assert!(
            refusals
                .iter()
                .any(|r| r.detail["throttled_for_secs"].is_u64()),
            "the failure that used up the allowance says so: {refusals:?}"
        );
        // Refused attempts were not counted: once the oldest failure leaves the window, the key is checked again.
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        let again = call(&router, login_from(common::KEY, "10.0.0.1")).await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    }

    /// Replicas on one database count the same failures, and a restarted process forgets none of them: guesses
    /// spread over replicas (or made across a restart) get no more tries than guesses made on one.
    async fn replicas_and_a_restart_share_the_count(dir: &std::path::Path, url: &str) {
        let config = "[console]\nlogin_failures_per_client = 3\nlogin_failures_total = 100\nlogin_window = \"1h\"\n";
        let a = sluice::server::app(common::state_at(dir, url, config).await);
        let b = sluice::server::app(common::state_at(dir, url, config).await);
        for (n, router) in [&a, &b, &a].into_iter().enumerate() {
            let r = call(router, login_from("guess", "10.0.0.1")).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "failure {n}: {}",
                r.body
            );
        }
        let held = call(&b, login_from(common::KEY, "10.0.0.1")).await;
        assert_eq!(
            held.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the other replica counted the first one's failures: {}",
            held.body
        );
        assert!(
            retry_after(&held) > 3500,
            "until the oldest leaves the hour"
        );
        // Another address fails once, then logs in: only its own failures are forgiven.
        let r = call(&a, login_from("guess", "10.0.0.2")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let ok = call(&b, login_from(common::KEY, "10.0.0.2")).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
        drop((a, b));
        // Restarted: still held up.
        let restarted = sluice::server::app(common::state_at(dir, url, config).await);
        let held = call(&restarted, login_from(common::KEY, "10.0.0.1")).await;
        assert_eq!(
            held.status,
            StatusCode::TOO_MANY_REQUESTS,
            "a restart forgets no failure: {}",
            held.body
        );
        for _ in 0..2 {
            let r = call(&restarted, login_from("guess", "10.0.0.2")).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        }

        // Eight guesses at once from one address, half to each replica: each is recorded before its key is
        // checked, so at most the allowance (3) has its key checked, whatever the interleaving.
        let other = sluice::server::app(common::state_at(dir, url, config).await);
        let guesses = (0..8).map(|n| {
            let router = if n % 2 == 0 { &restarted } else { &other };
            call(router, login_from("guess", "10.0.0.9"))
        });
        let answers = futures::future::join_all(guesses).await;
        let checked = answers
            .iter()
            .filter(|a| a.status == StatusCode::UNAUTHORIZED)
            .count();
        let held = answers
            .iter()
            .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(checked + held, 8);
        assert!(
            checked <= 3,
            "{checked} racing guesses had their key checked"
        );
    }

    #[tokio::test]
    async fn login_failures_are_shared_by_replicas_and_kept_across_a_restart_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/test.db", dir.path().display());
        replicas_and_a_restart_share_the_count(dir.path(), &url).await;
    }

    #[tokio::test]
    async fn login_failures_are_shared_by_replicas_and_kept_across_a_restart_on_postgres() {
        let Some(db) = common::pg::TestDb::create("console_login_failures_shared").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        replicas_and_a_restart_share_the_count(dir.path(), &db.url).await;
        db.drop_db().await;
    }

    #[tokio::test]
    async fn a_session_works_on_another_replica_and_after_a_restart_until_logout() {
        let dir = tempfile::tempdir().unwrap();
        let first = sluice::server::app(common::state(dir.path(), "").await);
        let (cookie, csrf) = session(&first).await;
        drop(first);
        // Another process on the same database: a replica, or this one restarted.
        let state = common::state(dir.path(), "").await;
        let token = cookie.split_once('=').unwrap().1.to_string();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT token_hash, operator FROM console_sessions")
                .fetch_all(
                    &sqlx::SqlitePool::connect(&format!(
                        "sqlite://{}/test.db",
                        dir.path().display()
                    ))
                    .await
                    .unwrap(),
                )
                .await
                .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1, "ci");
        assert_ne!(rows[0].0, token, "only a hash of the token is stored");
        let second = sluice::server::app(state.clone());
        let whoami = || {
            Request::get("/console/api/session")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap()
        };
        let a = call(&second, whoami()).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["operator"], "ci");
        assert_eq!(
            v["csrf"],
            csrf.as_str(),
            "the same CSRF token on every replica"
        );

        let out = call(
            &second,
            Request::post("/console/api/logout")
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(out.status, StatusCode::OK, "{}", out.body);
        let third = sluice::server::app(common::state(dir.path(), "").await);
        assert_eq!(
            call(&third, whoami()).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&second, whoami()).await.status,
            StatusCode::UNAUTHORIZED
        );
        let audit = state.store.audit(0, 100).await.unwrap();
        assert!(audit
            .iter()
            .any(|r| r.action == "console.logout" && r.actor == "ci"));
    }

    #[tokio::test]
    async fn the_config_view_shows_the_reloaded_config_with_secrets_redacted_and_its_warnings() {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let state = common::state(dir.path(), "").await;
        let router = sluice::server::app(state.clone());
        let (cookie, _) = session(&router).await;
        let get_config = || async {
            let a = call(
                &router,
                Request::get("/console/api/config")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            (
                a.body.clone(),
                serde_json::from_str::<Value>(&a.body).unwrap(),
            )
        };
        let (_, before) = get_config().await;
        assert_eq!(
            before["settings"]["api_key"][0]["key_env"], "KEY",
            "{before}"
        );
        assert_eq!(before["check"]["ok"], true, "{before}");

        // A reload from a file with secrets in files, a key hash and a rule that can never match.
        let key_hash = hex::encode(sha2::Sha256::digest(common::KEY.as_bytes()));
        std::fs::write(dir.path().join("bot-token"), "xoxb-sim-token").unwrap();
        std::fs::write(
            dir.path().join("hook-secret"),
            "hook-secret-from-a-file-0123456789",
        )
        .unwrap();
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536

[storage]
url = "sqlite://{dir}/test.db"

[slack]
api_base = "http://127.0.0.1:9/api/"
bot_token_file = "bot-token"
team_id = "T0SIM"

[[api_key]]
name = "ci"
sha256 = "{key_hash}"
scopes = ["read", "admin"]

[[hook]]
name = "cron"
channel = "ops"
secret_file = "hook-secret"

[routing]
default = {{ channels = ["alerts"] }}

[[routing.rule]]
name = "everything"
match = {{ }}
channels = ["all"]

[[routing.rule]]
name = "after-reload"
match = {{ service = "db" }}
channels = ["db"]
"#,
            dir = dir.path().display()
        );
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, &text).unwrap();
        state.config.set_path(path.clone());
        if let Err(r) = sluice::reload::reload(&state, &path, "test") {
            panic!("reload refused: {} {:?}", r.message, r.problems);
        }

        let (body, after) = get_config().await;
        assert_eq!(after["path"], path.display().to_string());
        assert_eq!(
            after["settings"]["routing"]["rule"][1]["name"], "after-reload",
            "{after}"
        );
        assert_eq!(after["settings"]["api_key"][0]["sha256"], "redacted");
        assert_eq!(after["settings"]["hook"][0]["secret_file"], "hook-secret");
        assert_eq!(after["settings"]["slack"]["bot_token_file"], "bot-token");
        for secret in [
            key_hash.as_str(),
            "hook-secret-from-a-file",
            "xoxb-sim-token",
            common::KEY,
        ] {
            assert!(!body.contains(secret), "{secret} shown: {body}");
        }
        let problems = after["check"]["problems"].as_array().unwrap();
        assert!(
            problems.iter().any(|p| p["warning"] == true
                && p["line"].is_u64()
                && p["message"].as_str().unwrap().contains("after-reload")),
            "check's warning about the rule that never matches, with its line: {after}"
        );
        assert_eq!(after["check"]["errors"], 0);
    }

    #[tokio::test]
    async fn the_overview_shows_which_rule_mutes_which_alerts_and_the_slack_budget_used() {
        let dir = tempfile::tempdir().unwrap();
        let extra = r#"
[routing]
default = { channels = ["alerts"] }

[[inhibit]]
name = "critical-mutes-warnings"
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["service"]
"#;
        let state = common::state(dir.path(), extra).await;
        let router = sluice::server::app(state.clone());
        let (cookie, _) = session(&router).await;
        let post = |severity: &str, service: &str, title: &str| {
            Request::post("/v1/events")
                .header("authorization", format!("Bearer {}", common::KEY))
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"title": title, "severity": severity, "status": "firing", "source": "e2e",
                           "service": service, "dedup_key": title})
                    .to_string(),
                ))
                .unwrap()
        };
        for (sev, service, title) in [
            ("critical", "db", "db is down"),
            ("warning", "db", "db replica lag"),
            ("warning", "api", "api slow"),
        ] {
            let a = call(&router, post(sev, service, title)).await;
            assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        }
        // What the dispatcher would have sent: the two cards that were not muted.
        for lane in state
            .store
            .lanes(sluice::state::now_ms(), 10)
            .await
            .unwrap()
        {
            for item in state.store.lane_items(&lane.lane, 10).await.unwrap() {
                state
                    .store
                    .mark_sent(item.id, "C0ALERTS", "1.0001", sluice::state::now_ms())
                    .await
                    .unwrap();
            }
        }
        let a = call(
            &router,
            Request::get("/console/api/overview")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        let inhibitions = v["inhibitions"].as_array().unwrap();
        assert_eq!(inhibitions.len(), 1, "{v}");
        let i = &inhibitions[0];
        assert_eq!(i["rule"], "critical-mutes-warnings");
        assert_eq!(i["title"], "db is down");
        let mutes: Vec<&str> = i["mutes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            mutes,
            vec!["db replica lag"],
            "only the same service is muted"
        );

        let budget = v["budget"].as_array().unwrap();
        let channel = budget
            .iter()
            .find(|b| b["scope"] == "channel" && b["method"] == "chat.postMessage")
            .unwrap_or_else(|| panic!("a per-channel budget in {v}"));
        assert_eq!(channel["channel"], "alerts");
        assert_eq!(channel["calls"], 2);
        assert_eq!(channel["allowance_per_minute"], 60);
        let workspace = budget
            .iter()
            .find(|b| b["scope"] == "workspace" && b["method"] == "chat.postMessage")
            .unwrap();
        assert_eq!(workspace["calls"], 2);
        assert!(workspace["rate_limited"].is_u64(), "{workspace}");
    }

    fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
        let mut r = Request::get(path);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.body(Body::empty()).unwrap()
    }

    /// The incidents and steps pages' JSON needs a session; an unknown incident is a 404; a step run is listed
    /// without the execution's token (which the run keeps to complete the step in Slack).
    #[tokio::test]
    async fn incidents_and_step_runs_are_read_behind_the_session_without_the_steps_token() {
        let dir = tempfile::tempdir().unwrap();
        let state = common::state(dir.path(), "").await;
        let router = sluice::server::app(state.clone());
        for path in ["/console/api/incidents", "/console/api/steps"] {
            let a = call(&router, get(path, None)).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.body);
        }
        state
            .store
            .start_action_run(
                sluice_store::NewActionRun {
                    id: "run_exec9".into(),
                    action: "deploy".into(),
                    target: "exec9".into(),
                    actor: "U0001".into(),
                    team: "T0SIM".into(),
                    channel: "".into(),
                    ts: "".into(),
                    reply: "none".into(),
                    card: json!({"step": {"execution_id": "exec9", "token": "xwfp-secret-token"}}),
                    started_at_ms: 1_700_000_000_000,
                },
                vec![],
            )
            .await
            .unwrap()
            .unwrap();
        let (cookie, _) = session(&router).await;
        let steps = call(&router, get("/console/api/steps", Some(&cookie))).await;
        assert_eq!(steps.status, StatusCode::OK, "{}", steps.body);
        assert!(!steps.body.contains("xwfp-secret-token"), "{}", steps.body);
        let v: Value = serde_json::from_str(&steps.body).unwrap();
        assert_eq!(v["step_runs"][0]["execution_id"], "exec9", "{v}");
        assert_eq!(v["step_runs"][0]["state"], "running", "{v}");
        assert_eq!(v["schedules"], json!([]), "{v}");
        let list = call(&router, get("/console/api/incidents", Some(&cookie))).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert_eq!(
            serde_json::from_str::<Value>(&list.body).unwrap()["incidents"],
            json!([])
        );
        let missing = call(
            &router,
            get("/console/api/incidents/inc_nope", Some(&cookie)),
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    }
}
