//! Schedule windows: recurring times when capacity must not drop below a floor.
//!
//! A schedule opens at every occurrence of its cron expression, read as wall-clock time in the
//! schedule's time zone, and stays open for its duration, measured in real elapsed time. It is
//! open at `now` when some occurrence `t` satisfies `t <= now < t + duration`; since every
//! occurrence lasts equally long, it is enough to look at the latest occurrence at or before
//! `now`, which is the one [`ScheduleWindow`] reports.
//!
//! # Daylight saving time
//!
//! Occurrences come from croner 4 (`Cron::find_previous_occurrence` on a zoned time), which
//! resolves wall-clock times that happen twice or never as follows; the tests below pin it for
//! Europe/London:
//!
//! - **Spring forward** (the clock jumps from 01:00 to 02:00): an expression with one fixed
//!   time inside the gap, e.g. `30 1 * * SUN` on 2026-03-29, opens at the first instant after
//!   the gap, 02:00 BST (01:00 UTC). It is moved, not skipped. Expressions with ranges or steps
//!   in their time fields (e.g. `*/30 1 * * *`) skip the wall-clock times that do not exist.
//! - **Fall back** (the clock goes from 02:00 back to 01:00): an expression with one fixed time
//!   inside the repeated hour, e.g. `30 1 * * SUN` on 2026-10-25, opens once, at the first of the
//!   two instants (01:30 BST, 00:30 UTC), not again an hour later. Expressions with ranges or
//!   steps open at both.
//! - **A window spanning a change** lasts its duration in real time: a 3-hour window opening at
//!   00:00 on the day of the spring change closes at 04:00 local time, and on the day of the
//!   autumn change at 02:00 local time (the second one).
//!
//! An expression with no occurrence at or before `now` (croner gives up after searching about
//! a year back, e.g. for `0 0 30 2 *`) is simply not open.

use chrono::{DateTime, Utc};

use capstan_policy::model::Schedule;

use crate::decision::ScheduleWindow;

/// The windows of `schedules` open at `now`, in policy order.
pub(crate) fn open_windows(schedules: &[Schedule], now: DateTime<Utc>) -> Vec<ScheduleWindow> {
    schedules
        .iter()
        .filter_map(|schedule| open_window(schedule, now))
        .collect()
}

/// The occurrence of `schedule` open at `now`, if any.
fn open_window(schedule: &Schedule, now: DateTime<Utc>) -> Option<ScheduleWindow> {
    let local = now.with_timezone(&schedule.timezone.0);
    let opened = schedule
        .cron
        .cron()
        .find_previous_occurrence(&local, true)
        .ok()?
        .with_timezone(&Utc);
    let closes = opened
        .checked_add_signed(schedule.duration.as_delta())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (now < closes).then(|| ScheduleWindow {
        name: schedule.name.clone(),
        opened,
        closes,
        min: schedule.min,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Europe::London;

    use capstan_policy::model::{Duration, TimeZone as PolicyTimeZone};

    use super::*;

    fn schedule(cron: &str, timezone: chrono_tz::Tz, duration_secs: u64) -> Schedule {
        Schedule {
            name: "window".into(),
            cron: cron.parse().expect("valid cron"),
            timezone: PolicyTimeZone(timezone),
            duration: Duration::from_secs(duration_secs),
            min: 5,
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid time")
    }

    /// When the window is open at `now`: (opened, closes) in UTC.
    fn open_at(schedule: &Schedule, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        open_window(schedule, now).map(|window| (window.opened, window.closes))
    }

    const HOUR: u64 = 3_600;

    #[test]
    fn open_from_the_occurrence_inclusive_until_its_end_exclusive() {
        // Monday 2026-03-02, 09:00 UTC for one hour.
        let nine = schedule("0 9 * * MON", chrono_tz::UTC, HOUR);
        let opened = utc(2026, 3, 2, 9, 0, 0);
        let closes = utc(2026, 3, 2, 10, 0, 0);
        assert_eq!(open_at(&nine, utc(2026, 3, 2, 8, 59, 59)), None);
        assert_eq!(open_at(&nine, opened), Some((opened, closes)));
        assert_eq!(
            open_at(&nine, utc(2026, 3, 2, 9, 59, 59)),
            Some((opened, closes))
        );
        assert_eq!(open_at(&nine, closes), None);
    }

    #[test]
    fn sub_second_now_right_after_the_occurrence_is_open() {
        let nine = schedule("0 9 * * MON", chrono_tz::UTC, HOUR);
        let now = utc(2026, 3, 2, 9, 0, 0) + chrono::TimeDelta::milliseconds(500);
        assert_eq!(
            open_at(&nine, now).map(|(opened, _)| opened),
            Some(utc(2026, 3, 2, 9, 0, 0))
        );
    }

    #[test]
    fn the_cron_is_read_in_the_schedules_time_zone() {
        // 09:00 in London is 08:00 UTC in summer (BST).
        let nine = schedule("0 9 * * *", London, HOUR);
        let opened = utc(2026, 7, 1, 8, 0, 0);
        assert_eq!(
            open_at(&nine, utc(2026, 7, 1, 8, 30, 0)),
            Some((opened, utc(2026, 7, 1, 9, 0, 0)))
        );
        assert_eq!(open_at(&nine, utc(2026, 7, 1, 9, 30, 0)), None);
    }

    #[test]
    fn a_window_longer_than_the_interval_stays_open_from_the_latest_occurrence() {
        // Every hour on the hour, open for 90 minutes: always open, reported from the latest.
        let hourly = schedule("0 * * * *", chrono_tz::UTC, 90 * 60);
        let now = utc(2026, 3, 2, 12, 20, 0);
        assert_eq!(
            open_at(&hourly, now),
            Some((utc(2026, 3, 2, 12, 0, 0), utc(2026, 3, 2, 13, 30, 0)))
        );
    }

    #[test]
    fn an_expression_that_never_occurs_is_never_open() {
        let never = schedule("0 0 30 2 *", chrono_tz::UTC, HOUR);
        assert_eq!(open_at(&never, utc(2026, 3, 2, 0, 30, 0)), None);
    }

    #[test]
    fn open_windows_keeps_policy_order_and_skips_closed_ones() {
        let mut closed = schedule("0 9 * * *", chrono_tz::UTC, HOUR);
        closed.name = "closed".into();
        let mut first = schedule("0 0 * * *", chrono_tz::UTC, 24 * HOUR);
        first.name = "first".into();
        let mut second = schedule("0 12 * * *", chrono_tz::UTC, HOUR);
        second.name = "second".into();
        let names: Vec<String> = open_windows(&[first, closed, second], utc(2026, 3, 2, 12, 30, 0))
            .into_iter()
            .map(|window| window.name)
            .collect();
        assert_eq!(names, ["first", "second"]);
    }

    // Europe/London changes on the last Sunday of March at 01:00 UTC (01:00 GMT -> 02:00 BST)
    // and the last Sunday of October at 01:00 UTC (02:00 BST -> 01:00 GMT). In 2026 those are
    // 29 March and 25 October.

    #[test]
    fn spring_forward_a_time_in_the_gap_opens_when_the_gap_ends() {
        // 01:30 does not exist in London on 2026-03-29; croner opens at 02:00 BST = 01:00 UTC.
        let gap = schedule("30 1 * * SUN", London, HOUR);
        let opened = utc(2026, 3, 29, 1, 0, 0);
        let closes = utc(2026, 3, 29, 2, 0, 0);
        assert_eq!(open_at(&gap, utc(2026, 3, 29, 0, 59, 59)), None);
        assert_eq!(open_at(&gap, opened), Some((opened, closes)));
        assert_eq!(
            open_at(&gap, utc(2026, 3, 29, 1, 59, 59)),
            Some((opened, closes))
        );
        assert_eq!(open_at(&gap, closes), None);
        // A week later 01:30 exists again (BST), i.e. 00:30 UTC.
        assert_eq!(
            open_at(&gap, utc(2026, 4, 5, 0, 30, 0)).map(|(o, _)| o),
            Some(utc(2026, 4, 5, 0, 30, 0))
        );
    }

    #[test]
    fn spring_forward_a_stepped_expression_skips_the_missing_times() {
        // Every 30 minutes during hour 1, for 10 minutes: 01:00 and 01:30 local never exist on
        // 2026-03-29, and nothing opens in their place.
        let stepped = schedule("*/30 1 * * *", London, 600);
        assert_eq!(open_at(&stepped, utc(2026, 3, 29, 1, 5, 0)), None);
        assert_eq!(open_at(&stepped, utc(2026, 3, 29, 0, 35, 0)), None);
        // The day before, 01:30 GMT = 01:30 UTC.
        assert!(open_at(&stepped, utc(2026, 3, 28, 1, 35, 0)).is_some());
    }

    #[test]
    fn spring_forward_a_window_spanning_the_change_lasts_its_real_duration() {
        // Opens 00:00 GMT = 00:00 UTC, lasts 3 real hours: closes 03:00 UTC = 04:00 BST.
        let night = schedule("0 0 * * SUN", London, 3 * HOUR);
        let opened = utc(2026, 3, 29, 0, 0, 0);
        let closes = utc(2026, 3, 29, 3, 0, 0);
        assert_eq!(
            open_at(&night, utc(2026, 3, 29, 2, 59, 59)),
            Some((opened, closes))
        );
        assert_eq!(open_at(&night, closes), None);
        assert_eq!(
            closes.with_timezone(&London).format("%H:%M").to_string(),
            "04:00"
        );
    }

    #[test]
    fn fall_back_a_time_in_the_repeated_hour_opens_once_at_the_first_instant() {
        // 01:30 happens twice on 2026-10-25: 01:30 BST (00:30 UTC), then 01:30 GMT (01:30 UTC).
        let repeated = schedule("30 1 * * SUN", London, 1_800);
        let first = utc(2026, 10, 25, 0, 30, 0);
        assert_eq!(
            open_at(&repeated, utc(2026, 10, 25, 0, 45, 0)),
            Some((first, utc(2026, 10, 25, 1, 0, 0)))
        );
        // At the second 01:30 it does not open again.
        assert_eq!(open_at(&repeated, utc(2026, 10, 25, 1, 30, 0)), None);
        assert_eq!(open_at(&repeated, utc(2026, 10, 25, 1, 45, 0)), None);
    }

    #[test]
    fn fall_back_a_stepped_expression_opens_at_both_instants() {
        let stepped = schedule("*/30 1 * * *", London, 600);
        let second = utc(2026, 10, 25, 1, 30, 0);
        assert!(open_at(&stepped, utc(2026, 10, 25, 0, 35, 0)).is_some());
        assert_eq!(
            open_at(&stepped, utc(2026, 10, 25, 1, 35, 0)),
            Some((second, utc(2026, 10, 25, 1, 40, 0)))
        );
    }

    #[test]
    fn fall_back_a_window_spanning_the_change_lasts_its_real_duration() {
        // Opens 00:00 BST = 23:00 UTC the day before, lasts 3 real hours: closes 02:00 UTC,
        // which is 02:00 GMT, only two hours later on the wall clock.
        let night = schedule("0 0 * * SUN", London, 3 * HOUR);
        let opened = utc(2026, 10, 24, 23, 0, 0);
        let closes = utc(2026, 10, 25, 2, 0, 0);
        assert_eq!(
            open_at(&night, utc(2026, 10, 25, 1, 59, 59)),
            Some((opened, closes))
        );
        assert_eq!(open_at(&night, closes), None);
        assert_eq!(
            closes.with_timezone(&London).format("%H:%M %Z").to_string(),
            "02:00 GMT"
        );
    }
}
