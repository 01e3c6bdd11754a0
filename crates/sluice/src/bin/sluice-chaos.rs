//! `sluice-chaos`: the crash soak behind "nothing lost, nothing posted twice, order kept".
//!
//! Runs the Slack simulator in-process and `sluice serve` as a child process on loopback, sends events at a steady
//! rate over many channels, kills the server with SIGKILL at random moments and restarts it at once, then waits for
//! every acknowledged event to reach Slack and counts: acknowledged but never posted (lost), posted more than once,
//! and channels whose posts came out of order. It exits non-zero if any of the three is not zero. Bounded in time.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rand::Rng;
use serde_json::{json, Value};
use sluice_sim::{SimConfig, Simulator};

#[derive(Parser)]
#[command(
    about = "Crash soak: SIGKILL sluice under load and count what was lost, doubled or reordered"
)]
struct Args {
    /// Events per second offered.
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Channels the events are spread over (one route each).
    #[arg(long, default_value_t = 400)]
    channels: usize,
    /// SIGKILLs, at random moments of the run, each followed by an immediate restart.
    #[arg(long, default_value_t = 10)]
    kills: usize,
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

fn config(
    dir: &Path,
    port: u16,
    sim: SocketAddr,
    db: &str,
    channels: usize,
) -> anyhow::Result<PathBuf> {
    std::fs::write(dir.join("token"), sluice_sim::DEFAULT_TOKEN)?;
    std::fs::write(dir.join("key"), KEY)?;
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
# undocumented cap) would make the drain, not the crashes, the subject of the run.
post_message_per_minute = 30000
[[api_key]]
name = "chaos"
key_file = "key"
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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

    // The kills, at random moments of the run (not in its first or last second).
    let mut rng = rand::rng();
    let mut kill_at: Vec<u64> = (0..args.kills)
        .map(|_| rng.random_range(1_000..(args.seconds * 1000).saturating_sub(1_000).max(1_001)))
        .collect();
    kill_at.sort();
    let killer = {
        let server = server.clone();
        let (bin, cfg) = (bin.clone(), cfg.clone());
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

    // The load: one event every 1/rate s, each to the next channel in turn, titled by its sequence number.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let total = args.rate * args.seconds;
    let mut sends = Vec::new();
    for seq in 0..total {
        let due = Duration::from_nanos(seq * 1_000_000_000 / args.rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let (http, acked, refused) = (http.clone(), acked.clone(), refused.clone());
        let ch = format!("c{:03}", seq as usize % args.channels);
        sends.push(tokio::spawn(async move {
            let e = json!({"title": format!("seq-{seq:08}"), "severity": "warning", "status": "firing",
                           "source": "chaos", "service": "svc", "labels": {"ch": ch}});
            let r = http
                .post(format!("http://{addr}/v1/events"))
                .bearer_auth(KEY)
                .json(&e)
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 202 => {
                    let v: Value = r.json().await.unwrap_or_default();
                    if let Some(id) = v["id"].as_str() {
                        acked.lock().expect("acked").push((seq, id.to_string()));
                    }
                }
                _ => {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for s in sends {
        let _ = s.await;
    }
    killer.await??;
    let acked = acked.lock().expect("acked").clone();
    let by_id: HashMap<&str, u64> = acked.iter().map(|(seq, id)| (id.as_str(), *seq)).collect();

    // Drain: wait for every acknowledged event to reach Slack.
    let deadline = Instant::now() + Duration::from_secs(args.drain_seconds);
    let drained_at = loop {
        let seen: usize = posts(&sim)
            .values()
            .map(|ids| {
                ids.iter()
                    .filter(|id| by_id.contains_key(id.as_str()))
                    .count()
            })
            .sum();
        if seen >= acked.len() || Instant::now() > deadline {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let posted = posts(&sim);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for ids in posted.values() {
        for id in ids {
            *count.entry(id.as_str()).or_default() += 1;
        }
    }
    let lost = acked
        .iter()
        .filter(|(_, id)| !count.contains_key(id.as_str()))
        .count();
    let twice: usize = acked
        .iter()
        .map(|(_, id)| {
            count
                .get(id.as_str())
                .copied()
                .unwrap_or(0)
                .saturating_sub(1)
        })
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
    let backend = if db.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "| {backend} | {} ev/s × {} s over {} channels | {} kills | {} acknowledged | {} refused while down | lost {lost} | posted twice {twice} | channels out of order {out_of_order} | drained after {:.0} s |",
        args.rate,
        args.seconds,
        args.channels,
        args.kills,
        acked.len(),
        refused.load(std::sync::atomic::Ordering::Relaxed),
        drained_at.as_secs_f64(),
    );
    {
        let mut s = server.lock().expect("server lock");
        let _ = s.kill();
        let _ = s.wait();
    }
    sim_run.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    if lost > 0 || twice > 0 || out_of_order > 0 {
        bail!("lost {lost}, posted twice {twice}, channels out of order {out_of_order}");
    }
    Ok(())
}
