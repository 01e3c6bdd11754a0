//! `sluice check` refuses exactly what `sluice serve` refuses at start-up: for each configuration, whether `check`
//! passes and whether `server::start` starts agree.

use std::collections::BTreeMap;
use std::process::Command;

use sluice::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_exactly_what_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "xoxb-test").unwrap();
    std::fs::write(dir.path().join("empty-token"), "\n").unwrap();
    // Nothing listens on port 9: no case reaches Slack, or anything else.
    let base = format!(
        "[storage]\nurl = \"sqlite://{}/s.db\"\n[slack]\napi_base = \"http://127.0.0.1:9/api/\"\n",
        dir.path().display()
    );
    let cases: Vec<(&str, String, bool)> = vec![
        ("an empty file", String::new(), false),
        (
            "an unset bot_token_env",
            format!("{base}bot_token_env = \"UNSET_TOKEN\"\n"),
            false,
        ),
        (
            "an empty token file",
            format!("{base}bot_token_file = \"empty-token\"\n"),
            false,
        ),
        (
            "a token with a line break inside",
            format!("{base}bot_token_env = \"BROKEN_TOKEN\"\n"),
            false,
        ),
        (
            "a token from the environment",
            format!("{base}bot_token_env = \"SET_TOKEN\"\n"),
            true,
        ),
        (
            "a token file",
            format!("{base}bot_token_file = \"token\"\n"),
            true,
        ),
    ];
    let env = BTreeMap::from([
        ("SET_TOKEN".to_string(), "xoxb-env".to_string()),
        ("BROKEN_TOKEN".to_string(), "xoxb-a\nb".to_string()),
    ]);
    for (name, text, starts) in cases {
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, &text).unwrap();
        let check = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["check", "--config"])
            .arg(&path)
            .env_remove("SLUICE_SLACK_BOT_TOKEN")
            .env_remove("UNSET_TOKEN")
            .envs(&env)
            .output()
            .unwrap();
        let served = match Config::load(&path, &env) {
            Err(_) => false,
            Ok(cfg) => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                match sluice::server::start(cfg, listener).await {
                    Ok(running) => {
                        running.stop().await;
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        assert_eq!(served, starts, "{name}: serve");
        assert_eq!(
            check.status.success(),
            starts,
            "{name}: check said {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}
