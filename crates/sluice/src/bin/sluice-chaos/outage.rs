//! `--scenario outage`: Slack is down (503 to every call) for a minute under load, then answers 429 with a
//! Retry-After to every call for a while. Every acknowledged event must still reach Slack once, in order per
//! channel, and no call may go to a rate key (a channel for `chat.postMessage`, the method otherwise, as Slack
//! counts them) before the Retry-After Slack gave for that key has run out.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use sluice_sim::Call;

use crate::{load, tally, Args, Rig};

/// Calls that arrive this soon after a 429 to the same key were already on the wire when it was answered (a
/// method's calls come from several lanes at once); they are not counted as ignoring it.
const IN_FLIGHT_MS: u64 = 250;
/// Slack's Retry-After is in whole seconds and the time is taken on arrival on both sides: a call this close to
/// the end of the wait is on time.
const EDGE_MS: u64 = 50;

/// Calls made to a key while a Retry-After answered for that key was still running.
pub fn early_calls(calls: &[Call]) -> usize {
    let key = |c: &Call| {
        if c.method == "chat.postMessage" {
            format!("{}:{}", c.method, c.channel.as_deref().unwrap_or(""))
        } else {
            c.method.clone()
        }
    };
    // The time each key may be called again, and when it was told so.
    let mut told: HashMap<String, (u64, u64)> = HashMap::new();
    let mut early = 0;
    for c in calls {
        let k = key(c);
        if let Some(&(at, until)) = told.get(&k) {
            if c.at_ms > at + IN_FLIGHT_MS && c.at_ms + EDGE_MS < until {
                early += 1;
            }
        }
        if c.status == 429 {
            let until = c.at_ms + c.retry_after.unwrap_or(0) * 1000;
            told.insert(k, (c.at_ms, until));
        }
    }
    early
}

pub async fn run(args: &Args) -> anyhow::Result<bool> {
    let rig = Rig::up(args).await?;
    let sim_addr = rig.sim_run.addr;
    let (outage_at, outage, storm, retry_after) = (
        args.outage_at,
        args.outage_seconds,
        args.storm_seconds,
        args.retry_after,
    );
    let faults = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let set = |body: serde_json::Value| {
            let http = http.clone();
            async move {
                http.post(format!("http://{sim_addr}/sim/faults"))
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?;
                anyhow::Ok(())
            }
        };
        tokio::time::sleep(Duration::from_secs(outage_at)).await;
        set(json!({"outage_secs": outage})).await?;
        tokio::time::sleep(Duration::from_secs(outage + 10)).await;
        set(json!({"storm_secs": storm, "retry_after": retry_after})).await?;
        anyhow::Ok(())
    });
    let load = load(args.rate, args.seconds, args.channels, rig.addr).await?;
    faults.await??;
    let refused = load.sent.iter().filter(|s| s.status != 202).count();
    let t = tally(&rig.sim, &load, Duration::from_secs(args.drain_seconds)).await;
    let calls = rig.sim.calls();
    let unavailable = calls.iter().filter(|c| c.status == 503).count();
    let limited = calls.iter().filter(|c| c.status == 429).count();
    let early = early_calls(&calls);
    println!(
        "| {} | {} ev/s × {} s over {} channels | {outage} s outage + {storm} s of 429 (Retry-After {retry_after} s) | {} acknowledged | {refused} refused | {unavailable} calls answered 503, {limited} answered 429 | lost {} | posted twice {} | channels out of order {} | calls before Retry-After {early} | drained after {:.0} s |",
        rig.backend(),
        args.rate,
        args.seconds,
        args.channels,
        load.acked.len(),
        t.lost,
        t.twice,
        t.out_of_order,
        t.drained_after.as_secs_f64(),
    );
    rig.down();
    let ok = !t.broken() && early == 0 && refused == 0;
    if !ok {
        eprintln!(
            "chaos: lost {}, posted twice {}, out of order {}, early calls {early}, refused {refused}",
            t.lost, t.twice, t.out_of_order
        );
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at_ms: u64, method: &str, channel: &str, status: u16, retry: Option<u64>) -> Call {
        serde_json::from_value(json!({
            "seq": at_ms, "at_ms": at_ms, "method": method, "channel": channel, "status": status,
            "ok": status == 200, "error": null, "retry_after": retry, "args": {}, "token": null
        }))
        .expect("a call")
    }

    #[test]
    fn a_call_to_the_same_key_inside_retry_after_is_early_and_others_are_not() {
        let calls = [
            call(1_000, "chat.postMessage", "C1", 429, Some(2)),
            call(1_100, "chat.postMessage", "C1", 200, None), // already in flight
            call(1_500, "chat.postMessage", "C2", 200, None), // another channel's key
            call(2_000, "chat.postMessage", "C1", 200, None), // early
            call(2_980, "chat.postMessage", "C1", 200, None), // on time, within the edge
            call(3_000, "chat.postMessage", "C1", 200, None),
        ];
        assert_eq!(early_calls(&calls), 1);
    }
}
