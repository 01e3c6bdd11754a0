//! `--scenario abuse`: beside a steady valid load, clients that hold the server's resources without ever finishing
//! a request: bodies trickled at one byte a second to the unauthenticated endpoints (a hook and the GitHub source,
//! whose body must be read whole before its signature can be checked), headers trickled at one byte a second
//! (slowloris), and thousands of keep-alive connections left idle after one request. Each attacker reconnects a
//! second after the server closes it, for as long as the abuse lasts. With the server's default limits, valid
//! requests must keep getting 202 fast, every acknowledged event must still reach Slack once, and memory must stay
//! bounded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{bump, load, metric, quantile, statuses, tally, Args, Counter, Rig, HOOK, HOOK_SECRET};

/// How valid requests must fare while the abuse lasts.
const P99_TARGET: Duration = Duration::from_millis(100);
/// How far the server's resident memory may grow under the abuse.
const RSS_LIMIT_KB: u64 = 512 * 1024;

#[derive(Default)]
struct Seen {
    connections: Counter,
    connect_failed: Counter,
    answered_408: Counter,
    answered_503: Counter,
    answered_other: Counter,
    closed_silently: Counter,
}

impl Seen {
    fn classify(&self, got: &[u8]) {
        let c = if got.starts_with(b"HTTP/1.1 408") {
            &self.answered_408
        } else if got.starts_with(b"HTTP/1.1 503") {
            &self.answered_503
        } else if got.is_empty() {
            &self.closed_silently
        } else {
            &self.answered_other
        };
        bump(c);
    }

    fn row(&self) -> String {
        let n = |c: &Counter| c.load(Ordering::Relaxed);
        format!(
            "{} connections ({} not accepted): {} answered 408, {} answered 503, {} other answers, {} closed",
            n(&self.connections),
            n(&self.connect_failed),
            n(&self.answered_408),
            n(&self.answered_503),
            n(&self.answered_other),
            n(&self.closed_silently),
        )
    }
}

/// What an attacker sends, and how.
#[derive(Clone, Copy)]
enum Attack {
    /// The head at once, then the body one byte a second.
    SlowBody(&'static str),
    /// The head one byte a second, never finished.
    Slowloris,
    /// One small request, then nothing.
    Idle,
}

async fn attacker(addr: SocketAddr, attack: Attack, until: Instant, seen: Arc<Seen>) {
    while Instant::now() < until {
        let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await
        else {
            bump(&seen.connect_failed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        bump(&seen.connections);
        let mut trickle: Vec<u8> = Vec::new();
        let opened = match attack {
            Attack::SlowBody(path) => {
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nX-GitHub-Event: ping\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100000\r\n\r\n"
                );
                trickle = vec![b' '; 100_000];
                s.write_all(head.as_bytes()).await
            }
            Attack::Slowloris => {
                trickle = b"POST /v1/events HTTP/1.1\r\nHost: sluice\r\nX-Padding: "
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(b'a', 100_000))
                    .collect();
                Ok(())
            }
            Attack::Idle => {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: sluice\r\n\r\n")
                    .await
            }
        };
        if opened.is_err() {
            seen.classify(b"");
            continue;
        }
        let (mut r, mut w) = s.split();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut next = trickle.into_iter();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let mut answered_healthz = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if Instant::now() >= until {
                        break;
                    }
                    if let Some(b) = next.next() {
                        if w.write_all(&[b]).await.is_err() {
                            break;
                        }
                    }
                }
                n = r.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // An idle client's one answer is expected; what comes after it is the server's word.
                        if matches!(attack, Attack::Idle) && !answered_healthz {
                            answered_healthz = true;
                        } else {
                            got.extend_from_slice(&buf[..n]);
                        }
                    }
                }
            }
        }
        if Instant::now() < until {
            seen.classify(&got);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The server's resident memory, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub async fn run(args: &Args) -> anyhow::Result<bool> {
    let rig = Rig::up(args).await?;
    let pid = rig.pid();
    let addr = rig.addr;
    let abuse_from = Duration::from_secs(args.abuse_at);
    let abuse_to = Duration::from_secs(args.seconds.saturating_sub(args.abuse_at));
    let started = Instant::now();

    let done = Arc::new(AtomicBool::new(false));
    let rss: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let sampler = {
        let (done, rss) = (done.clone(), rss.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = rss_kb(pid) {
                    rss.lock().expect("rss").push((started.elapsed(), kb));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let kinds = [
        ("slow bodies", args.slow_bodies),
        ("slowloris", args.slowloris),
        ("idle", args.idle),
    ];
    let seen: Vec<Arc<Seen>> = kinds.iter().map(|_| Arc::default()).collect();
    let attackers = {
        let seen = seen.clone();
        let counts: Vec<usize> = kinds.iter().map(|k| k.1).collect();
        tokio::spawn(async move {
            tokio::time::sleep(abuse_from).await;
            let until = started + abuse_to;
            let hook = format!("/hooks/{HOOK}/{HOOK_SECRET}");
            let hook: &'static str = Box::leak(hook.into_boxed_str());
            let mut tasks = Vec::new();
            for (k, (&n, seen)) in counts.iter().zip(&seen).enumerate() {
                for i in 0..n {
                    let attack = match k {
                        0 if i % 2 == 0 => Attack::SlowBody(hook),
                        0 => Attack::SlowBody("/v1/sources/github"),
                        1 => Attack::Slowloris,
                        _ => Attack::Idle,
                    };
                    tasks.push(tokio::spawn(attacker(addr, attack, until, seen.clone())));
                    // Open them over about a second, as a real flood would, not in one burst of SYNs.
                    if i % 100 == 99 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    let load = load(args.rate, args.seconds, args.channels, addr).await?;
    let _ = attackers.await;
    let refused_by_cap = metric(addr, "sluice_http_connections_refused_total").await;
    let evicted = metric(addr, "sluice_http_connections_evicted_total").await;
    let shed = metric(addr, "sluice_http_shed_total").await;
    let t = tally(&rig.sim, &load, Duration::from_secs(args.drain_seconds)).await;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;

    let during: Vec<_> = load
        .sent
        .iter()
        .filter(|s| s.at >= abuse_from && s.at < abuse_to)
        .copied()
        .collect();
    let mut took: Vec<Duration> = during.iter().map(|s| s.took).collect();
    let (p50, p99, max) = (
        quantile(&mut took, 0.50),
        quantile(&mut took, 0.99),
        quantile(&mut took, 1.0),
    );
    let not_accepted = load.sent.iter().filter(|s| s.status != 202).count();
    let rss = rss.lock().expect("rss").clone();
    let before = rss
        .iter()
        .filter(|(at, _)| *at < abuse_from)
        .map(|r| r.1)
        .max()
        .unwrap_or(0);
    let peak = rss.iter().map(|r| r.1).max().unwrap_or(0);
    let after = rss.last().map_or(0, |r| r.1);
    println!(
        "| {} | {} ev/s × {} s, abuse from {} s to {} s | {} slow bodies, {} slowloris, {} idle | valid: {} sent during the abuse, p50 {} ms, p99 {} ms, max {} ms; {} of {} not answered 202 {:?} | RSS {} MB before, {} MB peak, {} MB at the end | {evicted} idle connections closed for newcomers, {refused_by_cap} connections refused at the cap, {shed} requests shed | lost {} | posted twice {} | out of order {} |",
        rig.backend(),
        args.rate,
        args.seconds,
        abuse_from.as_secs(),
        abuse_to.as_secs(),
        args.slow_bodies,
        args.slowloris,
        args.idle,
        during.len(),
        p50.as_millis(),
        p99.as_millis(),
        max.as_millis(),
        not_accepted,
        load.sent.len(),
        statuses(&load.sent),
        before / 1024,
        peak / 1024,
        after / 1024,
        t.lost,
        t.twice,
        t.out_of_order,
    );
    for ((name, _), seen) in kinds.iter().zip(&seen) {
        eprintln!("chaos: {name}: {}", seen.row());
    }
    rig.down();
    let ok = !t.broken() && not_accepted == 0 && p99 <= P99_TARGET && peak <= RSS_LIMIT_KB;
    if !ok {
        eprintln!(
            "chaos: valid requests not accepted {not_accepted}, p99 {} ms (target {} ms), RSS peak {} MB (limit {} MB)",
            p99.as_millis(),
            P99_TARGET.as_millis(),
            peak / 1024,
            RSS_LIMIT_KB / 1024
        );
    }
    Ok(ok)
}
