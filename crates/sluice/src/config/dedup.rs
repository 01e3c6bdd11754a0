//! `[dedup]`: how long events with the same `dedup_key` merge into one message. Nothing to check beyond the types,
//! which reading the file already does.

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Events with the same `dedup_key` within this window are merged into one message.
    pub window_secs: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig { window_secs: 3600 }
    }
}
