//! Abuse the server must survive (issue 15, items 9 and 10), on a real socket: slow bodies, slowloris, idle
//! keep-alive connections, oversized declared bodies and more connections than allowed. Every loop here is bounded
//! by a count and a deadline, and targets 127.0.0.1 only.

mod common;

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::*;

const LIMITS: &str = "[server]
header_timeout_ms = 400
body_timeout_ms = 400
max_in_flight = 64
max_in_flight_unauthenticated = 4
max_connections = 80
";

async fn serve(dir: &std::path::Path, server: &str) -> sluice::server::Running {
    let url = format!("sqlite://{}/test.db", dir.display());
    let text = format!(
        "{server}[storage]\nurl = \"{url}\"\n[slack]\napi_base = \"http://127.0.0.1:9/api/\"\nbot_token_env = \"TOKEN\"\n\
         [[api_key]]\nname = \"ci\"\nkey_env = \"KEY\"\nscopes = [\"events:write\", \"read\"]\n\
         [[hook]]\nname = \"cron\"\nchannel = \"ops\"\nsecret_env = \"HOOK\"\n{}",
        common::ROUTING
    );
    let cfg =
        sluice::config::Config::parse(&text, dir, &env()).unwrap_or_else(|p| panic!("{p:#?}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sluice::server::start(cfg, listener).await.unwrap()
}

/// Everything the server sends on `stream` until it closes it, or `None` if it is still open after `wait`.
async fn until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

async fn post_event(client: &reqwest::Client, base: &str, n: usize) -> reqwest::StatusCode {
    client
        .post(format!("{base}/v1/events"))
        .bearer_auth(KEY)
        .json(
            &json!({"title": format!("valid {n}"), "severity": "warning", "status": "firing",
                      "source": "test", "service": "checkout"}),
        )
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::IM_A_TEAPOT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_unauthenticated_bodies_do_not_starve_requests_with_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(dir.path(), LIMITS).await;
    let base = format!("http://{}", running.addr);

    // 40 clients without a key declare a body and trickle one byte of it: ten times their pool.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        let head = format!(
            "POST /hooks/cron/{HOOK_SECRET} HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        slow.push(s);
    }
    // Meanwhile every request with a key is accepted.
    let client = reqwest::Client::new();
    for n in 0..20 {
        assert_eq!(
            post_event(&client, &base, n).await,
            reqwest::StatusCode::ACCEPTED,
            "request {n}"
        );
    }
    // Each slow client is told 408 (its body never came) or 503 (its pool was full), and nothing it sent was taken.
    let (mut timed_out, mut shed) = (0, 0);
    for s in &mut slow {
        let answer = until_closed(s, Duration::from_secs(5))
            .await
            .expect("the server answers and closes");
        if answer.starts_with("HTTP/1.1 408") {
            timed_out += 1;
        } else if answer.starts_with("HTTP/1.1 503") {
            shed += 1;
        } else {
            panic!("unexpected answer to a slow body: {answer:?}");
        }
    }
    assert_eq!(timed_out + shed, 40);
    assert!(timed_out >= 1 && shed >= 1, "408: {timed_out}, 503: {shed}");
    let ops = running.state.store.outbox_stats(0).await.unwrap().pending;
    assert_eq!(ops, 20, "only the 20 valid events are queued");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(dir.path(), LIMITS).await;

    // Headers that never finish.
    let mut loris = Vec::new();
    for _ in 0..30 {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        s.write_all(b"POST /v1/events HTTP/1.1\r\nHost: sluice\r\nX-Slow: ")
            .await
            .unwrap();
        loris.push(s);
    }
    // Connections that asked once and then sit idle, kept alive.
    let mut idle = Vec::new();
    for _ in 0..30 {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: sluice\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        idle.push(s);
    }
    for s in loris.iter_mut().chain(idle.iter_mut()) {
        assert!(
            until_closed(s, Duration::from_secs(5)).await.is_some(),
            "a slow or idle connection is still open well past header_timeout_ms"
        );
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_oversized_body_is_refused_before_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(dir.path(), LIMITS).await;
    let mut s = TcpStream::connect(running.addr).await.unwrap();
    s.write_all(
        format!("POST /v1/events HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 50000000\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("server.max_body_bytes"), "{answer}");
    running.stop().await;
}

/// Sums the `name` counter of the server at `addr` over its labels.
async fn counter(addr: std::net::SocketAddr, name: &str) -> f64 {
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_table_makes_room_by_closing_its_longest_idle_connection() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(
        dir.path(),
        "[server]\nmax_connections = 10\nheader_timeout_ms = 10000\nbody_timeout_ms = 10000\n",
    )
    .await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: sluice\r\nConnection: close\r\n\r\n";

    // Ten connections that never send a request fill the table.
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(running.addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An eleventh client is served: the connection idle the longest (the first) was closed for it.
    let mut valid = TcpStream::connect(running.addr).await.unwrap();
    valid.write_all(get).await.unwrap();
    let answer = until_closed(&mut valid, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
    assert_eq!(
        until_closed(&mut idle[0], Duration::from_secs(2))
            .await
            .as_deref(),
        Some(""),
        "the longest-idle connection is closed without an answer"
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(counter(running.addr, "sluice_http_connections_evicted_total").await >= 1.0);

    // Ten connections each in the middle of a request (a body that does not come): none may be closed for a
    // newcomer, which is closed at once and counted.
    let mut busy = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(running.addr).await.unwrap();
        let head = format!(
            "POST /hooks/cron/{HOOK_SECRET} HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(running.addr).await.unwrap();
    let _ = extra.write_all(get).await;
    assert_eq!(
        until_closed(&mut extra, Duration::from_secs(2))
            .await
            .as_deref(),
        Some(""),
        "with every connection mid-request, the newcomer is closed without an answer"
    );
    drop(busy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(counter(running.addr, "sluice_http_connections_refused_total").await >= 1.0);
    running.stop().await;
}
