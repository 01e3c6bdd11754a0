//! The group commit alone: ingest throughput the way the HTTP layer drives it, without HTTP. C concurrent tasks,
//! each calling `ingest` with N events at a time, one outbox item each (or a group join), spread over 50 lanes.
//!
//! ```text
//! cargo run --release -p sluice-store --example ingest_throughput -- [URL] [TASKS] [CALLS_PER_TASK] [full|normal] \
//!     [events|alerts|grouped] [EVENTS_PER_CALL]
//! ```
//! URL defaults (also when empty) to a temporary SQLite file. `events`: plain events (no dedup key, the default);
//! `alerts`: new alerts, each its own dedup key, posting a card; `grouped`: new alerts on a route that groups them
//! by service (50 services), as `bench/peers.sh` sends them.

use std::time::Instant;

use serde_json::json;
use sluice_store::{
    open, Dedup, Durability, EventBody, Fate, GroupJoin, NewEvent, NewOutboxItem, StoreOptions,
};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Events,
    Alerts,
    Grouped,
}

fn event(kind: Kind, id: String, n: usize) -> NewEvent {
    let channel = format!("C{}", n % 50);
    let service = format!("api-{}", n % 50);
    let card = NewOutboxItem {
        lane: format!("T0SIM:{channel}"),
        team: "T0SIM".into(),
        channel: channel.clone(),
        method: "chat.postMessage".into(),
        args: json!({ "text": "disk almost full", "blocks": [] }),
        ref_post: false,
    };
    let dedup = |groups| Dedup {
        key: format!("bench:{id}"),
        window_ms: 300_000,
        resolves: false,
        on_open: vec![],
        refresh: vec![],
        reopen_window_ms: 3_600_000,
        on_reopen: vec![],
        groups,
        occurred_at_ms: None,
    };
    let (outbox, dedup) = match kind {
        Kind::Events => (vec![card], None),
        Kind::Alerts => (vec![card], Some(dedup(vec![]))),
        Kind::Grouped => (
            vec![],
            Some(dedup(vec![GroupJoin {
                key: format!("default:T0SIM:{channel}:{service}"),
                rule: "default".into(),
                lane: format!("T0SIM:{channel}"),
                team: "T0SIM".into(),
                channel,
                template: "default".into(),
                labels: vec![("service".into(), service.clone())],
                wait_ms: 30_000,
                interval_ms: 300_000,
                repeat_ms: 14_400_000,
            }])),
        ),
    };
    NewEvent {
        id,
        received_at_ms: 1_700_000_000_000,
        source: "bench".into(),
        body: EventBody::of(
            &json!({ "title": "disk almost full", "severity": "warning", "service": service, "labels": { "host": "db1" } }),
        ),
        fate: Fate::Queued {
            rules: vec!["default".into()],
        },
        outbox,
        dedup,
        inhibit: Default::default(),
        follow_up: None,
    }
}

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
    let kind = match args.get(5).map(String::as_str) {
        Some("alerts") => Kind::Alerts,
        Some("grouped") => Kind::Grouped,
        _ => Kind::Events,
    };
    let per_call: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(1);
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
                let batch = (0..per_call)
                    .map(|k| {
                        let n = (t * per_task + i) * per_call + k;
                        event(kind, format!("{run}-{t}-{i}-{k}"), n)
                    })
                    .collect();
                store.ingest(batch).await?;
            }
            Ok::<(), sluice_store::StoreError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = tasks * per_task * per_call;
    println!(
        "{}: {total} {kind:?} ({tasks} tasks x {per_task} calls x {per_call}, {durability:?}) in {secs:.2}s = {:.0} events/s",
        store.backend(),
        total as f64 / secs
    );
    Ok(())
}
