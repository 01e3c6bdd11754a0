//! `[dispatch]`: how the outbox's dispatcher retries, gives up and shares lanes with other replicas. Nothing to
//! check beyond the types, which reading the file already does (a negative number is reported with its line).

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Give up retrying a transient failure after this long and dead-letter the message.
    pub max_age_secs: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Lanes (channels) worked at once by this process.
    pub max_lanes: usize,
    /// How long a lane lease lasts before another replica may take it over.
    pub lease_ms: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_age_secs: 3600,
            backoff_base_ms: 250,
            backoff_max_ms: 30_000,
            max_lanes: 256,
            lease_ms: 15_000,
        }
    }
}
