//! `sluice-bench`: the benchmark behind the figures in the README.
//!
//! Starts the Slack simulator in this process and `sluice serve` as a child process (the same
//! release binary users run, SQLite or PostgreSQL), then measures on loopback:
//! 1. events/s accepted with a durable commit, one event per request and batches of 10;
//! 2. ingest latency percentiles at a fixed offered rate (open loop);
//! 3. end-to-end latency from the ingest request to the simulator receiving chat.postMessage,
//!    under the rate limit;
//! 4. the server's RSS idle and under load.
//!
//! `cargo run --release --bin sluice-bench -- --help`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

#[derive(Parser)]
#[command(about = "Measure Sluice's ingest throughput, latency and memory on loopback")]
struct Args {
    /// Concurrent requests in flight for the throughput runs.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Offered rate for the latency run (events/s).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Storage URL for the server; default a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Number of `sluice serve` replicas (they must share a PostgreSQL database).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// `full` or `normal` SQLite durability.
    #[arg(long, default_value = "full")]
    durability: String,
    /// Send alerts (2,000 distinct dedup keys over 50 services) to a route that groups them by service, as in a
    /// storm, instead of plain events: measures ingest with dedup and grouping in the transaction.
    #[arg(long)]
    grouped: bool,
    /// The sluice binary; default the one next to this benchmark.
    #[arg(long)]
    sluice: Option<PathBuf>,
}

const KEY: &str = "bench-key";

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

fn start_server(
    bin: &Path,
    dir: &Path,
    sim: SocketAddr,
    db: &str,
    durability: &str,
    n: usize,
) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::write(dir.join("token"), sluice_sim::DEFAULT_TOKEN)?;
    std::fs::write(dir.join("key"), KEY)?;
    let grouping = if GROUPED.load(Ordering::Relaxed) {
        r#", group_by = ["service"], group_wait = "30s", group_interval = "5m""#
    } else {
        ""
    };
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
log_format = "json"
[storage]
url = "{db}"
durability = "{durability}"
[slack]
api_base = "http://{sim}/api/"
bot_token_file = "token"
team_id = "T0SIM"
[[api_key]]
name = "bench"
key_file = "key"
[routing]
default = {{ channels = ["bench"]{grouping} }}
[[routing.rule]]
name = "latency-probe"
match = {{ "labels.probe" = {{ regex = "." }} }}
channels = ["probe"]
"#
    );
    let path = dir.join(format!("sluice-{n}.toml"));
    std::fs::write(&path, config)?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&path)
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("sluice did not start on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server { child, addr })
}

fn event(i: u64, channel_label: Option<String>) -> Value {
    let mut e = json!({
        "title": format!("High error rate on api-{}", i % 50), "text": "5xx ratio 4.2% over 5m",
        "severity": "warning", "status": "firing", "source": "bench", "service": format!("api-{}", i % 50),
        "environment": "production", "labels": {"team": "core", "region": "eu-west-1"},
    });
    if let Some(p) = channel_label {
        e["labels"]["probe"] = json!(p);
    } else if GROUPED.load(Ordering::Relaxed) {
        e["dedup_key"] = json!(format!("api-{}/{}", i % 50, i % 2000));
    }
    e
}

/// `--grouped`: the events are alerts on a grouped route.
static GROUPED: AtomicBool = AtomicBool::new(false);

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Closed loop: `concurrency` workers posting as fast as answers come back.
async fn throughput(
    addrs: &[SocketAddr],
    concurrency: usize,
    batch: usize,
    seconds: u64,
) -> (f64, usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_default();
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (http, accepted, errors) = (http.clone(), accepted.clone(), errors.clone());
        let url = format!("http://{}/v1/events", addrs[w % addrs.len()]);
        workers.push(tokio::spawn(async move {
            let mut i = w as u64 * 1_000_000;
            while Instant::now() < deadline {
                let body = if batch == 1 {
                    event(i, None).to_string()
                } else {
                    Value::Array((0..batch as u64).map(|k| event(i + k, None)).collect())
                        .to_string()
                };
                i += batch as u64;
                match http
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let _ = r.bytes().await;
                        accepted.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let secs = started.elapsed().as_secs_f64();
    (
        accepted.load(Ordering::Relaxed) as f64 / secs,
        errors.load(Ordering::Relaxed) as usize,
    )
}

/// Open loop: one request every 1/rate seconds, whatever the answers do; latency per request.
async fn fixed_rate(addrs: &[SocketAddr], rate: u64, seconds: u64) -> Vec<f64> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap_or_default();
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = rate * seconds;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        ticker.tick().await;
        let http = http.clone();
        let url = format!("http://{}/v1/events", addrs[i as usize % addrs.len()]);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = matches!(http.post(&url).bearer_auth(KEY).json(&event(i, None)).send().await,
                              Ok(r) if r.status().as_u16() == 202);
            ok.then(|| t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(Some(ms)) = t.await {
            lat.push(ms);
        }
    }
    lat.sort_by(f64::total_cmp);
    lat
}

/// Ingest → simulator receives chat.postMessage, one probe at a time to a fresh channel so
/// no rate limit applies.
async fn end_to_end(addr: SocketAddr, sim: &Simulator, probes: usize) -> Vec<f64> {
    let http = reqwest::Client::new();
    let mut lat = Vec::new();
    for i in 0..probes {
        let label = format!("p{i}");
        // Counted before sending: delivery can beat the 202 back to us.
        let before = sim.messages("probe").len();
        let t = Instant::now();
        let r = http
            .post(format!("http://{addr}/v1/events"))
            .bearer_auth(KEY)
            .json(&event(i as u64, Some(label.clone())))
            .send()
            .await;
        if !matches!(&r, Ok(r) if r.status().as_u16() == 202) {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while sim.messages("probe").len() <= before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        // Stay under the 1/s per-channel limit so this measures latency, not spacing.
        tokio::time::sleep(Duration::from_millis(1050)).await;
    }
    lat.sort_by(f64::total_cmp);
    lat
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    GROUPED.store(args.grouped, Ordering::Relaxed);
    let bin = match args.sluice {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("sluice"),
    };
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = TempDir(dir);
    let db = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
    // The benchmark routes to many channels by label; they appear on first use.
    let sim = Simulator::new(SimConfig {
        auto_create_channels: true,
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse()?).await?;
    let mut servers = Vec::new();
    for n in 0..args.replicas {
        servers.push(start_server(
            &bin,
            dir.path(),
            sim_run.addr,
            &db,
            &args.durability,
            n,
        )?);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backend = if db.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "sluice-bench: {} replica(s), {backend} ({}), concurrency {}, {} cores",
        args.replicas,
        args.durability,
        args.concurrency,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("rss idle:                  {:>8.1} MB", servers[0].rss_mb());

    let e2e = end_to_end(addrs[0], &sim, 20).await;
    println!(
        "end-to-end ingest→Slack:   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} probes)",
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.99),
        e2e.len()
    );

    let (single, err1) = throughput(&addrs, args.concurrency, 1, args.seconds).await;
    println!("ingest, 1 event/request:   {single:>8.0} events/s   ({err1} errors)");
    println!("rss under load:            {:>8.1} MB", servers[0].rss_mb());
    let (batched, err10) = throughput(&addrs, args.concurrency, 10, args.seconds).await;
    println!("ingest, 10 events/request: {batched:>8.0} events/s   ({err10} errors)");

    let lat = fixed_rate(&addrs, args.rate, args.seconds.min(10)).await;
    println!(
        "ingest latency at {} ev/s:  p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms   ({} ok)",
        args.rate,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len()
    );
    println!("rss after load:            {:>8.1} MB", servers[0].rss_mb());
    drop(servers);
    sim_run.shutdown();
    Ok(())
}
