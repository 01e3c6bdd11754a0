//! Signed slash-command POSTs on loopback against (a) the real `/slack/commands` router with a
//! trivial handler and `MemoryOnce`, and (b) a bare axum server that only verifies the HMAC
//! and answers 200. Prints req/s, p50/p99 latency and the process RSS after each phase.
//!
//! `cargo run --release -p sluice-inbound --example slash_bench -- [seconds] [concurrency]`
//! (defaults 10 s, 32). Client and servers share one process, so RSS includes the load
//! generator; the difference between the phases is what the router adds.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use sluice_inbound::models::SlashCommand;
use sluice_inbound::{routes, Ctx, Inbound, InboundConfig, MemoryOnce, Registry, Reply};
use sluice_slack::Client;
use sluice_slack_wire::{signature, Secret};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "bench-signing-secret";

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn serve(app: Router) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/slack/commands"))
}

fn real_router() -> Result<Router, Box<dyn std::error::Error>> {
    let mut registry = Registry::new();
    registry.command("/bench", |ctx: Ctx<SlashCommand>| async move {
        Ok(Some(Reply::ephemeral(format!("ok {}", ctx.payload.text))))
    });
    let slack = Client::new(
        "http://127.0.0.1:9/api/",
        Secret::new("xoxb-bench"),
        Duration::from_secs(1),
    )?;
    let inbound = Inbound::new(
        InboundConfig::new(Secret::new(SECRET)),
        registry,
        Arc::new(MemoryOnce::new()),
        Arc::new(sluice_inbound::NoOutbox),
        slack,
    );
    Ok(routes(Arc::new(inbound)))
}

fn bare_router() -> Router {
    let secret = Secret::new(SECRET);
    Router::new().route(
        "/slack/commands",
        post(move |headers: HeaderMap, body: Bytes| {
            let secret = secret.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                match signature::verify(
                    &secret,
                    h("x-slack-request-timestamp"),
                    h("x-slack-signature"),
                    &body,
                    now_unix(),
                ) {
                    Ok(()) => StatusCode::OK,
                    Err(_) => StatusCode::UNAUTHORIZED,
                }
            }
        }),
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn load(url: &str, seconds: u64, concurrency: usize) -> (usize, usize, Vec<Duration>) {
    let client = reqwest::Client::new();
    let secret = Secret::new(SECRET);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let secret = secret.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let body = format!(
                    "command=%2Fbench&text=w{worker}n{n}&user_id=U1&channel_id=C1&team_id=T1&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2Fx&trigger_id=1.2.3"
                );
                let ts = now_unix().to_string();
                let sig = signature::sign(&secret, &ts, body.as_bytes());
                let t0 = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-slack-request-timestamp", ts)
                    .header("x-slack-signature", sig)
                    .body(body)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.push(t0.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    all.sort();
    (all.len(), errors, all)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    println!("slash_bench: {seconds} s per phase, concurrency {concurrency}");
    println!("RSS at start: {} KiB", rss_kib());
    for (name, app) in [
        ("bare HMAC + 200", bare_router()),
        ("sluice /slack/commands", real_router()?),
    ] {
        let url = serve(app).await?;
        let (ok, errors, lat) = load(&url, seconds, concurrency).await;
        println!(
            "{name:>24}: {:>9.0} req/s  p50 {:>8.3} ms  p99 {:>8.3} ms  errors {errors}  RSS {} KiB",
            ok as f64 / seconds as f64,
            pct(&lat, 0.50).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            rss_kib(),
        );
    }
    Ok(())
}
