//! [`Stats`]: the inbound counters, kept both as Prometheus metrics (through the `metrics`
//! facade, for operators) and as atomics (so tests and `/readyz`-style checks can read them
//! without a recorder).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one [`crate::Inbound`].
#[derive(Debug, Default)]
pub struct Stats {
    rejected: AtomicU64,
    handler_failures: AtomicU64,
    ssrf_refused: AtomicU64,
    duplicates: AtomicU64,
    unhandled: AtomicU64,
    refused: AtomicU64,
    handled: AtomicU64,
    store_errors: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests refused before parsing (signature, staleness, size).
    pub rejected: u64,
    /// Handlers that returned an error or panicked.
    pub handler_failures: u64,
    /// `response_url`s refused by the host allow-list.
    pub ssrf_refused: u64,
    /// Events and clicks dropped as already handled.
    pub duplicates: u64,
    /// Requests no handler was registered for.
    pub unhandled: u64,
    /// Requests a middleware refused (e.g. not authorised).
    pub refused: u64,
    /// Handler runs started.
    pub handled: u64,
    /// Times the OnceStore could not answer (request answered 500 / not acked).
    pub store_errors: u64,
}

impl Stats {
    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_rejected_total", "reason" => reason).increment(1);
    }
    pub(crate) fn handler_failed(&self, kind: &'static str, why: &'static str) {
        self.handler_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_handler_failures_total", "kind" => kind, "why" => why)
            .increment(1);
    }
    pub(crate) fn ssrf_refused(&self) {
        self.ssrf_refused.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_ssrf_refused_total").increment(1);
    }
    pub(crate) fn duplicate(&self, kind: &'static str) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_duplicates_total", "kind" => kind).increment(1);
    }
    pub(crate) fn unhandled(&self, kind: &'static str) {
        self.unhandled.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_unhandled_total", "kind" => kind).increment(1);
    }
    pub(crate) fn refused(&self, kind: &'static str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_refused_total", "kind" => kind).increment(1);
    }
    pub(crate) fn handled(&self, kind: &'static str) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_handled_total", "kind" => kind).increment(1);
    }
    pub(crate) fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sluice_inbound_once_store_errors_total").increment(1);
    }

    /// Current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            rejected: g(&self.rejected),
            handler_failures: g(&self.handler_failures),
            ssrf_refused: g(&self.ssrf_refused),
            duplicates: g(&self.duplicates),
            unhandled: g(&self.unhandled),
            refused: g(&self.refused),
            handled: g(&self.handled),
            store_errors: g(&self.store_errors),
        }
    }
}
