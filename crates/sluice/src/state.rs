//! [`AppState`]: what every handler and the dispatcher share.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use metrics_exporter_prometheus::PrometheusHandle;
use sluice_store::Store;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::config::Config;
use sluice_domain::pipeline::Pipeline;
use sluice_domain::silence::SilenceSet;

pub struct AppState {
    /// The config in force, read like a `Config` (`state.config.router`); a reload replaces it whole.
    pub config: LiveConfig,
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
            config: LiveConfig::new(config),
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
        // One config for the whole event, even if a reload lands meanwhile.
        let config = self.config.get();
        Pipeline {
            silences,
            router: &config.router,
            inhibitor: &config.inhibitor,
            renderer: &config.renderer,
            team: &config.slack.team_id,
            dedup_window_ms: (config.dedup.window_secs * 1000) as i64,
        }
    }
}

/// The config in force and the file it came from (`crate::reload`). Reading it gives the config as it was at that
/// moment: a reload never changes a config someone holds, it puts another in its place.
///
/// A replaced config is kept for the life of the process rather than freed (a few hundred kilobytes a reload, and
/// reloads are an operator's rare act): so `state.config.router` stays a plain reference every handler can hold
/// across an await, as before reloads existed.
pub struct LiveConfig {
    current: RwLock<&'static Config>,
    path: OnceLock<PathBuf>,
}

impl LiveConfig {
    pub fn new(config: Config) -> Self {
        LiveConfig {
            current: RwLock::new(Box::leak(Box::new(config))),
            path: OnceLock::new(),
        }
    }

    /// The config in force now.
    pub fn get(&self) -> &'static Config {
        *self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Put `config` in force; readers see the old one or the new one, whole.
    pub fn replace(&self, config: Config) {
        let new: &'static Config = Box::leak(Box::new(config));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = new;
    }

    /// The file a reload reads (set by `serve`; a server started without a file cannot reload).
    pub fn set_path(&self, path: PathBuf) {
        let _ = self.path.set(path);
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.get().map(PathBuf::as_path)
    }
}

impl std::ops::Deref for LiveConfig {
    type Target = Config;

    fn deref(&self) -> &Config {
        self.get()
    }
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn now_ms() -> i64 {
    (now().unix_timestamp_nanos() / 1_000_000) as i64
}
