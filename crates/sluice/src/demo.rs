//! `sluice demo`: the whole product on one machine with no Slack workspace.
//!
//! Starts the Slack simulator and Sluice (SQLite in `data_dir`, the config in `demo.toml`),
//! fires a realistic stream — a green deploy that is dropped, a failed one, an alert that fires,
//! repeats and resolves, a legacy cron job posting to a webhook URL, and a burst to one
//! channel — shows progress, and ends with what landed where.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};
use tokio::net::TcpListener;

use crate::config::{Config, ProcessEnv};

const API_KEY: &str = "demo-api-key-not-secret";
const HOOK_SECRET: &str = "demo-hook-secret-0123456789";
const OUTGOING_SECRET: &str = "demo-outgoing-secret-0123456789abcdef";
const BURST: usize = 12;

async fn bind(preferred: &str) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(preferred).await {
        Ok(l) => Ok(l),
        Err(_) => Ok(TcpListener::bind("127.0.0.1:0").await?),
    }
}

/// Run the demo; with `wait`, keep both servers up until Ctrl-C so the simulator's page can be
/// looked at.
pub async fn run(data_dir: &Path, wait: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize()?;
    for f in ["sluice.db", "sluice.db-wal", "sluice.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }

    let sim = Simulator::new(SimConfig::default());
    let sim_listener = bind("127.0.0.1:8099").await?;
    let sim_addr = sim_listener.local_addr()?;
    drop(sim_listener);
    let sim_running = sim
        .serve(sim_addr)
        .await
        .context("starting the Slack simulator")?;
    let sim_addr = sim_running.addr;

    let listener = bind("127.0.0.1:8080").await?;
    let addr = listener.local_addr()?;
    std::fs::write(data_dir.join("bot-token"), sluice_sim::DEFAULT_TOKEN)?;
    std::fs::write(data_dir.join("api-key"), API_KEY)?;
    std::fs::write(data_dir.join("hook-secret"), HOOK_SECRET)?;
    std::fs::write(data_dir.join("outgoing-secret"), OUTGOING_SECRET)?;
    std::fs::write(
        data_dir.join("signing-secret"),
        sluice_sim::DEFAULT_SIGNING_SECRET,
    )?;
    let text = include_str!("demo.toml")
        .replace("{listen}", &addr.to_string())
        .replace("{data_dir}", &data_dir.display().to_string())
        .replace("{api_base}", &format!("http://{sim_addr}/api/"))
        .replace("{sim_addr}", &sim_addr.to_string());
    // The workspace has the channels the config names, with everyone in them, and no other: a
    // channel the config misspells is refused as Slack would refuse it.
    let people = sim.user_ids();
    for name in channels_named(&text)? {
        sim.create_channel_as_user(&name, false, &people, true)
            .map_err(|e| anyhow::anyhow!("demo channel {name}: {e}"))?;
    }
    let config_path = data_dir.join("sluice.toml");
    std::fs::write(&config_path, &text)?;
    let config = Config::load(&config_path, &ProcessEnv).map_err(|problems| {
        anyhow::anyhow!(
            "demo config is invalid:\n{}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let running = crate::server::start(config, listener).await?;
    // The simulator's page sends its button clicks (as the member picked there) to Sluice.
    sim.set_app_base_url(format!("http://{addr}"));

    println!("\n  Slack simulator   http://{sim_addr}/        (open it: the channels, their cards, and buttons that work)");
    println!("  Sluice console    http://{addr}/            (log in with the API key {API_KEY}; metrics at /metrics)");
    println!("  Config            {}\n", config_path.display());
    print!("{}", tour(sim_addr));

    let ids = fire(addr).await?;
    let storm_ids = storm(addr).await?;
    let settled = wait_for(addr, &ids).await?;
    storm_summary(addr, &sim, &storm_ids).await?;
    summary(&sim, &settled, sim_addr);

    if wait {
        println!("\nBoth servers keep running; press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    }
    running.stop().await;
    sim_running.shutdown();
    Ok(())
}

/// What to click and type in the simulator's page, printed when the demo opens.
fn tour(sim_addr: SocketAddr) -> String {
    format!(
        "A short tour: open http://{sim_addr}/ (you are alice; the \"You are\" switch changes who).
  1. #alerts: on the card \"Checkout p99 latency above 2s\", click Acknowledge. The card says who did, at once.
  2. Type  /ops help  in the message box: the answer is only visible to you (switch to bob: it is gone).
  3. Type  /ops deploy  : a form opens as a dialog. Submit it with Service empty to see the error under
     the field, then fill it in: the deploy lands in #deploys.
  4. Hover a card: the reaction button adds :eyes: (which acknowledges, too) and Reply opens a thread.
  5. \"Disk full <!channel> on db-3\": the title tried to ping everyone; Sluice escaped it, so nobody was.
  6. Escalate on a card posts to #incidents with a link that jumps back to the card.

"
    )
}

/// Every channel a config names: `channels = [...]` anywhere, and `channel` / `escalate_channel`.
fn channels_named(config: &str) -> anyhow::Result<Vec<String>> {
    fn walk(v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    match (k.as_str(), v) {
                        ("channels", toml::Value::Array(a)) => {
                            out.extend(a.iter().filter_map(|c| c.as_str()).map(String::from))
                        }
                        ("channel" | "escalate_channel", toml::Value::String(c)) => {
                            out.push(c.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let value: toml::Value = toml::from_str(config).context("the demo config is not TOML")?;
    let mut out = Vec::new();
    walk(&value, &mut out);
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|c| seen.insert(c.trim_start_matches('#').to_string()));
    Ok(out)
}

fn event(
    title: &str,
    severity: &str,
    status: &str,
    kind: &str,
    service: &str,
    extra: Value,
) -> Value {
    let mut e = json!({
        "title": title, "severity": severity, "status": status, "kind": kind,
        "source": if kind == "deployment" { "github" } else { "alertmanager" },
        "service": service, "environment": "production",
    });
    if let (Some(obj), Value::Object(more)) = (e.as_object_mut(), extra) {
        obj.extend(more);
    }
    e
}

/// Send the stream; returns (description, event id) for each accepted event.
async fn fire(addr: SocketAddr) -> anyhow::Result<Vec<(String, String)>> {
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/v1/events");
    let mut ids = Vec::new();
    let post = |label: String, body: Value| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(&url)
                .bearer_auth(API_KEY)
                .json(&body)
                .send()
                .await?;
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("{label}: {status} {v}");
            }
            let id = v["id"].as_str().unwrap_or_default().to_string();
            println!("  → {label:<58} {status}");
            Ok::<_, anyhow::Error>((label, id))
        }
    };
    println!("Sending events:");
    ids.push(post("deploy checkout v142 succeeded (dropped by rule)".into(),
        event("Deploy checkout v142", "ok", "resolved", "deployment", "checkout",
              json!({"text": "Deployed by @dana in 3m12s", "links": [{"title": "Run", "url": "https://ci.example.com/run/142"}]}))).await?);
    ids.push(post("deploy payments v77 failed".into(),
        event("Deploy payments v77 failed", "error", "firing", "deployment", "payments",
              json!({"text": "Step `migrate` exited 1", "links": [{"title": "Run", "url": "https://ci.example.com/run/77"}]}))).await?);
    let alert = |status: &str| {
        event(
            "Checkout p99 latency above 2s",
            "critical",
            status,
            "alert",
            "checkout",
            json!({"text": "p99 is 2.7s over the last 5m (threshold 2s)", "dedup_key": "checkout-latency",
               "labels": {"team": "payments", "region": "eu-west-1"},
               "fields": {"p99": "2.7s", "threshold": "2s"}}),
        )
    };
    ids.push(post("checkout latency alert fires".into(), alert("firing")).await?);
    for i in 2..=5 {
        ids.push(
            post(
                format!("checkout latency alert repeats (#{i}, merged)"),
                alert("firing"),
            )
            .await?,
        );
    }
    ids.push(
        post(
            "an alert whose title tries to ping <!channel>".into(),
            event(
                "Disk full <!channel> on db-3",
                "warning",
                "firing",
                "alert",
                "db",
                json!({}),
            ),
        )
        .await?,
    );

    // A tool that only knows Slack's incoming webhooks, pointed at Sluice unchanged.
    let hook = format!("http://{addr}/hooks/legacy-cron/{HOOK_SECRET}");
    let r = http
        .post(&hook)
        .json(&json!({"text": "nightly backup finished: 42 GB in 18 min"}))
        .send()
        .await?;
    println!(
        "  → {:<58} {} {}",
        "legacy cron posts to its Slack webhook URL",
        r.status(),
        r.text().await.unwrap_or_default()
    );

    for i in 1..=BURST {
        let e = event(
            &format!("Queue depth high on worker-{i}"),
            "warning",
            "firing",
            "alert",
            "queue",
            json!({}),
        );
        ids.push(post(format!("burst to #alerts ({i}/{BURST})"), e).await?);
    }
    ids.push(
        post(
            "checkout latency alert resolves (updates the card)".into(),
            alert("resolved"),
        )
        .await?,
    );

    // A node dies: six pods of two services crash. The route groups by service: two cards, not six messages.
    for (i, (service, pod)) in [
        ("search", "search-7f9c-1"),
        ("search", "search-7f9c-2"),
        ("recommendations", "recs-55d1-1"),
        ("search", "search-7f9c-3"),
        ("recommendations", "recs-55d1-2"),
        ("search", "search-7f9c-4"),
    ]
    .into_iter()
    .enumerate()
    {
        let e = json!({"title": format!("Pod {pod} CrashLoopBackOff"), "severity": "error", "status": "firing",
                       "source": "kubernetes", "service": service, "dedup_key": pod,
                       "labels": {"node": "node-eu-7", "namespace": service}});
        ids.push(
            post(
                format!("pod alert {}/6 on node-eu-7 (grouped by service)", i + 1),
                e,
            )
            .await?,
        );
    }
    Ok(ids)
}

/// How many alerts the batch storm sends, and from how many services.
const STORM: usize = 300;
const STORM_SERVICES: usize = 10;

/// A batch system melts down: 300 alerts from 10 services in a couple of seconds. The route's storm guard switches
/// to a digest. Returns the event ids.
async fn storm(addr: SocketAddr) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for chunk in (0..STORM).collect::<Vec<_>>().chunks(50) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|i| {
                let service = format!("etl-{:02}", i % STORM_SERVICES);
                let severity = ["error", "warning"][i % 2];
                json!({"title": format!("Job {} failed on {service}", i % 30), "severity": severity,
                       "status": "firing", "source": "batch", "service": service,
                       "dedup_key": format!("{service}/job-{}", i % 30)})
            })
            .collect();
        let r = http
            .post(format!("http://{addr}/v1/events"))
            .bearer_auth(API_KEY)
            .json(&batch)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("storm batch: {status} {v}");
        }
        ids.extend(
            v["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_str().map(str::to_string)),
        );
    }
    println!(
        "  → {:<58} 202 Accepted",
        format!("batch storm: {STORM} alerts from {STORM_SERVICES} services")
    );
    Ok(ids)
}

/// Waits for the storm to pass (the digest that says so) and says what became of its events.
async fn storm_summary(addr: SocketAddr, sim: &Simulator, ids: &[String]) -> anyhow::Result<()> {
    let started = Instant::now();
    let over = |sim: &Simulator| {
        sim.channels()
            .iter()
            .filter(|c| c.name == "batch")
            .any(|c| {
                sim.messages(&c.id)
                    .iter()
                    .any(|m| m.text.contains("is over"))
            })
    };
    while !over(sim) && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let http = reqwest::Client::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids {
        let v: Value = http
            .get(format!("http://{addr}/v1/events/{id}"))
            .bearer_auth(API_KEY)
            .send()
            .await?
            .json()
            .await?;
        let state = match v["state"].as_str().unwrap_or("?") {
            "merged" if v["groups"][0]["digested_at_ms"].is_number() => "merged, digested",
            other => other,
        };
        *states.entry(state.to_string()).or_default() += 1;
    }
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "
The batch storm: {} alerts, {} ({:.1}s); #batch got digests instead of cards.",
        ids.len(),
        states.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Poll until every event has settled (posted, dropped, merged, resolved or dead).
async fn wait_for(
    addr: SocketAddr,
    ids: &[(String, String)],
) -> anyhow::Result<Vec<(String, Value)>> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut last = usize::MAX;
    loop {
        let mut views = Vec::new();
        for (label, id) in ids {
            let v: Value = http
                .get(format!("http://{addr}/v1/events/{id}"))
                .bearer_auth(API_KEY)
                .send()
                .await?
                .json()
                .await?;
            views.push((label.clone(), v));
        }
        // Grouped alerts wait for their group's first card (group_wait).
        let pending = views
            .iter()
            .filter(|(_, v)| v["state"] == "queued" || v["state"] == "grouped")
            .count();
        if pending != last {
            println!(
                "  … {pending} of {} events still on their way to Slack ({:.1}s)",
                ids.len(),
                started.elapsed().as_secs_f64()
            );
            last = pending;
        }
        if pending == 0 || started.elapsed() > Duration::from_secs(90) {
            return Ok(views);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn summary(sim: &Simulator, settled: &[(String, Value)], sim_addr: SocketAddr) {
    println!("\nWhat became of each event:");
    for (label, v) in settled {
        let state = v["state"].as_str().unwrap_or("?");
        let detail = match state {
            "dropped" => format!("by rule {}", v["fate"]["rule"].as_str().unwrap_or("?")),
            "merged" => format!(
                "into {} (×{})",
                v["fate"]["into"].as_str().unwrap_or("?"),
                v["fate"]["count"]
            ),
            _ if v["groups"].as_array().is_some_and(|g| !g.is_empty()) => format!(
                "on its group's card in #{}",
                v["groups"][0]["channel"].as_str().unwrap_or("?")
            ),
            _ => {
                // A card update and its thread reply go to the same channel: name it once.
                let mut channels: Vec<String> = Vec::new();
                for d in v["deliveries"].as_array().into_iter().flatten() {
                    let c = format!("#{}", d["channel"].as_str().unwrap_or("?"));
                    if !channels.contains(&c) {
                        channels.push(c);
                    }
                }
                channels.join(" ")
            }
        };
        println!("  {label:<58} {state:<9} {detail}");
    }
    println!("\nWhat landed in Slack (the simulator):");
    for ch in sim.channels() {
        let msgs = sim.messages(&ch.id);
        if msgs.is_empty() {
            continue;
        }
        println!("  #{:<16} {} message(s)", ch.name, msgs.len());
        for m in msgs.iter().take(4) {
            let edited = if m.edits > 0 {
                format!("  (updated {}×)", m.edits)
            } else {
                String::new()
            };
            println!(
                "      {}{edited}",
                m.text.chars().take(90).collect::<String>()
            );
        }
        if msgs.len() > 4 {
            println!("      … and {} more", msgs.len() - 4);
        }
    }
    println!(
        "\nSlack calls: {}, rate-limited (429): {}. State as JSON: http://{sim_addr}/sim/state",
        sim.calls().len(),
        sim.count_429()
    );
}
