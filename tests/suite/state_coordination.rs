//! Leases, fenced writes, intents and event claims end to end: runner passes against moto's
//! DynamoDB, ECS and CloudWatch.
//! Run with `scripts/with-emulator.sh cargo test -p capstan-tests --test suite state_coordination::`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Barrier;

use capstan_aws::state::Claim;
use capstan_aws::{Aws, AwsError, DynamoStateStore};
use capstan_engine::model::{Policy, Target};
use capstan_engine::{Change, CurrentCapacity, Direction, ResourceState};
use capstan_policy::{PolicySet, Source};
use capstan_runner::ports::{CapacityControl, Lease, SaveError, StateStore};
use capstan_runner::{Limits, Mode, Outcome, Ports, Status, evaluate};
use capstan_tests::fleet::{self, MetricId};

/// An ECS service at 2 tasks whose CPU has been 90 for six minutes, a policy adding 2 tasks above
/// 70, and a state table: everything in the emulator.
struct Scene {
    aws: Aws,
    ecs: aws_sdk_ecs::Client,
    cluster: String,
    policy: Policy,
    now: DateTime<Utc>,
}

const SERVICE: &str = "orders";

impl Scene {
    async fn new(cooldown: &str) -> Self {
        let config = capstan_tests::sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&config);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let cluster = capstan_tests::unique("state");
        let table = capstan_tests::unique("state");
        capstan_aws::create_table(&dynamodb, &table)
            .await
            .expect("creating the state table");
        fleet::steady_ecs_service(&ecs, &cluster, SERVICE, 2).await;
        let now = Utc::now();
        let cpu = MetricId {
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: vec![
                ("ClusterName".into(), cluster.clone()),
                ("ServiceName".into(), SERVICE.into()),
            ],
        };
        let trace: Vec<_> = fleet::window_minutes(now, 6)
            .into_iter()
            .map(|at| (at, 90.0))
            .collect();
        fleet::put_metric(&cloudwatch, &cpu, &trace).await;
        let yaml = format!(
            "version: 1
name: {SERVICE}
target:
  ecs_service: {{ cluster: {cluster}, service: {SERVICE} }}
capacity: {{ min: 1, max: 10 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, dimensions: {{ ClusterName: {cluster}, ServiceName: {SERVICE} }}, stat: Average, period: 1m }}
scale_out:
  - {{ when: {{ metric: cpu, above: 70, for: 5m }}, add: 2 }}
guards:
  cooldown: {{ out: {cooldown} }}
"
        );
        let set = PolicySet::from_sources(vec![Source {
            path: "policies/orders.yaml".into(),
            text: yaml,
        }])
        .expect("a valid policy");
        Self {
            aws: Aws::new(&config, table),
            ecs,
            cluster,
            policy: set.policies()[0].clone(),
            now,
        }
    }

    /// One acting pass over the policy, by `holder`, through `state` and `capacity`.
    async fn pass(
        &self,
        holder: &str,
        state: &(impl StateStore + Sync),
        capacity: &(impl CapacityControl + Sync),
    ) -> Outcome {
        let ports = Ports {
            metrics: self.aws.cloudwatch(),
            capacity,
            state,
            holder,
            clock: &|| self.now,
            limits: Limits::default(),
        };
        let policies = [&self.policy];
        let mut pass = evaluate(&policies, &policies, &ports, self.now, Mode::Act).await;
        assert_eq!(pass.outcomes.len(), 1);
        pass.outcomes.remove(0)
    }

    async fn desired(&self) -> i32 {
        fleet::ecs_desired(&self.ecs, &self.cluster, SERVICE).await
    }
}

/// The capacity control of [`Aws`], counting the changes it is asked to make.
struct CountingChanges<'a> {
    aws: &'a Aws,
    changes: AtomicUsize,
}

impl CapacityControl for CountingChanges<'_> {
    type Error = AwsError;

    async fn current(&self, target: &Target) -> Result<CurrentCapacity, AwsError> {
        self.aws.current(target).await
    }

    async fn set_desired(&self, target: &Target, desired: u32) -> Result<(), AwsError> {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.aws.set_desired(target, desired).await
    }
}

/// A state store that, after each lease attempt, waits until every racer has made its own: no
/// racer gets to act, and release, before the others have tried to take the lease.
struct LeaseRace<'a> {
    store: &'a DynamoStateStore,
    barrier: &'a Barrier,
}

impl StateStore for LeaseRace<'_> {
    type Error = AwsError;

    async fn load(&self, target: &Target) -> Result<ResourceState, AwsError> {
        self.store.load(target).await
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<AwsError>> {
        self.store.save(target, holder, state).await
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> Result<Lease, AwsError> {
        let lease = self.store.acquire_lease(target, holder).await;
        self.barrier.wait().await;
        lease
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> Result<bool, AwsError> {
        self.store.release_lease(target, holder).await
    }
}

/// A state store that saves a state only while it carries an intent: the state to remember
/// after a change is lost, as if the evaluation died right after acting.
struct DiesAfterActing<'a>(&'a DynamoStateStore);

impl StateStore for DiesAfterActing<'_> {
    type Error = io::Error;

    async fn load(&self, target: &Target) -> io::Result<ResourceState> {
        self.0.load(target).await.map_err(io::Error::other)
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<io::Error>> {
        if state.intent.is_none() {
            return Err(SaveError::Store(io::Error::other(
                "the evaluation died before recording",
            )));
        }
        self.0
            .save(target, holder, state)
            .await
            .map_err(|error| SaveError::Store(io::Error::other(error)))
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> io::Result<Lease> {
        self.0
            .acquire_lease(target, holder)
            .await
            .map_err(io::Error::other)
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> io::Result<bool> {
        self.0
            .release_lease(target, holder)
            .await
            .map_err(io::Error::other)
    }
}

/// An evaluation that dies making its change, before (`after_change` false) or after the
/// change reached AWS: from then on it writes nothing, and gives no lease back.
struct DiesAtTheChange<'a> {
    capacity: &'a CountingChanges<'a>,
    store: &'a DynamoStateStore,
    after_change: bool,
    dead: AtomicBool,
}

impl DiesAtTheChange<'_> {
    fn died(&self) -> io::Error {
        io::Error::other("the attempt died")
    }
}

impl CapacityControl for DiesAtTheChange<'_> {
    type Error = io::Error;

    async fn current(&self, target: &Target) -> io::Result<CurrentCapacity> {
        self.capacity
            .current(target)
            .await
            .map_err(io::Error::other)
    }

    async fn set_desired(&self, target: &Target, desired: u32) -> io::Result<()> {
        if self.after_change {
            self.capacity
                .set_desired(target, desired)
                .await
                .map_err(io::Error::other)?;
        }
        self.dead.store(true, Ordering::SeqCst);
        Err(self.died())
    }
}

impl StateStore for DiesAtTheChange<'_> {
    type Error = io::Error;

    async fn load(&self, target: &Target) -> io::Result<ResourceState> {
        self.store.load(target).await.map_err(io::Error::other)
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<io::Error>> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(SaveError::Store(self.died()));
        }
        self.store
            .save(target, holder, state)
            .await
            .map_err(|error| SaveError::Store(io::Error::other(error)))
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> io::Result<Lease> {
        self.store
            .acquire_lease(target, holder)
            .await
            .map_err(io::Error::other)
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> io::Result<bool> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(self.died());
        }
        self.store
            .release_lease(target, holder)
            .await
            .map_err(io::Error::other)
    }
}

/// A state store whose lease, once taken, expires and is taken by `evaluation-2` before the
/// state is written, as if the evaluation stalled past its lease.
struct LeaseTakenOver<'a>(&'a DynamoStateStore);

impl StateStore for LeaseTakenOver<'_> {
    type Error = AwsError;

    async fn load(&self, target: &Target) -> Result<ResourceState, AwsError> {
        self.0.load(target).await
    }

    async fn save(
        &self,
        target: &Target,
        holder: &str,
        state: &ResourceState,
    ) -> Result<(), SaveError<AwsError>> {
        self.0.save(target, holder, state).await
    }

    async fn acquire_lease(&self, target: &Target, holder: &str) -> Result<Lease, AwsError> {
        let lease = self.0.acquire_lease(target, holder).await?;
        let expired = Utc::now() + self.0.lease_duration() + TimeDelta::seconds(1);
        let taken = self
            .0
            .acquire_lease_at(target, "evaluation-2", expired)
            .await?;
        assert_eq!(taken, Lease::Acquired, "the lease had expired");
        Ok(lease)
    }

    async fn release_lease(&self, target: &Target, holder: &str) -> Result<bool, AwsError> {
        self.0.release_lease(target, holder).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_racing_evaluations_exactly_one_acts_and_the_other_names_it() {
    // No cooldown: only the lease keeps the second evaluation from adding two more tasks.
    let scene = Scene::new("0s").await;
    let capacity = CountingChanges {
        aws: &scene.aws,
        changes: AtomicUsize::new(0),
    };
    let barrier = Barrier::new(2);
    let racing = LeaseRace {
        store: scene.aws.state(),
        barrier: &barrier,
    };

    let (first, second) = tokio::join!(
        scene.pass("evaluation-1", &racing, &capacity),
        scene.pass("evaluation-2", &racing, &capacity),
    );

    let (winner, loser) = match (&first.result, &second.result) {
        (Status::Applied, _) => (("evaluation-1", &first), &second),
        (_, Status::Applied) => (("evaluation-2", &second), &first),
        _ => panic!("one evaluation should act: {first}; {second}"),
    };
    assert_eq!(winner.1.decision.as_ref().map(|d| d.desired), Some(4));
    match &loser.result {
        Status::HeldBy { holder, .. } => assert_eq!(holder, winner.0, "{loser}"),
        other => panic!("the other should be told the lease holder, got {other:?}"),
    }
    assert!(loser.decision.is_none(), "{loser}");
    assert_eq!(
        capacity.changes.load(Ordering::SeqCst),
        1,
        "exactly one change"
    );
    assert_eq!(scene.desired().await, 4);

    // The winner released the lease: the next evaluation is not kept out.
    let next = scene
        .pass("evaluation-3", scene.aws.state(), &scene.aws)
        .await;
    assert!(
        !matches!(next.result, Status::HeldBy { .. }),
        "the lease was released: {next}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluation_that_dies_between_acting_and_recording_is_not_repeated() {
    let scene = Scene::new("10m").await;
    let store = scene.aws.state();

    let dying = scene
        .pass("evaluation-1", &DiesAfterActing(store), &scene.aws)
        .await;
    assert!(
        matches!(dying.result, Status::AppliedNotRecorded(_)),
        "{dying}"
    );
    assert_eq!(scene.desired().await, 4);
    let made = Change {
        at: scene.now,
        direction: Direction::Out,
        from: 2,
        to: 4,
    };
    assert_eq!(
        store.load(&scene.policy.target).await.expect("loading"),
        ResourceState::default().intending(made),
        "the change is known only as an intent"
    );

    // The next evaluation sees 4 tasks, the intent's target: the change was made, its cooldown
    // runs, and CPU still at 90 does not add two more.
    let next = scene.pass("evaluation-2", store, &scene.aws).await;
    assert_eq!(next.result, Status::Unchanged, "{next}");
    assert!(
        next.warnings.iter().any(|w| w.contains("counted as made")),
        "{next}"
    );
    assert_eq!(scene.desired().await, 4);
    let remembered = store.load(&scene.policy.target).await.expect("loading");
    assert_eq!((remembered.changes, remembered.intent), (vec![made], None));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluation_whose_lease_was_taken_over_before_its_intent_does_not_act() {
    let scene = Scene::new("0s").await;
    let store = scene.aws.state();
    let capacity = CountingChanges {
        aws: &scene.aws,
        changes: AtomicUsize::new(0),
    };

    let outcome = scene
        .pass("evaluation-1", &LeaseTakenOver(store), &capacity)
        .await;

    match &outcome.result {
        Status::Failed(why) => assert!(
            why.contains("not acting") && why.contains("the lease was lost: evaluation-2 holds it"),
            "{outcome}"
        ),
        other => panic!("the intent write should be refused, got {other:?}"),
    }
    assert_eq!(capacity.changes.load(Ordering::SeqCst), 0, "no change");
    assert_eq!(scene.desired().await, 2);
    assert_eq!(
        store.load(&scene.policy.target).await.expect("loading"),
        ResourceState::default(),
        "nothing written"
    );
}

/// An attempt claims an alarm's event and dies making its change, before or after the change
/// reached AWS; Lambda retries the invocation under the same request id, as an attempt of its
/// own. While the dead attempt's claim and lease last, the retry is kept out; once they expire
/// it is evaluated, and the change is made once over both attempts.
async fn a_retry_after_dying(after_change: bool) {
    let scene = Scene::new("10m").await;
    // The dying attempt's claim and lease last 4 seconds (a real one's last until the
    // invocation's deadline plus 10 seconds), so that the test need not wait long for them to
    // expire.
    let dying_store = scene
        .aws
        .state()
        .clone()
        .with_lease_duration(TimeDelta::seconds(4));
    let store = scene.aws.state();
    let capacity = CountingChanges {
        aws: &scene.aws,
        changes: AtomicUsize::new(0),
    };
    let key = format!("alarm#capstan-{SERVICE}#{}", scene.now.to_rfc3339());
    let claim = |store: &DynamoStateStore, attempt: &'static str| {
        let (key, store) = (&key, store.clone());
        async move {
            store
                .claim_event(key, attempt, Utc::now())
                .await
                .expect("claiming")
        }
    };

    assert_eq!(
        claim(&dying_store, "request-1/attempt-1").await,
        Claim::Claimed
    );
    let dying = DiesAtTheChange {
        capacity: &capacity,
        store: &dying_store,
        after_change,
        dead: AtomicBool::new(false),
    };
    let died = scene.pass("request-1/attempt-1", &dying, &dying).await;
    assert!(matches!(died.result, Status::Failed(_)), "{died}");

    // The retry comes while the dead attempt's claim and lease still hold: kept out of both.
    let Claim::InProgress { by, until } = claim(store, "request-1/attempt-2").await else {
        panic!("the dead attempt's claim holds until it expires");
    };
    assert_eq!(by, "request-1/attempt-1");
    let kept_out = scene.pass("request-1/attempt-2", store, &capacity).await;
    assert!(
        matches!(&kept_out.result, Status::HeldBy { holder, .. } if holder == "request-1/attempt-1"),
        "the dead attempt's lease holds: {kept_out}"
    );

    // Lambda's next retry comes after they expired (expiry is compared in whole seconds).
    let expired = until + TimeDelta::seconds(1) - Utc::now();
    tokio::time::sleep(expired.to_std().unwrap_or_default()).await;
    assert_eq!(
        claim(store, "request-1/attempt-3").await,
        Claim::Claimed,
        "the retry"
    );
    let retry = scene.pass("request-1/attempt-3", store, &capacity).await;
    assert!(retry.decision.is_some(), "evaluated: {retry}");
    if after_change {
        assert_eq!(retry.result, Status::Unchanged, "{retry}");
        assert!(
            retry.warnings.iter().any(|w| w.contains("counted as made")),
            "{retry}"
        );
    } else {
        assert_eq!(retry.result, Status::Applied, "{retry}");
    }
    store
        .complete_event(&key, "request-1/attempt-3", Utc::now())
        .await
        .expect("completing");

    assert_eq!(capacity.changes.load(Ordering::SeqCst), 1, "one change");
    assert_eq!(scene.desired().await, 4);
    assert!(
        matches!(claim(store, "request-2/attempt-1").await, Claim::Duplicate { by, .. } if by == "request-1/attempt-3"),
        "a later delivery is a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_of_an_attempt_that_died_before_its_change_makes_it_once() {
    a_retry_after_dying(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_of_an_attempt_that_died_after_its_change_does_not_make_it_again() {
    a_retry_after_dying(true).await;
}
