use chrono::{Datelike, TimeZone as _, Timelike, Weekday};

use capstan_policy::model::{DEFAULT_FORECAST_MAX_ERROR, Duration, Step, Threshold};

use super::*;
use crate::decide;
use crate::decision::{ClampKind, ForecastOutcome};
use crate::observe::Observations;
use crate::testing::{
    capacity, kinds, metric, observations, policy, query, rule, scale_in_on_cpu, series,
};

/// Monday 2 March 2026 at `hour:minute` UTC, the day after two whole weeks of history.
fn monday(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0)
        .single()
        .expect("valid time")
}

/// Requests per minute at `at`: 1,000 at 15:00 on weekdays, 50 less for each hour away from
/// 15:00, and 60% of that at the weekend. Every minute of an hour has the same value.
fn weekly(at: DateTime<Utc>) -> f64 {
    let distance = f64::from(at.hour().abs_diff(15));
    let weekend = matches!(at.weekday(), Weekday::Sat | Weekday::Sun);
    (1_000.0 - 50.0 * distance) * if weekend { 0.6 } else { 1.0 }
}

/// Requests per minute at `at` following only a daily cycle: `weekly` on a weekday.
fn daily(at: DateTime<Utc>) -> f64 {
    1_000.0 - 50.0 * f64::from(at.hour().abs_diff(15))
}

/// One-minute datapoints of `shape` over the `span` before `end`.
fn minutes_of(
    shape: fn(DateTime<Utc>) -> f64,
    end: DateTime<Utc>,
    span: TimeDelta,
) -> Vec<Datapoint> {
    let count = span.num_minutes();
    (0..count)
        .map(|i| {
            let timestamp = end - span + TimeDelta::minutes(i);
            Datapoint {
                timestamp,
                value: shape(timestamp),
            }
        })
        .collect()
}

/// A policy of capacity 1 to 100 that forecasts `requests`, 40 a unit, 10 minutes ahead.
fn forecasting() -> Policy {
    let mut policy = policy();
    policy.capacity.max = 100;
    policy
        .metrics
        .insert("requests".into(), metric("RequestCount", 60));
    policy.forecast = Some(Forecast {
        metric: "requests".into(),
        per_replica: 40.0,
        history: Duration::from_secs(14 * 86_400),
        lead: Duration::from_secs(600),
        max_error: DEFAULT_FORECAST_MAX_ERROR,
    });
    policy
}

/// The state holding the history of `shape` read at `read_at`, reaching `span` back.
fn remembering(
    shape: fn(DateTime<Utc>) -> f64,
    read_at: DateTime<Utc>,
    span: TimeDelta,
) -> ResourceState {
    let read_at_hour = hour_of(read_at);
    ResourceState {
        history: Some(History::of(&minutes_of(shape, read_at_hour, span), read_at)),
        ..ResourceState::default()
    }
}

/// Five minutes of CPU at `value` before 14:52 on Monday.
fn cpu(value: f64) -> Vec<Datapoint> {
    series(monday(14, 52), 60, &[Some(value); 5])
}

/// `policy`'s decision at `at`, with no metrics, at 5 units, remembering `state`.
fn decide_at(policy: &Policy, state: &ResourceState, at: DateTime<Utc>) -> crate::Decision {
    decide(policy, &Observations::new(), &capacity(5), state, at)
}

fn outcome(decision: &crate::Decision) -> &ForecastOutcome {
    &decision
        .explanation
        .forecast
        .as_ref()
        .expect("a forecast")
        .outcome
}

#[test]
fn a_weekly_series_forecasts_the_next_peak_from_the_weekly_profile() {
    let policy = forecasting();
    let state = remembering(
        weekly,
        monday(14, 0),
        TimeDelta::days(14) + TimeDelta::hours(14),
    );
    let decision = decide_at(&policy, &state, monday(14, 52));
    // Monday's 15:00 peak is 1,000 requests, as on the two Mondays before; the daily profile
    // would have mixed in the weekend.
    assert_eq!(
        outcome(&decision),
        &ForecastOutcome::Floor {
            forecast: 1_000.0,
            hour: monday(15, 0),
            profile: Profile::Weekly,
            error: Some(0.0),
            floor: 25,
        }
    );
    assert_eq!(decision.desired, 25);
    assert_eq!(kinds(&decision), [ClampKind::ForecastFloor]);
    assert!(
        decision.explanation.summary.contains(
            "forecast of requests 1000.0 at 15:00 UTC (weekly profile, recent error 0%) sets a floor of 25"
        ),
        "{}",
        decision.explanation.summary
    );
}

#[test]
fn the_floor_rises_lead_ahead_of_the_hour_it_is_for() {
    let policy = forecasting();
    let state = remembering(weekly, monday(14, 0), TimeDelta::days(14));
    let before = decide_at(&policy, &state, monday(14, 49));
    // 14:00's peak is 950: ceil(950 / 40) = 24.
    assert_eq!(before.desired, 24);
    let ahead = decide_at(&policy, &state, monday(14, 50));
    assert_eq!(ahead.desired, 25);
}

#[test]
fn a_daily_series_forecasts_from_the_daily_profile_with_its_error() {
    let policy = forecasting();
    let state = remembering(daily, monday(14, 0), TimeDelta::days(3));
    let decision = decide_at(&policy, &state, monday(14, 52));
    assert_eq!(
        outcome(&decision),
        &ForecastOutcome::Floor {
            forecast: 1_000.0,
            hour: monday(15, 0),
            profile: Profile::Daily,
            error: Some(0.0),
            floor: 25,
        }
    );
}

#[test]
fn under_a_day_of_history_the_floor_is_withheld_and_the_decision_says_why() {
    let policy = forecasting();
    let state = remembering(weekly, monday(14, 0), TimeDelta::hours(9));
    let decision = decide_at(&policy, &state, monday(14, 52));
    assert_eq!(
        outcome(&decision),
        &ForecastOutcome::Withheld {
            reason: "it has 9h of history and needs 24h".into()
        }
    );
    assert_eq!(decision.desired, 5);
    assert!(
        decision
            .explanation
            .summary
            .ends_with("forecast of requests withheld: it has 9h of history and needs 24h"),
        "{}",
        decision.explanation.summary
    );
    let unread = decide(
        &policy,
        &Observations::new(),
        &capacity(5),
        &ResourceState::default(),
        monday(14, 52),
    );
    assert_eq!(
        outcome(&unread),
        &ForecastOutcome::Withheld {
            reason: "its history has not been read yet".into()
        }
    );
}

/// Requests per minute at `at` on a day of no rhythm: `daily` on even days of the month, three
/// times it on odd ones.
fn erratic(at: DateTime<Utc>) -> f64 {
    daily(at) * if at.day().is_multiple_of(2) { 1.0 } else { 3.0 }
}

#[test]
fn a_forecast_too_far_off_lately_is_withheld() {
    let policy = forecasting();
    let state = remembering(erratic, monday(14, 0), TimeDelta::days(4));
    let decision = decide_at(&policy, &state, monday(14, 52));
    let ForecastOutcome::Withheld { reason } = outcome(&decision) else {
        panic!(
            "a floor from an erratic history: {}",
            decision.explanation.summary
        );
    };
    assert!(
        reason.starts_with("the daily profile's recent error of ")
            && reason.ends_with("% is above max_error 25%"),
        "{reason}"
    );
    assert_eq!(decision.desired, 5);
}

#[test]
fn the_floor_never_lowers_capacity_and_scale_in_stops_at_it() {
    let mut policy = forecasting();
    let state = remembering(weekly, monday(14, 0), TimeDelta::days(14));
    // Above the floor with no rule: capacity stays.
    let above = decide(
        &policy,
        &Observations::new(),
        &capacity(60),
        &state,
        monday(14, 52),
    );
    assert_eq!(above.desired, 60);
    assert_eq!(kinds(&above), []);
    // A scale-in rule asks for 15 from 40: the floor holds it at 25.
    policy.scale_in = scale_in_on_cpu(Step::Remove(25)).scale_in;
    let observations = observations(&policy, &[("cpu", cpu(10.0))]);
    let shrunk = decide(
        &policy,
        &observations,
        &capacity(40),
        &state,
        monday(14, 52),
    );
    assert_eq!(shrunk.explanation.proposed, 15);
    assert_eq!(shrunk.desired, 25);
    assert_eq!(kinds(&shrunk), [ClampKind::ForecastFloor]);
}

#[test]
fn the_floor_is_within_capacity_max_and_rules_scale_above_it() {
    let mut policy = forecasting();
    policy.capacity.max = 20;
    let state = remembering(weekly, monday(14, 0), TimeDelta::days(14));
    let capped = decide_at(&policy, &state, monday(14, 52));
    assert_eq!(capped.desired, 20);
    policy.capacity.max = 100;
    policy.scale_out = vec![rule("cpu", Threshold::Above(70.0), 1, 1, Step::Set(40))];
    let observations = observations(&policy, &[("cpu", cpu(90.0))]);
    let busy = decide(&policy, &observations, &capacity(5), &state, monday(14, 52));
    assert_eq!(busy.desired, 40);
}

#[test]
fn history_is_the_hourly_peaks_and_is_read_again_after_an_hour() {
    let points = minutes_of(daily, monday(2, 0), TimeDelta::hours(2));
    let history = History::of(&points, monday(2, 0));
    assert_eq!(
        history.peaks,
        [
            Datapoint {
                timestamp: monday(0, 0),
                value: daily(monday(0, 0))
            },
            Datapoint {
                timestamp: monday(1, 0),
                value: daily(monday(1, 0))
            },
        ]
    );
    let policy = forecasting();
    let never = history_read(
        &policy,
        &ResourceState::default(),
        monday(14, 52) + TimeDelta::seconds(30),
    );
    assert_eq!(
        never,
        Some(MetricRead {
            queries: vec![query("RequestCount", 60)],
            start: monday(14, 0) - TimeDelta::days(14),
            end: monday(14, 52),
        })
    );
    let state = ResourceState {
        history: Some(History {
            read_at: monday(14, 0),
            peaks: Vec::new(),
        }),
        ..ResourceState::default()
    };
    assert_eq!(history_read(&policy, &state, monday(14, 59)), None);
    assert!(history_read(&policy, &state, monday(15, 0)).is_some());
    assert_eq!(
        history_read(
            &crate::testing::policy(),
            &ResourceState::default(),
            monday(15, 0)
        ),
        None
    );
}

#[test]
fn the_history_is_remembered_after_a_decision() {
    let policy = forecasting();
    let state = remembering(weekly, monday(14, 0), TimeDelta::days(2));
    let decision = decide_at(&policy, &state, monday(14, 52));
    assert_eq!(state.after(&policy, &decision, None).history, state.history);
}
