//! Killed anywhere: the real evaluator binary, run as Lambda runs it (a Runtime API of the
//! test's own, [`Function`]), is killed (SIGKILL) while one of its AWS calls is held at the
//! fault-injecting proxy, the held call then reaching AWS or not; then Lambda's retry of the
//! invocation (the same request id, in a new execution environment, once the dead attempt's
//! claim and leases have expired) and the next tick run. Each trial's fleet is an ECS service
//! and an Auto Scaling group whose CPU breaches (2 -> 4) and the source of a replica policy
//! whose CPU asks for a replica (0 -> 1), each behind a cooldown. Afterwards every change was
//! made exactly once (counted where it reaches the emulator), the capacities are what the
//! policies want, no lease is held, and each resource's remembered state agrees with its
//! capacity. (A request the SDK sends again after an attempt timed out is the same invocation
//! of the operation, and carries the same value: it is not a second change.)
//!
//! `CAPSTAN_KILL_TRIALS` (default 20) trials, seeded by `CAPSTAN_KILL_SEED` (default 12), run
//! `CAPSTAN_KILL_PARALLEL` (default 10) at a time; see docs/testing.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use chrono::{TimeDelta, Utc};
use serde_json::Value;

use capstan_aws::DynamoStateStore;
use capstan_engine::model::Target;
use capstan_runner::ports::StateStore;
use capstan_tests::answers;
use capstan_tests::events::tick;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::evaluator_function;
use capstan_tests::proxy::{Hold, Proxy, Stats};
use capstan_tests::runtime_api::{Answer, Function};
use capstan_tests::state_table::{held_until, leases_held, scan};

use super::setting;

/// A first attempt's deadline, from its start: its pass stops starting work 15 seconds before
/// it, and its claim and leases last until 10 seconds after it.
const FIRST_DEADLINE: Duration = Duration::from_secs(20);
/// A retry's and a tick's deadline, from their start.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long an invocation may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// A first attempt's calls, at most: a kill point is drawn among them.
const CALLS: u64 = 18;

/// Capacity of the service and the group before any change, and after the one change each.
const START: i32 = 2;
const WANTED: i32 = 4;

/// The operations that change something, each expected to be invoked exactly once over a trial
/// and to reach the emulator.
const CHANGES: [&str; 3] = [
    "UpdateService",
    "SetDesiredCapacity",
    "CreateDBInstanceReadReplica",
];

/// One trial's resources, policies, state table and proxy.
struct Scene {
    config: SdkConfig,
    cluster: String,
    group: String,
    source: String,
    table: String,
    policies: tempfile::TempDir,
    proxy: Proxy,
}

const SERVICE: &str = "web";

impl Scene {
    /// Creates the resources at their start, their CPU breaching over the last minutes and the
    /// next few, the state table, the policies and a proxy in front of the emulator.
    async fn new() -> Self {
        let config = capstan_tests::sdk_config().await;
        let ecs = aws_sdk_ecs::Client::new(&config);
        let asg = aws_sdk_autoscaling::Client::new(&config);
        let rds = aws_sdk_rds::Client::new(&config);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let scene = Self {
            cluster: capstan_tests::unique("killed"),
            group: capstan_tests::unique("killed-asg"),
            source: capstan_tests::unique("killed-db"),
            table: capstan_tests::unique("killed-state"),
            policies: tempfile::tempdir().expect("a policy directory"),
            proxy: Proxy::start(&capstan_tests::endpoint()),
            config,
        };
        capstan_aws::create_table(&dynamodb, &scene.table)
            .await
            .expect("creating the state table");
        fleet::steady_ecs_service(&ecs, &scene.cluster, SERVICE, START).await;
        fleet::autoscaling_group(&asg, &scene.group, 1, 10, START).await;
        fleet::rds_source(&rds, &scene.source, 1).await;
        // Every window of the next minutes finds CPU at 90: a retry or tick that comes late
        // still sees the breach.
        let minutes = fleet::window_minutes(Utc::now() + TimeDelta::minutes(3), 12);
        for (metric, _) in scene.metrics() {
            let points: Vec<_> = minutes.iter().map(|at| (*at, 90.0)).collect();
            fleet::put_metric(&cloudwatch, &metric, &points).await;
        }
        for (name, text) in scene.policy_files() {
            std::fs::write(scene.policies.path().join(name), text).expect("writing a policy");
        }
        scene
    }

    /// Each resource's CPU metric, with the policy target it belongs to.
    fn metrics(&self) -> [(MetricId, Target); 3] {
        [
            (
                MetricId::ecs_cpu(&self.cluster, SERVICE),
                Target::EcsService {
                    cluster: self.cluster.clone(),
                    service: SERVICE.into(),
                },
            ),
            (
                MetricId::asg_cpu(&self.group),
                Target::AutoscalingGroup {
                    name: self.group.clone(),
                },
            ),
            (
                MetricId::rds_cpu(&self.source),
                Target::RdsReplicas {
                    source: self.source.clone(),
                },
            ),
        ]
    }

    /// The policies: CPU above 70 for five minutes adds 2 tasks or instances, or 1 replica,
    /// each behind a cooldown longer than a trial.
    fn policy_files(&self) -> Vec<(String, String)> {
        self.metrics()
            .into_iter()
            .enumerate()
            .map(|(index, (metric, target))| {
                let (target, capacity, add) = match target {
                    Target::EcsService { cluster, service } => (
                        format!("ecs_service: {{ cluster: {cluster}, service: {service} }}"),
                        "{ min: 1, max: 10 }",
                        2,
                    ),
                    Target::AutoscalingGroup { name } => (
                        format!("autoscaling_group: {{ name: {name} }}"),
                        "{ min: 1, max: 10 }",
                        2,
                    ),
                    Target::RdsReplicas { source } => (
                        format!("rds_replicas: {{ source: {source} }}"),
                        "{ min: 0, max: 3 }",
                        1,
                    ),
                    other => unreachable!("no such resource in the trial: {other:?}"),
                };
                let name = format!("policy-{index}");
                let yaml = fleet::cpu_policy(&name, &target, capacity, &metric, add, "30m");
                (format!("{name}.yaml"), yaml)
            })
            .collect()
    }

    /// A new execution environment of the evaluator, calling AWS through the proxy.
    fn function(&self) -> Function {
        evaluator_function(self.policies.path(), &self.table, &self.proxy.url(), &[])
    }

    /// Invokes a new execution environment with `event` as `request_id`; its answer.
    fn invoke(&self, event: &Value, request_id: &str) -> Result<Value, String> {
        let mut function = self.function();
        function.invoke(event, request_id, SystemTime::now() + DEADLINE);
        match function.answer(ANSWER_TIMEOUT) {
            Some(Answer { result, .. }) => {
                result.map_err(|error| format!("{error}\n{}", function.output()))
            }
            None => Err(format!("no answer in time\n{}", function.output())),
        }
    }

    /// What is wrong once the trial ended, given what the proxy counted over it.
    async fn problems(&self, stats: &Stats) -> Vec<String> {
        let mut problems = Vec::new();
        for change in CHANGES {
            let made = stats.invocations.get(change).copied().unwrap_or(0);
            if made != 1 {
                problems.push(format!("{change} was invoked {made} times, not once"));
            }
        }
        let ecs = aws_sdk_ecs::Client::new(&self.config);
        let asg = aws_sdk_autoscaling::Client::new(&self.config);
        let rds = aws_sdk_rds::Client::new(&self.config);
        let replicas = fleet::rds_replicas(&rds, &self.source)
            .await
            .iter()
            .filter(|(_, tags)| fleet::capstan_created(tags))
            .count();
        let capacities = [
            fleet::ecs_desired(&ecs, &self.cluster, SERVICE).await,
            fleet::asg_desired(&asg, &self.group).await,
            i32::try_from(replicas).expect("a few replicas"),
        ];
        let store = DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&self.config), &self.table);
        for ((_, target), (capacity, wanted)) in self
            .metrics()
            .into_iter()
            .zip(capacities.into_iter().zip([WANTED, WANTED, 1]))
        {
            if capacity != wanted {
                problems.push(format!("{target:?} is at {capacity}, not {wanted}"));
            }
            match store.load(&target).await {
                Ok(state) => {
                    let remembered: Vec<u32> = state.changes.iter().map(|a| a.to).collect();
                    if state.intent.is_some() || remembered != [capacity.unsigned_abs()] {
                        problems.push(format!(
                            "{target:?} at {capacity} remembers changes to {remembered:?} and intent {:?}",
                            state.intent
                        ));
                    }
                }
                Err(error) => problems.push(format!("{target:?}: reading its state: {error}")),
            }
        }
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.config);
        let held = leases_held(&scan(&dynamodb, &self.table).await, Utc::now());
        if held != 0 {
            problems.push(format!("{held} leases still held"));
        }
        problems
    }

    /// Waits until the claims and leases a dead attempt left have expired: Lambda retries an
    /// asynchronous invocation a minute after its attempt failed at the earliest, and the next
    /// tick comes a minute later. Answers how long it waited.
    async fn until_free(&self) -> Duration {
        let dynamodb = aws_sdk_dynamodb::Client::new(&self.config);
        let Some(until) = held_until(&scan(&dynamodb, &self.table).await) else {
            return Duration::ZERO;
        };
        // Expiry is compared in whole seconds: one more and it has passed.
        let wait = (until + 1 - Utc::now().timestamp()).max(0);
        let wait = Duration::from_secs(wait.unsigned_abs());
        tokio::time::sleep(wait).await;
        wait
    }
}

/// Where a trial kills its first attempt, and what becomes of the call held there.
#[derive(Debug, Clone)]
struct Trial {
    number: u64,
    hold: Hold,
    /// Whether the held call reaches AWS after the kill (its answer lost) or never does.
    forward: bool,
}

/// What a trial found.
#[derive(Debug)]
struct Ran {
    trial: Trial,
    /// The operation the first attempt was killed in, unless it ended before the hold.
    killed_in: Option<String>,
    /// How long the retry waited for the dead attempt's claim and leases.
    waited: Duration,
    /// The retry's answer, when there was one.
    retry: Option<Value>,
    problems: Vec<String>,
}

/// Runs one trial: the first attempt of a tick, killed at the trial's hold; Lambda's retry;
/// the next tick; then the checks.
async fn run(trial: Trial) -> Ran {
    let scene = Scene::new().await;
    let request_id = format!("trial-{}", trial.number);
    let event = tick(Utc::now());
    let mut problems = Vec::new();
    scene.proxy.hold(&trial.hold);
    let mut first = scene.function();
    first.invoke(&event, &request_id, SystemTime::now() + FIRST_DEADLINE);
    let started = Instant::now();
    let killed_in = loop {
        if let Some(answer) = first.answer(Duration::ZERO) {
            if let Err(error) = answer.result {
                problems.push(format!("the first attempt failed: {error}"));
            }
            scene.proxy.release(true);
            break None;
        }
        if let Some(held) = scene.proxy.held(Duration::from_millis(200)).first() {
            first.kill();
            scene.proxy.release(trial.forward);
            break Some(held.clone());
        }
        if started.elapsed() > ANSWER_TIMEOUT {
            problems.push(format!(
                "the first attempt neither answered nor reached its hold\n{}",
                first.output()
            ));
            scene.proxy.release(true);
            break None;
        }
    };
    let (waited, retry) = if killed_in.is_some() {
        let waited = scene.until_free().await;
        match scene.invoke(&event, &request_id) {
            Ok(answer) => (waited, Some(answer)),
            Err(error) => {
                problems.push(format!("the retry failed: {error}"));
                (waited, None)
            }
        }
    } else {
        (Duration::ZERO, None)
    };
    if let Err(error) = scene.invoke(&tick(Utc::now()), &format!("{request_id}-next")) {
        problems.push(format!("the next tick failed: {error}"));
    }
    problems.extend(scene.problems(&scene.proxy.stats()).await);
    Ran {
        trial,
        killed_in,
        waited,
        retry,
        problems,
    }
}

/// Runs `trials` on threads of their own, `parallel` at a time (each mostly waits for its
/// dead attempt's leases to expire); what each found, in order.
fn run_all(trials: Vec<Trial>, parallel: usize) -> Vec<Ran> {
    let mut ran = Vec::new();
    for wave in trials.chunks(parallel.max(1)) {
        std::thread::scope(|scope| {
            let running: Vec<_> = wave
                .iter()
                .cloned()
                .map(|trial| {
                    scope.spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("a runtime")
                            .block_on(run(trial))
                    })
                })
                .collect();
            ran.extend(
                running
                    .into_iter()
                    .map(|thread| thread.join().expect("a trial")),
            );
        });
    }
    ran
}

/// The outcome the answer `answer` gives the ECS service's policy.
fn service_outcome(answer: &Value) -> &Value {
    answers::find(answer, "policy-0").unwrap_or(&Value::Null)
}

/// A tick's first attempt is killed while its `UpdateService` call is held, which then reaches
/// AWS (`forward`) or never does; the retry is evaluated and the change made once.
fn killed_at_the_change(forward: bool) {
    let [ran] = <[Ran; 1]>::try_from(run_all(
        vec![Trial {
            number: u64::from(forward),
            hold: Hold::Operation("UpdateService".into()),
            forward,
        }],
        1,
    ))
    .expect("one trial");
    assert_eq!(ran.problems, Vec::<String>::new(), "{ran:#?}");
    assert_eq!(ran.killed_in.as_deref(), Some("UpdateService"), "{ran:#?}");
    let retry = ran.retry.as_ref().expect("the retry answered");
    let outcome = service_outcome(retry);
    if forward {
        assert_eq!(outcome["result"]["status"], "unchanged", "{retry:#}");
        assert!(
            outcome["warnings"].to_string().contains("counted as made"),
            "{retry:#}"
        );
    } else {
        assert_eq!(outcome["result"]["status"], "applied", "{retry:#}");
    }
}

#[test]
fn a_delivery_killed_after_its_change_reached_aws_is_evaluated_again_and_does_not_repeat_it() {
    killed_at_the_change(true);
}

#[test]
fn a_delivery_killed_before_its_change_reached_aws_is_evaluated_again_and_makes_it_once() {
    killed_at_the_change(false);
}

#[test]
fn killed_at_any_call_of_a_pass_every_change_is_made_exactly_once() {
    let trials = setting("CAPSTAN_KILL_TRIALS", 20);
    let seed = setting("CAPSTAN_KILL_SEED", 12);
    let parallel = usize::try_from(setting("CAPSTAN_KILL_PARALLEL", 10)).expect("a small number");
    let mut random = fastrand::Rng::with_seed(seed);
    let plan: Vec<Trial> = (0..trials)
        .map(|number| Trial {
            number,
            hold: Hold::From(random.u64(1..=CALLS)),
            forward: random.bool(),
        })
        .collect();
    let ran = run_all(plan, parallel);

    let mut killed_in: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed = Vec::new();
    for ran in &ran {
        let Hold::From(call) = ran.trial.hold else {
            unreachable!("trials hold from a call number")
        };
        println!(
            "trial {}: hold at call {call}, {}; {}; retry waited {:.1} s; {}",
            ran.trial.number,
            if ran.trial.forward {
                "held call forwarded"
            } else {
                "held call dropped"
            },
            ran.killed_in
                .as_deref()
                .map_or("ended before the hold".to_owned(), |op| format!(
                    "killed in {op}"
                )),
            ran.waited.as_secs_f64(),
            if ran.problems.is_empty() {
                "ok".to_owned()
            } else {
                ran.problems.join("; ")
            },
        );
        if let Some(operation) = &ran.killed_in {
            *killed_in.entry(operation).or_default() += 1;
        }
        if !ran.problems.is_empty() {
            failed.push(ran.trial.number);
        }
    }
    let killed: usize = killed_in.values().sum();
    println!(
        "kill-campaign: trials={trials} seed={seed} killed={killed} failed={} killed_in={}",
        failed.len(),
        killed_in
            .iter()
            .map(|(operation, n)| format!("{operation}={n}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    assert_eq!(
        failed,
        Vec::<u64>::new(),
        "trials with problems (see above)"
    );
    assert!(
        killed * 10 >= ran.len() * 7,
        "most trials must be killed mid-pass, or the campaign proves little: {killed} of {}",
        ran.len()
    );
}
