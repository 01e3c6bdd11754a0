//! The Web API's argument and error shapes, shared by `api.rs`'s dispatch and the method families kept in their own
//! files (`channels_admin.rs`, `dm.rs`, `scheduled.rs`), so those need nothing from the dispatcher that calls them.

use serde_json::{Map, Value};

/// Slack's answer to a failed call: `{"ok":false,"error":…}` plus any extra keys.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct ApiError {
    pub error: String,
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            extra: Map::new(),
        }
    }

    pub(crate) fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("ok".into(), Value::Bool(false));
        body.insert("error".into(), Value::String(self.error.clone()));
        body.extend(self.extra.clone());
        Value::Object(body)
    }
}

pub type Args = Map<String, Value>;
pub(crate) type Reply = Result<Value, ApiError>;

/// A string argument; numbers and booleans count too because form bodies and JSON bodies disagree.
pub fn str_arg(args: &Args, key: &str) -> Option<String> {
    match args.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn bool_arg(args: &Args, key: &str) -> bool {
    matches!(str_arg(args, key).as_deref(), Some("true" | "1"))
}
