//! One condition over one metric's series: which datapoints count, how many breach, how many
//! are missing, and what that means for a rule in each direction.
//!
//! # Which datapoints count
//!
//! A metric with period `P` is cut into periods starting at whole multiples of `P` since the
//! Unix epoch. Only complete periods count, and a period's datapoint is complete only once the
//! metric's `delay` has passed since the period ended: CloudWatch takes a while to hold every
//! sample of a period (see "Ingestion delay" in `docs/policy.md`). So at `now` a window ends at
//! `end = floor((now - delay) / P) * P`: the newest period used is the last one that ended at
//! least `delay` ago, and a window of `N` datapoints is the `N` periods ending at `end`. With
//! `delay: 0s` that is where the current period (the one holding `now`), still filling up,
//! starts. A datapoint that lands later than `delay` is a gap while it is missing, and counts
//! once it has landed.
//!
//! A datapoint belongs to a period when its timestamp is exactly the period's start, which is
//! what CloudWatch `GetMetricData` returns when the read starts on a period boundary (see
//! [`crate::reads`]). Datapoints before the window, in the current period, or not on a period
//! start are ignored. Should a series hold two datapoints for one period, the first counts.
//!
//! # Breaching
//!
//! A datapoint breaches when it is strictly beyond the threshold
//! ([`Threshold::is_breached_by`]): a value exactly at the threshold does not breach, and
//! neither does NaN.
//!
//! # Missing data (`missing_data: hold`)
//!
//! - A scale-in rule fires only when every one of the `N` periods has a datapoint and at least
//!   `M` breach. Any gap makes it [`Verdict::MissingData`]: capstan never removes capacity on
//!   missing or partial data.
//! - A scale-out rule fires when at least `M` of the datapoints present breach, gaps or not. When
//!   fewer breach but the gaps could have made up the difference, it holds
//!   ([`Verdict::MissingData`]); when even a breach in every gap would not have been enough, it
//!   is [`Verdict::NotBreached`].

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use capstan_policy::model::{Datapoints, MissingData, Policy, Threshold};

use crate::observe::{Datapoint, Direction};

/// The complete periods a window covers at some evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Periods {
    /// Start of the oldest period.
    pub first: DateTime<Utc>,
    /// End of the newest period (exclusive).
    pub end: DateTime<Utc>,
    /// Period length in seconds.
    period_secs: i64,
    /// How many periods.
    count: u32,
}

impl Periods {
    /// The `count` periods of `policy`'s metric named `metric` that a window at `now` covers:
    /// those ending by `now` less the metric's delay.
    pub fn of(policy: &Policy, metric: &str, count: u32, now: DateTime<Utc>) -> Self {
        let delay = i64::try_from(policy.delay(metric).as_secs()).unwrap_or(i64::MAX);
        Self::before(
            seconds_before(now, delay),
            policy.metric(metric).period_secs,
            count,
        )
    }

    /// The `count` periods of `period_secs` seconds that end where the period holding `at`
    /// starts. `period_secs` must be positive, which validation guarantees.
    fn before(at: DateTime<Utc>, period_secs: u32, count: u32) -> Self {
        let period_secs = i64::from(period_secs);
        let into_period = TimeDelta::seconds(at.timestamp().rem_euclid(period_secs))
            + TimeDelta::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
        let end = at - into_period;
        let first = seconds_before(end, period_secs.saturating_mul(i64::from(count)));
        Self {
            first,
            end,
            period_secs,
            count,
        }
    }

    /// Whether `timestamp` is the start of one of the periods.
    fn starts(&self, timestamp: DateTime<Utc>) -> bool {
        let offset = timestamp - self.first;
        timestamp >= self.first
            && timestamp < self.end
            && offset.subsec_nanos() == 0
            && offset.num_seconds() % self.period_secs == 0
    }
}

/// `seconds` before `time`, or the earliest representable time if that is out of range.
fn seconds_before(time: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    TimeDelta::try_seconds(seconds)
        .and_then(|delta| time.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What a series shows over a window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    /// The datapoints that count, one per period at most, oldest first.
    pub datapoints: Vec<Datapoint>,
    /// How many of them breach.
    pub breaching: u32,
    /// How many periods have no datapoint.
    pub missing: u32,
}

impl Reading {
    /// Reads `series` over `periods` against `threshold`.
    pub fn of(series: &[Datapoint], threshold: Threshold, periods: &Periods) -> Self {
        let mut by_period = BTreeMap::new();
        for point in series
            .iter()
            .filter(|point| periods.starts(point.timestamp))
        {
            by_period.entry(point.timestamp).or_insert(*point);
        }
        let datapoints: Vec<Datapoint> = by_period.into_values().collect();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let breaching = count(
            datapoints
                .iter()
                .filter(|p| threshold.is_breached_by(p.value))
                .count(),
        );
        let missing = periods.count.saturating_sub(count(datapoints.len()));
        Self {
            datapoints,
            breaching,
            missing,
        }
    }

    /// What the reading means for a rule that moves capacity in `direction` and needs `window`.
    #[cfg(test)]
    pub fn verdict(&self, window: Datapoints, direction: Direction) -> Verdict {
        self.verdict_with(window, direction, MissingData::Hold)
    }

    /// [`Reading::verdict`] under the policy's `missing_data` mode: with `scale_out`, a
    /// scale-out rule counts each missing period as breaching (scale-in is unchanged).
    pub fn verdict_with(
        &self,
        window: Datapoints,
        direction: Direction,
        mode: MissingData,
    ) -> Verdict {
        let enough = |breaching: u32| breaching >= window.breaching;
        let with_gaps = self.breaching.saturating_add(self.missing);
        match direction {
            Direction::In if self.missing > 0 => Verdict::MissingData,
            _ if enough(self.breaching) => Verdict::Breached,
            Direction::Out if mode == MissingData::ScaleOut && enough(with_gaps) => {
                Verdict::Breached
            }
            Direction::Out if enough(self.breaching.saturating_add(self.missing)) => {
                Verdict::MissingData
            }
            _ => Verdict::NotBreached,
        }
    }
}

/// Whether a rule's condition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Enough datapoints breached.
    Breached,
    /// Complete enough data; not enough breached.
    NotBreached,
    /// Gaps leave the answer open, so the rule holds.
    MissingData,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABOVE_70: Threshold = Threshold::Above(70.0);

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("in range")
    }

    fn point(secs: i64, value: f64) -> Datapoint {
        Datapoint {
            timestamp: at(secs),
            value,
        }
    }

    fn m_of_n(breaching: u32, window: u32) -> Datapoints {
        Datapoints { breaching, window }
    }

    #[test]
    fn periods_end_where_the_current_period_starts() {
        let periods = Periods::before(at(1_000_000 * 60 + 59), 60, 5);
        assert_eq!(periods.end, at(1_000_000 * 60));
        assert_eq!(periods.first, at(999_995 * 60));
    }

    #[test]
    fn at_a_period_boundary_the_period_just_begun_is_excluded() {
        let periods = Periods::before(at(600), 300, 1);
        assert_eq!((periods.first, periods.end), (at(300), at(600)));
    }

    #[test]
    fn sub_second_now_does_not_shift_the_periods() {
        let now = at(660) + TimeDelta::milliseconds(999);
        let periods = Periods::before(now, 60, 2);
        assert_eq!((periods.first, periods.end), (at(540), at(660)));
    }

    #[test]
    fn periods_before_the_epoch_floor_downwards() {
        let periods = Periods::before(at(-30), 60, 1);
        assert_eq!((periods.first, periods.end), (at(-120), at(-60)));
    }

    /// The periods of the testing policy's `cpu`, with `period_secs` and `delay_secs`, at `now`.
    fn delayed(now: DateTime<Utc>, period_secs: u32, delay_secs: u64, count: u32) -> Periods {
        let mut policy = crate::testing::policy();
        let cpu = policy.metrics.get_mut("cpu").expect("cpu");
        cpu.query.period_secs = period_secs;
        cpu.delay = capstan_policy::model::Duration::from_secs(delay_secs);
        Periods::of(&policy, "cpu", count, now)
    }

    #[test]
    fn with_no_delay_the_window_ends_where_the_current_period_starts() {
        let now = at(1_000_000 * 60 + 30);
        assert_eq!(delayed(now, 60, 0, 5), Periods::before(now, 60, 5));
        assert_eq!(delayed(now, 60, 0, 5).end, at(1_000_000 * 60));
    }

    #[test]
    fn a_delay_ends_the_window_with_the_last_period_that_ended_that_long_ago() {
        // 30 s into a minute: the period before ended 30 s ago, the one before that 90 s ago.
        let now = at(1_000_000 * 60 + 30);
        let periods = delayed(now, 60, 120, 3);
        assert_eq!(
            (periods.first, periods.end),
            (at(999_995 * 60), at(999_998 * 60))
        );
        assert_eq!(
            delayed(now, 60, 90, 1).end,
            at(999_999 * 60),
            "ended exactly 90 s ago"
        );
        assert_eq!(delayed(now, 60, 91, 1).end, at(999_998 * 60));
        assert_eq!(delayed(now, 60, 29, 1).end, at(1_000_000 * 60));
    }

    #[test]
    fn a_delay_shorter_than_a_long_period_still_holds_back_the_period_just_ended() {
        // 12:01:30 on a five-minute metric: 11:55-12:00 ended 90 s ago.
        let now = at(12 * 3600 + 90);
        assert_eq!(delayed(now, 300, 60, 1).end, at(12 * 3600));
        assert_eq!(delayed(now, 300, 120, 1).end, at(12 * 3600 - 300));
    }

    #[test]
    fn a_sub_second_now_rounds_with_the_delay_taken_off() {
        let now = at(1_000_000 * 60 + 119) + TimeDelta::milliseconds(999);
        assert_eq!(delayed(now, 60, 60, 1).end, at(1_000_000 * 60));
        assert_eq!(
            delayed(now + TimeDelta::milliseconds(1), 60, 60, 1).end,
            at(1_000_001 * 60)
        );
    }

    #[test]
    fn only_datapoints_on_period_starts_inside_the_window_count() {
        // Window of 3 periods of 60s ending at 600: 420, 480, 540.
        let periods = Periods::before(at(630), 60, 3);
        let series = [
            point(360, 99.0), // before the window
            point(420, 71.0),
            point(450, 99.0), // not a period start
            point(480, 72.0),
            point(540, 73.0),
            point(600, 99.0), // the current, incomplete period
        ];
        let reading = Reading::of(&series, ABOVE_70, &periods);
        let values: Vec<f64> = reading.datapoints.iter().map(|p| p.value).collect();
        assert_eq!(values, [71.0, 72.0, 73.0]);
        assert_eq!((reading.breaching, reading.missing), (3, 0));
    }

    #[test]
    fn a_duplicate_period_counts_once_and_order_does_not_matter() {
        let periods = Periods::before(at(180), 60, 2);
        let series = [point(120, 80.0), point(60, 10.0), point(120, 10.0)];
        let reading = Reading::of(&series, ABOVE_70, &periods);
        assert_eq!(reading.datapoints, [point(60, 10.0), point(120, 80.0)]);
        assert_eq!((reading.breaching, reading.missing), (1, 0));
    }

    #[test]
    fn exactly_at_the_threshold_does_not_breach() {
        let periods = Periods::before(at(180), 60, 2);
        let series = [point(60, 70.0), point(120, 70.0)];
        assert_eq!(Reading::of(&series, ABOVE_70, &periods).breaching, 0);
        assert_eq!(
            Reading::of(&series, Threshold::Below(70.0), &periods).breaching,
            0
        );
    }

    #[test]
    fn nan_neither_breaches_nor_is_missing() {
        let periods = Periods::before(at(120), 60, 1);
        let reading = Reading::of(&[point(60, f64::NAN)], ABOVE_70, &periods);
        assert_eq!((reading.breaching, reading.missing), (0, 0));
    }

    fn reading(breaching: u32, missing: u32) -> Reading {
        Reading {
            datapoints: Vec::new(),
            breaching,
            missing,
        }
    }

    #[test]
    fn scale_in_holds_on_any_gap_even_with_enough_breaches() {
        assert_eq!(
            reading(4, 1).verdict(m_of_n(3, 5), Direction::In),
            Verdict::MissingData
        );
        assert_eq!(
            reading(3, 0).verdict(m_of_n(3, 5), Direction::In),
            Verdict::Breached
        );
        assert_eq!(
            reading(2, 0).verdict(m_of_n(3, 5), Direction::In),
            Verdict::NotBreached
        );
    }

    #[test]
    fn missing_data_scale_out_counts_gaps_as_breaching_for_scale_out_only() {
        let mode = MissingData::ScaleOut;
        assert_eq!(
            reading(1, 2).verdict_with(m_of_n(3, 5), Direction::Out, mode),
            Verdict::Breached
        );
        assert_eq!(
            reading(0, 5).verdict_with(m_of_n(3, 5), Direction::Out, mode),
            Verdict::Breached
        );
        assert_eq!(
            reading(0, 2).verdict_with(m_of_n(3, 5), Direction::Out, mode),
            Verdict::NotBreached
        );
        assert_eq!(
            reading(5, 0).verdict_with(m_of_n(3, 5), Direction::In, mode),
            Verdict::Breached
        );
        assert_eq!(
            reading(4, 1).verdict_with(m_of_n(3, 5), Direction::In, mode),
            Verdict::MissingData
        );
    }

    #[test]
    fn scale_out_fires_on_enough_present_breaches_despite_gaps() {
        assert_eq!(
            reading(3, 2).verdict(m_of_n(3, 5), Direction::Out),
            Verdict::Breached
        );
    }

    #[test]
    fn scale_out_holds_only_when_the_gaps_could_have_changed_the_answer() {
        assert_eq!(
            reading(2, 1).verdict(m_of_n(3, 5), Direction::Out),
            Verdict::MissingData
        );
        assert_eq!(
            reading(0, 3).verdict(m_of_n(3, 5), Direction::Out),
            Verdict::MissingData
        );
        assert_eq!(
            reading(1, 1).verdict(m_of_n(3, 5), Direction::Out),
            Verdict::NotBreached
        );
        assert_eq!(
            reading(2, 0).verdict(m_of_n(3, 5), Direction::Out),
            Verdict::NotBreached
        );
    }
}
