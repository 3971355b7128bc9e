//! Duplicates by the thousand: alarm state changes, each delivered 1 to 5 times in the
//! EventBridge, alarm-action and SNS shapes, all shuffled (an `OK` may come before the `ALARM` it
//! follows, and some state changes are hours old), are sent to [`EVALUATORS`] evaluators running
//! at once, each an execution environment of its own. A delivery refused because another attempt
//! has its event in progress is delivered again later, as Lambda retries it. Every service's CPU
//! breaches, so the first evaluation of each service scales it from 2 to 4 and its cooldown holds
//! every later one. Afterwards every delivery was answered, every state change evaluated exactly
//! once, each service changed exactly once (`UpdateService` invocations counted at the proxy)
//! and its decision log agrees, and no lease is held.
//!
//! `CAPSTAN_DUPLICATE_DELIVERIES` deliveries at least (default 200), seeded by
//! `CAPSTAN_DUPLICATE_SEED` (default 7); see docs/testing.md.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;

use capstan_tests::events::AlarmChange;
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::evaluator_function;
use capstan_tests::proxy::Proxy;
use capstan_tests::runtime_api::Answer;
use capstan_tests::state_table::{leases_held, scan};

use super::setting;

/// How many evaluators run at once.
const EVALUATORS: usize = 4;
/// How long one invocation may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// What a refused delivery's error says: another attempt has its event in progress.
const IN_PROGRESS: &str = "is being handled by";

/// The shapes an alarm state change is delivered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    EventBridge,
    AlarmAction,
    Sns,
}

/// One delivery of a state change.
#[derive(Debug, Clone)]
struct Delivery {
    /// The state change it carries, by index.
    change: usize,
    shape: Shape,
}

/// The scenario: services, their alarms' state changes and the deliveries, shuffled.
struct Plan {
    services: Vec<String>,
    /// Each state change with the index of its service.
    changes: Vec<(usize, AlarmChange)>,
    deliveries: Vec<Delivery>,
}

/// Services in `cluster`, each with three state changes of its alarm a minute apart (`ALARM`,
/// `OK`, `ALARM`) and one in three also an `ALARM` three hours old, each change delivered 1 to 5
/// times in a random shape, until there are at least `deliveries`; shuffled.
fn plan(cluster: &str, deliveries: usize, seed: u64, now: DateTime<Utc>) -> Plan {
    let mut random = fastrand::Rng::with_seed(seed);
    let mut plan = Plan {
        services: Vec::new(),
        changes: Vec::new(),
        deliveries: Vec::new(),
    };
    while plan.deliveries.len() < deliveries {
        let index = plan.services.len();
        let service = format!("svc-{index:04}");
        let metric = MetricId::ecs_cpu(cluster, &service);
        let mut states = vec![("ALARM", 4), ("OK", 3), ("ALARM", 2)];
        if random.u8(0..3) == 0 {
            states.push(("ALARM", 180));
        }
        for (state, minutes_ago) in states {
            let at = now - TimeDelta::minutes(minutes_ago)
                + TimeDelta::milliseconds(random.i64(0..60_000));
            let at = at
                .duration_trunc(TimeDelta::milliseconds(1))
                .expect("to the millisecond");
            let change = plan.changes.len();
            plan.changes.push((
                index,
                AlarmChange {
                    alarm: format!("capstan-{cluster}-{service}"),
                    state,
                    at,
                    metric: metric.clone(),
                },
            ));
            for _ in 0..random.usize(1..=5) {
                let shape =
                    [Shape::EventBridge, Shape::AlarmAction, Shape::Sns][random.usize(0..3)];
                plan.deliveries.push(Delivery { change, shape });
            }
        }
        plan.services.push(service);
    }
    random.shuffle(&mut plan.deliveries);
    plan
}

/// The deliveries still to make, shared by the evaluators: taken from the front, a refused one
/// put back at the end; `outstanding` counts those not yet answered.
struct Queue {
    state: Mutex<(VecDeque<usize>, usize)>,
    changed: Condvar,
}

impl Queue {
    fn new(deliveries: usize) -> Self {
        Self {
            state: Mutex::new(((0..deliveries).collect(), deliveries)),
            changed: Condvar::new(),
        }
    }

    /// The next delivery to make; none once every delivery is answered.
    fn take(&self) -> Option<usize> {
        let mut state = self.state.lock().expect("the queue");
        loop {
            if let Some(next) = state.0.pop_front() {
                return Some(next);
            }
            if state.1 == 0 {
                return None;
            }
            state = self.changed.wait(state).expect("the queue");
        }
    }

    /// Delivery `index` was answered.
    fn answered(&self) {
        let mut state = self.state.lock().expect("the queue");
        state.1 -= 1;
        self.changed.notify_all();
    }

    /// Delivery `index` was refused: it is made again later.
    fn again(&self, index: usize) {
        let mut state = self.state.lock().expect("the queue");
        state.0.push_back(index);
        self.changed.notify_all();
    }
}

/// What the evaluators answered: per delivery, its answer or error; and how many deliveries were
/// refused and made again.
struct Answers {
    by_delivery: Vec<Option<Result<Value, String>>>,
    again: usize,
}

/// Makes every delivery of `plan` through [`EVALUATORS`] evaluators at once, each a new
/// execution environment reading `policies` and keeping its state in `table`, calling AWS
/// through `proxy`.
fn deliver(plan: &Plan, policies: &std::path::Path, table: &str, proxy: &Proxy) -> Answers {
    let queue = Queue::new(plan.deliveries.len());
    let answers = Mutex::new(Answers {
        by_delivery: vec![None; plan.deliveries.len()],
        again: 0,
    });
    let endpoint = proxy.url();
    std::thread::scope(|scope| {
        for evaluator in 0..EVALUATORS {
            let (queue, answers, endpoint) = (&queue, &answers, &endpoint);
            scope.spawn(move || {
                let mut function = evaluator_function(policies, table, endpoint, &[]);
                let mut invocations = 0;
                while let Some(index) = queue.take() {
                    let delivery = &plan.deliveries[index];
                    let change = &plan.changes[delivery.change].1;
                    let event = match delivery.shape {
                        Shape::EventBridge => change.eventbridge(),
                        Shape::AlarmAction => change.alarm_action(),
                        Shape::Sns => change.sns(),
                    };
                    invocations += 1;
                    let request_id = format!("evaluator-{evaluator}-{invocations}");
                    function.invoke(
                        &event,
                        &request_id,
                        SystemTime::now() + Duration::from_secs(60),
                    );
                    let result = match function.answer(ANSWER_TIMEOUT) {
                        Some(Answer { result, .. }) => result,
                        None => Err(format!("no answer in time\n{}", function.output())),
                    };
                    let mut answers = answers.lock().expect("the answers");
                    match result {
                        Err(error) if error.contains(IN_PROGRESS) => {
                            answers.again += 1;
                            queue.again(index);
                        }
                        result => {
                            answers.by_delivery[index] = Some(result);
                            queue.answered();
                        }
                    }
                }
            });
        }
    });
    answers.into_inner().expect("the answers")
}

/// The state change key of each alarm trigger an answer evaluated.
fn evaluated_keys(answer: &Value) -> Vec<String> {
    answer["triggers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|trigger| {
            let at: DateTime<Utc> = trigger["changed_at"].as_str()?.parse().ok()?;
            Some(format!(
                "alarm#{}#{}",
                trigger["name"].as_str()?,
                at.to_rfc3339()
            ))
        })
        .collect()
}

/// The statuses in each service's decision log, by service name.
async fn decision_log(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut log: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in scan(dynamodb, table).await {
        let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
        if !text("sk").is_some_and(|sk| sk.starts_with("decision#")) {
            continue;
        }
        let outcome: Value = text("outcome")
            .and_then(|outcome| serde_json::from_str(outcome).ok())
            .unwrap_or_default();
        log.entry(
            item.get("policy")
                .and_then(|policy| policy.as_s().ok())
                .cloned()
                .unwrap_or_default(),
        )
        .or_default()
        .push(
            outcome["result"]["status"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
        );
    }
    log
}

#[tokio::test(flavor = "multi_thread")]
async fn every_alarm_state_change_delivered_many_times_to_evaluators_at_once_acts_once() {
    let deliveries =
        usize::try_from(setting("CAPSTAN_DUPLICATE_DELIVERIES", 200)).expect("a count");
    let seed = setting("CAPSTAN_DUPLICATE_SEED", 7);
    let config = capstan_tests::sdk_config().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let cluster = capstan_tests::unique("dup");
    let table = capstan_tests::unique("dup-state");
    let now = Utc::now();
    let plan = plan(&cluster, deliveries, seed, now);
    capstan_aws::create_table(&dynamodb, &table)
        .await
        .expect("creating the state table");
    let policies = tempfile::tempdir().expect("a policy directory");
    let minutes = fleet::window_minutes(now + TimeDelta::minutes(5), 14);
    for service in &plan.services {
        fleet::steady_ecs_service(&ecs, &cluster, service, 2).await;
        let points: Vec<_> = minutes.iter().map(|at| (*at, 90.0)).collect();
        fleet::put_metric(&cloudwatch, &MetricId::ecs_cpu(&cluster, service), &points).await;
        std::fs::write(
            policies.path().join(format!("{service}.yaml")),
            fleet::ecs_cpu_policy(&cluster, service, "30m"),
        )
        .expect("writing a policy");
    }
    let proxy = Proxy::start(&capstan_tests::endpoint());

    let answers = tokio::task::block_in_place(|| deliver(&plan, policies.path(), &table, &proxy));

    let mut problems = Vec::new();
    let mut evaluated: BTreeMap<String, usize> = BTreeMap::new();
    let mut duplicates: BTreeMap<String, usize> = BTreeMap::new();
    for (delivery, answer) in plan.deliveries.iter().zip(&answers.by_delivery) {
        let key = plan.changes[delivery.change].1.key();
        match answer {
            Some(Ok(answer)) => {
                let keys = evaluated_keys(answer);
                if keys == [key.clone()] {
                    *evaluated.entry(key).or_default() += 1;
                } else if answer["duplicates"][0]["key"] == key.as_str() {
                    *duplicates.entry(key).or_default() += 1;
                } else {
                    problems.push(format!("{key} ({:?}): answered {answer}", delivery.shape));
                }
            }
            Some(Err(error)) => problems.push(format!("{key} ({:?}): {error}", delivery.shape)),
            None => problems.push(format!("{key} ({:?}): never answered", delivery.shape)),
        }
    }
    for (_, change) in &plan.changes {
        let key = change.key();
        let times = evaluated.get(&key).copied().unwrap_or(0);
        if times != 1 {
            problems.push(format!("{key} evaluated {times} times, not once"));
        }
    }
    let stats = proxy.stats();
    let changed = stats.invocations.get("UpdateService").copied().unwrap_or(0);
    if changed != plan.services.len() as u64 {
        problems.push(format!(
            "UpdateService was invoked {changed} times for {} services",
            plan.services.len()
        ));
    }
    let log = decision_log(&dynamodb, &table).await;
    for (index, service) in plan.services.iter().enumerate() {
        let desired = fleet::ecs_desired(&ecs, &cluster, service).await;
        if desired != 4 {
            problems.push(format!("{service} is at {desired}, not 4"));
        }
        let changes = plan.changes.iter().filter(|(of, _)| *of == index).count();
        let statuses = log.get(service).cloned().unwrap_or_default();
        let applied = statuses.iter().filter(|s| *s == "applied").count();
        if statuses.len() != changes || applied != 1 {
            problems.push(format!(
                "{service}: {changes} state changes, decision log {statuses:?}"
            ));
        }
    }
    let held = leases_held(&scan(&dynamodb, &table).await, Utc::now());
    if held != 0 {
        problems.push(format!("{held} leases still held"));
    }
    let shapes: BTreeMap<String, usize> =
        plan.deliveries
            .iter()
            .fold(BTreeMap::new(), |mut shapes, delivery| {
                *shapes.entry(format!("{:?}", delivery.shape)).or_default() += 1;
                shapes
            });
    println!(
        "duplicates: deliveries={} state_changes={} services={} evaluators={EVALUATORS} seed={seed} evaluated={} acknowledged_duplicates={} refused_and_delivered_again={} update_service={changed} shapes={shapes:?} problems={}",
        plan.deliveries.len(),
        plan.changes.len(),
        plan.services.len(),
        evaluated.values().sum::<usize>(),
        duplicates.values().sum::<usize>(),
        answers.again,
        problems.len(),
    );
    assert_eq!(problems, Vec::<String>::new());
}
