//! The `sluice` command line as a user types it: `check`, `send`, `dlq list|replay`.

use std::process::Command;
use std::time::{Duration, Instant};

use sluice_sim::{Faults, SimConfig, Simulator};

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

#[test]
fn check_names_the_line_and_the_fix_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[slack]\nbot_token = \"xoxb-leaked\"\n\n[[routing.rule]]\nname = \"bad\"\nmatch = { service = { regex = \"(\" } }\nchannels = [\"x\"]\n",
    )
    .unwrap();
    let out = sluice()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("line 5"), "inline token not located: {text}");
    assert!(text.contains("bot_token_env"), "no fix offered: {text}");
    assert!(text.contains("regex"), "bad regex not reported: {text}");
    assert!(
        !text.contains("xoxb-leaked"),
        "the secret was echoed: {text}"
    );
}

/// Issue 14: `check` reports every structural problem in one run, each with its line and fix.
#[test]
fn check_reports_three_structural_problems_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\nmax_in_flite = 10\n\n[storage]\nretention_hours = -1\n\n[slack]\ntimeout_ms = \"10s\"\n",
    )
    .unwrap();
    let out = sluice()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for want in [
        "line 3: unknown field `max_in_flite`",
        "did you mean `max_in_flight`?",
        "line 6:",
        "-1",
        "line 9:",
        "\"10s\"",
        "3 error(s)",
    ] {
        assert!(text.contains(want), "{want:?} missing: {text}");
    }
}

#[test]
fn check_refuses_broken_noise_control_with_its_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[routing.rule]]\nname = \"alerts\"\nchannels = [\"alerts\"]\ngroup_by = [\"service\"]\ngroup_interval = \"every now and then\"\n\n[[routing.rule]]\nname = \"deploys\"\nchannels = [\"deploys\"]\nstorm = { above = 100 }\n",
    )
    .unwrap();
    let out = sluice()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("line 8") && text.contains("is not a duration") && text.contains("\"5m\""),
        "bad duration not located or no fix: {text}"
    );
    assert!(
        text.contains("line 13")
            && text.contains("has no `group_by`")
            && text.contains("group_by = [\"service\"]"),
        "storm without grouping not located or no fix: {text}"
    );
}

#[test]
fn check_accepts_a_good_config_and_warns_about_unreachable_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        "[[routing.rule]]\nname = \"everything\"\nmatch = {}\nchannels = [\"all\"]\n\n[[routing.rule]]\nname = \"never\"\nmatch = { severity = \"critical\" }\nchannels = [\"crit\"]\n",
    )
    .unwrap();
    // A good config for `serve`, which needs a bot token (from the default variable here).
    let out = sluice()
        .args(["check", "--config"])
        .arg(&path)
        .env("SLUICE_SLACK_BOT_TOKEN", "xoxb-test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("warning") && text.contains("never"), "{text}");
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_then_dead_letter_then_replay_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::new(SimConfig {
        channels: vec!["ops".into()],
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    std::fs::write(dir.path().join("token"), sluice_sim::DEFAULT_TOKEN).unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"sqlite://{}/s.db\"\n[slack]\napi_base = \"{}\"\nbot_token_file = \"token\"\n[[api_key]]\nname = \"cli\"\nkey_env = \"CLI_KEY\"\nscopes = [\"events:write\", \"read\", \"admin\"]\n[routing]\ndefault = {{ channels = [\"ops\"] }}\n",
            dir.path().display(),
            format_args!("http://{}/api/", sim_run.addr)
        ),
    )
    .unwrap();
    let mut server = sluice()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("CLI_KEY", "cli-key")
        .env("SLUICE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `serve` says on stdout where the system let it listen.
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("sluice listening on http://")
        .unwrap_or_else(|| panic!("serve's first line: {first:?}"))
        .to_string();

    // Slack refuses the channel: the message is dead-lettered with Slack's reason.
    sim.set_faults(Faults {
        method_error: Some(("chat.postMessage".into(), "channel_not_found".into())),
        ..Faults::default()
    });
    let out = sluice()
        .args([
            "send",
            "--title",
            "Disk 91% on db-1",
            "--severity",
            "warning",
            "--service",
            "db",
        ])
        .env("SLUICE_URL", format!("http://{addr}"))
        .env("SLUICE_API_KEY", "cli-key")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("202"));

    // dlq, events and audit talk to the running server like send does: no config, no database.
    let remote = |args: &[&str]| {
        let out = sluice()
            .args(args)
            .env("SLUICE_URL", format!("http://{addr}"))
            .env("SLUICE_API_KEY", "cli-key")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = || remote(&["dlq", "list"]);
    wait_until("the dead letter", Duration::from_secs(20), || {
        list().contains("channel_not_found")
    })
    .await;

    // Slack accepts again; replay puts it back and the running server delivers it.
    sim.clear_faults();
    let dead: serde_json::Value =
        serde_json::from_str(&remote(&["dlq", "list", "--output", "json"])).unwrap();
    let event_id = dead["dead_letters"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let fate = remote(&["events", "get", &event_id]);
    assert!(
        fate.contains("dead_lettered") && fate.contains("channel_not_found"),
        "{fate}"
    );
    let replayed = remote(&["dlq", "replay", "--all"]);
    assert!(replayed.contains("replayed 1"), "{replayed}");
    wait_until("the replayed message", Duration::from_secs(20), || {
        !sim.messages("ops").is_empty()
    })
    .await;
    assert!(sim.messages("ops")[0].text.contains("Disk 91%"));
    assert_eq!(list().trim(), "no dead letters");

    // The replay is a human action: the audit log says who replayed what, from the command line.
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/v1/audit"))
        .bearer_auth("cli-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = remote(&["audit", "list"]);
    assert!(log.contains("dlq.replay") && log.contains("cli"), "{log}");
    assert!(remote(&["audit", "verify"]).contains("audit log intact"));
    let replays: Vec<&serde_json::Value> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "dlq.replay")
        .collect();
    assert_eq!(replays.len(), 1, "{audit}");
    assert_eq!(replays[0]["actor"], "cli", "the key's name: {audit}");
    assert_eq!(replays[0]["target"], "all");
    assert_eq!(replays[0]["detail"]["replayed"], 1);

    // `route test --url` consults the running server's silences; without it they are not consulted.
    let added = remote(&[
        "silence",
        "add",
        "-m",
        "service=db",
        "-d",
        "1h",
        "-c",
        "failover",
    ]);
    assert!(added.contains("sil_"), "{added}");
    let preview = |url: Option<&str>| {
        let mut c = sluice();
        c.args(["route", "test", "--config"])
            .arg(&cfg)
            .args(["--title", "Replica lag", "--service", "db"])
            .env("CLI_KEY", "cli-key")
            .env("SLUICE_API_KEY", "cli-key");
        if let Some(u) = url {
            c.args(["--url", u]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let muted = preview(Some(&format!("http://{addr}")));
    assert!(
        muted.contains("silences: muted by sil_") && muted.contains("failover"),
        "{muted}"
    );
    assert!(preview(None).contains("silences: not consulted"));

    // A wrong key is refused by the server, and `send` says so with a failing exit code.
    let out = sluice()
        .args(["send", "--title", "x"])
        .env("SLUICE_URL", format!("http://{addr}"))
        .env("SLUICE_API_KEY", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("401"));
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn the_demo_runs_to_its_summary_with_everything_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice()
        .args(["demo", "--no-wait", "--data-dir"])
        .arg(dir.path())
        .env("SLUICE_LOG", "error")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 of 27 events still on their way"), "{text}");
    assert!(
        text.contains("#k8s              2 message(s)"),
        "six pod alerts, one card per service: {text}"
    );
    assert!(
        text.contains("The batch storm: 300 alerts, 30 digested, 270 merged, digested")
            && text.contains("#batch            2 message(s)"),
        "the storm became a digest: {text}"
    );
    assert!(
        text.contains("dropped   by rule drop-successful-deploys"),
        "{text}"
    );
    assert!(
        text.contains("&lt;!channel&gt;"),
        "the injection was not escaped: {text}"
    );
    assert!(text.contains("rate-limited (429): 0"), "{text}");
}

#[test]
fn the_api_commands_say_how_to_give_a_key_and_show_it_in_their_help() {
    let sluice = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        c.env_remove("SLUICE_API_KEY");
        c
    };
    let out = sluice().args(["silence", "list"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("set SLUICE_API_KEY"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Every command that talks to a running Sluice, down to the leaf that runs, names both settings.
    for cmd in [
        &["silence", "--help"][..],
        &["silence", "add", "--help"],
        &["silence", "list", "--help"],
        &["silence", "expire", "--help"],
        &["send", "--help"],
        &["approval", "--help"],
        &["approval", "request", "--help"],
        &["dlq", "list", "--help"],
        &["dlq", "replay", "--help"],
        &["audit", "list", "--help"],
        &["audit", "verify", "--help"],
        &["events", "get", "--help"],
    ] {
        let out = sluice().args(cmd).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for want in ["--api-key", "SLUICE_API_KEY", "--url", "SLUICE_URL"] {
            assert!(help.contains(want), "{cmd:?} lacks {want}: {help}");
        }
    }
    let out = sluice()
        .args([
            "approval",
            "request",
            "--title",
            "t",
            "--channel",
            "c",
            "--approver",
            "U1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("set SLUICE_API_KEY"),
        "{err}"
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = sluice().arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "{text}");
    let commit = text
        .strip_prefix(concat!("sluice ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `sluice VERSION (COMMIT)`: {text:?}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert_eq!(commit, head, "built from another commit than HEAD"),
        None => assert_eq!(commit, "unknown"),
    }
}

#[test]
fn completions_cover_every_subcommand_and_refuse_an_unknown_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = sluice().args(["completions", shell]).output().unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {script}");
        for sub in ["serve", "manifest", "route", "silence", "completions"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = sluice().args(["completions", "cmd.exe"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bash") && err.contains("zsh"),
        "the choices are not named: {err}"
    );
}

/// The annotated example's manifest, as a user makes it before the Slack app exists (no signing secret yet).
#[test]
fn manifest_of_the_example_config_is_yaml_with_its_urls() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sluice.example.toml");
    let out = sluice()
        .args([
            "manifest",
            "--config",
            example,
            "--url",
            "https://sluice.corp.example",
        ])
        .env("SLUICE_KEY_CI", "ci-key")
        .env("SLUICE_KEY_ADMIN", "admin-key")
        .env("SLUICE_HOOK_SECRET", "0123456789abcdef0123")
        .env_remove("SLUICE_SLACK_SIGNING_SECRET")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = yaml_serde::from_str(&text).unwrap();
    assert_eq!(
        manifest["settings"]["interactivity"]["request_url"],
        "https://sluice.corp.example/slack/interactions"
    );
    assert_eq!(
        manifest["features"]["slash_commands"][0]["command"],
        "/sluice"
    );
    let scopes: Vec<&str> = manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for want in [
        "chat:write",
        "commands",
        "reactions:read",
        "usergroups:read",
    ] {
        assert!(scopes.contains(&want), "{want} missing: {scopes:?}");
    }
    assert_eq!(
        manifest["settings"]["event_subscriptions"]["bot_events"],
        serde_json::json!(["app_mention", "reaction_added"])
    );
    // Each scope is explained above the manifest.
    for s in &scopes {
        assert!(
            text.lines().any(|l| l.starts_with('#') && l.contains(s)),
            "{s} is not explained:\n{text}"
        );
    }

    let out = sluice()
        .args([
            "manifest",
            "--config",
            example,
            "--url",
            "http://sluice.corp.example",
        ])
        .env("SLUICE_KEY_CI", "ci-key")
        .env("SLUICE_KEY_ADMIN", "admin-key")
        .env("SLUICE_HOOK_SECRET", "0123456789abcdef0123")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("https://"), "{err}");
}

/// `route test` explains an event and sends nothing, even with a reachable Slack in the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_test_explains_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::new(SimConfig {
        channels: vec!["ops".into(), "db".into()],
        ..SimConfig::default()
    });
    let sim_run = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    std::fs::write(dir.path().join("token"), sluice_sim::DEFAULT_TOKEN).unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\nurl = \"sqlite://{}/s.db\"\n[slack]\napi_base = \"http://{}/api/\"\nbot_token_file = \"token\"\n[routing]\ndefault = {{ channels = [\"ops\"] }}\n[[routing.rule]]\nname = \"database\"\nmatch = {{ service = \"db\" }}\nchannels = [\"db\"]\n",
            dir.path().display(),
            sim_run.addr
        ),
    )
    .unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"title": "Replica lag 30s", "severity": "warning", "status": "firing", "source": "pg", "service": "db"}"#,
    )
    .unwrap();
    let from_flags = sluice()
        .args(["route", "test", "--config"])
        .arg(&cfg)
        .args([
            "--title",
            "Replica lag 30s",
            "--severity",
            "warning",
            "--service",
            "db",
        ])
        .output()
        .unwrap();
    let from_file = sluice()
        .args(["route", "test", "--config"])
        .arg(&cfg)
        .arg("--event")
        .arg(&event)
        .output()
        .unwrap();
    for out in [&from_flags, &from_file] {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("route: matched \"database\""), "{text}");
        assert!(text.contains("→ #db"), "{text}");
        assert!(text.contains("chat.postMessage to #db"), "{text}");
        assert!(
            text.contains("Replica lag 30s"),
            "the card is not shown: {text}"
        );
        assert!(text.contains("silences: not consulted"), "{text}");
    }
    let bad = sluice()
        .args(["route", "test", "--config"])
        .arg(&cfg)
        .args(["--title", "x", "--severity", "loud"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("severity"), "{err}");
    assert!(
        sim.calls().is_empty(),
        "route test called Slack: {:?}",
        sim.calls()
    );
    assert!(
        !dir.path().join("s.db").exists(),
        "route test opened the database"
    );
}
