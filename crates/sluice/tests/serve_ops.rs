//! Running `sluice` as an operator would: the annotated example config passes `check`, and SIGHUP does not stop
//! `serve`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::proc::*;

#[test]
fn the_annotated_example_config_passes_check() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sluice.example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "--config"])
        .arg(&example)
        .env("SLUICE_SLACK_BOT_TOKEN", "xoxb-example")
        .env(
            "SLUICE_SLACK_SIGNING_SECRET",
            "0123456789abcdef0123456789abcdef",
        )
        .env("SLUICE_KEY_CI", "ci-key-example")
        .env("SLUICE_KEY_ADMIN", "admin-key-example")
        .env("SLUICE_HOOK_SECRET", "hook-secret-0123456789abcdef")
        .output()
        .expect("run sluice check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check refused the example:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(": ok (0 warning(s))"),
        "no warnings either: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_does_not_stop_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, "");
    let mut sluice = start_sluice(&cfg);
    let status = Command::new("kill")
        .args(["-HUP", &sluice.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sluice.child.try_wait().unwrap().is_none(),
        "serve exited on SIGHUP"
    );
    let health = reqwest::get(format!("http://{}/healthz", sluice.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
