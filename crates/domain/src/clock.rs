//! Times as the domain passes them (milliseconds since the epoch) and as the renderer and cards take them.

use time::OffsetDateTime;

/// A time in milliseconds since the epoch, as the renderer takes it.
pub fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A time of day as cards say it ("10:42 UTC").
pub fn clock(at_ms: i64) -> String {
    sluice_core::render::hh_mm(at(at_ms))
}
