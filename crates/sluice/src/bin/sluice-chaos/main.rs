//! `sluice-chaos`: the figures behind "nothing lost, nothing posted twice, nothing forged" (issue 15).
//!
//! Runs the Slack simulator in-process and `sluice serve` as a child process on loopback, offers a steady load of
//! events over many channels, and does one of three things to it:
//! - `crash` (default): SIGKILLs the server at random moments and restarts it at once;
//! - `outage`: Slack answers 503 to everything for a minute, then 429 with Retry-After to everything for a while;
//! - `abuse`: slow bodies, slowloris headers and thousands of idle connections against the same server.
//!
//! Then it waits for every acknowledged event to reach Slack and counts what matters: acknowledged but never posted
//! (lost), posted more than once, channels whose posts came out of order, calls made before a Retry-After ran out,
//! and (abuse) how fast valid requests were still answered. It exits non-zero when a promise was broken. Bounded in
//! time; loopback only.

mod abuse;
mod outage;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use rand::Rng;
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// SIGKILL and restart the server under load.
    Crash,
    /// A Slack outage (503) and then a 429 storm under load.
    Outage,
    /// Slow bodies, slowloris and idle connections beside valid load.
    Abuse,
}

#[derive(Parser)]
#[command(
    about = "Chaos runs against sluice on loopback: crashes, a Slack outage, abusive clients"
)]
struct Args {
    #[arg(long, value_enum, default_value_t = Scenario::Crash)]
    scenario: Scenario,
    /// Events per second offered.
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Channels the events are spread over (one route each).
    #[arg(long, default_value_t = 400)]
    channels: usize,
    /// crash: SIGKILLs, at random moments of the run, each followed by an immediate restart.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// outage: seconds into the load when Slack goes down.
    #[arg(long, default_value_t = 10)]
    outage_at: u64,
    /// outage: how long Slack answers 503 to every call.
    #[arg(long, default_value_t = 60)]
    outage_seconds: u64,
    /// outage: how long Slack then answers 429 to every call (starting 10 s after the outage ends).
    #[arg(long, default_value_t = 20)]
    storm_seconds: u64,
    /// outage: the Retry-After of the storm's 429s, in seconds.
    #[arg(long, default_value_t = 2)]
    retry_after: u64,
    /// abuse: connections trickling a request body at one byte a second.
    #[arg(long, default_value_t = 1024)]
    slow_bodies: usize,
    /// abuse: connections trickling request headers at one byte a second.
    #[arg(long, default_value_t = 500)]
    slowloris: usize,
    /// abuse: connections opened and left idle.
    #[arg(long, default_value_t = 5000)]
    idle: usize,
    /// abuse: seconds into the load when the abuse starts; it lasts until `seconds - abuse_at`.
    #[arg(long, default_value_t = 5)]
    abuse_at: u64,
    /// Storage URL; default a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// How long to wait for the backlog after the load ends.
    #[arg(long, default_value_t = 900)]
    drain_seconds: u64,
    /// The sluice binary; default the one next to this program.
    #[arg(long)]
    sluice: Option<PathBuf>,
}

const KEY: &str = "chaos-key";
/// The `[[hook]]` the abuse run trickles bodies into, and its URL secret.
const HOOK: &str = "cron";
const HOOK_SECRET: &str = "chaos-hook-secret";
/// The GitHub source's webhook secret: its bodies must be read whole before the signature can be checked.
const GITHUB_SECRET: &str = "chaos-github-secret";

fn config(
    dir: &Path,
    port: u16,
    sim: SocketAddr,
    db: &str,
    channels: usize,
) -> anyhow::Result<PathBuf> {
    std::fs::write(dir.join("token"), sluice_sim::DEFAULT_TOKEN)?;
    std::fs::write(dir.join("key"), KEY)?;
    std::fs::write(dir.join("hook"), HOOK_SECRET)?;
    std::fs::write(dir.join("github"), GITHUB_SECRET)?;
    let routes: String = (0..channels)
        .map(|i| {
            format!(
                "[[routing.rule]]\nname = \"c{i:03}\"\nmatch = {{ \"labels.ch\" = \"c{i:03}\" }}\nchannels = [\"c{i:03}\"]\n"
            )
        })
        .collect();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
log_format = "json"
[storage]
url = "{db}"
[slack]
api_base = "http://{sim}/api/"
bot_token_file = "token"
team_id = "T0SIM"
[slack.limits]
# The simulator's workspace takes what its per-channel limits allow; the default workspace pace (Slack's
# undocumented cap) would make the drain, not the faults, the subject of the run.
post_message_per_minute = 30000
[[api_key]]
name = "chaos"
key_file = "key"
scopes = ["events:write", "read"]
[[hook]]
name = "{HOOK}"
channel = "c000"
secret_file = "hook"
[[source]]
name = "github"
secret_file = "github"
{routes}"#
    );
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn start(bin: &Path, config: &Path, addr: SocketAddr) -> anyhow::Result<Child> {
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("sluice did not start on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

/// Every post's event id, in the order each channel shows them.
fn posts(sim: &Simulator) -> BTreeMap<String, Vec<String>> {
    sim.channels()
        .into_iter()
        .map(|c| {
            let ids = sim
                .messages(&c.id)
                .iter()
                .filter_map(|m| {
                    m.metadata.as_ref()?["event_payload"]["event_id"]
                        .as_str()
                        .map(String::from)
                })
                .collect();
            (c.name, ids)
        })
        .collect()
}

/// A running sluice with a simulator to post to: what every scenario starts from.
struct Rig {
    sim: Simulator,
    sim_run: sluice_sim::RunningSim,
    bin: PathBuf,
    cfg: PathBuf,
    dir: PathBuf,
    db: String,
    addr: SocketAddr,
    server: Arc<Mutex<Child>>,
}

impl Rig {
    async fn up(args: &Args) -> anyhow::Result<Rig> {
        let bin = match &args.sluice {
            Some(p) => p.clone(),
            None => std::env::current_exe()?.with_file_name("sluice"),
        };
        let dir = std::env::temp_dir().join(format!("sluice-chaos-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let db = args
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/chaos.db", dir.display()));
        let sim = Simulator::new(SimConfig {
            auto_create_channels: true,
            ..SimConfig::default()
        });
        let sim_run = sim.serve("127.0.0.1:0".parse()?).await?;
        // One port for every run of the server, so the senders need not follow it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let cfg = config(&dir, port, sim_run.addr, &db, args.channels)?;
        // A fresh database is migrated once, as an operator would; `serve` refuses one that is behind.
        let migrated = Command::new(&bin)
            .args(["migrate", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .status()
            .context("running sluice migrate")?;
        if !migrated.success() {
            bail!("sluice migrate failed");
        }
        let server = Arc::new(Mutex::new(start(&bin, &cfg, addr)?));
        Ok(Rig {
            sim,
            sim_run,
            bin,
            cfg,
            dir,
            db,
            addr,
            server,
        })
    }

    fn backend(&self) -> &'static str {
        if self.db.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    fn pid(&self) -> u32 {
        self.server.lock().expect("server lock").id()
    }

    fn down(self) {
        {
            let mut s = self.server.lock().expect("server lock");
            let _ = s.kill();
            let _ = s.wait();
        }
        self.sim_run.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One valid request of the load: when it was sent (since the load started), how long its answer took, and the
/// status (0 when no answer came).
#[derive(Clone, Copy)]
struct Sent {
    at: Duration,
    took: Duration,
    status: u16,
}

/// What the load saw: the events acknowledged (sequence number, event id) and every request's answer.
struct Load {
    acked: Vec<(u64, String)>,
    sent: Vec<Sent>,
    started: Instant,
}

/// Offers `rate` events a second for `seconds` s, each to the next channel in turn, titled by its sequence number.
async fn load(rate: u64, seconds: u64, channels: usize, addr: SocketAddr) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let started = Instant::now();
    let mut sends = Vec::new();
    for seq in 0..rate * seconds {
        let due = Duration::from_nanos(seq * 1_000_000_000 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let (http, acked, sent) = (http.clone(), acked.clone(), sent.clone());
        let ch = format!("c{:03}", seq as usize % channels);
        sends.push(tokio::spawn(async move {
            let e = json!({"title": format!("seq-{seq:08}"), "severity": "warning", "status": "firing",
                           "source": "chaos", "service": "svc", "labels": {"ch": ch}});
            let at = started.elapsed();
            let r = http
                .post(format!("http://{addr}/v1/events"))
                .bearer_auth(KEY)
                .json(&e)
                .send()
                .await;
            let took = started.elapsed() - at;
            let status = r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
            sent.lock().expect("sent").push(Sent { at, took, status });
            if let Ok(r) = r {
                if status == 202 {
                    let v: Value = r.json().await.unwrap_or_default();
                    if let Some(id) = v["id"].as_str() {
                        acked.lock().expect("acked").push((seq, id.to_string()));
                    }
                }
            }
        }));
    }
    for s in sends {
        let _ = s.await;
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    let sent = std::mem::take(&mut *sent.lock().expect("sent"));
    Ok(Load {
        acked,
        sent,
        started,
    })
}

/// What reached Slack of what was acknowledged.
struct Tally {
    lost: usize,
    twice: usize,
    out_of_order: usize,
    drained_after: Duration,
}

impl Tally {
    fn broken(&self) -> bool {
        self.lost > 0 || self.twice > 0 || self.out_of_order > 0
    }
}

/// Waits (up to `drain`) for every acknowledged event to reach the simulator, then counts.
async fn tally(sim: &Simulator, load: &Load, drain: Duration) -> Tally {
    let by_id: HashMap<&str, u64> = load
        .acked
        .iter()
        .map(|(seq, id)| (id.as_str(), *seq))
        .collect();
    let deadline = Instant::now() + drain;
    let drained_after = loop {
        let seen: usize = posts(sim)
            .values()
            .map(|ids| {
                ids.iter()
                    .filter(|id| by_id.contains_key(id.as_str()))
                    .count()
            })
            .sum();
        if seen >= load.acked.len() || Instant::now() > deadline {
            break load.started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let posted = posts(sim);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for ids in posted.values() {
        for id in ids {
            *count.entry(id.as_str()).or_default() += 1;
        }
    }
    let lost = load
        .acked
        .iter()
        .filter(|(_, id)| !count.contains_key(id.as_str()))
        .count();
    let twice = load
        .acked
        .iter()
        .map(|(_, id)| count.get(id.as_str()).map_or(0, |n| n.saturating_sub(1)))
        .sum();
    let out_of_order = posted
        .values()
        .filter(|ids| {
            let seqs: Vec<u64> = ids
                .iter()
                .filter_map(|id| by_id.get(id.as_str()).copied())
                .collect();
            seqs.windows(2).any(|w| w[0] > w[1])
        })
        .count();
    Tally {
        lost,
        twice,
        out_of_order,
        drained_after,
    }
}

async fn crash(args: &Args) -> anyhow::Result<bool> {
    let rig = Rig::up(args).await?;
    // The kills, at random moments of the run (not in its first or last second).
    let mut rng = rand::rng();
    let mut kill_at: Vec<u64> = (0..args.kills)
        .map(|_| rng.random_range(1_000..(args.seconds * 1000).saturating_sub(1_000).max(1_001)))
        .collect();
    kill_at.sort();
    let killer = {
        let server = rig.server.clone();
        let (bin, cfg, addr) = (rig.bin.clone(), rig.cfg.clone(), rig.addr);
        tokio::spawn(async move {
            let started = Instant::now();
            for at in kill_at {
                let wait = Duration::from_millis(at).saturating_sub(started.elapsed());
                tokio::time::sleep(wait).await;
                // Kill and restart off the runtime's workers, which keep sending meanwhile.
                let (server, bin, cfg) = (server.clone(), bin.clone(), cfg.clone());
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let mut s = server.lock().map_err(|_| anyhow::anyhow!("server lock"))?;
                    let _ = s.kill();
                    let _ = s.wait();
                    *s = start(&bin, &cfg, addr).context("restarting sluice")?;
                    Ok(())
                })
                .await??;
            }
            anyhow::Ok(())
        })
    };
    let load = load(args.rate, args.seconds, args.channels, rig.addr).await?;
    killer.await??;
    let refused = load.sent.iter().filter(|s| s.status != 202).count();
    let t = tally(&rig.sim, &load, Duration::from_secs(args.drain_seconds)).await;
    println!(
        "| {} | {} ev/s × {} s over {} channels | {} kills | {} acknowledged | {refused} refused while down | lost {} | posted twice {} | channels out of order {} | drained after {:.0} s |",
        rig.backend(),
        args.rate,
        args.seconds,
        args.channels,
        args.kills,
        load.acked.len(),
        t.lost,
        t.twice,
        t.out_of_order,
        t.drained_after.as_secs_f64(),
    );
    rig.down();
    if t.broken() {
        eprintln!(
            "chaos: lost {}, posted twice {}, channels out of order {}",
            t.lost, t.twice, t.out_of_order
        );
    }
    Ok(!t.broken())
}

/// The `q` quantile of `values` (sorted here), or zero for none.
fn quantile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    let i = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[i.min(values.len() - 1)]
}

/// Counts what other counters say without parsing a Prometheus library: `name{…} value` lines summed.
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let Ok(r) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return f64::NAN;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // A counter never incremented is not on the page: zero, not the empty sum's -0.
        .fold(0.0, |a, b| a + b)
}

/// How often the load was answered, counted by status.
fn statuses(sent: &[Sent]) -> BTreeMap<u16, usize> {
    let mut by = BTreeMap::new();
    for s in sent {
        *by.entry(s.status).or_default() += 1;
    }
    by
}

/// A count shared by the abuse tasks.
type Counter = Arc<AtomicU64>;

fn bump(c: &Counter) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ok = match args.scenario {
        Scenario::Crash => crash(&args).await?,
        Scenario::Outage => outage::run(&args).await?,
        Scenario::Abuse => abuse::run(&args).await?,
    };
    if !ok {
        bail!("a promise was broken (see the row above)");
    }
    Ok(())
}
