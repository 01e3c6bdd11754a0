//! Running the real `sluice` binary against the simulator: configs, processes, load, and
//! reading back what reached Slack.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

pub const KEY: &str = "e2e-key";

pub struct Sluice {
    pub child: Child,
    pub addr: SocketAddr,
    /// Held open so that nothing `serve` prints later meets a closed pipe.
    _stdout: Option<std::process::ChildStdout>,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Write a config for `sim` into `dir`; `extra` adds tables (routing, dispatch).
pub fn write_config(dir: &Path, sim: SocketAddr, extra: &str) -> PathBuf {
    let db = format!("sqlite://{}", dir.join("sluice.db").display());
    write_config_db(dir, sim, &db, extra)
}

/// Like [`write_config`], for the database at `db`. Every call writes its own file on its own port.
pub fn write_config_db(dir: &Path, sim: SocketAddr, db: &str, extra: &str) -> PathBuf {
    write_config_full(dir, sim, db, "", extra)
}

/// Like [`write_config_db`], with `slack_extra` added to the `[slack]` table. The server listens on a port the
/// system chooses when it binds (`127.0.0.1:0`), which [`start_sluice`] reads from its first line on stdout: choosing
/// a free port here and binding it later let another process take it in between on a busy machine.
pub fn write_config_full(
    dir: &Path,
    sim: SocketAddr,
    db: &str,
    slack_extra: &str,
    extra: &str,
) -> PathBuf {
    std::fs::write(dir.join("token"), sluice_sim::DEFAULT_TOKEN).unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536

[storage]
url = "{db}"

[slack]
api_base = "http://{sim}/api/"
bot_token_file = "token"
team_id = "T0SIM"
{slack_extra}

[[api_key]]
name = "e2e"
key_file = "key"
scopes = ["events:write", "messages:write", "read", "admin"]
{extra}
"#
    );
    let path = dir.join(format!("sluice-{}.toml", uuid::Uuid::now_v7().simple()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `sluice migrate` on `config`, failing the test with what it said if it fails.
pub fn migrate(config: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["migrate", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets the test clock (`SLUICE_CLOCK_FILE`) to an RFC 3339 time. Written aside and renamed, so the server never
/// reads half a file.
pub fn set_clock(file: &Path, at: &str) {
    let ms = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .timestamp_millis();
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, ms.to_string()).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Routing that sends `labels.ch = "cNN"` to channel `cNN`.
pub fn channel_routes(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[routing.rule]]\nname = \"c{i:02}\"\nmatch = {{ \"labels.ch\" = \"c{i:02}\" }}\nchannels = [\"c{i:02}\"]\n"
            )
        })
        .collect()
}

pub fn start_sluice(config: &Path) -> Sluice {
    start_sluice_env(config, &[])
}

/// [`start_sluice`] with environment variables set for the server (e.g. `SLUICE_CLOCK_FILE`).
pub fn start_sluice_env(config: &Path, env: &[(&str, &Path)]) -> Sluice {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sluice");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("sluice listening on http://") {
                let _ = tx.send((addr.parse::<SocketAddr>().ok(), lines.into_inner()));
                return;
            }
            line.clear();
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok((Some(addr), stdout)) => Sluice {
            child,
            addr,
            _stdout: Some(stdout),
        },
        other => {
            let _ = child.kill();
            panic!(
                "sluice did not say where it listens within 20 s ({:?})",
                other.map(|(a, _)| a)
            );
        }
    }
}

/// A simulator that creates a channel on the first post to it: these tests route to many channels
/// by label and are about delivery, not workspace set-up. What Sluice does with a channel that does
/// not exist, or that the bot is not in, is tested against the strict default (`strict_channels.rs`).
pub async fn start_sim() -> (Simulator, sluice_sim::RunningSim) {
    let sim = Simulator::new(SimConfig {
        auto_create_channels: true,
        ..SimConfig::default()
    });
    let running = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, running)
}

pub fn event(title: &str, ch: &str) -> Value {
    json!({"title": title, "severity": "warning", "status": "firing", "source": "e2e",
           "service": "svc", "labels": {"ch": ch}})
}

/// Post events with `concurrency` in flight; returns the ids that got 202 (in send order
/// where they were accepted) and how many were not accepted.
pub async fn post_all(
    addr: SocketAddr,
    events: Vec<Value>,
    concurrency: usize,
) -> (Vec<String>, usize) {
    let http = reqwest::Client::builder()
        // Generous: these tests check delivery, not latency, and CI shares two cores.
        .timeout(Duration::from_secs(30))
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
pub fn posted_ids(sim: &Simulator) -> HashMap<String, usize> {
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

pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Like [`wait_until`], for a condition that asks Sluice over HTTP.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

pub fn channel_ids(sim: &Simulator) -> BTreeMap<String, String> {
    sim.channels().into_iter().map(|c| (c.name, c.id)).collect()
}
