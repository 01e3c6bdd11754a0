//! [`AppState`]: what every handler and the dispatcher share.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sluice_store::Store;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::Config;
use sluice_domain::pipeline::Pipeline;
use sluice_domain::silence::SilenceSet;

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Rung after every commit that enqueued Slack calls, so the dispatcher starts at once
    /// instead of at its next poll.
    pub wake: Arc<Notify>,
    pub metrics: Option<PrometheusHandle>,
    /// The silences in force, compiled; see [`AppState::refresh_silences`].
    pub silences: std::sync::RwLock<SilenceSet>,
}

impl AppState {
    pub fn new(config: Config, store: Arc<dyn Store>, metrics: Option<PrometheusHandle>) -> Self {
        AppState {
            config,
            store,
            wake: Arc::new(Notify::new()),
            metrics,
            silences: std::sync::RwLock::new(SilenceSet::default()),
        }
    }

    /// Reload the silences if the store's version moved (or `force`).
    pub async fn refresh_silences(&self, force: bool) -> Result<(), sluice_store::StoreError> {
        let version = self.store.silences_version().await?;
        let current = self.silences.read().map(|s| s.version).unwrap_or(-1);
        if !force && version == current {
            return Ok(());
        }
        let list = self.store.silences(false, now_ms()).await?;
        if let Ok(mut s) = self.silences.write() {
            *s = SilenceSet::new(version, &list);
        }
        Ok(())
    }

    pub fn pipeline<'a>(&'a self, silences: &'a SilenceSet) -> Pipeline<'a> {
        Pipeline {
            silences,
            router: &self.config.router,
            inhibitor: &self.config.inhibitor,
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
