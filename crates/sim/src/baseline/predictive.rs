//! AWS predictive scaling in `ForecastAndScale` mode, paired with target tracking as AWS
//! recommends ("Predictive scaling for Amazon EC2 Auto Scaling", EC2 Auto Scaling User Guide;
//! "How Application Auto Scaling predictive scaling works"):
//!
//! - once the load has [`MIN_HISTORY`] (24 hours) of history, a forecast is made from up to
//!   [`HISTORY`] (14 days) of it: the load of each hour of the next [`HORIZON`] (48 hours), made
//!   again every [`REFRESH`] (6 hours);
//! - the capacity forecast of an hour is its forecast load over the load one unit carries at the
//!   target utilization, rounded up and at most the maximum (`HonorMaxCapacity`);
//! - each hour's forecast capacity becomes the minimum capacity [`SCHEDULING_BUFFER`] (300 s,
//!   the API's default `SchedulingBufferTime`) before the hour starts: capacity is raised to it,
//!   never lowered by it (predictive scaling does not scale in);
//! - target tracking ([`TargetTracking`]) does the rest, above that minimum.
//!
//! AWS does not publish its forecasting algorithm. This model forecasts with the engine's own
//! forecast ([`capstan_engine::forecast::History`]): the hourly peaks' daily or weekly profile,
//! whichever was the more accurate lately. Unlike capstan's forecast floor, it applies the
//! forecast however large its recent error: AWS documents no such check.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use capstan_engine::Datapoint;
use capstan_engine::forecast::History;

use super::{Controller, TargetTracking};

/// The history a first forecast needs.
pub const MIN_HISTORY: TimeDelta = capstan_engine::forecast::MIN_HISTORY;
/// The most history a forecast reads.
pub const HISTORY: TimeDelta = TimeDelta::days(14);
/// How far ahead a forecast reaches.
pub const HORIZON: TimeDelta = TimeDelta::hours(48);
/// How often a forecast is made again.
pub const REFRESH: TimeDelta = TimeDelta::hours(6);
/// How long before its hour a forecast capacity becomes the minimum: `SchedulingBufferTime`'s
/// default.
pub const SCHEDULING_BUFFER: TimeDelta = TimeDelta::seconds(300);

/// Predictive scaling (`ForecastAndScale`) over target tracking.
#[derive(Debug, Clone)]
pub struct Predictive {
    /// The reactive part, whose target and bounds predictive scaling shares.
    tracking: TargetTracking,
    /// The load one unit carries at the target utilization.
    per_unit: f64,
    /// The end of the last minute observed: when the next decision is made.
    now: Option<DateTime<Utc>>,
    /// Every load observed, oldest first.
    loads: Vec<Datapoint>,
    /// The latest forecast.
    plan: Option<Plan>,
}

/// One forecast: the minimum capacity of each hour it covers.
#[derive(Debug, Clone)]
struct Plan {
    made_at: DateTime<Utc>,
    /// Each hour's start and its forecast capacity, ascending.
    hours: Vec<(DateTime<Utc>, u32)>,
}

impl Predictive {
    /// Predictive scaling over `tracking`, for units that each carry `per_unit_load` at 100%
    /// utilization (the load at the target is `tracking.target`% of it).
    pub fn new(tracking: TargetTracking, per_unit_load: f64) -> Self {
        let per_unit = per_unit_load * tracking.target / 100.0;
        Self {
            tracking,
            per_unit,
            now: None,
            loads: Vec::new(),
            plan: None,
        }
    }

    /// Makes a forecast at `now` when none is, or the last is [`REFRESH`] old, and there is
    /// [`MIN_HISTORY`] of load.
    fn refresh(&mut self, now: DateTime<Utc>) {
        if self
            .plan
            .as_ref()
            .is_some_and(|plan| now - plan.made_at < REFRESH)
        {
            return;
        }
        let from = self
            .loads
            .partition_point(|load| load.timestamp < now - HISTORY);
        let history = History::of(&self.loads[from..], now);
        if history.span(now) < MIN_HISTORY {
            return;
        }
        let (min, max) = (self.tracking.min, self.tracking.max);
        let hours = history
            .forecast(now, (now, now + HORIZON - TimeDelta::hours(1)))
            .hours
            .into_iter()
            .map(|load| {
                let units = (load.value / self.per_unit).ceil() as u32;
                (load.timestamp, units.clamp(min, max))
            })
            .collect();
        self.plan = Some(Plan {
            made_at: now,
            hours,
        });
    }

    /// The minimum capacity in effect at `now`: the forecast capacity of the hour starting
    /// within [`SCHEDULING_BUFFER`] of `now`, or of the hour under way.
    fn minimum(&self, now: DateTime<Utc>) -> u32 {
        let Ok(hour) = (now + SCHEDULING_BUFFER).duration_trunc(TimeDelta::hours(1)) else {
            return self.tracking.min;
        };
        self.plan
            .as_ref()
            .and_then(|plan| plan.hours.iter().find(|(at, _)| *at == hour))
            .map_or(self.tracking.min, |&(_, units)| units)
    }
}

impl Controller for Predictive {
    fn observe(&mut self, at: DateTime<Utc>, load: Option<f64>) {
        self.now = Some(at + TimeDelta::minutes(1));
        if let Some(value) = load {
            self.loads.push(Datapoint {
                timestamp: at,
                value,
            });
        }
    }

    fn decide(
        &mut self,
        history: &[Option<f64>],
        desired: u32,
        in_service: u32,
        warming: u32,
    ) -> u32 {
        let reactive = self.tracking.decide(history, desired, in_service, warming);
        let Some(now) = self.now else {
            return reactive;
        };
        self.refresh(now);
        reactive.max(self.minimum(now))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    /// Monday 2 March 2026 at 00:00 UTC.
    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0)
            .single()
            .expect("valid time")
    }

    /// Requests a minute: 6,000 from 15:00 to 15:59 every day, 600 otherwise.
    fn daily_peak(at: DateTime<Utc>) -> f64 {
        if at.format("%H").to_string() == "15" {
            6_000.0
        } else {
            600.0
        }
    }

    /// Predictive scaling at a 60% target, units of 100 requests a minute, 2 to 100 units.
    fn predictive() -> Predictive {
        let tracking = TargetTracking {
            target: 60.0,
            min: 2,
            max: 100,
        };
        Predictive::new(tracking, 100.0)
    }

    /// `predictive()` fed `minutes` of `daily_peak` and CPU at its target, deciding each minute
    /// from `desired` units in service: it, and the decisions, one a minute.
    fn run(minutes: i64, desired: u32) -> (Predictive, Vec<u32>) {
        let mut predictive = predictive();
        let mut history = Vec::new();
        let mut desired = desired;
        let decisions = (0..minutes)
            .map(|minute| {
                let at = start() + TimeDelta::minutes(minute);
                predictive.observe(at, Some(daily_peak(at)));
                history.push(Some(60.0));
                desired = predictive.decide(&history, desired, desired, 0);
                desired
            })
            .collect();
        (predictive, decisions)
    }

    #[test]
    fn forecasts_48_hours_once_a_day_of_history_is_in_and_again_every_6_hours() {
        let (before, _) = run(24 * 60 - 1, 10);
        assert!(before.plan.is_none(), "23h59m of history");
        let (after, _) = run(24 * 60, 10);
        let plan = after.plan.expect("a forecast at 00:00 on the second day");
        assert_eq!(plan.made_at, start() + TimeDelta::days(1));
        // 48 hours from 00:00: 6,000 requests at 15:00 over 60 a unit (100 at 60%) is 100
        // units, 600 at other hours 10.
        assert_eq!(plan.hours.len(), 48);
        assert_eq!(plan.hours[15], (start() + TimeDelta::hours(39), 100));
        assert_eq!(plan.hours[16].1, 10);
        assert_eq!(plan.hours[39].1, 100, "the third day's 15:00");
        let (later, _) = run(30 * 60 + 1, 10);
        let made_at = later.plan.map(|plan| plan.made_at);
        assert_eq!(made_at, Some(start() + TimeDelta::hours(30)));
    }

    #[test]
    fn raises_the_minimum_five_minutes_before_the_forecast_hour_and_never_lowers_it() {
        let (_, decisions) = run(2 * 24 * 60, 10);
        let day2 = 24 * 60;
        // The first day's 15:00 peak was not forecast: no history yet.
        assert!(decisions[..day2 - 1].iter().all(|&d| d == 10));
        // The decision at the end of 14:54 (now 14:55) raises it for the 15:00 hour.
        assert_eq!(decisions[day2 + 14 * 60 + 53], 10, "14:54: not yet");
        assert_eq!(decisions[day2 + 14 * 60 + 54], 100, "at 14:55");
        // From 15:55 the minimum is 10 again, but predictive scaling does not scale in, and
        // with CPU at its target neither does target tracking.
        assert_eq!(decisions[day2 + 16 * 60], 100);
        assert_eq!(decisions[2 * day2 - 1], 100);
    }

    #[test]
    fn target_tracking_scales_in_to_the_forecast_minimum_and_not_below() {
        let mut predictive = predictive();
        for minute in 0..=(34 * 60) {
            let at = start() + TimeDelta::minutes(minute);
            predictive.observe(at, Some(daily_peak(at)));
        }
        // At 10:01 on the second day, CPU 6% for 15 minutes asks for ceil(20 × 6 / 60) = 2;
        // the forecast minimum is 600 / 60 = 10.
        assert_eq!(predictive.decide(&[Some(6.0); 15], 20, 20, 0), 10);
        // Within the buffer before 15:00, the minimum is the peak's 100.
        for minute in (34 * 60 + 1)..(38 * 60 + 55) {
            let at = start() + TimeDelta::minutes(minute);
            predictive.observe(at, Some(daily_peak(at)));
        }
        assert_eq!(predictive.decide(&[Some(6.0); 15], 20, 20, 0), 100);
    }
}
