//! Scheduled reports (`[[schedule]]`): which cron minute is due now, and what to do about runs missed while Sluice
//! was down. The cron expression is read by `croner` in the schedule's time zone (so `0 9 * * 1-5` is 09:00 local,
//! across daylight-saving changes). [`plan`] is pure: the caller passes the last minute it claimed (from the
//! database, where each (schedule, minute) is claimed once across replicas) and the time.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// What to do with runs whose minute passed while nobody ran them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Run once for all of them (the latest), as soon as possible.
    RunOnce,
    /// Record them as skipped and wait for the next minute.
    Skip,
}

/// A run is on time while its minute is at most this old; older, it was missed.
pub const GRACE_MS: i64 = 90_000;

/// How far back a schedule that never ran looks for its first minute: a schedule added to the config does not
/// count minutes before it existed as missed.
pub const FIRST_LOOK_BACK_MS: i64 = 60_000;

/// A cron expression in a time zone, checked.
#[derive(Debug, Clone)]
pub struct CronIn {
    pub cron: Cron,
    pub time_zone: Tz,
}

impl CronIn {
    /// Reads a five-field cron expression (`minute hour day month weekday`, with names, ranges, steps and the
    /// `@daily`-style nicknames).
    pub fn parse(expr: &str, time_zone: Tz) -> Result<CronIn, String> {
        if expr.split_whitespace().count() > 5 {
            return Err(format!(
                "{expr:?} has more than five fields: write minute hour day-of-month month day-of-week"
            ));
        }
        let cron = Cron::new(expr)
            .parse()
            .map_err(|e| format!("{expr:?} is not a cron expression: {e}"))?;
        Ok(CronIn { cron, time_zone })
    }

    /// The first minute strictly after `after_ms`, in ms since the epoch.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Whole seconds: the search steps from the next second, and a minute is a minute.
        let after = after_ms - after_ms.rem_euclid(1000);
        let after = self.time_zone.timestamp_millis_opt(after).single()?;
        let next: DateTime<Tz> = self.cron.find_next_occurrence(&after, false).ok()?;
        let ms = next.with_timezone(&Utc).timestamp_millis();
        Some(ms - ms.rem_euclid(60_000))
    }
}

/// What a tick of the schedule timer should do for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The minute to claim (ms since the epoch): the latest one due.
    pub due_ms: i64,
    /// Run the report (false: record the minute as skipped).
    pub run: bool,
    /// How many due minutes were missed (not run on time), this one included when it is late.
    pub missed: u32,
}

/// The plan for one schedule at `now_ms`, given the last minute claimed for it (`None` if it never ran). `None`:
/// nothing is due.
pub fn plan(cron: &CronIn, missed: Missed, last_due_ms: Option<i64>, now_ms: i64) -> Option<Plan> {
    let mut after = last_due_ms.unwrap_or(now_ms - FIRST_LOOK_BACK_MS);
    // Bounded: a minutely schedule down for a long time has many missed minutes; only the count and the latest
    // matter.
    let mut count: u32 = 0;
    let mut latest = None;
    while let Some(next) = cron.next_after(after) {
        if next > now_ms {
            break;
        }
        count += 1;
        latest = Some(next);
        after = next;
        if count > 100_000 {
            break;
        }
    }
    let latest = latest?;
    let on_time = now_ms - latest <= GRACE_MS;
    let missed_count = if on_time { count - 1 } else { count };
    let run = on_time || missed == Missed::RunOnce;
    Some(Plan {
        due_ms: latest,
        run,
        missed: missed_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn cron_minutes_are_read_in_the_zone() {
        let c = CronIn::parse("0 9 * * 1-5", chrono_tz::Europe::Berlin).unwrap();
        // Friday 27 March 2026 10:00 CET → Monday 30 March 09:00 CEST (after the spring change) = 07:00 UTC.
        assert_eq!(
            c.next_after(ms("2026-03-27T09:00:00Z")),
            Some(ms("2026-03-30T07:00:00Z"))
        );
        // Before the change: 09:00 CET = 08:00 UTC.
        assert_eq!(
            c.next_after(ms("2026-03-26T00:00:00Z")),
            Some(ms("2026-03-26T08:00:00Z"))
        );
        assert!(CronIn::parse("0 9 * *", chrono_tz::UTC).is_err());
        assert!(CronIn::parse("0 0 9 * * 1", chrono_tz::UTC).is_err());
        assert!(CronIn::parse("61 * * * *", chrono_tz::UTC).is_err());
    }

    #[test]
    fn plans() {
        let c = CronIn::parse("0 9 * * *", chrono_tz::Europe::Berlin).unwrap();
        let nine = ms("2026-07-01T07:00:00Z");
        let nine_yesterday = ms("2026-06-30T07:00:00Z");
        let run = |due, missed| {
            Some(Plan {
                due_ms: due,
                run: true,
                missed,
            })
        };
        let table = [
            // (missed policy, last claimed, now, plan)
            (Missed::Skip, None, nine - 1_000, None),
            (Missed::Skip, None, nine, run(nine, 0)),
            (Missed::Skip, None, nine + 30_000, run(nine, 0)),
            // A schedule that never ran does not look back further than a minute.
            (Missed::RunOnce, None, nine + 3_600_000, None),
            // Ran yesterday; today's is due now.
            (
                Missed::Skip,
                Some(nine_yesterday),
                nine + 5_000,
                run(nine, 0),
            ),
            // Today's is claimed: nothing more today.
            (Missed::Skip, Some(nine), nine + 60_000, None),
            // Down from before yesterday's 09:00 until today 12:00: two missed.
            (
                Missed::RunOnce,
                Some(ms("2026-06-29T07:00:00Z")),
                nine + 3 * 3_600_000,
                run(nine, 2),
            ),
            (
                Missed::Skip,
                Some(ms("2026-06-29T07:00:00Z")),
                nine + 3 * 3_600_000,
                Some(Plan {
                    due_ms: nine,
                    run: false,
                    missed: 2,
                }),
            ),
            // Down over yesterday's only, back in time for today's: today's runs, yesterday's counted as missed.
            (
                Missed::Skip,
                Some(ms("2026-06-29T07:00:00Z")),
                nine + 1_000,
                run(nine, 1),
            ),
        ];
        for (i, (missed, last, now, want)) in table.into_iter().enumerate() {
            assert_eq!(plan(&c, missed, last, now), want, "row {i}");
        }
    }
}
