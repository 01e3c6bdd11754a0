//! `GET /openapi.json`: every `/v1` route the server answers is in it, each with the scope its key needs and the
//! shape of its errors, and the scope it names is the one the route enforces.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use sluice::server::app;
use tower::ServiceExt;

/// A key with no scope at all: every scoped route refuses it, naming the scope it wanted.
const NO_SCOPES: &str = "no-scopes-key";

async fn call(
    state: &std::sync::Arc<sluice::state::AppState>,
    method: &str,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = app(state.clone())
        .oneshot(req.body(Body::from("{}")).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A concrete request path for a documented one.
fn concrete(path: &str) -> String {
    path.replace("{name}", "alertmanager")
        .replace("{id}", "x")
        .replace("{secret}", "x")
}

#[tokio::test]
async fn every_v1_route_is_documented_with_the_scope_it_enforces_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[api_key]]\nname = \"nothing\"\nsha256 = \"{}\"\nscopes = []\n",
        hex::encode(sluice::config::sha256(NO_SCOPES.as_bytes()))
    );
    let state = common::state(dir.path(), &extra).await;
    let (status, body) = call(&state, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            documented.push(format!("{method} {path}"));
            if !path.starts_with("/v1/") {
                continue;
            }
            let scopes = op["security"][0]["api_key"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} names no scope: {op}"));
            assert_eq!(scopes.len(), 1, "{method} {path}: {scopes:?}");
            let scope = scopes[0].as_str().unwrap();
            for code in ["400", "401", "403"] {
                assert_eq!(
                    op["responses"][code]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} has no {code} error shape"
                );
            }
            // The route exists and wants a key…
            let uri = concrete(path);
            let (status, body) = call(&state, &method, &uri, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
            // …with the scope the document names.
            let (status, body) = call(&state, &method, &uri, Some(NO_SCOPES)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {body}");
            assert!(
                body.contains(&format!("lacks the \\\"{scope}\\\" scope")),
                "{method} {uri} documents {scope:?} but says: {body}"
            );
        }
    }
    documented.sort();
    // Every route the API serves, as a user of it would list them. A route added with `routes!` is documented by
    // the same line; this list is what catches one added some other way, or one lost.
    let mut served = vec![
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "POST /v1/events",
        "GET /v1/events/{id}",
        "POST /v1/messages",
        "POST /hooks/{name}/{secret}",
        "POST /v1/sources/{name}",
        "GET /v1/silences",
        "POST /v1/silences",
        "DELETE /v1/silences/{id}",
        "POST /v1/approvals",
        "GET /v1/approvals/{id}",
        "POST /v1/approvals/{id}/cancel",
        "GET /v1/dead-letters",
        "POST /v1/dead-letters/replay",
        "GET /v1/audit",
        "GET /v1/audit/verify",
        "POST /v1/admin/reload",
    ];
    served.sort();
    assert_eq!(documented, served);
}

/// The routes are registered only through `routes!` (the route and its description in one): an axum `.route(` in
/// the HTTP modules would serve a path the document does not know.
#[test]
fn no_api_route_is_registered_around_the_document() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            assert!(
                !(line.contains(".route(\"/v1") || line.contains(".route(\"/hooks")),
                "{}:{}: register API routes with routes!(handler) and #[utoipa::path]: {line}",
                path.display(),
                n + 1
            );
        }
    }
}
