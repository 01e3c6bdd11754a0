//! Incidents end to end: the real binary, the strict Slack simulator playing the people, a test clock
//! (`SLUICE_CLOCK_FILE`) for the channel's date, reminders and archiving, and a test HTTP server as the CRM lookup.
//! Declaring by command (twice: one war room) and by reaction (twice: one war room; a name taken; a lookup that
//! fails), the war room's people, card, pin and announcement, the timeline by command and by reaction across a
//! restart, the reminder, the resolve's summary and the archive, and who may declare, resolve and give roles.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fixture::{Builder, Fixture};
use common::internal::audited;
use common::proc::*;
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

const WAIT: Duration = Duration::from_secs(20);

/// On `sim`, serving Slack's requests as `/ops`, with `extra` after `[actions]`.
fn builder(sim: (Simulator, sluice_sim::RunningSim), extra: String) -> Builder {
    Fixture::builder()
        .sim(sim)
        .signed()
        .response_urls()
        .config(move |_| {
            format!("[actions]\ncommand = \"/ops\"\noutgoing_secret_file = \"outgoing\"\n{extra}")
        })
}

/// A strict simulator (no channel appears by posting to it) with the channels a person made.
async fn strict_sim(channels: &[(&str, bool)]) -> (Simulator, sluice_sim::RunningSim) {
    let sim = Simulator::new(SimConfig::default());
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let people: Vec<String> = ["U0001", "U0002", "U0003", "U0004"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (name, with_bot) in channels {
        sim.create_channel_as_user(name, false, &people, *with_bot)
            .unwrap();
    }
    (sim, running)
}

/// Runs `/ops <text>` as `user` in `channel`; the answer's text.
async fn ops(sim: &Simulator, text: &str, channel: &str, user: &str) -> String {
    let before = sim.ephemerals(Some(user)).len();
    let d = sim
        .slash_command("/ops", text, channel, user)
        .await
        .unwrap();
    assert_eq!(d.status, 200, "{text}: {}", d.body);
    assert!(
        d.elapsed < Duration::from_secs(3),
        "{text}: acked after {:?}",
        d.elapsed
    );
    if let Some(t) = d
        .json()
        .and_then(|v| v["text"].as_str().map(str::to_string))
    {
        return t;
    }
    wait_until("the command's answer", Duration::from_secs(10), || {
        sim.ephemerals(Some(user)).len() > before
    })
    .await;
    sim.ephemerals(Some(user)).last().unwrap().text.clone()
}

/// All the text of a message: its text and its blocks.
fn shown(m: &sluice_sim::model::Message) -> String {
    format!("{}\n{}", m.text, m.blocks)
}

fn channel_named(sim: &Simulator, name: &str) -> Option<sluice_sim::state::Channel> {
    sim.channel(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_incident_gets_one_war_room_a_timeline_across_a_restart_and_a_summary() {
    let sim = strict_sim(&[("ops", true), ("incidents", true)]).await;
    let mut f = builder(
        sim,
        r#"
[[incident_type]]
name = "default"
announce_channel = "incidents"
channel = "inc-{{ date }}-{{ slug }}"
invite_groups = ["S0001"]
invite_users = ["U0GONE"]                 # left the company: Slack cannot invite them
resolve_users = ["U0001", "U0002"]
reminders = { sev1 = 10 }
archive_after = "1m"

[routing]
default = { channels = ["ops"] }
"#
        .into(),
    )
    .clock("2026-12-02T10:00:00Z")
    .start()
    .await;
    let (sim, sluice) = (&f.sim, &f.sluice);

    // help names the incident commands when incident types are configured.
    let t = ops(sim, "help", "ops", "U0003").await;
    assert!(t.contains("incident declare &lt;title&gt; [sev]"), "{t}");
    // Declared twice (a double submit): one incident, one war room.
    let t = ops(sim, "incident declare Checkout errors 2", "ops", "U0003").await;
    assert!(t.contains("Declared *Checkout errors* (SEV2)"), "{t}");
    let t = ops(sim, "incident declare Checkout errors 2", "ops", "U0003").await;
    assert!(t.contains("already declared"), "{t}");
    let name = "inc-2026-12-02-checkout-errors";
    wait_until("the war room, its card pinned", WAIT, || {
        channel_named(sim, name).is_some_and(|c| !c.pins.is_empty())
    })
    .await;
    wait_until("the announcement", WAIT, || {
        !sim.messages("incidents").is_empty()
    })
    .await;
    let room = channel_named(sim, name).unwrap();
    assert_eq!(
        sim.channels()
            .iter()
            .filter(|c| c.name.starts_with("inc-"))
            .count(),
        1,
        "one war room"
    );
    let members: Vec<&str> = room.members.iter().map(String::as_str).collect();
    for who in ["U0001", "U0002", "U0003"] {
        assert!(
            members.contains(&who),
            "{who} (declarer, on-call group) is in {members:?}, though one listed person cannot be invited"
        );
    }
    assert!(!members.contains(&"U0004"), "{members:?}");
    assert!(!room.is_private);
    assert!(room.topic.contains("SEV2"), "{}", room.topic);
    assert!(
        room.purpose.contains("declared by <@U0003>"),
        "{}",
        room.purpose
    );
    let card = room.messages.iter().find(|m| m.ts == room.pins[0]).unwrap();
    assert!(shown(card).contains("Checkout errors"), "{}", shown(card));
    let announcement = &sim.messages("incidents")[0];
    assert!(
        shown(announcement).contains(&format!("<#{}>", room.id)),
        "{}",
        shown(announcement)
    );

    // Not permitted: resolving and giving roles are refused and audited; notes are anyone's.
    let t = ops(sim, "incident resolve", &room.id, "U0004").await;
    assert!(t.contains("You may not resolve"), "{t}");
    let t = ops(sim, "incident role commander <@U0004>", &room.id, "U0004").await;
    assert!(t.contains("You may not give roles in"), "{t}");
    let refusals = audited(sluice.addr, "incident.resolve").await;
    assert!(
        refusals
            .iter()
            .any(|r| r["actor"] == "U0004" && r["result"] == "refused: not permitted to resolve"),
        "{refusals:?}"
    );
    assert!(audited(sluice.addr, "incident.role")
        .await
        .iter()
        .any(|r| r["actor"] == "U0004" && r["result"].as_str().unwrap().starts_with("refused")));
    // Outside a war room, updates say where to run them.
    let t = ops(sim, "incident note hello", "ops", "U0001").await;
    assert!(t.contains("no incident's war room"), "{t}");

    // Updates: status, role, severity, a note by command and one by reaction; the card and the announcement follow.
    let t = ops(
        sim,
        "incident status identified \"bad deploy\"",
        &room.id,
        "U0003",
    )
    .await;
    assert!(t.contains("Updated"), "{t}");
    ops(
        sim,
        "incident role commander <@U0002|bob>",
        &room.id,
        "U0001",
    )
    .await;
    ops(sim, "incident sev 1", &room.id, "U0001").await;
    let t = ops(
        sim,
        "incident note Decision: roll back checkout",
        &room.id,
        "U0004",
    )
    .await;
    assert!(t.contains("Noted"), "{t}");
    let marked = sim
        .post_as_user(&room.id, "U0003", "we keep the flag off until Monday")
        .unwrap();
    sim.post_as_user(&room.id, "U0004", "TODO: add a canary for checkout")
        .unwrap();
    sim.post_as_user(&room.id, "U0004", "just chatter").unwrap();
    sim.react(&room.id, &marked, "pushpin", "U0002")
        .await
        .unwrap();
    wait_until("the card shows the updates", WAIT, || {
        let r = channel_named(sim, name).unwrap();
        r.messages
            .iter()
            .find(|m| m.ts == r.pins[0])
            .is_some_and(|c| {
                let s = shown(c);
                s.contains("SEV1")
                    && s.contains("identified")
                    && s.contains("commander: <@U0002>")
                    && s.contains("flag off")
            })
    })
    .await;
    wait_until("the announcement and the topic show SEV1", WAIT, || {
        shown(&sim.messages("incidents")[0]).contains("SEV1")
            && channel_named(sim, name).is_some_and(|c| c.topic.starts_with("SEV1 · identified"))
    })
    .await;
    let ordered = [
        "declared",
        "war room",
        "identified: bad deploy",
        "commander: <@U0002>",
        "SEV2 → SEV1",
        "Decision: roll back checkout",
        "we keep the flag off until Monday",
    ];
    let in_order = |t: &str| {
        let mut at = 0;
        ordered.iter().all(|w| match t[at..].find(w) {
            Some(i) => {
                at += i + w.len();
                true
            }
            None => false,
        })
    };
    let t = ops(sim, "incident timeline", &room.id, "U0001").await;
    assert!(in_order(&t), "{t}");

    // A restart: the timeline is the database's.
    f.restart();
    let (sim, sluice) = (&f.sim, &f.sluice);
    let t = ops(sim, "incident timeline", &room.id, "U0001").await;
    assert!(in_order(&t), "after a restart: {t}");

    // No update for SEV1's 10 minutes: one reminder in the war room.
    f.set_clock("2026-12-02T10:11:00Z");
    wait_until("the reminder", WAIT, || {
        sim.messages(&room.id)
            .iter()
            .any(|m| m.text.starts_with("Reminder:"))
    })
    .await;

    // Resolve: the summary in the war room and under the announcement; the announcement says resolved.
    let t = ops(sim, "incident resolve \"rolled back\"", &room.id, "U0001").await;
    assert!(t.contains("Resolved"), "{t}");
    let summary_in = |channel: &str| {
        sim.messages(channel)
            .iter()
            .find(|m| m.text.contains("*Resolved: Checkout errors*"))
            .map(|m| m.text.clone())
    };
    wait_until("the summaries", WAIT, || {
        summary_in(&room.id).is_some() && summary_in("incidents").is_some()
    })
    .await;
    let s = summary_in(&room.id).unwrap();
    for want in [
        "*Duration:* 11m",
        "<@U0001>",
        "<@U0002>",
        "<@U0003>",
        "<@U0004>",
        "• roll back checkout",
        "• we keep the flag off until Monday",
        "• add a canary for checkout",
        "resolved: rolled back",
    ] {
        assert!(s.contains(want), "{want} missing from the summary:\n{s}");
    }
    assert!(!s.contains("chatter"), "{s}");
    wait_until("the announcement says resolved", WAIT, || {
        shown(&sim.messages("incidents")[0]).contains("resolved")
    })
    .await;
    let t = ops(sim, "incident note late", &room.id, "U0001").await;
    assert!(t.contains("resolved"), "{t}");

    // archive_after: the war room is archived a minute later.
    f.set_clock("2026-12-02T10:13:00Z");
    wait_until("the war room archived", WAIT, || {
        channel_named(sim, name).is_some_and(|c| c.is_archived)
    })
    .await;

    // From an alert's card: its Declare incident button, clicked twice, makes one more war room with the on-call
    // group, the card pinned with the alert's permalink, and its announcement.
    let announced = sim
        .messages("incidents")
        .iter()
        .filter(|m| m.thread_ts.is_none())
        .count();
    let (ids, failed) = post_all(
        sluice.addr,
        vec![
            json!({"title": "Disk full on db-1", "severity": "critical", "status": "firing",
                    "source": "e2e", "service": "db"}),
        ],
        1,
    )
    .await;
    assert_eq!((ids.len(), failed), (1, 0));
    wait_until("the alert card", WAIT, || !sim.messages("ops").is_empty()).await;
    let alert = sim.messages("ops").last().unwrap().clone();
    assert!(
        shown(&alert).contains("Declare incident"),
        "{}",
        shown(&alert)
    );
    for _ in 0..2 {
        let d = sim
            .click_button(
                "ops",
                &alert.ts,
                "sluice_run:sluice_declare_incident",
                "U0004",
            )
            .await
            .unwrap();
        assert_eq!(d.status, 200, "{}", d.body);
    }
    let from_card = "inc-2026-12-02-disk-full-on-db-1";
    wait_until("the card's war room, its card pinned", WAIT, || {
        channel_named(sim, from_card).is_some_and(|c| !c.pins.is_empty())
    })
    .await;
    wait_until("its announcement", WAIT, || {
        sim.messages("incidents")
            .iter()
            .filter(|m| m.thread_ts.is_none())
            .count()
            == announced + 1
    })
    .await;
    let room = channel_named(sim, from_card).unwrap();
    for who in ["U0001", "U0002", "U0004"] {
        assert!(room.members.contains(who), "{who} in {:?}", room.members);
    }
    let card = shown(room.messages.iter().find(|m| m.ts == room.pins[0]).unwrap());
    assert!(
        card.contains("SEV1") && card.contains("|the message>"),
        "{card}"
    );
    assert_eq!(
        sim.channels()
            .iter()
            .filter(|c| c.name.starts_with(from_card))
            .count(),
        1,
        "a double click makes one war room"
    );

    let declares = audited(sluice.addr, "incident.declare").await;
    let results: Vec<&str> = declares
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "ok").count(),
        2,
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.starts_with("already declared")),
        "{results:?}"
    );
    for step in [
        "incident.status",
        "incident.severity",
        "incident.note",
        "incident.room",
    ] {
        assert!(
            audited(sluice.addr, step)
                .await
                .iter()
                .any(|r| r["result"] == "ok"),
            "{step} audited"
        );
    }
    drop(f);
}

/// The CRM: Acme's messages name a customer and its account manager; Globex's find it down (503, every time);
/// anything else is unknown (404).
async fn start_crm() -> (Arc<Mutex<Vec<Value>>>, SocketAddr) {
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let signed = headers.contains_key("x-sluice-signature");
                seen.lock()
                    .unwrap()
                    .push(json!({"body": v, "signed": signed}));
                let text = v["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                if text.contains("globex") {
                    // The CRM is down for this one: it never answers in time.
                    return (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({"error": "down"})),
                    );
                }
                if text.contains("acme") {
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(
                            json!({"customer": "Acme", "tier": "gold", "account_manager": "U0004"}),
                        ),
                    )
                } else {
                    (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(json!({"error": "no such customer"})),
                    )
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (got, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_on_a_customer_message_escalates_to_a_private_war_room_with_the_lookups_people()
{
    let (sim, sim_run) = strict_sim(&[("support", true)]).await;
    // Somebody already has the channel a second escalation would get.
    sim.create_channel_as_user("esc-globex-is-down", false, &["U0002".to_string()], false)
        .unwrap();
    let (crm, crm_addr) = start_crm().await;
    let s = builder(
        (sim, sim_run),
        format!(
            r#"
[[action]]
name = "crm"
url = "http://{crm_addr}/lookup"

[[incident_type]]
name = "support"
channel = "esc-{{{{ slug }}}}"
private = true
reaction = "rotating_light"
watch_channels = ["support"]
invite_users = ["U0003"]
lookup = "crm"
declare_users = ["U0001", "U0002"]
"#
        ),
    )
    .start()
    .await;
    let (sim, sluice) = (&s.sim, &s.sluice);

    let msg = sim
        .post_as_user("support", "U0002", "Acme checkout broken for all users")
        .unwrap();
    // Two agents react at once: one escalation.
    sim.react("support", &msg, "rotating_light", "U0001")
        .await
        .unwrap();
    sim.react("support", &msg, "rotating_light", "U0002")
        .await
        .unwrap();
    let name = "esc-acme-checkout-broken-for-all-users";
    wait_until("the private war room with its card pinned", WAIT, || {
        channel_named(sim, name).is_some_and(|c| !c.pins.is_empty())
    })
    .await;
    let room = channel_named(sim, name).unwrap();
    assert!(room.is_private);
    assert_eq!(
        sim.channels()
            .iter()
            .filter(|c| c.name.starts_with("esc-acme"))
            .count(),
        1,
        "one war room"
    );
    let members: Vec<&str> = room.members.iter().map(String::as_str).collect();
    // The agent whose reaction declared it (either may win the race), the Tier-2 lead, the account manager.
    assert!(
        members.contains(&"U0001") || members.contains(&"U0002"),
        "{members:?}"
    );
    for who in ["U0003", "U0004"] {
        assert!(
            members.contains(&who),
            "Tier-2 lead, account manager: {who} in {members:?}"
        );
    }
    let card = shown(room.messages.iter().find(|m| m.ts == room.pins[0]).unwrap());
    for want in [
        "customer *Acme*, tier gold, account manager <@U0004>",
        "Acme checkout broken for all users",
        "|the message>",
    ] {
        assert!(card.contains(want), "{want} missing from the card: {card}");
    }
    {
        let calls = crm.lock().unwrap();
        assert_eq!(calls.len(), 1, "one lookup: {calls:?}");
        assert_eq!(calls[0]["signed"], true);
        assert_eq!(
            calls[0]["body"]["message"]["text"],
            "Acme checkout broken for all users"
        );
    }

    // The *Declare incident* message shortcut: on the message already escalated by reaction, the same incident;
    // on another message of the watched channel, a war room of that channel's type with the message on its card.
    sim.message_shortcut("support", &msg, "sluice_declare_incident", "U0001")
        .await
        .unwrap();
    wait_until("told it is already declared", WAIT, || {
        sim.ephemerals(Some("U0001"))
            .iter()
            .any(|e| e.text.contains("is already declared"))
    })
    .await;
    let invoices = sim
        .post_as_user("support", "U0002", "Acme invoices are wrong")
        .unwrap();
    sim.message_shortcut("support", &invoices, "sluice_declare_incident", "U0001")
        .await
        .unwrap();
    wait_until("the shortcut's war room", WAIT, || {
        channel_named(sim, "esc-acme-invoices-are-wrong").is_some_and(|c| !c.pins.is_empty())
    })
    .await;
    let room3 = channel_named(sim, "esc-acme-invoices-are-wrong").unwrap();
    assert!(room3.is_private && room3.members.contains("U0001") && room3.members.contains("U0004"));
    let card = shown(
        room3
            .messages
            .iter()
            .find(|m| m.ts == room3.pins[0])
            .unwrap(),
    );
    assert!(card.contains("Acme invoices are wrong"), "{card}");
    assert_eq!(
        sim.channels()
            .iter()
            .filter(|c| c.name.starts_with("esc-acme"))
            .count(),
        2,
        "one room per escalated message"
    );

    // The lookup fails (the CRM is down: three tries), and the name is taken: the room is still made, under the
    // next name, and its card says the lookup failed.
    let other = sim
        .post_as_user("support", "U0002", "Globex is down")
        .unwrap();
    sim.react("support", &other, "rotating_light", "U0001")
        .await
        .unwrap();
    wait_until("the second war room", WAIT, || {
        channel_named(sim, "esc-globex-is-down-2").is_some_and(|c| !c.pins.is_empty())
    })
    .await;
    let room2 = channel_named(sim, "esc-globex-is-down-2").unwrap();
    let card = shown(
        room2
            .messages
            .iter()
            .find(|m| m.ts == room2.pins[0])
            .unwrap(),
    );
    assert!(
        card.contains("the lookup failed (gave up after 3 attempts"),
        "{card}"
    );
    assert!(room2.members.contains("U0001") && room2.members.contains("U0003"));

    // Somebody who may not declare: refused, told, audited; no room.
    let third = sim
        .post_as_user("support", "U0002", "Initech billing")
        .unwrap();
    sim.react("support", &third, "rotating_light", "U0004")
        .await
        .unwrap();
    wait_until("the refusal", WAIT, || {
        sim.ephemerals(Some("U0004"))
            .iter()
            .any(|e| e.text.contains("may not declare"))
    })
    .await;
    assert!(channel_named(sim, "esc-initech-billing").is_none());
    let declares = audited(sluice.addr, "incident.declare").await;
    assert!(
        declares
            .iter()
            .any(|r| r["actor"] == "U0004" && r["result"] == "refused: not permitted to declare"),
        "{declares:?}"
    );
    drop(s);
}

/// An OpenAI-compatible stub: `/good/…` summarises, `/bad/…` fails (500). Records what it was sent.
async fn start_llm() -> (Arc<Mutex<Vec<Value>>>, SocketAddr) {
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let auth = headers
                    .get("authorization")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock()
                    .unwrap()
                    .push(json!({"path": uri.path(), "body": v, "auth": auth}));
                if uri.path().starts_with("/good") {
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"choices": [{"message": {"role": "assistant",
                            "content": "LLM says: ship on Friday; write the runbook"}}]})),
                    )
                } else {
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({"error": "overloaded"})),
                    )
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (got, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_digest_picks_decisions_and_action_items_and_an_llm_summary_falls_back_when_it_fails(
) {
    let (sim, sim_run) = strict_sim(&[("eng", true), ("digests", true)]).await;
    sim.post_as_user("eng", "U0001", "Decision: ship on Friday")
        .unwrap();
    sim.post_as_user("eng", "U0002", "TODO: write the runbook")
        .unwrap();
    sim.post_as_user("eng", "U0003", "lunch?").unwrap();
    let pinned = sim
        .post_as_user("eng", "U0004", "we stay on postgres 16")
        .unwrap();
    let (llm, llm_addr) = start_llm().await;
    let schedule = |name: &str, llm: &str| {
        format!(
            "[[schedule]]\nname = \"{name}\"\ncron = \"0 9 * * *\"\nchannel = \"digests\"\ndigest_channels = [\"eng\"]\n{llm}\n"
        )
    };
    let s = builder(
        (sim, sim_run),
        format!(
            "[approvals]\ncallback_hosts = [\"http://{llm_addr}\"]\n\n{}{}{}",
            schedule("plain", ""),
            schedule(
                "summarised",
                &format!("llm_url = \"http://{llm_addr}/good/v1/chat/completions\"\nllm_key_env = \"LLM_KEY\"")
            ),
            schedule(
                "fallback",
                &format!("llm_url = \"http://{llm_addr}/bad/v1/chat/completions\"")
            ),
        ),
    )
    .clock("2026-12-02T08:59:30Z")
    .env("LLM_KEY", "sk-test-123")
    .start()
    .await;
    let sim = &s.sim;
    sim.react("eng", &pinned, "pushpin", "U0001").await.unwrap();
    s.set_clock("2026-12-02T09:00:30Z");
    let report = |name: &str| {
        sim.messages("digests")
            .iter()
            .find(|m| m.text.starts_with(&format!("*{name}*")))
            .map(|m| m.text.clone())
    };
    wait_until("three digests", WAIT, || {
        ["plain", "summarised", "fallback"]
            .iter()
            .all(|n| report(n).is_some())
    })
    .await;
    let plain = report("plain").unwrap();
    for want in [
        "*Digest of #eng*",
        "• ship on Friday",
        "• we stay on postgres 16",
        "*Action items:*\n• write the runbook",
    ] {
        assert!(plain.contains(want), "{want} missing from:\n{plain}");
    }
    assert!(!plain.contains("lunch"), "{plain}");
    let summarised = report("summarised").unwrap();
    assert!(
        summarised.contains("*Summary:*\nLLM says: ship on Friday; write the runbook"),
        "{summarised}"
    );
    let fallback = report("fallback").unwrap();
    assert!(fallback.contains("• ship on Friday"), "{fallback}");
    assert!(
        fallback.contains("the summary service failed (HTTP 500)"),
        "{fallback}"
    );
    let calls = llm.lock().unwrap().clone();
    let good: Vec<&Value> = calls
        .iter()
        .filter(|c| c["path"].as_str().unwrap().starts_with("/good"))
        .collect();
    assert_eq!(good.len(), 1, "{calls:?}");
    assert_eq!(good[0]["auth"], "Bearer sk-test-123");
    let sent = good[0]["body"]["messages"][1]["content"].as_str().unwrap();
    assert!(
        sent.contains("ship on Friday") && !sent.contains("lunch"),
        "{sent}"
    );
    drop(s);
}
