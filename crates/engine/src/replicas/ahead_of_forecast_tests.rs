//! A replica plan ahead of the policy's own forecast: when replicas are wanted, the quiet rule,
//! retirement after the peak, and a withheld forecast.

use capstan_policy::model::{
    AheadOf, Condition, DEFAULT_FORECAST_LEAD, DEFAULT_FORECAST_MAX_ERROR, Datapoints, Duration,
    Forecast, Policy, ReplicaPlan, Target, Threshold,
};
use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};
use proptest::prelude::*;

use crate::decide::decide;
use crate::decision::{Action, ClampKind, Decision};
use crate::forecast::History;
use crate::observe::{Datapoint, Direction, ResourceState};
use crate::testing::{capacity, metric, observations, policy, series};

/// 2 March 2026 at `hour:minute` UTC.
fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0)
        .single()
        .expect("valid time")
}

/// Replicas of `orders-db`, 0 to 3, ahead of the forecast of `requests` at 500 a replica (the
/// source serving as one), wanted an hour ahead and retired 30 minutes after the peak's hour,
/// while cpu is below 40 for 10 minutes.
fn ahead_of_forecast() -> Policy {
    let mut policy = policy();
    policy.name = "orders-db-replicas".into();
    policy.target = Target::RdsReplicas {
        source: "orders-db".into(),
    };
    policy.capacity.min = 0;
    policy.capacity.max = 3;
    policy
        .metrics
        .insert("requests".into(), metric("ReadRequests", 60));
    policy.forecast = Some(Forecast {
        metric: "requests".into(),
        per_replica: 500.0,
        history: Duration::from_secs(14 * 86_400),
        lead: DEFAULT_FORECAST_LEAD,
        max_error: DEFAULT_FORECAST_MAX_ERROR,
    });
    policy.replicas = Some(ReplicaPlan {
        ahead_of: AheadOf::Forecast,
        lead: Duration::from_secs(3600),
        retire_after: Duration::from_secs(30 * 60),
        quiet: Some(Condition {
            metric: "cpu".into(),
            threshold: Threshold::Below(40.0),
            window: Datapoints {
                breaching: 10,
                window: 10,
            },
        }),
    });
    policy
}

/// `days` days of read requests before `end`: 900 a minute from 14:00 to 15:00, 100 otherwise.
fn history(end: DateTime<Utc>, days: i64) -> ResourceState {
    let minutes = days * 24 * 60;
    let points: Vec<Datapoint> = (0..minutes)
        .map(|i| {
            let timestamp = end - TimeDelta::minutes(minutes - i);
            let value = if timestamp.hour() == 14 { 900.0 } else { 100.0 };
            Datapoint { timestamp, value }
        })
        .collect();
    ResourceState {
        history: Some(History::of(&points, end)),
        ..ResourceState::default()
    }
}

/// The decision at `time` with `current` replicas, cpu at `cpu` for the last 10 minutes and
/// `days` of history.
fn decision(time: DateTime<Utc>, current: u32, cpu: f64, days: i64) -> Decision {
    let policy = ahead_of_forecast();
    let observed = observations(&policy, &[("cpu", series(time, 60, &[Some(cpu); 10]))]);
    decide(
        &policy,
        &observed,
        &capacity(current),
        &history(time, days),
        time,
    )
}

#[test]
fn a_replica_is_wanted_lead_ahead_of_the_peak_hour_and_created_while_the_source_is_quiet() {
    let early = decision(at(12, 30), 0, 10.0, 3);
    assert_eq!((early.desired, early.action), (0, Action::None));
    let quiet = decision(at(13, 5), 0, 10.0, 3);
    assert_eq!(quiet.change(), Some((Direction::Out, 1)), "{quiet:#?}");
    let clamp = &quiet.explanation.clamps[0];
    assert_eq!((clamp.kind, clamp.to), (ClampKind::ScheduleFloor, 1));
    assert!(
        clamp
            .detail
            .starts_with("schedule replicas ahead of forecast is open until 2026-03-02T15:30:00"),
        "{}",
        clamp.detail
    );
    let summary = &quiet.explanation.summary;
    assert!(
        summary.contains("replicas ahead of forecast: 1 wanted, source quiet")
            && summary.contains("forecast of requests 900.0 at 14:00 UTC"),
        "{summary}"
    );
    assert!(
        !quiet
            .explanation
            .clamps
            .iter()
            .any(|clamp| clamp.kind == ClampKind::ForecastFloor),
        "the plan takes the forecast's floor: {:?}",
        quiet.explanation.clamps
    );
}

#[test]
fn a_busy_source_gets_no_replica_before_or_during_the_peak_and_the_decision_says_so() {
    let before = decision(at(13, 5), 0, 80.0, 3);
    assert_eq!((before.desired, before.action), (0, Action::None));
    let clamp = before.explanation.clamps.last().expect("a blocking clamp");
    assert_eq!(
        (clamp.kind, clamp.from, clamp.to),
        (ClampKind::ResourceBusy, 1, 0)
    );
    assert!(
        clamp.detail.starts_with(
            "the source is not quiet (cpu below 40 for 0 of 10 datapoints, 0 missing): no replica is created from a busy source"
        ),
        "{}",
        clamp.detail
    );
    let during = decision(at(14, 10), 0, 80.0, 3);
    assert_eq!(during.desired, 0);
    let clamp = during.explanation.clamps.last().expect("a blocking clamp");
    assert_eq!(clamp.kind, ClampKind::ResourceBusy);
    assert!(
        clamp.detail.starts_with(
            "the source was not quiet before the forecast peak at 14:00 UTC began, nor is it now"
        ),
        "{}",
        clamp.detail
    );
}

#[test]
fn the_replica_is_kept_retire_after_the_peak_hour_then_retired() {
    let during = decision(at(14, 30), 1, 80.0, 3);
    assert_eq!((during.desired, during.action), (1, Action::None));
    let tail = decision(at(15, 20), 1, 10.0, 3);
    assert_eq!((tail.desired, tail.action), (1, Action::None));
    let after = decision(at(15, 31), 1, 10.0, 3);
    assert_eq!(after.change(), Some((Direction::In, 0)));
    assert_eq!(after.explanation.fired.as_deref(), Some("replicas.retire"));
    assert!(
        after
            .explanation
            .summary
            .contains("replicas.retire: no forecast peak needs replicas"),
        "{}",
        after.explanation.summary
    );
}

#[test]
fn while_the_forecast_is_withheld_replicas_are_neither_created_nor_retired() {
    let young = decision(at(13, 5), 0, 10.0, 0);
    assert_eq!(young.desired, 0);
    let kept = decision(at(15, 31), 1, 10.0, 0);
    assert_eq!((kept.desired, kept.action), (1, Action::None));
    assert!(
        kept.explanation.summary.contains(
            "replicas ahead of forecast: none created or retired: forecast of requests withheld"
        ),
        "{}",
        kept.explanation.summary
    );
}

proptest! {
    /// Whatever the time of day, the replicas there are and the source's load, the plan never
    /// asks for more than capacity.max, and never creates a replica while the source is busy.
    #[test]
    fn never_above_max_and_never_from_a_busy_source(
        minutes in 0i64..(24 * 60),
        current in 0u32..5,
        cpu in 0u32..100,
    ) {
        let time = at(0, 0) + TimeDelta::minutes(minutes) + TimeDelta::seconds(30);
        let decided = decision(time, current, f64::from(cpu), 3);
        prop_assert!(decided.desired <= 3_u32.max(current));
        if cpu >= 40 {
            prop_assert!(decided.desired <= current, "{decided:#?}");
        }
    }
}
