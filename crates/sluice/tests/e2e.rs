//! End to end: the real `sluice` binary against the Slack simulator on 127.0.0.1.
//!
//! Each test starts its own simulator (in this process) and its own `sluice serve` (a child
//! process with its own SQLite file), so they run in parallel and a SIGKILL is a real one.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use sluice_sim::{Faults, SimConfig, Simulator};

const KEY: &str = "e2e-key";

struct Sluice {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Write a config for `sim` into `dir`; `extra` adds tables (routing, dispatch).
fn write_config(dir: &Path, sim: SocketAddr, extra: &str) -> PathBuf {
    std::fs::write(dir.join("token"), sluice_sim::DEFAULT_TOKEN).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
max_body_bytes = 65536

[storage]
url = "sqlite://{db}"

[slack]
api_base = "http://{sim}/api/"
bot_token_file = "token"
team_id = "T0SIM"

[[api_key]]
name = "e2e"
key_file = "key"
scopes = ["events:write", "messages:write", "read", "admin"]
{extra}
"#,
        port = free_port(),
        db = dir.join("sluice.db").display(),
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Routing that sends `labels.ch = "cNN"` to channel `cNN`.
fn channel_routes(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[routing.rule]]\nname = \"c{i:02}\"\nmatch = {{ \"labels.ch\" = \"c{i:02}\" }}\nchannels = [\"c{i:02}\"]\n"
            )
        })
        .collect()
}

fn start_sluice(config: &Path) -> Sluice {
    let text = std::fs::read_to_string(config).unwrap();
    let listen = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(config)
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sluice");
    let s = Sluice {
        child,
        addr: listen,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(s.addr).is_ok() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sluice did not start listening on {}", s.addr);
}

async fn start_sim() -> (Simulator, sluice_sim::RunningSim) {
    let sim = Simulator::new(SimConfig::default());
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, running)
}

fn event(title: &str, ch: &str) -> Value {
    json!({"title": title, "severity": "warning", "status": "firing", "source": "e2e",
           "service": "svc", "labels": {"ch": ch}})
}

/// Post events with `concurrency` in flight; returns the ids that got 202 (in send order
/// where they were accepted) and how many were not accepted.
async fn post_all(
    addr: SocketAddr,
    events: Vec<Value>,
    concurrency: usize,
) -> (Vec<String>, usize) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://{addr}/v1/events");
    let results: Vec<Option<String>> = stream::iter(events)
        .map(|e| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&e)
                    .send()
                    .await
                    .ok()?;
                if r.status() != reqwest::StatusCode::ACCEPTED {
                    return None;
                }
                let v: Value = r.json().await.ok()?;
                v["id"].as_str().map(str::to_string)
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_none()).count();
    (results.into_iter().flatten().collect(), failed)
}

/// Event id → how many times it was posted, from the simulator's messages.
fn posted_ids(sim: &Simulator) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for ch in sim.channels() {
        for m in sim.messages(&ch.id) {
            if let Some(id) = m
                .metadata
                .as_ref()
                .and_then(|md| md["event_payload"]["event_id"].as_str())
            {
                *seen.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    }
    seen
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

fn channel_ids(sim: &Simulator) -> BTreeMap<String, String> {
    sim.channels().into_iter().map(|c| (c.name, c.id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_events_over_twenty_channels_each_once_without_a_429() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, &channel_routes(20));
    let sluice = start_sluice(&cfg);

    let events = (0..1000)
        .map(|i| event(&format!("seq-{i:04}"), &format!("c{:02}", i % 20)))
        .collect();
    let (ids, failed) = post_all(sluice.addr, events, 32).await;
    assert_eq!(failed, 0);
    assert_eq!(ids.len(), 1000);

    wait_until(
        "1,000 messages in the simulator",
        Duration::from_secs(150),
        || posted_ids(&sim).len() >= 1000,
    )
    .await;
    let seen = posted_ids(&sim);
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "event {id} posted {:?} times",
            seen.get(id)
        );
    }
    assert_eq!(sim.count_429(), 0, "Slack had to say 429");
    assert_eq!(
        sim.channels()
            .iter()
            .filter(|c| c.name.starts_with('c'))
            .count(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_but_loses_nothing_and_keeps_order_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let extra = format!(
        "[dispatch]\nbackoff_base_ms = 100\nbackoff_max_ms = 1000\n{}",
        channel_routes(8)
    );
    let cfg = write_config(dir.path(), sim_run.addr, &extra);
    let sluice = start_sluice(&cfg);

    let batch = |range: std::ops::Range<usize>| -> Vec<Value> {
        range
            .map(|i| event(&format!("seq-{i:04}"), &format!("c{:02}", i % 8)))
            .collect()
    };
    let (mut ids, _) = post_all(sluice.addr, batch(0..40), 8).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sim.set_faults(Faults {
        outage_until: Some(Instant::now() + Duration::from_secs(10)),
        ..Faults::default()
    });
    let outage_started = Instant::now();
    let (more, failed) = post_all(sluice.addr, batch(40..120), 8).await;
    assert_eq!(failed, 0, "ingest must keep accepting while Slack is down");
    ids.extend(more);

    wait_until(
        "all 120 messages after the outage",
        Duration::from_secs(120),
        || posted_ids(&sim).len() >= 120,
    )
    .await;
    assert!(outage_started.elapsed() >= Duration::from_secs(10));
    let seen = posted_ids(&sim);
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "event {id}");
    }
    let outage_calls = sim.calls().iter().filter(|c| c.status == 503).count();
    assert!(outage_calls > 0, "the outage was never hit");
    // Per channel, messages are in the order they were accepted.
    for (name, id) in channel_ids(&sim) {
        if !name.starts_with('c') {
            continue;
        }
        let titles: Vec<String> = sim.messages(&id).into_iter().map(|m| m.text).collect();
        let mut sorted = titles.clone();
        sorted.sort();
        assert_eq!(titles, sorted, "channel {name} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_accepted_event() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, &channel_routes(16));
    let mut sluice = start_sluice(&cfg);
    let addr = sluice.addr;

    // A steady stream (40 events/s for 5 s over 16 channels); the kill lands in its middle.
    let sender = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut refused = 0;
        for i in 0..200 {
            let e = event(&format!("seq-{i:04}"), &format!("c{:02}", i % 16));
            let (ids, failed) = post_all(addr, vec![e], 1).await;
            acked.extend(ids);
            refused += failed;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (acked, refused)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no chance to flush or release anything.
    sluice.child.kill().unwrap();
    sluice.child.wait().unwrap();
    let (acked, refused) = sender.await.unwrap();
    assert!(!acked.is_empty(), "nothing was accepted before the kill");
    assert!(
        refused > 0,
        "the kill came after the stream ended; the test proves nothing"
    );

    let _restarted = start_sluice(&cfg);
    let want = acked.len();
    wait_until(
        "every acknowledged event in Slack after the restart",
        Duration::from_secs(240),
        || {
            let seen = posted_ids(&sim);
            acked.iter().all(|id| seen.contains_key(id))
        },
    )
    .await;
    let seen = posted_ids(&sim);
    let duplicates: usize = acked.iter().map(|id| seen[id] - 1).sum();
    eprintln!("sigkill: {want} acknowledged, all delivered, {duplicates} posted twice");
    // At most the one in-flight call per lane (16 lanes) can be repeated.
    assert!(duplicates <= 16, "{duplicates} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_only_its_channel_for_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, &channel_routes(2));
    let sluice = start_sluice(&cfg);

    // Create both channels, then arm a single 429 with Retry-After: 2 on c00.
    let (_, failed) = post_all(
        sluice.addr,
        vec![event("warm-0", "c00"), event("warm-1", "c01")],
        2,
    )
    .await;
    assert_eq!(failed, 0);
    wait_until("warm-up posts", Duration::from_secs(10), || {
        posted_ids(&sim).len() == 2
    })
    .await;
    let ids = channel_ids(&sim);
    let (c0, c1) = (ids["c00"].clone(), ids["c01"].clone());
    sim.set_faults(Faults {
        channel_429: Some((c0.clone(), 2, 1)),
        ..Faults::default()
    });
    let events = (0..6)
        .flat_map(|i| {
            [
                event(&format!("a-{i}"), "c00"),
                event(&format!("b-{i}"), "c01"),
            ]
        })
        .collect();
    let (_, failed) = post_all(sluice.addr, events, 4).await;
    assert_eq!(failed, 0);
    wait_until("all 14 messages", Duration::from_secs(30), || {
        posted_ids(&sim).len() == 14
    })
    .await;

    let calls = sim.calls();
    let limited = calls
        .iter()
        .find(|c| c.status == 429 && c.channel.as_deref() == Some(c0.as_str()))
        .expect("the armed 429 was never hit");
    let t0 = limited.at_ms;
    let next_c0 = calls
        .iter()
        .filter(|c| c.channel.as_deref() == Some(c0.as_str()) && c.seq > limited.seq)
        .map(|c| c.at_ms)
        .min()
        .expect("c00 was never called again");
    assert!(
        next_c0 >= t0 + 2000,
        "c00 called again after {} ms",
        next_c0 - t0
    );
    let c1_during = calls
        .iter()
        .filter(|c| {
            c.channel.as_deref() == Some(c1.as_str()) && c.at_ms > t0 && c.at_ms < t0 + 2000
        })
        .count();
    assert!(c1_during > 0, "c01 was held up by c00's 429");
    assert_eq!(sim.count_429(), 1, "only the armed 429");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_to_the_binary_get_their_status_and_reach_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, "");
    let sluice = start_sluice(&cfg);
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/events", sluice.addr);
    let valid = event("x", "c00").to_string();
    let huge = json!({"title": "x", "severity": "info", "status": "firing", "source": "s",
                      "text": "y".repeat(100_000)})
    .to_string();
    let cases = [
        ("malformed", Some(KEY), "{".to_string(), 400),
        (
            "bad severity",
            Some(KEY),
            valid.replace("warning", "loud"),
            400,
        ),
        ("no key", None, valid.clone(), 401),
        ("unknown key", Some("wrong"), valid.clone(), 401),
        ("oversized", Some(KEY), huge, 413),
    ];
    for (what, key, body, want) in cases {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{what}");
    }
    let metrics = http
        .get(format!("http://{}/metrics", sluice.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("sluice_outbox_pending 0"), "{metrics}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sim.calls().iter().all(|c| c.method != "chat.postMessage"),
        "a refused request reached Slack"
    );
}
