//! `api::Client` against a tiny Slack stand-in on 127.0.0.1: every HTTP outcome maps to the
//! right `SlackError`, typed helpers read tolerant shapes, and the token never leaks.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use sluice_slack::api::{Client, Posted, SlackError};
use sluice_slack::retry::{classify, Outcome};
use sluice_slack_wire::secret::Secret;
use std::time::Duration;

const TOKEN: &str = "xoxb-1111-2222-sEcReTtOkEn";

async fn slack(Path(method): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return axum::Json(json!({ "ok": false, "error": "not_authed" })).into_response();
    }
    if ctype != Some("application/json; charset=utf-8") {
        return axum::Json(json!({ "ok": false, "error": "invalid_charset" })).into_response();
    }
    let args: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = match method.as_str() {
        "auth.test" => json!({ "ok": true, "team_id": "T1", "user_id": "U1", "bot_id": "B1",
                               "url": "https://acme.slack.com/", "brand_new_field": [1, 2] }),
        "chat.postMessage" => {
            json!({ "ok": true, "channel": args["channel"], "ts": "1700000000.000100",
                                      "message": { "text": args["text"] },
                                      "response_metadata": { "warnings": ["missing_charset"] } })
        }
        "conversations.info" => json!({ "ok": false, "error": "channel_not_found",
                                        "response_metadata": { "warnings": ["superfluous_charset"] } }),
        "conversations.list" => {
            json!({ "ok": true, "channels": [{ "id": "C1", "name": "ops" }, { "id": "C2" }],
                                        "response_metadata": { "next_cursor": "" } })
        }
        "usergroups.users.list" => json!({ "ok": true, "users": ["U1", "U2"] }),
        "chat.update" => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "17")], "").into_response();
        }
        "chat.scheduleMessage" => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "soon")], "").into_response();
        }
        "chat.delete" => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "reactions.add" => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "users.info" => return (StatusCode::OK, "<html>proxy error</html>").into_response(),
        "views.open" => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        _ => json!({ "ok": false, "error": "unknown_method" }),
    };
    axum::Json(reply).into_response()
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/api/{method}", post(slack));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/")
}

fn client(base: &str) -> Client {
    Client::new(base, Secret::new(TOKEN), Duration::from_millis(500)).unwrap()
}

#[tokio::test]
async fn ok_answers_decode_into_typed_results() {
    let c = client(&serve().await);
    let auth = c.auth_test().await.unwrap();
    assert_eq!((auth.team_id.as_str(), auth.user_id.as_str()), ("T1", "U1"));
    assert_eq!(auth.bot_id.as_deref(), Some("B1"));

    let posted = c
        .post_message(&json!({ "channel": "C9", "text": "hi" }))
        .await
        .unwrap();
    assert_eq!(
        posted,
        Posted {
            channel: "C9".into(),
            ts: "1700000000.000100".into()
        }
    );

    let page = c
        .conversations_list("public_channel", None, 100)
        .await
        .unwrap();
    assert_eq!(page.channels.len(), 2);
    assert_eq!(page.channels[0].name.as_deref(), Some("ops"));
    assert_eq!(
        page.channels[1].name, None,
        "fields Slack omits are None, not a decode error"
    );
    assert_eq!(
        page.next_cursor, None,
        "Slack's empty cursor means the last page"
    );

    assert_eq!(c.usergroups_users_list("S1").await.unwrap(), ["U1", "U2"]);
}

#[tokio::test]
async fn base_url_without_trailing_slash_still_reaches_the_api_path() {
    let base = serve().await;
    let c = client(base.trim_end_matches('/'));
    assert!(c.auth_test().await.is_ok());
}

#[tokio::test]
async fn every_failure_maps_to_its_error_and_outcome() {
    let c = client(&serve().await);

    let err = c.conversations_info("C404").await.unwrap_err();
    assert_eq!(
        err,
        SlackError::Api {
            method: "conversations.info".into(),
            error: "channel_not_found".into(),
            warnings: vec!["superfluous_charset".into()],
        }
    );
    assert!(matches!(
        classify(&Err::<(), _>(err)),
        Outcome::DeadLetter(_)
    ));

    let err = c
        .update_message(&json!({ "channel": "C1", "ts": "1.2", "text": "x" }))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SlackError::RateLimited {
            method: "chat.update".into(),
            retry_after: Duration::from_secs(17)
        }
    );
    assert_eq!(
        classify(&Err::<(), _>(err)),
        Outcome::RetryAfter(Duration::from_secs(17))
    );

    let err = c
        .schedule_message(&json!({ "channel": "C1", "post_at": 1, "text": "x" }))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SlackError::RateLimited {
            method: "chat.scheduleMessage".into(),
            // Garbled Retry-After: one sustained interval of Tier 3 (50/min).
            retry_after: Duration::from_millis(1200),
        }
    );

    let err = c.delete_message("C1", "1.2").await.unwrap_err();
    assert_eq!(
        err,
        SlackError::Http {
            method: "chat.delete".into(),
            status: 500
        }
    );
    assert_eq!(classify(&Err::<(), _>(err)), Outcome::Backoff);

    let err = c.reactions_add("C1", "1.2", ":eyes:").await.unwrap_err();
    assert_eq!(
        err,
        SlackError::Http {
            method: "reactions.add".into(),
            status: 503
        }
    );

    let err = c.users_info("U1").await.unwrap_err();
    assert!(
        matches!(err, SlackError::Decode { ref method, .. } if method == "users.info"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let c = client(&serve().await);
    let err = c
        .views_open("trigger", &json!({ "type": "modal" }))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SlackError::Timeout {
            method: "views.open".into()
        }
    );
    assert_eq!(classify(&Err::<(), _>(err)), Outcome::Backoff);
}

#[tokio::test]
async fn nobody_listening_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&format!("http://{addr}/api/"));
    let err = c.auth_test().await.unwrap_err();
    assert!(
        matches!(err, SlackError::Transport { ref method, .. } if method == "auth.test"),
        "{err:?}"
    );
    assert_eq!(classify(&Err::<(), _>(err)), Outcome::Backoff);
}

#[tokio::test]
async fn a_wrong_token_is_refused_by_slack_not_leaked() {
    let base = serve().await;
    let c = Client::new(&base, Secret::new("xoxb-wrong"), Duration::from_secs(2)).unwrap();
    let err = c.auth_test().await.unwrap_err();
    assert_eq!(err.api_error(), Some("not_authed"));
    assert!(!format!("{err} {err:?}").contains("xoxb-wrong"));
}

#[tokio::test]
async fn the_token_never_appears_in_any_error_or_debug_output() {
    let base = serve().await;
    let c = client(&base);
    let mut errors = vec![
        c.conversations_info("C1").await.unwrap_err(),
        c.update_message(&json!({})).await.unwrap_err(),
        c.delete_message("C1", "1").await.unwrap_err(),
        c.users_info("U1").await.unwrap_err(),
        c.views_open("t", &json!({})).await.unwrap_err(),
        Client::new("not a url", Secret::new(TOKEN), Duration::from_secs(1)).unwrap_err(),
        Client::new("ftp://x/", Secret::new(TOKEN), Duration::from_secs(1)).unwrap_err(),
        Client::new(
            &base,
            Secret::new(format!("{TOKEN}\n")),
            Duration::from_secs(1),
        )
        .unwrap_err(),
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    errors.push(
        client(&format!("http://{addr}/api/"))
            .auth_test()
            .await
            .unwrap_err(),
    );
    for e in &errors {
        for shown in [format!("{e}"), format!("{e:?}")] {
            assert!(
                !shown.contains(TOKEN) && !shown.contains("sEcReT"),
                "{shown}"
            );
        }
    }
    assert!(!format!("{c:?}").contains("sEcReT"));
}
