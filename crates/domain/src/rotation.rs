//! On-call rotations (`[[rotation]]`): who is on call at a moment, who is next and when the hand-off is. Members
//! take turns in order, handing off daily or weekly at a wall-clock time in the rotation's time zone (so a
//! 09:00 hand-off stays at 09:00 across daylight-saving changes); overrides put someone else on call for a while.
//! [`Rotation::at`] is a pure function of the time passed in.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// How often the rotation hands off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    Daily,
    /// On this weekday.
    Weekly(Weekday),
}

/// Someone on call instead of the rotation's member, from `from` until `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub user: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// One `[[rotation]]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub name: String,
    /// User ids, in turn order.
    pub members: Vec<String>,
    pub handoff: Handoff,
    pub handoff_time: NaiveTime,
    pub time_zone: Tz,
    /// The day the first member's turn starts (at `handoff_time`).
    pub start: NaiveDate,
    pub overrides: Vec<Override>,
}

/// Who is on call at a moment, and what changes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// `None` before the rotation starts.
    pub now: Option<String>,
    /// Set when `now` is on call through an override.
    pub overriding: bool,
    pub next: String,
    /// When `next` takes over, in the rotation's zone.
    pub next_at: DateTime<Tz>,
}

/// The instant a local wall-clock time names in `tz`: the first of two in an autumn fold, the first minute after
/// a spring gap.
pub fn local_instant(tz: Tz, at: NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&at) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(first, _) => first,
        LocalResult::None => {
            // In a gap (02:30 on a spring-forward night): the wall clock jumps, so the hand-off happens when it lands.
            let mut probe = at;
            for _ in 0..180 {
                probe += chrono::Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t;
                }
            }
            tz.from_utc_datetime(&at)
        }
    }
}

/// Reads a wall-clock time or an instant: RFC 3339 (`2026-03-29T09:00:00+02:00`), or local in `tz`
/// (`2026-03-29 09:00`, `2026-03-29T09:00`).
pub fn parse_time_in(tz: Tz, text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(text, f) {
            return Ok(local_instant(tz, n).with_timezone(&Utc));
        }
    }
    Err(format!(
        "{text:?} is not a time: write \"2026-03-29 09:00\" (in the rotation's zone) or RFC 3339"
    ))
}

impl Rotation {
    /// The first hand-off strictly after the local time `after`, as a local wall-clock time.
    fn boundary_after(&self, after: NaiveDateTime) -> NaiveDateTime {
        let first = self.start.and_time(self.handoff_time);
        if after < first {
            return first;
        }
        let mut day = after.date();
        loop {
            let candidate = day.and_time(self.handoff_time);
            let on_day = match self.handoff {
                Handoff::Daily => true,
                Handoff::Weekly(wd) => day.weekday() == wd,
            };
            if on_day && candidate > after {
                return candidate;
            }
            day = day + Days::new(1);
        }
    }

    /// How many hand-offs after the first turn have happened by the local time `at` (`None` before the start).
    fn turns(&self, at: NaiveDateTime) -> Option<u64> {
        let first = self.start.and_time(self.handoff_time);
        if at < first {
            return None;
        }
        let t = self.handoff_time;
        // The latest hand-off day on or before `at` (today's counts only once its time has come).
        let mut last = at.date();
        if at.time() < t {
            last = last.pred_opt()?;
        }
        let count = match self.handoff {
            Handoff::Daily => (last - self.start).num_days().max(0) as u64,
            Handoff::Weekly(wd) => {
                // Whole weeks, counted from the first `wd` after the start day.
                let mut first_wd = self.start + Days::new(1);
                while first_wd.weekday() != wd {
                    first_wd = first_wd + Days::new(1);
                }
                while last.weekday() != wd {
                    last = last.pred_opt()?;
                }
                if last < first_wd {
                    0
                } else {
                    1 + ((last - first_wd).num_days() / 7) as u64
                }
            }
        };
        Some(count)
    }

    /// The member whose turn it is at `at` (overrides not considered).
    fn member_at(&self, at: NaiveDateTime) -> Option<&str> {
        let n = self.turns(at)?;
        let len = self.members.len() as u64;
        (len > 0).then(|| self.members[(n % len) as usize].as_str())
    }

    /// Who is on call at `at` (an override wins).
    pub fn who_at(&self, at: DateTime<Utc>) -> (Option<String>, bool) {
        if let Some(o) = self.overrides.iter().find(|o| o.from <= at && at < o.to) {
            return (Some(o.user.clone()), true);
        }
        let local = at.with_timezone(&self.time_zone).naive_local();
        (self.member_at(local).map(str::to_string), false)
    }

    /// Who is on call at `now`, who is next and when the change happens: the next hand-off, or the start or end of
    /// an override if that comes first. `None` for a rotation without members.
    pub fn at(&self, now: DateTime<Utc>) -> Option<OnCall> {
        if self.members.is_empty() {
            return None;
        }
        let (who, overriding) = self.who_at(now);
        // The next moment someone else could be on call; skip changes that keep the same person.
        let mut at = now;
        for _ in 0..64 {
            let local = at.with_timezone(&self.time_zone).naive_local();
            let boundary =
                local_instant(self.time_zone, self.boundary_after(local)).with_timezone(&Utc);
            let change = self
                .overrides
                .iter()
                .flat_map(|o| [o.from, o.to])
                .filter(|t| *t > at)
                .chain([boundary])
                .min()
                .unwrap_or(boundary);
            let (next, _) = self.who_at(change);
            match next {
                Some(next) if Some(&next) != who.as_ref() => {
                    return Some(OnCall {
                        now: who,
                        overriding,
                        next,
                        next_at: change.with_timezone(&self.time_zone),
                    })
                }
                _ => at = change,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_weekly() -> Rotation {
        Rotation {
            name: "payments".into(),
            members: vec!["UANA".into(), "UBEN".into(), "UCY".into()],
            handoff: Handoff::Weekly(Weekday::Mon),
            handoff_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            time_zone: chrono_tz::Europe::Berlin,
            // A Monday.
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            overrides: vec![],
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn weekly_in_berlin_across_the_spring_change() {
        let r = berlin_weekly();
        // (now, on call, next, hand-off as UTC)
        let table = [
            // Before the start: nobody yet, the first member at the start.
            ("2026-03-02T07:59:00Z", None, "UANA", "2026-03-02T08:00:00Z"),
            // 09:00 CET is 08:00 UTC.
            (
                "2026-03-02T08:00:00Z",
                Some("UANA"),
                "UBEN",
                "2026-03-09T08:00:00Z",
            ),
            (
                "2026-03-09T07:59:59Z",
                Some("UANA"),
                "UBEN",
                "2026-03-09T08:00:00Z",
            ),
            (
                "2026-03-09T08:00:00Z",
                Some("UBEN"),
                "UCY",
                "2026-03-16T08:00:00Z",
            ),
            // Clocks go forward on Sunday 29 March: Monday 30 March 09:00 CEST is 07:00 UTC.
            (
                "2026-03-16T08:00:00Z",
                Some("UCY"),
                "UANA",
                "2026-03-23T08:00:00Z",
            ),
            (
                "2026-03-23T08:00:00Z",
                Some("UANA"),
                "UBEN",
                "2026-03-30T07:00:00Z",
            ),
            (
                "2026-03-30T06:59:00Z",
                Some("UANA"),
                "UBEN",
                "2026-03-30T07:00:00Z",
            ),
            (
                "2026-03-30T07:00:00Z",
                Some("UBEN"),
                "UCY",
                "2026-04-06T07:00:00Z",
            ),
        ];
        for (now, on, next, at) in table {
            let got = r.at(utc(now)).unwrap();
            assert_eq!(got.now.as_deref(), on, "{now}");
            assert_eq!(got.next, next, "{now}");
            assert_eq!(got.next_at.with_timezone(&Utc), utc(at), "{now}");
            assert!(!got.overriding);
        }
    }

    #[test]
    fn weekly_starting_mid_week_hands_off_on_the_day() {
        let r = Rotation {
            // A Thursday; hand-offs on Mondays.
            start: NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(),
            ..berlin_weekly()
        };
        let table = [
            ("2026-03-05T08:00:00Z", Some("UANA"), "2026-03-09T08:00:00Z"),
            ("2026-03-09T08:00:00Z", Some("UBEN"), "2026-03-16T08:00:00Z"),
            ("2026-03-16T08:00:00Z", Some("UCY"), "2026-03-23T08:00:00Z"),
        ];
        for (now, on, at) in table {
            let got = r.at(utc(now)).unwrap();
            assert_eq!(got.now.as_deref(), on, "{now}");
            assert_eq!(got.next_at.with_timezone(&Utc), utc(at), "{now}");
        }
    }

    #[test]
    fn daily_in_new_york_across_the_autumn_change() {
        let r = Rotation {
            name: "web".into(),
            members: vec!["U1".into(), "U2".into()],
            handoff: Handoff::Daily,
            handoff_time: NaiveTime::from_hms_opt(18, 30, 0).unwrap(),
            time_zone: chrono_tz::America::New_York,
            start: NaiveDate::from_ymd_opt(2026, 10, 30).unwrap(),
            overrides: vec![],
        };
        // EDT (UTC-4) until Sunday 1 November 2026 02:00, then EST (UTC-5).
        let table = [
            (
                "2026-10-30T22:30:00Z",
                Some("U1"),
                "U2",
                "2026-10-31T22:30:00Z",
            ),
            (
                "2026-10-31T22:30:00Z",
                Some("U2"),
                "U1",
                "2026-11-01T23:30:00Z",
            ),
            (
                "2026-11-01T23:29:00Z",
                Some("U2"),
                "U1",
                "2026-11-01T23:30:00Z",
            ),
            (
                "2026-11-01T23:30:00Z",
                Some("U1"),
                "U2",
                "2026-11-02T23:30:00Z",
            ),
        ];
        for (now, on, next, at) in table {
            let got = r.at(utc(now)).unwrap();
            assert_eq!(got.now.as_deref(), on, "{now}");
            assert_eq!(got.next, next, "{now}");
            assert_eq!(got.next_at.with_timezone(&Utc), utc(at), "{now}");
        }
    }

    #[test]
    fn an_override_wins_and_its_end_is_the_next_change() {
        let tz = chrono_tz::Europe::Berlin;
        let r = Rotation {
            overrides: vec![Override {
                user: "UZOE".into(),
                from: parse_time_in(tz, "2026-03-10 12:00").unwrap(),
                to: parse_time_in(tz, "2026-03-11 12:00").unwrap(),
            }],
            ..berlin_weekly()
        };
        let table = [
            // Before the override: its start is the next change.
            (
                "2026-03-10T10:00:00Z",
                Some("UBEN"),
                false,
                "UZOE",
                "2026-03-10T11:00:00Z",
            ),
            (
                "2026-03-10T11:00:00Z",
                Some("UZOE"),
                true,
                "UBEN",
                "2026-03-11T11:00:00Z",
            ),
            (
                "2026-03-11T11:00:00Z",
                Some("UBEN"),
                false,
                "UCY",
                "2026-03-16T08:00:00Z",
            ),
        ];
        for (now, on, overriding, next, at) in table {
            let got = r.at(utc(now)).unwrap();
            assert_eq!(got.now.as_deref(), on, "{now}");
            assert_eq!(got.overriding, overriding, "{now}");
            assert_eq!(got.next, next, "{now}");
            assert_eq!(got.next_at.with_timezone(&Utc), utc(at), "{now}");
        }
    }

    #[test]
    fn a_hand_off_in_the_spring_gap_happens_when_the_clock_lands() {
        let r = Rotation {
            handoff: Handoff::Daily,
            handoff_time: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            start: NaiveDate::from_ymd_opt(2026, 3, 28).unwrap(),
            ..berlin_weekly()
        };
        // 29 March 02:30 does not exist in Berlin; 03:00 CEST (01:00 UTC) is when the clock lands.
        let got = r.at(utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(got.next_at.with_timezone(&Utc), utc("2026-03-29T01:00:00Z"));
        assert_eq!(got.next, "UBEN");
    }

    #[test]
    fn times_are_read_in_the_rotation_zone_or_as_rfc3339() {
        let tz = chrono_tz::Europe::Berlin;
        assert_eq!(
            parse_time_in(tz, "2026-07-01 09:00").unwrap(),
            utc("2026-07-01T07:00:00Z")
        );
        assert_eq!(
            parse_time_in(tz, "2026-07-01T09:00:00Z").unwrap(),
            utc("2026-07-01T09:00:00Z")
        );
        assert!(parse_time_in(tz, "tomorrow")
            .unwrap_err()
            .contains("not a time"));
    }
}
