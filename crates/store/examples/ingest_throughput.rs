//! Measures ingest throughput the way the HTTP layer drives it: C concurrent tasks, each calling `ingest` with ONE
//! event at a time (with one outbox item, spread over 50 lanes).
//!
//! ```text
//! cargo run -p sluice-store --example ingest_throughput -- [URL] [TASKS] [EVENTS_PER_TASK] [full|normal]
//! ```
//! URL defaults (also when empty) to a temporary SQLite file.

use std::time::Instant;

use serde_json::json;
use sluice_store::{open, Durability, Fate, NewEvent, NewOutboxItem, StoreOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir()?;
    let url = args
        .get(1)
        .filter(|u| !u.is_empty())
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let tasks: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let per_task: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let durability = match args.get(4).map(String::as_str) {
        Some("normal") => Durability::Normal,
        _ => Durability::Full,
    };
    let store = open(
        &url,
        &StoreOptions {
            durability,
            max_connections: 40,
            migrate: true,
        },
    )
    .await?;
    let run = uuid::Uuid::now_v7();

    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let channel = format!("C{}", (t * per_task + i) % 50);
                let ev = NewEvent {
                    id: format!("{run}-{t}-{i}"),
                    received_at_ms: 1_700_000_000_000,
                    source: "bench".into(),
                    body: json!({ "title": "disk almost full", "severity": "warning", "labels": { "host": "db1" } }),
                    fate: Fate::Queued { rules: vec!["default".into()] },
                    outbox: vec![NewOutboxItem {
                        lane: format!("T0SIM:{channel}"),
                        team: "T0SIM".into(),
                        channel,
                        method: "chat.postMessage".into(),
                        args: json!({ "text": "disk almost full", "blocks": [] }),
                        ref_post: false,
                    }],
                    dedup: None,
                    inhibit: Default::default(),
                    follow_up: None,
                };
                store.ingest(vec![ev]).await?;
            }
            Ok::<(), sluice_store::StoreError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = tasks * per_task;
    println!(
        "{}: {total} events ({tasks} tasks x {per_task}, one event per ingest, {durability:?}) in {secs:.2}s = {:.0} events/s",
        store.backend(),
        total as f64 / secs
    );
    Ok(())
}
