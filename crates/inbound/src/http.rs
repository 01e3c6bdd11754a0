//! Slack's HTTP endpoints ([`routes`]) and [`Verified`], the extractor that makes an
//! unverified request impossible to handle (DESIGN.md invariant 4).
//!
//! [`Verified<T>`] reads the raw body (up to `max_body_bytes`, else 413), checks
//! `X-Slack-Signature` over those exact bytes with the timestamp window, and only then parses
//! them into `T`. A refused request gets 401 with a short reason, increments
//! `sluice_inbound_rejected_total{reason}` and never reaches a handler. The one answer given
//! without a signature is Slack's `ssl_check=1` certificate probe, which gets an empty 200 and
//! runs nothing.

use crate::inbound::{Ack, Delivery, Inbound, Incoming};
use crate::models::{EventCallback, Interaction, PayloadError, SlashCommand};
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use sluice_slack_wire::signature::{self, SignatureError};
use std::sync::Arc;
use std::time::Instant;

/// A request body whose Slack signature was checked before it was parsed.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    pub body: T,
    pub delivery: Delivery,
}

/// Bodies [`Verified`] can produce.
pub trait SlackBody: Sized {
    fn parse(raw: &[u8]) -> Result<Self, PayloadError>;
}

impl SlackBody for EventCallback {
    fn parse(raw: &[u8]) -> Result<Self, PayloadError> {
        serde_json::from_slice(raw).map_err(|e| PayloadError::Json(e.to_string()))
    }
}

impl SlackBody for Interaction {
    fn parse(raw: &[u8]) -> Result<Self, PayloadError> {
        Interaction::from_form(raw)
    }
}

impl SlackBody for SlashCommand {
    fn parse(raw: &[u8]) -> Result<Self, PayloadError> {
        SlashCommand::from_form(raw)
    }
}

impl SlackBody for Bytes {
    fn parse(raw: &[u8]) -> Result<Self, PayloadError> {
        Ok(Bytes::copy_from_slice(raw))
    }
}

/// Why [`Verified`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 413.
    TooLarge { limit: usize },
    /// 401 with the reason.
    Unverified(SignatureError),
    /// 400: signed by Slack but not a payload we can read.
    BadPayload(String),
    /// 200, empty: Slack's unsigned `ssl_check=1` probe.
    SslCheck,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes"),
            )
                .into_response(),
            Rejection::Unverified(e) => {
                let short = match e {
                    SignatureError::MissingTimestamp => "missing timestamp",
                    SignatureError::MissingSignature => "missing signature",
                    SignatureError::BadTimestamp => "bad timestamp",
                    SignatureError::Stale { .. } => "stale timestamp",
                    SignatureError::Mismatch => "invalid signature",
                };
                (StatusCode::UNAUTHORIZED, short).into_response()
            }
            Rejection::BadPayload(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            Rejection::SslCheck => StatusCode::OK.into_response(),
        }
    }
}

fn reason_label(e: &SignatureError) -> &'static str {
    match e {
        SignatureError::MissingTimestamp => "missing_timestamp",
        SignatureError::MissingSignature => "missing_signature",
        SignatureError::BadTimestamp => "bad_timestamp",
        SignatureError::Stale { .. } => "stale",
        SignatureError::Mismatch => "bad_signature",
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// True for `ssl_check=1` form bodies. Looked at only after verification failed for lack of
/// headers, and its only effect is an empty 200.
fn is_ssl_check(raw: &[u8]) -> bool {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .map(|f| f.iter().any(|(k, v)| k == "ssl_check" && v == "1"))
        .unwrap_or(false)
}

impl<T, S> FromRequest<S> for Verified<T>
where
    T: SlackBody + Send,
    S: Send + Sync,
    Arc<Inbound>: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let received_at = Instant::now();
        let inbound = Arc::<Inbound>::from_ref(state);
        let limit = inbound.cfg.max_body_bytes;
        let (parts, body) = req.into_parts();
        let declared = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            inbound.stats.rejected("too_large");
            return Err(Rejection::TooLarge { limit });
        }
        let Ok(raw) = axum::body::to_bytes(body, limit).await else {
            inbound.stats.rejected("too_large");
            return Err(Rejection::TooLarge { limit });
        };
        let verdict = signature::verify(
            &inbound.cfg.signing_secret,
            header_str(&parts.headers, "x-slack-request-timestamp"),
            header_str(&parts.headers, "x-slack-signature"),
            &raw,
            inbound.now_unix(),
        );
        if let Err(e) = verdict {
            if matches!(
                e,
                SignatureError::MissingSignature | SignatureError::MissingTimestamp
            ) && is_ssl_check(&raw)
            {
                return Err(Rejection::SslCheck);
            }
            inbound.stats.rejected(reason_label(&e));
            tracing::warn!(path = %parts.uri.path(), reason = %e, "request from Slack refused");
            return Err(Rejection::Unverified(e));
        }
        let body = T::parse(&raw).map_err(|e| {
            tracing::warn!(path = %parts.uri.path(), error = %e, "signed request with unreadable body");
            Rejection::BadPayload(e.to_string())
        })?;
        let retry_num = header_str(&parts.headers, "x-slack-retry-num")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let retry_reason = header_str(&parts.headers, "x-slack-retry-reason").map(str::to_owned);
        Ok(Verified {
            body,
            delivery: Delivery {
                received_at,
                retry_num,
                retry_reason,
            },
        })
    }
}

impl IntoResponse for Ack {
    fn into_response(self) -> Response {
        match self {
            Ack::Empty => StatusCode::OK.into_response(),
            Ack::Json(v) => (StatusCode::OK, Json(v)).into_response(),
            Ack::Retry(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
        }
    }
}

/// `/slack/events`, `/slack/interactions`, `/slack/commands` and `/slack/options`, with the
/// state embedded: `app.merge(sluice_inbound::routes(inbound))` into any `Router<()>`.
pub fn routes(inbound: Arc<Inbound>) -> Router {
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/interactions", post(interactions))
        .route("/slack/commands", post(commands))
        .route("/slack/options", post(interactions))
        .with_state(inbound)
}

async fn events(State(inbound): State<Arc<Inbound>>, v: Verified<EventCallback>) -> Ack {
    inbound.process(Incoming::Event(v.body), v.delivery).await
}

async fn interactions(State(inbound): State<Arc<Inbound>>, v: Verified<Interaction>) -> Ack {
    inbound
        .process(Incoming::Interaction(v.body), v.delivery)
        .await
}

async fn commands(State(inbound): State<Arc<Inbound>>, v: Verified<SlashCommand>) -> Ack {
    inbound.process(Incoming::Command(v.body), v.delivery).await
}
