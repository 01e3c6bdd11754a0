//! Serves the simulator with a few realistic messages, to look at the page at `/`:
//! `cargo run -p sluice-sim --example demo -- 127.0.0.1:3999 [http://127.0.0.1:8080]`.
//! With the second argument (where an app's `/slack/…` endpoints are), the buttons are live.

use serde_json::json;
use sluice_sim::{SimConfig, Simulator, DEFAULT_TOKEN};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".into())
        .parse()?;
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into(), "deploys".into()],
        webhooks: vec![("T0SIM/B0001/demo".into(), "deploys".into())],
        app_base_url: std::env::args().nth(2),
        ..SimConfig::default()
    });
    let running = sim.serve(addr).await?;
    let http = reqwest::Client::new();
    let api = |method: &str| format!("{}{method}", running.api_url());

    let alert = json!({
        "channel": "alerts",
        "text": "FIRING: DiskFull on db-1",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "🔥 DiskFull on db-1"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*db-1* root volume is at *97%* and rising. <https://grafana.example.com/d/1|Dashboard>"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                {"type": "mrkdwn", "text": "*Service*\npostgres"}
            ]},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "ack", "style": "primary", "text": {"type": "plain_text", "text": "Acknowledge"}, "value": "a1"},
                {"type": "button", "action_id": "silence", "text": {"type": "plain_text", "text": "Silence 1h"}, "value": "a1"},
                {"type": "button", "action_id": "escalate", "style": "danger", "text": {"type": "plain_text", "text": "Escalate"}, "value": "a1"}
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "alertmanager · fingerprint `9f2c` · <!subteam^S0001|@oncall>"}]}
        ]
    });
    let posted: serde_json::Value = http
        .post(api("chat.postMessage"))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&alert)
        .send()
        .await?
        .json()
        .await?;
    let ts = posted["ts"].clone();
    http.post(api("chat.postMessage"))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&json!({"channel": "alerts", "thread_ts": ts, "text": "_alice_ acknowledged"}))
        .send()
        .await?;
    let mut updated = alert.clone();
    updated["ts"] = ts.clone();
    updated["blocks"][1]["text"]["text"] =
        json!("*db-1* root volume is at *97%*. Acknowledged by <@U0001>.");
    http.post(api("chat.update"))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&updated)
        .send()
        .await?;
    http.post(api("reactions.add"))
        .bearer_auth(DEFAULT_TOKEN)
        .json(&json!({"channel": "alerts", "timestamp": ts, "name": "eyes"}))
        .send()
        .await?;
    http.post(running.webhook_url("T0SIM/B0001/demo"))
        .json(&json!({"text": "Deployed *api* v1.4.2 to production"}))
        .send()
        .await?;

    println!("Slack simulator on {} (Ctrl-C to stop)", running.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
