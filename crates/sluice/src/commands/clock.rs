//! The clock on-call rotations and schedules read. In production it is the system clock. For tests, and only when
//! the environment variable `SLUICE_CLOCK_FILE` is set, it is the time written in that file (milliseconds since the
//! epoch), read at every call, so an end-to-end test moves a running server across a hand-off or a cron minute
//! without waiting. Nothing else in Sluice reads it: signatures, leases and the audit log keep the real time.

/// The variable naming the test clock's file.
pub const CLOCK_FILE_ENV: &str = "SLUICE_CLOCK_FILE";

/// Milliseconds since the epoch, as rotations and schedules see them.
pub fn now_ms() -> i64 {
    if let Some(path) = std::env::var_os(CLOCK_FILE_ENV) {
        match std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        {
            Some(ms) => return ms,
            None => tracing::warn!(
                path = %std::path::Path::new(&path).display(),
                "{CLOCK_FILE_ENV} is set but its file holds no time in ms; using the system clock"
            ),
        }
    }
    crate::state::now_ms()
}
