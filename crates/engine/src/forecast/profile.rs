//! The daily and weekly profiles of a metric's hourly peaks, what each forecasts for an hour,
//! and which of them has been the more accurate lately.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::observe::Datapoint;

/// How many past days the daily profile averages.
const DAYS: i32 = 7;

/// How many complete hours before now the recent error is measured over.
const ERROR_HOURS: i32 = 24;

/// Which profile of the history a forecast came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// The mean of the same hour on the last 7 days.
    Daily,
    /// The mean of the same hour and weekday in every week of the history.
    Weekly,
}

impl Profile {
    /// The length of one cycle of the profile.
    fn cycle(self) -> TimeDelta {
        match self {
            Self::Daily => TimeDelta::days(1),
            Self::Weekly => TimeDelta::weeks(1),
        }
    }

    /// The forecast of the peak of the hour starting at `hour`, from the `peaks` (hourly,
    /// ascending) of the cycles before it: `None` when none of them has that hour.
    pub(crate) fn forecast(self, peaks: &[Datapoint], hour: DateTime<Utc>) -> Option<f64> {
        let cycles = match self {
            Self::Daily => DAYS,
            Self::Weekly => i32::MAX,
        };
        let (sum, count) = (1..=cycles)
            .map_while(|back| hour.checked_sub_signed(self.cycle() * back))
            .take_while(|at| peaks.first().is_some_and(|first| *at >= first.timestamp))
            .filter_map(|at| peak_at(peaks, at))
            .fold((0.0, 0_u32), |(sum, count), peak| (sum + peak, count + 1));
        (count > 0).then(|| sum / f64::from(count))
    }

    /// The profile's recent error before the hour starting at `now_hour`: over the last
    /// [`ERROR_HOURS`] hours with both a peak and a forecast, the sum of the absolute errors
    /// over the sum of the peaks. `None` when no such hour has a peak above 0.
    fn recent_error(self, peaks: &[Datapoint], now_hour: DateTime<Utc>) -> Option<f64> {
        let (errors, total) = (1..=ERROR_HOURS)
            .map(|back| now_hour - TimeDelta::hours(back.into()))
            .filter_map(|hour| Some((peak_at(peaks, hour)?, self.forecast(peaks, hour)?)))
            .fold((0.0, 0.0), |(errors, total), (peak, forecast)| {
                (errors + f64::abs(forecast - peak), total + peak)
            });
        (total > 0.0).then(|| errors / total)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        })
    }
}

/// The peak of the hour starting at `hour`, if it has one.
fn peak_at(peaks: &[Datapoint], hour: DateTime<Utc>) -> Option<f64> {
    peaks
        .binary_search_by_key(&hour, |peak| peak.timestamp)
        .ok()
        .map(|index| peaks[index].value)
}

/// The profile to forecast with at the hour starting at `now_hour`, and its recent error: the
/// weekly one when its recent error is known and smaller than the daily one's, else the daily.
pub(crate) fn best(peaks: &[Datapoint], now_hour: DateTime<Utc>) -> (Profile, Option<f64>) {
    let daily = Profile::Daily.recent_error(peaks, now_hour);
    match Profile::Weekly.recent_error(peaks, now_hour) {
        Some(weekly) if daily.is_none_or(|daily| weekly < daily) => (Profile::Weekly, Some(weekly)),
        _ => (Profile::Daily, daily),
    }
}
