//! Helpers for driving the simulator's router with `oneshot`, no socket.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use sluice_sim::{SimConfig, Simulator, DEFAULT_TOKEN};
use tower::ServiceExt;

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn error(&self) -> Option<String> {
        self.json()["error"].as_str().map(String::from)
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A Web API call with a JSON body and (optionally) a bearer token.
pub async fn api_with(app: &Router, method: &str, token: Option<&str>, body: Value) -> Resp {
    let mut req = Request::post(format!("/api/{method}"))
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    send(app, req.body(Body::from(body.to_string())).unwrap()).await
}

/// A Web API call with the default token.
pub async fn api(app: &Router, method: &str, body: Value) -> Resp {
    api_with(app, method, Some(DEFAULT_TOKEN), body).await
}

/// A form-encoded Web API call (the token, if any, is in the form).
pub async fn api_form(app: &Router, method: &str, form: &[(&str, &str)]) -> Resp {
    let body = serde_urlencoded::to_string(form).unwrap();
    let req = Request::post(format!("/api/{method}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    send(app, req).await
}

pub async fn get(app: &Router, path: &str) -> Resp {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

pub async fn post_json(app: &Router, path: &str, body: Value) -> Resp {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

pub async fn post_raw(app: &Router, path: &str, content_type: &str, body: &str) -> Resp {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

pub fn sim_with_alerts() -> (Simulator, Router) {
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into(), "ops".into()],
        ..SimConfig::default()
    });
    let app = sim.router();
    (sim, app)
}

pub fn sim_unlimited() -> (Simulator, Router) {
    let sim = Simulator::new(SimConfig {
        channels: vec!["alerts".into(), "ops".into()],
        enforce_rate_limits: false,
        ..SimConfig::default()
    });
    let app = sim.router();
    (sim, app)
}
