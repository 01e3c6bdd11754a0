//! [`AppState`]: what every handler and the dispatcher share.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sluice_store::Store;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::Config;
use crate::pipeline::Pipeline;

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Rung after every commit that enqueued Slack calls, so the dispatcher starts at once
    /// instead of at its next poll.
    pub wake: Arc<Notify>,
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    pub fn new(config: Config, store: Arc<dyn Store>, metrics: Option<PrometheusHandle>) -> Self {
        AppState {
            config,
            store,
            wake: Arc::new(Notify::new()),
            metrics,
        }
    }

    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline {
            router: &self.config.router,
            renderer: &self.config.renderer,
            team: &self.config.slack.team_id,
            dedup_window_ms: (self.config.dedup.window_secs * 1000) as i64,
        }
    }
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn now_ms() -> i64 {
    (now().unix_timestamp_nanos() / 1_000_000) as i64
}
