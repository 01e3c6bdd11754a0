//! Running `sluice` as an operator would: the annotated example config passes `check`, SIGHUP does not stop
//! `serve` (it reloads: `reload.rs`), and SIGTERM stops it after draining, saying so.

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

/// SIGTERM stops `serve` cleanly and it says so: which signal, the drain, the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_says_so() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_run) = start_sim().await;
    let cfg = write_config(dir.path(), sim_run.addr, "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("SLUICE_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("sluice listening on"), "{first}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{stderr}");
    for said in ["SIGTERM", "in-flight requests", "drained", "stopped"] {
        assert!(stderr.contains(said), "{said:?} not said:\n{stderr}");
    }
}
