//! Forecast floors: a policy's `forecast` learns the hourly peaks of a metric, forecasts the
//! coming hours from a daily or a weekly profile of them, and raises the capacity floor ahead of
//! each forecast peak.
//!
//! The caller keeps the [`History`] in the resource's state and refreshes it when
//! [`history_read`] says so (at most once an hour); the engine reads nothing itself.
//!
//! - **Profiles.** The daily profile forecasts an hour as the mean of the peaks of the same hour
//!   on the last 7 days; the weekly one as the mean of the peaks of the same hour and weekday in
//!   the weeks of history. Each profile's *recent error* is its forecast of each of the last 24
//!   complete hours, made from the hours before it, against the peak that came: the sum of
//!   the absolute errors over the sum of the peaks. The profile with the smaller recent error
//!   forecasts; the weekly one needs a week of history before it has an error, and until it
//!   has one the daily profile forecasts. A profile whose recent error is above the
//!   forecast's `max_error` (25% by default) is not trusted: the floor is withheld.
//! - **Floor.** At `now`, the forecast is the highest of the forecasts of the hours that
//!   `[now, now + lead]` touches, so the floor for an hour rises `lead` before it starts and
//!   capacity is in service when it does. The floor is ceil(forecast / per_replica), at most
//!   `capacity.max`. It only raises capacity (it is a bound, like a schedule's floor); the rules
//!   still scale above it, and back down to it once the forecast falls.
//! - **Read replicas.** On an `rds_replicas` policy the forecast serves its replica plan
//!   (`ahead_of: forecast`, see the `replicas` module), which waits for a quiet source: it
//!   looks from `retire_after` before now to the plan's `lead` after, and its floor is the
//!   replicas wanted, ceil(forecast / per_replica) less one for the source.
//! - **Withheld** with fewer than 24 hours of history, a recent error above `max_error`, or no
//!   forecast for the hours ahead: the explanation says why, and the floor is `capacity.min`.

mod profile;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use capstan_policy::model::{Forecast, Policy, Target};

use crate::decision::{ForecastEvaluation, ForecastOutcome};
use crate::observe::{Datapoint, ResourceState};
use crate::read::MetricRead;
use crate::track;

pub use profile::Profile;

/// How often the history is read again: hourly, as its peaks are.
pub const REFRESH: TimeDelta = TimeDelta::hours(1);

/// The history a forecast needs before the floor acts: one daily cycle.
pub const MIN_HISTORY: TimeDelta = TimeDelta::hours(24);

/// The hourly peaks of a forecast metric, as read at one time and kept in the resource's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When it was read; read again [`REFRESH`] later.
    pub read_at: DateTime<Utc>,
    /// The highest datapoint of each hour, stamped with the hour's start, oldest first. Hours
    /// without datapoints are absent.
    pub peaks: Vec<Datapoint>,
}

impl History {
    /// The hourly peaks of `series` (datapoints in ascending time order), read at `read_at`.
    pub fn of(series: &[Datapoint], read_at: DateTime<Utc>) -> Self {
        let mut peaks: Vec<Datapoint> = Vec::new();
        for point in series {
            let hour = hour_of(point.timestamp);
            match peaks.last_mut() {
                Some(last) if last.timestamp == hour => last.value = last.value.max(point.value),
                _ => peaks.push(Datapoint {
                    timestamp: hour,
                    value: point.value,
                }),
            }
        }
        Self { read_at, peaks }
    }

    /// How far back it reaches from `now`: from the start of its oldest hour.
    pub fn span(&self, now: DateTime<Utc>) -> TimeDelta {
        self.peaks
            .first()
            .map_or(TimeDelta::zero(), |first| now - first.timestamp)
    }

    /// The forecast peak of each hour from the one `from` falls in to the one `until` falls in,
    /// by the profile with the smaller recent error at `now`.
    pub fn forecast(
        &self,
        now: DateTime<Utc>,
        (from, until): (DateTime<Utc>, DateTime<Utc>),
    ) -> HourlyForecast {
        let (profile, error) = profile::best(&self.peaks, hour_of(now));
        let first = hour_of(from);
        let last = hour_of(until);
        let hours = std::iter::successors(Some(first), |hour| {
            Some(*hour + TimeDelta::hours(1)).filter(|next| *next <= last)
        })
        .filter_map(|hour| {
            Some(Datapoint {
                timestamp: hour,
                value: profile.forecast(&self.peaks, hour)?,
            })
        })
        .collect();
        HourlyForecast {
            profile,
            error,
            hours,
        }
    }
}

/// A profile's forecast of the peaks of coming hours.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyForecast {
    /// The profile that forecast: the one with the smaller recent error.
    pub profile: Profile,
    /// Its recent error, a fraction of the peaks; `None` before it has one.
    pub error: Option<f64>,
    /// The forecast peak of each hour, stamped with the hour's start, ascending; hours the
    /// profile has no forecast for are absent.
    pub hours: Vec<Datapoint>,
}

/// The start of the hour `at` falls in.
fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// The read that refreshes the forecast history of `policy` at `now`: `None` when the policy
/// has no forecast, or `state` holds a history read less than [`REFRESH`] ago. It covers the
/// forecast's `history` up to the start of the current period of its metric.
pub fn history_read(
    policy: &Policy,
    state: &ResourceState,
    now: DateTime<Utc>,
) -> Option<MetricRead> {
    let forecast = policy.forecast.as_ref()?;
    if state
        .history
        .as_ref()
        .is_some_and(|history| now - history.read_at < REFRESH)
    {
        return None;
    }
    let query = policy.metric(&forecast.metric);
    let period = TimeDelta::seconds(query.period_secs.into());
    let end = now.duration_trunc(period).ok()?;
    let start = hour_of(end.checked_sub_signed(forecast.history.as_delta())?);
    Some(MetricRead {
        queries: vec![query.clone()],
        start,
        end,
    })
}

/// How the policy's forecast stands at `now` with `history`: `None` without a forecast.
pub(crate) fn evaluate(
    policy: &Policy,
    history: Option<&History>,
    now: DateTime<Utc>,
) -> Option<ForecastEvaluation> {
    let forecast = policy.forecast.as_ref()?;
    let outcome = match history {
        None => ForecastOutcome::Withheld {
            reason: "its history has not been read yet".into(),
        },
        Some(history) if history.span(now) < MIN_HISTORY => ForecastOutcome::Withheld {
            reason: format!(
                "it has {}h of history and needs {}h",
                history.span(now).num_hours(),
                MIN_HISTORY.num_hours()
            ),
        },
        Some(history) => floor(policy, forecast, history, now, span(policy, forecast, now)),
    };
    Some(ForecastEvaluation {
        metric: forecast.metric.clone(),
        outcome,
    })
}

/// The times whose hours the forecast looks at from `now`: `[now, now + forecast.lead]`, or for
/// a replica plan ahead of the forecast `[now - retire_after, now + replicas.lead]`, so that the
/// replicas are wanted `lead` before a peak's hour and kept `retire_after` after it.
fn span(
    policy: &Policy,
    forecast: &Forecast,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match &policy.replicas {
        Some(plan) if plan.is_ahead_of_forecast() => (
            now - plan.retire_after.as_delta(),
            now + plan.lead.as_delta(),
        ),
        _ => (now, now + forecast.lead.as_delta()),
    }
}

/// The units a forecast `value` needs: ceil(value / per_replica), less the source for read
/// replicas (it serves as one), at most `capacity.max`.
fn units(policy: &Policy, forecast: &Forecast, value: f64) -> u32 {
    let units = track::ceiling(value / forecast.per_replica);
    let units = match policy.target {
        Target::RdsReplicas { .. } => units.saturating_sub(1),
        _ => units,
    };
    units.min(policy.capacity.max)
}

/// The floor for the hours `(from, to)` touches, from the profile with the smaller recent error
/// at `now`.
fn floor(
    policy: &Policy,
    forecast: &Forecast,
    history: &History,
    now: DateTime<Utc>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> ForecastOutcome {
    let HourlyForecast {
        profile,
        error,
        hours,
    } = history.forecast(now, (from, to));
    let max_error = forecast.max_error;
    if let Some(error) = error.filter(|error| *error > max_error.get()) {
        return ForecastOutcome::Withheld {
            reason: format!(
                "the {profile} profile's recent error of {:.0}% is above max_error {max_error}",
                error * 100.0
            ),
        };
    }
    let Some(Datapoint {
        timestamp: hour,
        value,
    }) = hours.into_iter().max_by(|a, b| a.value.total_cmp(&b.value))
    else {
        return ForecastOutcome::Withheld {
            reason: format!("the {profile} profile has no forecast for the hours ahead"),
        };
    };
    let floor = units(policy, forecast, value);
    ForecastOutcome::Floor {
        forecast: value,
        hour,
        profile,
        error,
        floor,
    }
}

#[cfg(test)]
mod tests;
