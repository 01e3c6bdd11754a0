//! [`Caller`]: an API caller whose key was checked. A handler that takes a `Caller` cannot run
//! for an unauthenticated request.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::sha256;
use crate::state::AppState;

/// The name and scopes of the key that authenticated this request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    scopes: Vec<String>,
}

impl Caller {
    /// Refuse with 403 unless the key carries `scope` (or `admin`).
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!("api key {:?} lacks the {scope:?} scope", self.name),
            ))
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer <api key> header")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <api key>`"))?;
        Caller::of_key(state, token).ok_or_else(|| ApiError::unauthorized("unknown api key"))
    }
}

impl Caller {
    /// The caller whose API key is `token`, if any (the console's login asks the same question).
    pub fn of_key(state: &AppState, token: &str) -> Option<Caller> {
        let presented = sha256(token.as_bytes());
        // Compare against every key so the time taken does not say which prefix matched.
        let mut found = None;
        for key in &state.config.api_keys {
            if bool::from(key.sha256.ct_eq(&presented)) {
                found = Some(key);
            }
        }
        found.map(|key| Caller {
            name: key.name.clone(),
            scopes: key.scopes.iter().cloned().collect(),
        })
    }
}
