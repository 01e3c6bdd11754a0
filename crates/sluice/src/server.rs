//! [`start`]: one running Sluice — store, HTTP server, dispatcher, retention — and its
//! [`Running`] handle, used by `serve`, `demo` and the end-to-end tests alike.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sluice_slack_wire::tiers::Rate;
use sluice_store::{Durability, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alerts::Permissions;
use crate::config::Config;
use crate::dispatch::{Dispatcher, RateGate};
use crate::handlers::StoreOnce;
use crate::notify::{self, Notifier};
use crate::outbox::HandlerOutbox;
use crate::state::{now_ms, AppState};
use sluice_inbound::{Inbound, InboundConfig};

/// How often the retention leader prunes.
const RETENTION_EVERY: Duration = Duration::from_secs(300);
/// The leader role for retention.
const RETENTION_ROLE: &str = "retention";

/// The process-wide Prometheus recorder (metrics are global; install once).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stop accepting, let the dispatcher hand its lanes back, and wait for both.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Everything `serve` answers over HTTP but Slack's endpoints: the API, the operations endpoints and the operator
/// console (its own session auth).
pub fn app(state: Arc<AppState>) -> axum::Router {
    crate::http::app(state.clone(), crate::console::routes(state))
}

/// Open the store and start serving on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let opts = StoreOptions {
        durability: if config.storage.durability == "normal" {
            Durability::Normal
        } else {
            Durability::Full
        },
        migrate: config.storage_url.starts_with("sqlite:"),
        ..StoreOptions::default()
    };
    // What `sluice check` checks too (`Config::slack_client`), before anything is opened.
    let client = config.slack_client().map_err(|problems| {
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(said.join("\n"))
    })?;
    let store = sluice_store::open(&config.storage_url, &opts)
        .await
        .with_context(|| "opening the store (storage.url)".to_string())?;
    let slack = client.clone();
    let dispatch_cfg = config.dispatch.clone();
    let gate = RateGate::for_store(
        &store,
        Rate {
            calls: config.slack.limits.post_message_per_minute.max(1),
            period: Duration::from_secs(60),
            burst: 20,
        },
    );
    let retention = Duration::from_secs(config.storage.retention_hours * 3600);
    let state = Arc::new(AppState::new(config, store.clone(), metrics_handle()));
    let (shutdown, rx) = watch::channel(false);

    let dispatcher = Dispatcher::new(
        store.clone(),
        client,
        gate,
        dispatch_cfg,
        state.wake.clone(),
        {
            let state = state.clone();
            move || state.config.renderer.clone()
        },
        {
            // Where outgoing calls may go, their secret, the actions' headers and result templates: as in force.
            let state = state.clone();
            move || crate::dispatch::Outgoing::new(&state.config)
        },
    );
    let incident_hooks = Arc::new(crate::incidents::Hooks {
        state: state.clone(),
        slack: slack.clone(),
    });
    dispatcher.follow_incidents(incident_hooks.clone());
    let dispatcher_owner = dispatcher.owner().to_string();
    let mut tasks = vec![tokio::spawn(dispatcher.run(rx.clone()))];

    // Noise control: one leader flushes due groups and runs the storm guards.
    if !state.config.router.noise_routes().is_empty() {
        let notifier = Notifier::new(
            store.clone(),
            &state.config.router,
            &state.config.slack.team_id,
            state.config.dedup.window_secs as i64 * 1000,
        );
        tasks.push(tokio::spawn(notify::run(
            notifier,
            dispatcher_owner.clone(),
            state.wake.clone(),
            rx.clone(),
        )));
    }

    // Approvals expire on the database's clock, on one leader.
    tasks.push(tokio::spawn(crate::approvals::run_expiry(
        state.clone(),
        dispatcher_owner.clone(),
        rx.clone(),
    )));

    // Scheduled reports: one leader claims each due minute in the database.
    tasks.push(tokio::spawn(crate::commands::schedule::run_schedules(
        state.clone(),
        dispatcher_owner.clone(),
        rx.clone(),
    )));

    // Incidents: one leader reminds quiet incidents, archives resolved war rooms and finishes set-ups a crash cut.
    tasks.push(tokio::spawn(crate::incidents::run_reminders(
        incident_hooks,
        dispatcher_owner.clone(),
        rx.clone(),
    )));

    let mut app = app(state.clone());
    if let Some(secret) = state.config.signing_secret.clone() {
        let permissions = Arc::new(Permissions::new(&state.config.actions, slack.clone()));
        let registry =
            crate::handlers::registry(state.clone(), permissions, &state.config.actions.command);
        let mut cfg = InboundConfig::new(secret);
        cfg.max_body_bytes = state.config.server.max_body_bytes;
        cfg.response_url_hosts
            .extend(state.config.slack.response_url_hosts.iter().cloned());
        let inbound = Arc::new(Inbound::new(
            cfg,
            registry,
            Arc::new(StoreOnce(store.clone())),
            Arc::new(HandlerOutbox(state.clone())),
            slack.clone(),
        ));
        if let (Some(token), Some(sm)) = (
            state.config.app_token.clone(),
            state.config.slack.socket_mode.clone(),
        ) {
            let api_base = state.config.slack.api_base.clone();
            let stop = rx.clone();
            let inbound = inbound.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) =
                    sluice_inbound::run_socket_mode(inbound, token, api_base, sm.connections, stop)
                        .await
                {
                    tracing::error!(error = %e, "socket mode stopped");
                }
            }));
            tracing::info!(
                connections = sm.connections,
                "receiving Slack's requests over Socket Mode"
            );
        }
        app = app.merge(sluice_inbound::routes(inbound));
    }
    let addr = listener.local_addr()?;
    let limits = crate::listen::ConnLimits {
        max_connections: state.config.server.max_connections,
        header_timeout: Duration::from_millis(state.config.server.header_timeout_ms),
    };
    tasks.push(tokio::spawn(crate::listen::serve(
        listener,
        app,
        limits,
        rx.clone(),
    )));

    // Silences created on other replicas take effect here within a second.
    state
        .refresh_silences(true)
        .await
        .context("loading silences")?;
    let mut stop = rx.clone();
    let refresher = state.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopping {
                return;
            }
            if let Err(e) = refresher.refresh_silences(false).await {
                tracing::debug!(error = %e, "silences not refreshed");
            }
        }
    }));

    // Retention: delivered rows and closed alerts do not pile up forever. With replicas, one
    // leader prunes; when it dies its lease expires and another takes over.
    let mut stop = rx;
    let pruner = store.clone();
    let owner = dispatcher_owner;
    tasks.push(tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(RETENTION_EVERY) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopping {
                let _ = pruner.resign(RETENTION_ROLE, &owner).await;
                return;
            }
            let lease = 3 * RETENTION_EVERY.as_millis() as i64;
            match pruner
                .try_lead(RETENTION_ROLE, &owner, now_ms(), lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "retention leadership check failed");
                    continue;
                }
            }
            let cutoff = now_ms() - retention.as_millis() as i64;
            match pruner.prune(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
        }
    }));

    tracing::info!(%addr, backend = store.backend(), "sluice listening");
    Ok(Running {
        addr,
        state,
        shutdown,
        tasks,
    })
}
