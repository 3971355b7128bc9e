//! Builders for the unit tests: policies made directly as validated model values (on
//! [`capstan_policy::test_util`]'s), and series laid out over the complete periods before a
//! fixed `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};

use capstan_policy::model::{
    Database, Duration, Guards, Metric, MetricQuery, Policy, Step, Target, Threshold,
};
pub use capstan_policy::test_util::rule;
use capstan_policy::test_util::{self, connections, databases, ecs_query};

use crate::decide::decide;
use crate::decision::ClampKind;
use crate::decision::{Action, Decision};
use crate::observe::{
    Change, CurrentCapacity, Datapoint, Direction, MetricData, Observations, Recommendation,
    ResourceState,
};

/// The evaluation time of most tests: 30 seconds into a minute, so the current period is
/// incomplete and the last complete one-minute period starts at 12:00:00.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 1, 30)
        .single()
        .expect("valid time")
}

/// A CloudWatch query for metric `name` of the `web` service with `period_secs`.
pub fn query(name: &str, period_secs: u32) -> MetricQuery {
    ecs_query("web", name, period_secs)
}

/// The metric of [`query`] with no delay: its windows end where the current period starts.
pub fn metric(name: &str, period_secs: u32) -> Metric {
    Metric {
        query: query(name, period_secs),
        delay: Duration::from_secs(0),
    }
}

/// A policy for `web` with capacity 1..=10, metrics `cpu` and `memory` (one-minute periods, no
/// delay), no rules, no schedules, and the default guards but for no cooldown or stabilization
/// window before scaling in.
pub fn policy() -> Policy {
    let target = Target::EcsService {
        cluster: "prod".into(),
        service: "web".into(),
    };
    Policy {
        metrics: BTreeMap::from([
            ("cpu".into(), metric("CPUUtilization", 60)),
            ("memory".into(), metric("MemoryUtilization", 60)),
        ]),
        guards: Guards {
            cooldown_in: Duration::from_secs(0),
            stabilization_in: Duration::from_secs(0),
            stabilization_in_after_flap: Duration::from_secs(0),
            ..Guards::default()
        },
        ..test_util::policy("web", target)
    }
}

/// A datapoint at `timestamp`.
pub fn point(timestamp: DateTime<Utc>, value: f64) -> Datapoint {
    Datapoint { timestamp, value }
}

/// Start of the `back`-th complete period before `now` (1 = the last complete one).
pub fn period_start(now: DateTime<Utc>, period_secs: u32, back: u32) -> DateTime<Utc> {
    let period = i64::from(period_secs);
    let current = now.timestamp().div_euclid(period) * period;
    DateTime::from_timestamp(current - period * i64::from(back), 0).expect("in range")
}

/// A series over the last `values.len()` complete periods before `now`, oldest first; `None`
/// leaves a gap.
pub fn series(now: DateTime<Utc>, period_secs: u32, values: &[Option<f64>]) -> Vec<Datapoint> {
    let count = u32::try_from(values.len()).expect("short series");
    (1..=count)
        .rev()
        .zip(values)
        .filter_map(|(back, value)| {
            value.map(|value| point(period_start(now, period_secs, back), value))
        })
        .collect()
}

/// Observations holding `series` for each named metric of `policy`.
pub fn observations(policy: &Policy, metrics: &[(&str, Vec<Datapoint>)]) -> Observations {
    metrics
        .iter()
        .map(|(name, series)| {
            (
                policy.metric(name).clone(),
                MetricData::Series(series.clone()),
            )
        })
        .collect()
}

/// A resource at `desired` with no bounds of its own, not busy.
pub fn capacity(desired: u32) -> CurrentCapacity {
    CurrentCapacity {
        desired,
        resource_min: None,
        resource_max: None,
        busy: None,
        ..Default::default()
    }
}

/// `seconds` as a `TimeDelta`.
pub fn secs(seconds: i64) -> TimeDelta {
    TimeDelta::seconds(seconds)
}

/// The connection budget of `orders-db`, declared at `max_connections`.
pub fn database(max_connections: u32) -> BTreeMap<String, Database> {
    databases("orders-db", max_connections)
}

/// An ECS service `name` in `prod` using `orders-db`, 50 connections per task.
pub fn user(name: &str, priority: i32, min: u32) -> Policy {
    let mut policy = policy();
    policy.name = name.into();
    policy.target = Target::EcsService {
        cluster: "prod".into(),
        service: name.into(),
    };
    policy.capacity.min = min;
    policy.priority = priority;
    policy.connections = Some(connections("orders-db", 50));
    policy
}

/// A decision for `policy` from `current` to `desired`, as if a rule had asked for it.
pub fn wants(policy: &Policy, current: u32, desired: u32) -> Decision {
    let mut decision = decide(
        policy,
        &Observations::new(),
        &capacity(current),
        &ResourceState::default(),
        now(),
    );
    decision.desired = desired;
    decision.action = Action::between(current, desired);
    decision
}

/// A threshold of cpu above 70.
pub const ABOVE_70: Threshold = Threshold::Above(70.0);
/// A threshold of cpu below 30.
pub const BELOW_30: Threshold = Threshold::Below(30.0);

/// One-minute `values` over the complete periods before `now()`, oldest first.
pub fn minutes(values: &[Option<f64>]) -> Vec<Datapoint> {
    series(now(), 60, values)
}

/// `n` complete one-minute datapoints of `value`.
pub fn steady(value: f64, n: usize) -> Vec<Datapoint> {
    minutes(&vec![Some(value); n])
}

/// The decision for `policy` at `now()`, from `current` with nothing remembered.
pub fn decide_from(policy: &Policy, observations: &Observations, current: u32) -> Decision {
    decide(
        policy,
        observations,
        &capacity(current),
        &ResourceState::default(),
        now(),
    )
}

/// A policy scaling out by `step` when cpu is above 70 for 5 of 5 minutes.
pub fn scale_out_on_cpu(step: Step) -> Policy {
    let mut policy = policy();
    policy.scale_out.push(rule("cpu", ABOVE_70, 5, 5, step));
    policy
}

/// A policy scaling in by `step` when cpu is below 30 for 5 of 5 minutes.
pub fn scale_in_on_cpu(step: Step) -> Policy {
    let mut policy = policy();
    policy.scale_in.push(rule("cpu", BELOW_30, 5, 5, step));
    policy
}

/// The kinds of the decision's clamps, in the order applied.
pub fn kinds(decision: &Decision) -> Vec<ClampKind> {
    decision
        .explanation
        .clamps
        .iter()
        .map(|clamp| clamp.kind)
        .collect()
}

/// A state remembering `capacities`, one recommendation per minute, the last one minute ago.
pub fn recommended(capacities: &[u32]) -> ResourceState {
    let count = i64::try_from(capacities.len()).expect("few recommendations");
    ResourceState {
        recommendations: capacities
            .iter()
            .zip((1..=count).rev())
            .map(|(&capacity, minutes_ago)| Recommendation {
                at: now() - secs(60 * minutes_ago),
                capacity,
            })
            .collect(),
        ..ResourceState::default()
    }
}

/// A state remembering `changes`, each `(seconds ago, direction, from, to)`.
pub fn acted(changes: &[(i64, Direction, u32, u32)]) -> ResourceState {
    ResourceState {
        changes: changes
            .iter()
            .map(|&(seconds_ago, direction, from, to)| Change {
                at: now() - secs(seconds_ago),
                direction,
                from,
                to,
            })
            .collect(),
        ..ResourceState::default()
    }
}
