//! Pieces of the coordination verbs (rate limits, leases, once-keys) shared by both backends; the SQL lives in the
//! backends, the arithmetic around it here. The principal item is [`RateParams`].

use crate::RateDecision;

/// A rate row is pruned once its `tat` and block have been in the past for this long.
pub(crate) const RATE_IDLE_MS: i64 = 3_600_000;

/// The GCRA parameters as bound into the statement.
pub(crate) struct RateParams {
    /// Emission interval; negative intervals make no sense and are treated as 0 (no limit).
    pub interval_ms: i64,
    /// How far `tat` may run ahead of `now`: `(burst - 1) * interval` (burst 0 is treated as 1).
    pub tolerance_ms: i64,
}

impl RateParams {
    pub(crate) fn new(interval_ms: i64, burst: u32) -> Self {
        let interval_ms = interval_ms.max(0);
        RateParams {
            interval_ms,
            tolerance_ms: interval_ms.saturating_mul(i64::from(burst.max(1) - 1)),
        }
    }

    /// The caller's answer from the row the statement left behind. A refusal leaves the row unchanged, so the
    /// earliest allowed time is when both the block ends and `tat` comes within the tolerance.
    pub(crate) fn decision(
        &self,
        allowed: bool,
        tat_ms: i64,
        blocked_until_ms: i64,
    ) -> RateDecision {
        if allowed {
            RateDecision::Allowed
        } else {
            RateDecision::RetryAt(blocked_until_ms.max(tat_ms.saturating_sub(self.tolerance_ms)))
        }
    }
}
