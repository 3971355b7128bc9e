//! The evaluation pass against in-memory ports: what it reads, what it changes, and what it
//! refuses to change.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use capstan_engine::ports::{CapacityControl, MetricSource, StateStore};
use capstan_engine::{
    CurrentCapacity, Datapoint, Direction, LastAction, MetricData, Observations, ResourceState,
};
use capstan_policy::model::{
    Capacity, Condition, DEFAULT_COOLDOWN_IN, DEFAULT_TOLERANCE, Datapoints, Duration, Guards,
    MetricQuery, MissingData, Policy, Rule, Statistic, Step, Target, Threshold,
};
use capstan_runner::{
    AlarmMetric, AlarmTrigger, Mode, Ports, Result as RunResult, Trigger, evaluate,
};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FakeError(String);

/// Metrics served from memory; `fail` makes the whole read fail.
#[derive(Default)]
struct FakeMetrics {
    values: BTreeMap<MetricQuery, Vec<Datapoint>>,
    fail: bool,
    reads: Mutex<Vec<usize>>,
}

impl MetricSource for FakeMetrics {
    type Error = FakeError;

    async fn read(
        &self,
        queries: &[MetricQuery],
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Observations, FakeError> {
        self.reads
            .lock()
            .expect("fake port lock")
            .push(queries.len());
        if self.fail {
            return Err(FakeError("GetMetricData throttled".into()));
        }
        Ok(queries
            .iter()
            .map(|q| {
                (
                    q.clone(),
                    MetricData::Series(self.values.get(q).cloned().unwrap_or_default()),
                )
            })
            .collect())
    }
}

/// Capacity held in memory; a target missing from the map fails to read.
#[derive(Default)]
struct FakeCapacity {
    desired: Mutex<BTreeMap<Target, u32>>,
    fail_set: bool,
}

impl CapacityControl for FakeCapacity {
    type Error = FakeError;

    async fn current(&self, target: &Target) -> Result<CurrentCapacity, FakeError> {
        let desired = *self
            .desired
            .lock()
            .expect("fake port lock")
            .get(target)
            .ok_or_else(|| FakeError(format!("{target} not found")))?;
        Ok(CurrentCapacity {
            desired,
            resource_min: None,
            resource_max: None,
            busy: None,
        })
    }

    async fn set_desired(&self, target: &Target, desired: u32) -> Result<(), FakeError> {
        if self.fail_set {
            return Err(FakeError("UpdateService denied".into()));
        }
        self.desired
            .lock()
            .expect("fake port lock")
            .insert(target.clone(), desired);
        Ok(())
    }
}

#[derive(Default)]
struct FakeState {
    actions: Mutex<BTreeMap<Target, LastAction>>,
    fail_load: bool,
}

impl StateStore for FakeState {
    type Error = FakeError;

    async fn load(&self, target: &Target) -> Result<ResourceState, FakeError> {
        if self.fail_load {
            return Err(FakeError("table missing".into()));
        }
        Ok(ResourceState {
            last_action: self
                .actions
                .lock()
                .expect("fake port lock")
                .get(target)
                .copied(),
        })
    }

    async fn record(&self, target: &Target, action: LastAction) -> Result<(), FakeError> {
        self.actions
            .lock()
            .expect("fake port lock")
            .insert(target.clone(), action);
        Ok(())
    }
}

fn cpu_query(service: &str) -> MetricQuery {
    MetricQuery {
        namespace: "AWS/ECS".into(),
        name: "CPUUtilization".into(),
        dimensions: BTreeMap::from([("ServiceName".to_owned(), service.to_owned())]),
        stat: Statistic::Average,
        period_secs: 60,
    }
}

fn target(service: &str) -> Target {
    Target::EcsService {
        cluster: "shop".into(),
        service: service.into(),
    }
}

/// A policy on `service`: add 2 when CPU is above 70 for 3 minutes, bounds 1..=10.
fn policy(service: &str) -> Policy {
    Policy {
        name: service.into(),
        file: format!("policies/{service}.yaml"),
        target: target(service),
        capacity: Capacity { min: 1, max: 10 },
        metrics: BTreeMap::from([("cpu".to_owned(), cpu_query(service))]),
        scale_out: vec![Rule {
            when: Condition {
                metric: "cpu".into(),
                threshold: Threshold::Above(70.0),
                window: Datapoints {
                    breaching: 3,
                    window: 3,
                },
            },
            step: Step::Add(2),
        }],
        scale_in: vec![],
        track: vec![],
        tolerance: DEFAULT_TOLERANCE,
        schedules: vec![],
        guards: Guards {
            cooldown_out: Duration::from_secs(0),
            cooldown_in: DEFAULT_COOLDOWN_IN,
            max_step_out: None,
            max_step_in: None,
            missing_data: MissingData::Hold,
            scale_in_pacing: None,
        },
        paused: false,
        priority: 0,
        databases: BTreeMap::new(),
        connections: None,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 30).unwrap()
}

/// Three complete minutes of CPU at `value`, ending with the last complete period before `now`.
fn series(value: f64) -> Vec<Datapoint> {
    let last = Utc.with_ymd_and_hms(2026, 11, 20, 11, 59, 0).unwrap();
    (0..3)
        .rev()
        .map(|i| Datapoint {
            timestamp: last - TimeDelta::minutes(i),
            value,
        })
        .collect()
}

fn fleet(services: &[(&str, u32)]) -> FakeCapacity {
    FakeCapacity {
        desired: Mutex::new(services.iter().map(|(s, d)| (target(s), *d)).collect()),
        ..FakeCapacity::default()
    }
}

#[tokio::test]
async fn breach_is_applied_and_recorded() {
    let hot = policy("hot");
    let metrics = FakeMetrics {
        values: BTreeMap::from([(cpu_query("hot"), series(90.0))]),
        ..Default::default()
    };
    let capacity = fleet(&[("hot", 2)]);
    let state = FakeState::default();
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    let outcomes = evaluate(&[&hot], &ports, now(), Mode::Act).await;

    assert_eq!(outcomes[0].result, RunResult::Applied);
    assert_eq!(
        capacity.desired.lock().expect("fake port lock")[&target("hot")],
        4
    );
    let recorded = state.actions.lock().expect("fake port lock")[&target("hot")];
    assert_eq!(
        recorded,
        LastAction {
            at: now(),
            direction: Direction::Out,
            from: 2,
            to: 4
        }
    );
}

#[tokio::test]
async fn dry_run_decides_but_changes_nothing() {
    let hot = policy("hot");
    let metrics = FakeMetrics {
        values: BTreeMap::from([(cpu_query("hot"), series(90.0))]),
        ..Default::default()
    };
    let capacity = fleet(&[("hot", 2)]);
    let state = FakeState::default();
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    let outcomes = evaluate(&[&hot], &ports, now(), Mode::DryRun).await;

    assert_eq!(outcomes[0].result, RunResult::WouldApply);
    assert_eq!(outcomes[0].decision.as_ref().map(|d| d.desired), Some(4));
    assert_eq!(
        capacity.desired.lock().expect("fake port lock")[&target("hot")],
        2
    );
    assert!(state.actions.lock().expect("fake port lock").is_empty());
}

#[tokio::test]
async fn one_batched_read_serves_every_policy() {
    let (a, b) = (policy("a"), policy("b"));
    let metrics = FakeMetrics::default();
    let capacity = fleet(&[("a", 2), ("b", 2)]);
    let state = FakeState::default();
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    evaluate(&[&a, &b], &ports, now(), Mode::Act).await;

    assert_eq!(*metrics.reads.lock().expect("fake port lock"), vec![2]);
}

#[tokio::test]
async fn failed_capacity_read_fails_that_policy_only() {
    let (missing, hot) = (policy("missing"), policy("hot"));
    let metrics = FakeMetrics {
        values: BTreeMap::from([(cpu_query("hot"), series(90.0))]),
        ..Default::default()
    };
    let capacity = fleet(&[("hot", 2)]);
    let state = FakeState::default();
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    let outcomes = evaluate(&[&missing, &hot], &ports, now(), Mode::Act).await;

    assert!(
        matches!(&outcomes[0].result, RunResult::Failed(why) if why.contains("not found")),
        "{:?}",
        outcomes[0]
    );
    assert!(outcomes[0].decision.is_none());
    assert_eq!(outcomes[1].result, RunResult::Applied);
}

#[tokio::test]
async fn unreadable_state_means_no_action() {
    let hot = policy("hot");
    let metrics = FakeMetrics {
        values: BTreeMap::from([(cpu_query("hot"), series(90.0))]),
        ..Default::default()
    };
    let capacity = fleet(&[("hot", 2)]);
    let state = FakeState {
        fail_load: true,
        ..Default::default()
    };
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    let outcomes = evaluate(&[&hot], &ports, now(), Mode::Act).await;

    assert!(
        matches!(&outcomes[0].result, RunResult::Failed(why) if why.contains("cooldown state"))
    );
    assert_eq!(
        capacity.desired.lock().expect("fake port lock")[&target("hot")],
        2
    );
}

#[tokio::test]
async fn failed_metric_read_holds() {
    let hot = policy("hot");
    let metrics = FakeMetrics {
        values: BTreeMap::from([(cpu_query("hot"), series(90.0))]),
        fail: true,
        ..Default::default()
    };
    let capacity = fleet(&[("hot", 2)]);
    let state = FakeState::default();
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    let outcomes = evaluate(&[&hot], &ports, now(), Mode::Act).await;

    assert_eq!(outcomes[0].result, RunResult::Unchanged);
    assert_eq!(
        capacity.desired.lock().expect("fake port lock")[&target("hot")],
        2
    );
}

#[tokio::test]
async fn failed_change_is_reported_and_not_recorded() {
    let hot = policy("hot");
    let metrics = FakeMetrics {
        values: BTreeMap::from([(cpu_query("hot"), series(90.0))]),
        ..Default::default()
    };
    let capacity = FakeCapacity {
        fail_set: true,
        ..fleet(&[("hot", 2)])
    };
    let state = FakeState::default();
    let ports = Ports {
        metrics: &metrics,
        capacity: &capacity,
        state: &state,
    };

    let outcomes = evaluate(&[&hot], &ports, now(), Mode::Act).await;

    assert!(matches!(&outcomes[0].result, RunResult::Failed(why) if why.contains("denied")));
    assert!(state.actions.lock().expect("fake port lock").is_empty());
}

#[test]
fn an_alarm_wakes_only_the_policies_using_its_metric() {
    let policies = vec![policy("a"), policy("b")];
    let alarm = Trigger::Alarm(AlarmTrigger {
        name: "capstan-b-cpu-high".into(),
        state: "ALARM".into(),
        changed_at: Some(now()),
        metrics: vec![AlarmMetric {
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: cpu_query("b").dimensions,
        }],
    });
    let woken: Vec<&str> = alarm
        .select(&policies)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(woken, ["b"]);

    let tick = Trigger::Tick { at: now() };
    assert_eq!(tick.select(&policies).len(), 2);
}
