//! The evaluation pass against in-memory ports: what it reads, what it changes, and what it
//! refuses to change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};

use capstan_engine::{
    Change, ClampKind, CurrentCapacity, Datapoint, Direction, GuardRequest, Observations,
    Recommendation, ResourceState,
};
use capstan_policy::model::{
    DEFAULT_DELAY, DEFAULT_FORECAST_HISTORY, DEFAULT_FORECAST_LEAD, DEFAULT_FORECAST_MAX_ERROR,
    Duration, Forecast, Metric, MetricQuery, Policy, Step, Target, Threshold,
};
use capstan_policy::test_util::{self, connections, databases, ecs_query, rule};
use capstan_runner::memory::{LeaseTable, MemoryMetrics, MemoryState};
use capstan_runner::ports::{
    CapacityControl, Lease, LeaseLost, MetricSource, SaveError, StateStore,
};
use capstan_runner::{
    AlarmMetric, AlarmTrigger, Limits, Mode, Outcome, Pass, Ports, ShardTrigger, Status, Trigger,
    evaluate,
};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FakeError(String);

/// The metrics in memory, each datapoint readable once its period has ended, counting the
/// queries of each read; `fail` makes the whole read fail.
struct FakeMetrics {
    memory: MemoryMetrics,
    fail: bool,
    reads: Mutex<Vec<usize>>,
}

impl MetricSource for FakeMetrics {
    type Error = FakeError;

    async fn read(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Observations, FakeError> {
        self.reads
            .lock()
            .expect("fake port lock")
            .push(queries.len());
        if self.fail {
            return Err(FakeError("GetMetricData throttled".into()));
        }
        let Ok(observations) = self.memory.read(queries, start, end).await;
        Ok(observations)
    }
}

/// Capacity held in memory; a target missing from the map fails to read. Each change counts
/// the changes in flight (`most_in_flight` keeps the most at once: a change yields once, so
/// that the pass can start others beside it) and moves `time` on by `each_change_takes`.
#[derive(Default)]
struct FakeCapacity {
    desired: Mutex<BTreeMap<Target, u32>>,
    fail_set: bool,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    time: Mutex<Option<DateTime<Utc>>>,
    each_change_takes: TimeDelta,
}

/// A future that is pending once, then ready: a call that does not answer at once.
fn answer_later() -> impl std::future::Future<Output = ()> {
    let mut asked = false;
    std::future::poll_fn(move |context| {
        if asked {
            return std::task::Poll::Ready(());
        }
        asked = true;
        context.waker().wake_by_ref();
        std::task::Poll::Pending
    })
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
            ..Default::default()
        })
    }

    async fn set_desired(&self, target: &Target, desired: u32) -> Result<(), FakeError> {
        if self.fail_set {
            return Err(FakeError("UpdateService denied".into()));
        }
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        answer_later().await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(time) = self.time.lock().expect("fake port lock").as_mut() {
            *time += self.each_change_takes;
        }
        self.desired
            .lock()
            .expect("fake port lock")
            .insert(target.clone(), desired);
        Ok(())
    }
}

/// The state and leases in memory; `die_after_next_change` fails the next save of the state
/// after a change (the first without an intent once one was saved), as if the evaluation died
/// between acting and recording; `lease_lost` hands the lease to `other-pass` at that point of
/// the pass, as if this pass's lease expired and another took it; `lose_lease_answers` takes
/// leases but answers with an error, as if the answer were lost on its way back;
/// `fail_releases` is how many releases fail before one succeeds, each without effect.
#[derive(Default)]
struct FakeState {
    memory: MemoryState,
    fail_load: bool,
    die_after_next_change: Mutex<bool>,
    lease_lost: Option<LeaseLostAt>,
    lose_lease_answers: bool,
    fail_releases: Mutex<u32>,
}

/// When [`FakeState`] hands the lease to another pass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LeaseLostAt {
    /// When the state is read: before the intent is written.
    Load,
    /// Once the intent is written: before the state after the change.
    Intent,
}

impl FakeState {
    fn lose_lease(&self, target: &Target) {
        let mut leases = self.memory.leases();
        for holder in ["this-pass", "other-pass"] {
            leases.release(target, holder);
        }
        leases.acquire(target, "other-pass");
    }

    /// Whether saving `state` is where the evaluation dies, as `die_after_next_change` says.
    fn dies_saving(&self, target: &Target, state: &ResourceState) -> bool {
        let after_change = self
            .memory
            .saved(target)
            .is_some_and(|s| s.intent.is_some());
        let mut dying = self.die_after_next_change.lock().expect("fake port lock");
        if *dying && after_change && state.intent.is_none() {
            *dying = false;
            return true;
        }
        false
    }
}

impl StateStore for FakeState {
    type Error = FakeError;

    async fn load(&self, target: &Target) -> Result<ResourceState, FakeError> {
        if self.fail_load {
            return Err(FakeError("table missing".into()));
        }
        if self.lease_lost == Some(LeaseLostAt::Load) {
            self.lose_lease(target);
        }
        let Ok(state) = self.memory.load(target).await;
        Ok(state)
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<FakeError>> {
        if self.dies_saving(target, state) {
            return Err(SaveError::Store(FakeError(
                "the evaluation died before recording".into(),
            )));
        }
        if let Err(SaveError::LeaseLost(lost)) = self.memory.save(target, holder, state).await {
            return Err(lost.into());
        }
        if state.intent.is_some() && self.lease_lost == Some(LeaseLostAt::Intent) {
            self.lose_lease(target);
        }
        Ok(())
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> Result<Lease, FakeError> {
        let Ok(lease) = self.memory.acquire_lease(target, holder).await;
        if self.lose_lease_answers {
            return Err(FakeError("503: the answer was lost".into()));
        }
        Ok(lease)
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> Result<bool, FakeError> {
        {
            let mut failing = self.fail_releases.lock().expect("fake port lock");
            if *failing > 0 {
                *failing -= 1;
                return Err(FakeError("503: service unavailable".into()));
            }
        }
        let Ok(released) = self.memory.release_lease(target, holder).await;
        Ok(released)
    }
}

fn cpu_query(service: &str) -> MetricQuery {
    ecs_query(service, "CPUUtilization", 60)
}

fn target(service: &str) -> Target {
    Target::EcsService {
        cluster: "shop".into(),
        service: service.into(),
    }
}

/// A policy on `service`: add 2 when CPU is above 70 for 3 minutes, bounds 1..=10.
fn policy(service: &str) -> Policy {
    let cpu = Metric {
        query: cpu_query(service),
        delay: DEFAULT_DELAY,
    };
    Policy {
        metrics: BTreeMap::from([("cpu".to_owned(), cpu)]),
        scale_out: vec![rule("cpu", Threshold::Above(70.0), 3, 3, Step::Add(2))],
        ..test_util::policy(service, target(service))
    }
}

/// `first`, which declares `orders-db` with 300 connections, and `second`, below it in
/// priority, each opening `per_task` connections to it per task.
fn sharing_orders_db(per_task: u32) -> (Policy, Policy) {
    let user = |service: &str, priority: i32| Policy {
        priority,
        connections: Some(connections("orders-db", per_task)),
        ..policy(service)
    };
    let first = Policy {
        databases: databases("orders-db", 300),
        ..user("first", 1)
    };
    (first, user("second", 0))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 30).unwrap()
}

/// Three minutes of CPU at `value`, ending with the newest period the metric's default delay
/// lets through at `now`: 12:00:30 less 2 minutes is 11:58:30, so 11:57-11:58.
fn series(value: f64) -> Vec<Datapoint> {
    let last = Utc.with_ymd_and_hms(2026, 11, 20, 11, 57, 0).unwrap();
    (0..3)
        .rev()
        .map(|i| Datapoint {
            timestamp: last - TimeDelta::minutes(i),
            value,
        })
        .collect()
}

/// The three in-memory ports, with `hot` at 2 tasks and CPU 90 unless a test says otherwise.
struct World {
    metrics: FakeMetrics,
    capacity: FakeCapacity,
    state: FakeState,
    limits: Limits,
}

impl World {
    /// CPU at `cpu` for each of `services`, each at 2 tasks.
    fn new(services: &[&str], cpu: f64) -> Self {
        let memory = MemoryMetrics::new(TimeDelta::zero(), now());
        for service in services {
            for point in series(cpu) {
                memory.push(&cpu_query(service), point);
            }
        }
        Self {
            metrics: FakeMetrics {
                memory,
                fail: false,
                reads: Mutex::default(),
            },
            capacity: FakeCapacity {
                desired: Mutex::new(services.iter().map(|s| (target(s), 2)).collect()),
                ..Default::default()
            },
            state: FakeState::default(),
            limits: Limits::default(),
        }
    }

    fn hot() -> Self {
        Self::new(&["hot"], 90.0)
    }

    async fn evaluate(&self, policies: &[&Policy], mode: Mode) -> Vec<Outcome> {
        self.pass(policies, mode).await.outcomes
    }

    async fn pass(&self, policies: &[&Policy], mode: Mode) -> Pass {
        self.pass_timed(policies, policies, mode, &now).await
    }

    /// A pass over `policies` of the set `all`, starting at `now()` and reading `clock` when
    /// it changes something.
    async fn pass_timed(
        &self,
        policies: &[&Policy],
        all: &[&Policy],
        mode: Mode,
        clock: &(dyn Fn() -> DateTime<Utc> + Sync),
    ) -> Pass {
        let ports = Ports {
            metrics: &self.metrics,
            capacity: &self.capacity,
            state: &self.state,
            holder: "this-pass",
            clock,
            limits: self.limits,
        };
        evaluate(policies, all, &ports, now(), mode).await
    }

    fn desired(&self, service: &str) -> u32 {
        self.capacity.desired.lock().expect("fake port lock")[&target(service)]
    }

    fn saved(&self, service: &str) -> Option<ResourceState> {
        self.state.memory.saved(&target(service))
    }

    fn leases(&self) -> MutexGuard<'_, LeaseTable> {
        self.state.memory.leases()
    }

    fn recorded(&self, service: &str) -> Option<Change> {
        self.saved(service)?.last_change().copied()
    }
}

#[tokio::test]
async fn breach_is_applied_and_recorded() {
    let world = World::hot();

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert_eq!(outcomes[0].result, Status::Applied);
    assert_eq!(world.desired("hot"), 4);
    let expected = Change {
        at: now(),
        direction: Direction::Out,
        from: 2,
        to: 4,
    };
    assert_eq!(world.recorded("hot"), Some(expected));
}

#[tokio::test]
async fn dry_run_decides_but_changes_nothing() {
    let world = World::hot();

    let outcomes = world.evaluate(&[&policy("hot")], Mode::DryRun).await;

    assert_eq!(outcomes[0].result, Status::WouldApply);
    assert_eq!(outcomes[0].decision.as_ref().map(|d| d.desired), Some(4));
    assert_eq!(world.desired("hot"), 2);
    assert_eq!(world.saved("hot"), None);
}

#[tokio::test]
async fn the_state_is_saved_after_every_evaluation_even_without_a_change() {
    let world = World::new(&["calm"], 40.0);

    let outcomes = world.evaluate(&[&policy("calm")], Mode::Act).await;

    assert_eq!(outcomes[0].result, Status::Unchanged);
    let saved = world.saved("calm").expect("a saved state");
    // The stabilization window remembers that the rules asked for the current capacity.
    assert_eq!(
        saved.recommendations,
        [Recommendation {
            at: now(),
            capacity: 2
        }]
    );
    assert_eq!(saved.changes, []);
}

#[tokio::test]
async fn the_connection_budget_is_shared_across_the_whole_pass() {
    let world = World::new(&["first", "second"], 90.0);
    let (first, second) = sharing_orders_db(50);

    let pass = world.pass(&[&first, &second], Mode::Act).await;

    // 300 connections at 50 per task: 6 tasks, the higher priority served first.
    assert_eq!((world.desired("first"), world.desired("second")), (4, 2));
    assert_eq!(pass.outcomes[1].result, Status::Unchanged);
    let held = pass.outcomes[1].decision.as_ref().expect("a decision");
    assert_eq!(
        held.explanation
            .clamps
            .last()
            .map(|clamp| (clamp.kind, clamp.from, clamp.to)),
        Some((ClampKind::ConnectionBudget, 4, 2))
    );
    assert!(matches!(
        &pass.requests[..],
        [GuardRequest::DatabaseConnections { database, wanted: 400, budget: 300, .. }] if database == "orders-db"
    ));
}

#[tokio::test]
async fn one_batched_read_serves_every_policy() {
    let world = World::new(&["a", "b"], 40.0);

    world
        .evaluate(&[&policy("a"), &policy("b")], Mode::Act)
        .await;

    assert_eq!(
        *world.metrics.reads.lock().expect("fake port lock"),
        vec![2]
    );
}

#[tokio::test]
async fn failed_capacity_read_fails_that_policy_only() {
    let world = World::hot();

    let outcomes = world
        .evaluate(&[&policy("missing"), &policy("hot")], Mode::Act)
        .await;

    assert!(
        matches!(&outcomes[0].result, Status::Failed(why) if why.contains("not found")),
        "{:?}",
        outcomes[0]
    );
    assert!(outcomes[0].decision.is_none());
    assert_eq!(outcomes[1].result, Status::Applied);
}

#[tokio::test]
async fn unreadable_state_means_no_action() {
    let world = World {
        state: FakeState {
            fail_load: true,
            ..Default::default()
        },
        ..World::hot()
    };

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert!(matches!(&outcomes[0].result, Status::Failed(why) if why.contains("cooldown state")));
    assert_eq!(world.desired("hot"), 2);
}

#[tokio::test]
async fn failed_metric_read_holds() {
    let mut world = World::hot();
    world.metrics.fail = true;

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert_eq!(outcomes[0].result, Status::Unchanged);
    assert_eq!(world.desired("hot"), 2);
    assert_eq!(
        outcomes[0].warnings,
        [format!(
            "{} could not be read, so its rules held and scale-in was blocked: GetMetricData throttled",
            cpu_query("hot")
        )],
        "{}",
        outcomes[0]
    );
}

#[tokio::test]
async fn failed_change_is_reported_and_not_recorded() {
    let mut world = World::hot();
    world.capacity.fail_set = true;

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert!(matches!(&outcomes[0].result, Status::Failed(why) if why.contains("denied")));
    assert_eq!(world.recorded("hot"), None);
    // The intent stays behind; the next pass finds the capacity unchanged, drops it and acts.
    assert!(
        world
            .saved("hot")
            .is_some_and(|state| state.intent.is_some())
    );
    world.capacity.fail_set = false;
    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;
    assert_eq!(outcomes[0].result, Status::Applied, "{}", outcomes[0]);
    assert!(outcomes[0].warnings.is_empty(), "{}", outcomes[0]);
    assert_eq!(world.desired("hot"), 4);
    assert_eq!(world.saved("hot").and_then(|state| state.intent), None);
}

#[tokio::test]
async fn a_resource_leased_to_another_evaluation_is_not_evaluated() {
    let world = World::hot();
    world.leases().acquire(&target("hot"), "other-pass");

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert!(
        matches!(&outcomes[0].result, Status::HeldBy { holder, .. } if holder == "other-pass"),
        "{}",
        outcomes[0]
    );
    assert!(outcomes[0].decision.is_none());
    assert_eq!(world.desired("hot"), 2);
    assert_eq!(world.saved("hot"), None, "nothing written");
    assert!(
        !world.leases().release(&target("hot"), "this-pass"),
        "the other pass's lease was left alone"
    );
}

#[tokio::test]
async fn the_lease_is_given_back_after_acting_and_after_a_failed_read() {
    let world = World::hot();

    let outcomes = world
        .evaluate(&[&policy("hot"), &policy("missing")], Mode::Act)
        .await;

    assert_eq!(outcomes[0].result, Status::Applied);
    assert!(matches!(outcomes[1].result, Status::Failed(_)));
    let mut leases = world.leases();
    for service in ["hot", "missing"] {
        assert_eq!(
            leases.acquire(&target(service), "next-pass"),
            Lease::Acquired,
            "{service}"
        );
    }
}

#[tokio::test]
async fn a_lease_taken_although_its_answer_was_lost_is_given_back() {
    let world = World {
        state: FakeState {
            lose_lease_answers: true,
            ..Default::default()
        },
        ..World::hot()
    };

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert!(
        matches!(&outcomes[0].result, Status::Failed(why) if why.contains("cannot take the resource's lease")),
        "{}",
        outcomes[0]
    );
    assert_eq!(world.desired("hot"), 2, "not acted on");
    assert_eq!(
        outcomes[0].warnings,
        ["the lease was taken although the answer to taking it was lost; it was given back"]
    );
    assert_eq!(
        world.leases().acquire(&target("hot"), "next-pass"),
        Lease::Acquired,
        "no lease is left behind"
    );
}

#[tokio::test]
async fn a_release_that_failed_is_tried_once_more() {
    let world = World {
        state: FakeState {
            fail_releases: Mutex::new(1),
            ..Default::default()
        },
        ..World::hot()
    };

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert_eq!(outcomes[0].result, Status::Applied);
    assert!(outcomes[0].warnings.is_empty(), "{}", outcomes[0]);
    assert_eq!(
        world.leases().acquire(&target("hot"), "next-pass"),
        Lease::Acquired
    );

    // Failing twice, the lease is left to expire, and the outcome says so.
    *world.state.fail_releases.lock().expect("fake port lock") = 2;
    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;
    assert!(
        matches!(outcomes[0].result, Status::HeldBy { .. }),
        "next-pass holds it: {}",
        outcomes[0]
    );
    world.leases().release(&target("hot"), "next-pass");
    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;
    assert_eq!(
        outcomes[0].warnings,
        ["the lease could not be released and stays until it expires: 503: service unavailable"]
    );
    assert!(!world.leases().release(&target("hot"), "next-pass"));
    assert!(world.leases().release(&target("hot"), "this-pass"));
}

#[tokio::test]
async fn a_change_made_but_not_recorded_is_not_made_again() {
    let world = World {
        state: FakeState {
            die_after_next_change: Mutex::new(true),
            ..Default::default()
        },
        ..World::hot()
    };
    let mut cooling = policy("hot");
    cooling.guards.cooldown_out = Duration::from_secs(600);

    let dying = world.evaluate(&[&cooling], Mode::Act).await;
    assert!(
        matches!(&dying[0].result, Status::AppliedNotRecorded(why) if why.contains("died")),
        "{}",
        dying[0]
    );
    assert_eq!(world.desired("hot"), 4);

    // CPU is still at 90. The next pass finds the intent and the capacity it names: the change
    // was made, its cooldown runs, and no second change follows.
    let next = world.evaluate(&[&cooling], Mode::Act).await;
    assert_eq!(next[0].result, Status::Unchanged, "{}", next[0]);
    assert_eq!(world.desired("hot"), 4);
    assert!(
        next[0].warnings[0].contains("from 2 to 4")
            && next[0].warnings[0].contains("counted as made"),
        "{:?}",
        next[0].warnings
    );
    let made = Change {
        at: now(),
        direction: Direction::Out,
        from: 2,
        to: 4,
    };
    let saved = world.saved("hot").expect("a saved state");
    assert_eq!(
        (saved.changes.as_slice(), saved.intent),
        (&[made][..], None)
    );
}

#[tokio::test]
async fn a_pass_that_lost_its_lease_before_writing_its_intent_does_not_act() {
    let world = World {
        state: FakeState {
            lease_lost: Some(LeaseLostAt::Load),
            ..Default::default()
        },
        ..World::hot()
    };

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert!(
        matches!(&outcomes[0].result, Status::Failed(why)
            if why.contains("not acting") && why.contains("the lease was lost: other-pass holds it")),
        "{}",
        outcomes[0]
    );
    assert_eq!(world.desired("hot"), 2, "no change");
    assert_eq!(world.saved("hot"), None, "nothing written");
    assert!(
        matches!(world.leases().fence(&target("hot"), "other-pass"), Ok(())),
        "the other pass keeps the lease"
    );
}

#[tokio::test]
async fn a_change_whose_record_is_fenced_off_is_applied_but_not_recorded() {
    let world = World {
        state: FakeState {
            lease_lost: Some(LeaseLostAt::Intent),
            ..Default::default()
        },
        ..World::hot()
    };

    let outcomes = world.evaluate(&[&policy("hot")], Mode::Act).await;

    assert!(
        matches!(&outcomes[0].result, Status::AppliedNotRecorded(why)
            if why.starts_with("the lease was lost: other-pass holds it")),
        "{}",
        outcomes[0]
    );
    assert_eq!(world.desired("hot"), 4);
    let saved = world.saved("hot").expect("the intent");
    assert_eq!(
        saved.intent.map(|intent| intent.to),
        Some(4),
        "only the intent"
    );
}

#[tokio::test]
async fn a_state_fenced_off_after_no_change_is_a_warning() {
    let world = World {
        state: FakeState {
            lease_lost: Some(LeaseLostAt::Load),
            ..Default::default()
        },
        ..World::new(&["calm"], 40.0)
    };

    let outcomes = world.evaluate(&[&policy("calm")], Mode::Act).await;

    assert_eq!(outcomes[0].result, Status::Unchanged);
    let lost = LeaseLost::HeldBy {
        holder: "other-pass".into(),
        until: DateTime::<Utc>::MAX_UTC,
    };
    assert_eq!(
        outcomes[0].warnings,
        [
            format!("the state could not be saved: {lost}"),
            "the lease had expired and was taken by another evaluation".into()
        ],
        "{}",
        outcomes[0]
    );
    assert_eq!(world.saved("calm"), None, "nothing written");
}

#[tokio::test]
async fn a_dry_run_takes_no_lease() {
    let world = World::hot();
    world.leases().acquire(&target("hot"), "other-pass");

    let outcomes = world.evaluate(&[&policy("hot")], Mode::DryRun).await;

    assert_eq!(outcomes[0].result, Status::WouldApply);
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
        rule: None,
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

#[test]
fn a_shard_wakes_the_policies_it_names_in_the_sets_order_and_names_those_not_found() {
    let policies = vec![policy("a"), policy("b"), policy("c")];
    let shard = ShardTrigger {
        tick: now(),
        index: 1,
        of: 2,
        policies: vec!["c".into(), "gone".into(), "a".into()],
    };
    assert_eq!(shard.missing(&policies), ["gone"]);
    let shard = Trigger::Shard(shard);
    let woken: Vec<&str> = shard
        .select(&policies)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(woken, ["a", "c"]);
    assert_eq!(shard.at(), Some(now()));
}

#[tokio::test]
async fn a_change_is_remembered_at_the_time_it_was_made_not_when_the_pass_began() {
    let world = World::hot();
    let hot = policy("hot");
    let made = now() + TimeDelta::seconds(40);

    world
        .pass_timed(&[&hot], &[&hot], Mode::Act, &|| made)
        .await;

    assert_eq!(world.recorded("hot").map(|action| action.at), Some(made));
}

#[tokio::test]
async fn a_failed_replica_read_never_scales_the_readers_in() {
    // The shipped policies: order-history-readers at 24 tasks of 25 connections (600) relies
    // on orders-db's replica; orders-db-replicas' capacity cannot be read (a throttled
    // DescribeDBInstances), so the replicas in service are unknown.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    let set = capstan_policy::PolicySet::load(&[path]).expect("the shipped policies are valid");
    let readers = Target::EcsService {
        cluster: "shop".into(),
        service: "order-history".into(),
    };
    let world = World::new(&[], 0.0);
    world
        .capacity
        .desired
        .lock()
        .expect("fake port lock")
        .insert(readers.clone(), 24);
    let all: Vec<&Policy> = set.policies().iter().collect();

    let pass = world.pass_timed(&all, &all, Mode::Act, &now).await;

    assert_eq!(
        world.capacity.desired.lock().expect("fake port lock")[&readers],
        24
    );
    let outcome = pass
        .outcomes
        .iter()
        .find(|outcome| outcome.policy == "order-history-readers")
        .expect("an outcome");
    assert_eq!(outcome.result, Status::Unchanged, "{outcome}");
    assert!(
        !pass
            .requests
            .iter()
            .any(|request| matches!(request, GuardRequest::ShedConnections { .. })),
        "{:?}",
        pass.requests
    );
}

#[tokio::test]
async fn users_over_their_budget_shed_connections_in_the_same_pass_through_their_guards() {
    // Both at 2 tasks of 100 connections: 400 of 300. `second`, the lower priority, is asked
    // down to 1 and goes there in the same pass; CPU is low, so nothing asks to grow.
    let world = World::new(&["first", "second"], 40.0);
    let (first, second) = sharing_orders_db(100);

    let pass = world.pass(&[&first, &second], Mode::Act).await;

    assert_eq!((world.desired("first"), world.desired("second")), (2, 1));
    let shed = pass.outcomes[1].decision.as_ref().expect("a decision");
    assert_eq!(shed.explanation.fired.as_deref(), Some("request"));
    assert_eq!(pass.outcomes[1].result, Status::Applied);
    assert!(matches!(
        &pass.requests[..],
        [GuardRequest::ShedConnections { policy, to: 1, connections: 400, budget: 300, .. }] if policy == "second"
    ));
}

#[test]
fn an_alarm_also_wakes_the_policies_a_guard_couples_to_the_one_it_watches() {
    let user = |service: &str| Policy {
        connections: Some(connections("orders-db", 10)),
        ..policy(service)
    };
    let replicas = Policy {
        target: Target::RdsReplicas {
            source: "orders-db".into(),
        },
        ..policy("replicas")
    };
    let policies = vec![user("a"), policy("b"), user("c"), replicas];
    let alarm = Trigger::Alarm(AlarmTrigger {
        name: "capstan-a-cpu-high".into(),
        state: "ALARM".into(),
        changed_at: Some(now()),
        metrics: vec![AlarmMetric {
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: cpu_query("a").dimensions,
        }],
        rule: None,
    });
    let woken: Vec<&str> = alarm
        .select(&policies)
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(woken, ["a", "c", "replicas"]);
}

/// `count` services `s0`, `s1`, ... at CPU 90 and 2 tasks, and their policies.
fn hot_services(count: usize) -> (World, Vec<Policy>) {
    let names: Vec<String> = (0..count).map(|i| format!("s{i}")).collect();
    let services: Vec<&str> = names.iter().map(String::as_str).collect();
    let policies = services.iter().map(|service| policy(service)).collect();
    (World::new(&services, 90.0), policies)
}

#[tokio::test]
async fn changes_are_made_up_to_the_bound_at_once_and_outcomes_keep_their_order() {
    let (mut world, policies) = hot_services(20);
    world.limits.max_in_flight = 4;
    let policies: Vec<&Policy> = policies.iter().collect();

    let outcomes = world.evaluate(&policies, Mode::Act).await;

    assert_eq!(world.capacity.most_in_flight.load(Ordering::SeqCst), 4);
    let names: Vec<&str> = outcomes.iter().map(|o| o.policy.as_str()).collect();
    let expected: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, expected, "outcomes in the order of the policies");
    for (outcome, policy) in outcomes.iter().zip(&policies) {
        assert_eq!(outcome.result, Status::Applied, "{outcome}");
        assert_eq!(world.desired(&policy.name), 4);
        assert_eq!(world.recorded(&policy.name).map(|a| a.to), Some(4));
    }
    assert!(world.leases().acquire(&target("s0"), "other-pass") == Lease::Acquired);
}

#[tokio::test]
async fn a_pass_already_past_its_deadline_evaluates_nothing_and_holds_no_lease() {
    let (mut world, policies) = hot_services(3);
    world.limits.deadline = Some(now());
    let policies: Vec<&Policy> = policies.iter().collect();

    let outcomes = world.evaluate(&policies, Mode::Act).await;

    for (outcome, policy) in outcomes.iter().zip(&policies) {
        assert_eq!(outcome.result, Status::Deferred, "{outcome}");
        assert!(outcome.decision.is_none());
        assert_eq!(world.desired(&policy.name), 2);
        assert_eq!(world.saved(&policy.name), None);
        assert_eq!(
            world.leases().acquire(&policy.target, "other-pass"),
            Lease::Acquired,
            "no lease left behind"
        );
    }
    assert!(
        world
            .metrics
            .reads
            .lock()
            .expect("fake port lock")
            .is_empty(),
        "not even the metrics are read"
    );
}

#[tokio::test]
async fn changes_not_started_by_the_deadline_are_deferred_and_made_first_in_the_next_pass() {
    let (mut world, policies) = hot_services(5);
    // One change at a time, each taking a minute: the third starts at 12:02:30, before the
    // deadline; the fourth would start at 12:03:30, after it.
    world.limits.max_in_flight = 1;
    world.limits.deadline = Some(now() + TimeDelta::seconds(150));
    world.capacity.each_change_takes = TimeDelta::minutes(1);
    *world.capacity.time.lock().expect("fake port lock") = Some(now());
    let policies: Vec<&Policy> = policies.iter().collect();
    let clock = || {
        world
            .capacity
            .time
            .lock()
            .expect("fake port lock")
            .unwrap_or_else(now)
    };

    let pass = world
        .pass_timed(&policies, &policies, Mode::Act, &clock)
        .await;

    let results: Vec<&Status> = pass.outcomes.iter().map(|o| &o.result).collect();
    assert_eq!(
        results,
        [
            &Status::Applied,
            &Status::Applied,
            &Status::Applied,
            &Status::Deferred,
            &Status::Deferred
        ]
    );
    for (outcome, policy) in pass.outcomes.iter().zip(&policies).skip(3) {
        let decision = outcome
            .decision
            .as_ref()
            .expect("decided before the deadline");
        assert_eq!(decision.desired, 4, "it would have scaled out");
        assert_eq!(world.desired(&policy.name), 2, "but nothing was changed");
        let saved = world.saved(&policy.name).expect("its state is remembered");
        assert_eq!(saved.intent, None, "and its intent cleared");
        assert_eq!(saved.last_change(), None);
        assert_eq!(
            world.leases().acquire(&policy.target, "other-pass"),
            Lease::Acquired,
            "its lease given back"
        );
        world.leases().release(&policy.target, "other-pass");
    }

    // The next pass, still hot: the two deferred, never changed, go first, then the one
    // changed longest ago.
    let later = clock();
    world.limits.deadline = Some(later + TimeDelta::seconds(150));
    let next = world
        .pass_timed(&policies, &policies, Mode::Act, &clock)
        .await;

    let results: Vec<(&str, &Status)> = next
        .outcomes
        .iter()
        .map(|o| (o.policy.as_str(), &o.result))
        .collect();
    assert_eq!(
        results,
        [
            ("s0", &Status::Applied),
            ("s1", &Status::Deferred),
            ("s2", &Status::Deferred),
            ("s3", &Status::Applied),
            ("s4", &Status::Applied),
        ]
    );
    assert_eq!(world.desired("s3"), 4);
    assert_eq!(world.desired("s0"), 6);
}

/// A policy on `service` with no rules that forecasts its requests, 100 a task.
fn forecasting(service: &str) -> Policy {
    let requests = Metric {
        query: ecs_query(service, "RequestCount", 60),
        delay: DEFAULT_DELAY,
    };
    Policy {
        metrics: BTreeMap::from([("requests".to_owned(), requests)]),
        forecast: Some(Forecast {
            metric: "requests".into(),
            per_replica: 100.0,
            history: DEFAULT_FORECAST_HISTORY,
            lead: DEFAULT_FORECAST_LEAD,
            max_error: DEFAULT_FORECAST_MAX_ERROR,
        }),
        ..test_util::policy(service, target(service))
    }
}

#[tokio::test]
async fn the_forecast_history_is_read_once_an_hour_kept_in_the_state_and_raises_the_floor() {
    let world = World::new(&["shop"], 40.0);
    // Two days of 500 requests a minute, 900 in the noon hour.
    let query = ecs_query("shop", "RequestCount", 60);
    let start = now() - TimeDelta::days(2) - TimeDelta::seconds(30);
    for minute in 0..2 * 24 * 60 {
        let timestamp = start + TimeDelta::minutes(minute);
        let value = if timestamp.hour() == 12 { 900.0 } else { 500.0 };
        world
            .metrics
            .memory
            .push(&query, Datapoint { timestamp, value });
    }
    world.metrics.memory.advance(now());
    let policy = forecasting("shop");

    let outcomes = world.evaluate(&[&policy], Mode::Act).await;

    // Noon is forecast at 900 requests: 9 tasks, raised ahead of it.
    assert_eq!(world.desired("shop"), 9, "{}", outcomes[0]);
    let saved = world.saved("shop").expect("a saved state");
    let history = saved.history.expect("the history is kept");
    assert_eq!((history.read_at, history.peaks.len()), (now(), 48));
    assert_eq!(*world.metrics.reads.lock().expect("fake port lock"), [1]);
    // Within the hour, the history is not read again.
    world.evaluate(&[&policy], Mode::Act).await;
    assert_eq!(*world.metrics.reads.lock().expect("fake port lock"), [1]);

    // A history that cannot be read is a warning, and the floor is withheld without one.
    let failing = World {
        metrics: FakeMetrics {
            fail: true,
            ..world.metrics
        },
        ..World::new(&["shop"], 40.0)
    };
    let outcomes = failing.evaluate(&[&policy], Mode::Act).await;
    assert_eq!(failing.desired("shop"), 2);
    assert_eq!(
        outcomes[0].warnings,
        [format!(
            "the forecast history of {query} could not be read, so the forecast uses what it had: GetMetricData throttled"
        )]
    );
    let summary = &outcomes[0]
        .decision
        .as_ref()
        .expect("decided")
        .explanation
        .summary;
    assert!(
        summary.ends_with("forecast of requests withheld: its history has not been read yet"),
        "{summary}"
    );
}

#[tokio::test]
async fn the_forecast_histories_due_in_a_pass_are_read_together() {
    let world = World::new(&["shop", "cart"], 40.0);
    let start = now() - TimeDelta::days(2) - TimeDelta::seconds(30);
    for (service, noon) in [("shop", 900.0), ("cart", 600.0)] {
        let query = ecs_query(service, "RequestCount", 60);
        for minute in 0..2 * 24 * 60 {
            let timestamp = start + TimeDelta::minutes(minute);
            let value = if timestamp.hour() == 12 { noon } else { 100.0 };
            world
                .metrics
                .memory
                .push(&query, Datapoint { timestamp, value });
        }
    }
    world.metrics.memory.advance(now());
    let (shop, cart) = (forecasting("shop"), forecasting("cart"));

    world.evaluate(&[&shop, &cart], Mode::Act).await;

    // One read of both queries, and each policy's floor from its own history.
    assert_eq!(*world.metrics.reads.lock().expect("fake port lock"), [2]);
    assert_eq!((world.desired("shop"), world.desired("cart")), (9, 6));
    for service in ["shop", "cart"] {
        let saved = world.saved(service).expect("a saved state");
        assert_eq!(saved.history.map(|h| h.peaks.len()), Some(48), "{service}");
    }
}
