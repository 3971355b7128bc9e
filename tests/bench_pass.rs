//! The pass benchmark: the real evaluator, run as Lambda runs it, ticking over N resources in
//! the emulator through the fault-injecting proxy of `tests/emulator/proxy.py`, with the calls of
//! each tick counted by operation and set against the fewest AWS's batch sizes allow. With
//! `--cold-start`, it measures instead the cold start of the release evaluator holding a large
//! policy set, against a function that only builds the same AWS clients.
//!
//! Run it through `scripts/bench-pass.sh`, which builds what it needs and starts the emulator. See
//! `docs/testing.md` for what each figure means.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use capstan_tests::events::{self, sample, tick};
use capstan_tests::fleet::{self, MetricId};
use capstan_tests::lambda::{LambdaEvaluator, Profile, built_binary};
use capstan_tests::proxy::{Faults, Proxy, Stats};
use capstan_tests::queue::ObservedQueue;
use capstan_tests::runtime_api::{self, ColdStart};
use capstan_tests::state_table::{leases_held, scan};

const USAGE: &str = "usage: capstan-bench-pass [--resources N] [--services S] [--changing K] \
[--ticks T] [--latency-ms L] [--fail-before P] [--fail-after Q] [--seed S] [--max-in-flight M] \
[--concurrency C] [--shard-size Z] [--release]
       capstan-bench-pass --cold-start --policy-dir DIR [--policies N] [--runs R]
       capstan-bench-pass --write-policies DIR [--policies N]";

/// Every resource starts at this capacity; one that does not breach stays there.
const START: i32 = 2;
/// A breaching resource's policy adds this much, once: its cooldown outlasts the run.
const STEP: i32 = 2;
/// Resource setup calls made at once, straight to the emulator.
const SETUP_IN_FLIGHT: usize = 8;

/// AWS's limits per call, from the API references, so that the minimum is computed from AWS's
/// rules and not from the evaluator's own batching.
const SERVICES_PER_DESCRIBE: usize = 10;
const GROUPS_PER_DESCRIBE: usize = 100;
const KEYS_PER_BATCH_GET: usize = 100;
const ACTIONS_PER_TRANSACTION: usize = 100;
const ITEMS_PER_BATCH_WRITE: usize = 25;
const QUERIES_PER_GET_METRIC_DATA: usize = 500;
const MESSAGES_PER_SEND_BATCH: usize = 10;
/// A fenced write of a resource's state is two actions of a transaction: the check of its lease
/// and the update (see `capstan_aws::state`).
const ACTIONS_PER_FENCED_WRITE: usize = 2;

/// The benchmark's settings, checked.
#[derive(Debug, Clone)]
struct Settings {
    /// How many resources the pass covers.
    resources: usize,
    /// How many of them are ECS services (in one cluster); the rest are Auto Scaling groups.
    /// By default, half.
    services: usize,
    /// How many breach their scale-out rule, spread evenly over both kinds. By default, half.
    changing: usize,
    /// How many ticks are sent, one second apart. By default, 1.
    ticks: usize,
    /// What the proxy does to each call. By default, 10 ms and no faults, seed 1.
    faults: Faults,
    /// `CAPSTAN_MAX_IN_FLIGHT` of the evaluator. By default, the evaluator's own default.
    max_in_flight: usize,
    /// `CAPSTAN_CONCURRENCY` of the evaluator: it keeps to 1/C of AWS's rate limits, as one of C
    /// evaluators running at once. By default, 1.
    concurrency: usize,
    /// `--shard-size Z`: a shard queue is set and each tick fans out in shards of at most Z
    /// policies (`CAPSTAN_MAX_RESOURCES_PER_INVOCATION`), each delivered to the evaluator as
    /// SQS delivers it, one after another. By default, none: one invocation per tick.
    shard_size: Option<usize>,
    /// How the evaluator is built. By default, as the tests build it (debug).
    profile: Profile,
    /// With `--cold-start`: the size of the policy set and the number of runs.
    cold_start: Option<(usize, usize)>,
    /// `--policy-dir` with `--cold-start`: where the set packaged in the release evaluator was
    /// written; `--write-policies`: where to write it.
    policy_dir: Option<PathBuf>,
    /// `--write-policies DIR`: only write the cold start's policy set.
    write_policies: bool,
}

impl Settings {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut raw: HashMap<String, String> = HashMap::new();
        let mut release = false;
        let mut cold_start = false;
        let mut write_policies = false;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--release" => release = true,
                "--cold-start" => cold_start = true,
                "--resources" | "--services" | "--changing" | "--ticks" | "--latency-ms"
                | "--fail-before" | "--fail-after" | "--seed" | "--max-in-flight"
                | "--concurrency" | "--shard-size" | "--policies" | "--runs" => {
                    let value = args.next().ok_or(format!("{arg} needs a value"))?;
                    raw.insert(arg, value);
                }
                "--policy-dir" | "--write-policies" => {
                    write_policies |= arg == "--write-policies";
                    let value = args.next().ok_or(format!("{arg} needs a value"))?;
                    raw.insert(arg, value);
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        let number = |name: &str, default: usize| -> Result<usize, String> {
            raw.get(name).map_or(Ok(default), |value| {
                value
                    .parse()
                    .map_err(|_| format!("{name}: expected a whole number, got `{value}`"))
            })
        };
        let share = |name: &str, default: f64| -> Result<f64, String> {
            raw.get(name).map_or(Ok(default), |value| {
                value
                    .parse()
                    .ok()
                    .filter(|share| (0.0..=1.0).contains(share))
                    .ok_or(format!(
                        "{name}: expected a number from 0 to 1, got `{value}`"
                    ))
            })
        };
        let resources = number("--resources", 100)?;
        let settings = Self {
            resources,
            services: number("--services", resources / 2)?,
            changing: number("--changing", resources / 2)?,
            ticks: number("--ticks", 1)?,
            faults: Faults {
                latency_ms: number("--latency-ms", 10)? as f64,
                fail_before: share("--fail-before", 0.0)?,
                fail_after: share("--fail-after", 0.0)?,
                seed: number("--seed", 1)? as u64,
            },
            max_in_flight: number(
                "--max-in-flight",
                capstan_runner::Limits::DEFAULT_MAX_IN_FLIGHT,
            )?,
            concurrency: number("--concurrency", 1)?,
            shard_size: raw
                .contains_key("--shard-size")
                .then(|| number("--shard-size", 0))
                .transpose()?,
            profile: if release {
                Profile::Release
            } else {
                Profile::Debug
            },
            cold_start: (cold_start || write_policies)
                .then(|| Ok::<_, String>((number("--policies", 1000)?, number("--runs", 5)?)))
                .transpose()?,
            policy_dir: raw
                .get("--policy-dir")
                .or(raw.get("--write-policies"))
                .map(PathBuf::from),
            write_policies,
        };
        let mut problems = Vec::new();
        if settings.resources == 0 {
            problems.push("--resources must be at least 1".to_owned());
        }
        if settings.services > settings.resources {
            problems.push("--services must not exceed --resources".to_owned());
        }
        if settings.changing > settings.resources {
            problems.push("--changing must not exceed --resources".to_owned());
        }
        if settings.shard_size == Some(0) {
            problems.push("--shard-size must be at least 1".to_owned());
        }
        if settings.ticks == 0 || settings.max_in_flight == 0 || settings.concurrency == 0 {
            problems
                .push("--ticks, --max-in-flight and --concurrency must be at least 1".to_owned());
        }
        if settings.faults.fail_before + settings.faults.fail_after > 1.0 {
            problems.push("--fail-before and --fail-after must add up to at most 1".to_owned());
        }
        if settings
            .cold_start
            .is_some_and(|(policies, runs)| policies < 2 || runs == 0)
        {
            problems.push("--policies must be at least 2 and --runs at least 1".to_owned());
        }
        if cold_start && settings.policy_dir.is_none() {
            problems.push(
                "--cold-start needs --policy-dir: the set packaged in the release evaluator"
                    .to_owned(),
            );
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// One resource of the benchmark's fleet.
#[derive(Debug, Clone)]
struct Resource {
    target: Target,
    /// Whether its CPU breaches its policy's scale-out rule.
    breaching: bool,
}

#[derive(Debug, Clone)]
enum Target {
    Service { cluster: String, service: String },
    Group { name: String },
}

impl Resource {
    /// The capacity its policy wants once evaluated.
    fn wanted(&self) -> i32 {
        if self.breaching { START + STEP } else { START }
    }

    fn name(&self) -> &str {
        match &self.target {
            Target::Service { service, .. } => service,
            Target::Group { name } => name,
        }
    }

    fn cpu(&self) -> MetricId {
        match &self.target {
            Target::Service { cluster, service } => MetricId::ecs_cpu(cluster, service),
            Target::Group { name } => MetricId::asg_cpu(name),
        }
    }

    /// Its partition key in the state table.
    fn state_key(&self) -> String {
        match &self.target {
            Target::Service { cluster, service } => {
                format!("resource#ecs_service#{cluster}/{service}")
            }
            Target::Group { name } => format!("resource#autoscaling_group#{name}"),
        }
    }

    /// Its policy: CPU above 70 for five minutes adds [`STEP`], with a cooldown longer than any
    /// run.
    fn policy(&self) -> String {
        let target = match &self.target {
            Target::Service { cluster, service } => {
                format!("ecs_service: {{ cluster: {cluster}, service: {service} }}")
            }
            Target::Group { name } => format!("autoscaling_group: {{ name: {name} }}"),
        };
        let step = u32::try_from(STEP).expect("a small step");
        fleet::cpu_policy(
            self.name(),
            &target,
            "{ min: 1, max: 10 }",
            &self.cpu(),
            step,
            "30m",
        )
    }
}

/// `resources` resources, the first `services` ECS services of `cluster`, the others Auto
/// Scaling groups named after it; `changing` of them, spread evenly, breaching.
fn fleet(cluster: &str, resources: usize, services: usize, changing: usize) -> Vec<Resource> {
    (0..resources)
        .map(|index| Resource {
            target: if index < services {
                Target::Service {
                    cluster: cluster.to_owned(),
                    service: format!("svc-{index:05}"),
                }
            } else {
                Target::Group {
                    name: format!("{cluster}-asg-{index:05}"),
                }
            },
            breaching: index * changing / resources != (index + 1) * changing / resources,
        })
        .collect()
}

/// Writes one policy file per resource into `dir`.
fn write_policies(dir: &Path, fleet: &[Resource]) {
    for resource in fleet {
        std::fs::write(
            dir.join(format!("{}.yaml", resource.name())),
            resource.policy(),
        )
        .expect("writing a policy");
    }
}

/// The fewest AWS calls one tick over `fleet` can make with `changes` changes to make among its
/// services and groups, by operation, from AWS's batch sizes: the metrics, the leases taken and
/// given back, the capacities, the remembered states, the intents and the states after (fenced
/// writes), the changes, the decision log and the delivery's claim.
fn minimum(fleet: &[Resource], changes: (usize, usize)) -> BTreeMap<&'static str, usize> {
    let resources = fleet.len();
    let mut per_cluster: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: usize = 0;
    for resource in fleet {
        match &resource.target {
            Target::Service { cluster, .. } => *per_cluster.entry(cluster).or_default() += 1,
            Target::Group { .. } => groups += 1,
        }
    }
    let (service_changes, group_changes) = changes;
    let fenced =
        |writes: usize| (writes * ACTIONS_PER_FENCED_WRITE).div_ceil(ACTIONS_PER_TRANSACTION);
    let transactions = 2 * resources.div_ceil(ACTIONS_PER_TRANSACTION)
        + fenced(service_changes + group_changes)
        + fenced(resources);
    BTreeMap::from([
        (
            "GetMetricData",
            resources.div_ceil(QUERIES_PER_GET_METRIC_DATA),
        ),
        ("TransactWriteItems", transactions),
        (
            "DescribeServices",
            per_cluster
                .values()
                .map(|services| services.div_ceil(SERVICES_PER_DESCRIBE))
                .sum(),
        ),
        (
            "DescribeAutoScalingGroups",
            groups.div_ceil(GROUPS_PER_DESCRIBE),
        ),
        ("BatchGetItem", resources.div_ceil(KEYS_PER_BATCH_GET)),
        ("UpdateService", service_changes),
        ("SetDesiredCapacity", group_changes),
        ("BatchWriteItem", resources.div_ceil(ITEMS_PER_BATCH_WRITE)),
        ("PutItem", 1),
        ("UpdateItem", 1),
    ])
    .into_iter()
    .filter(|(_, calls)| *calls > 0)
    .collect()
}

/// Creates the fleet's resources at [`START`] and their CPU: 90 (breaching) or 40 for every
/// minute the windows of ticks from `first_tick` to `last_tick` hold.
async fn create_fleet(
    config: &aws_config::SdkConfig,
    fleet: &[Resource],
    first_tick: DateTime<Utc>,
    last_tick: DateTime<Utc>,
) {
    let ecs = aws_sdk_ecs::Client::new(config);
    let asg = aws_sdk_autoscaling::Client::new(config);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    let span = (last_tick - first_tick).num_minutes() + 7;
    let minutes = fleet::window_minutes(last_tick, span);
    stream::iter(fleet)
        .for_each_concurrent(SETUP_IN_FLIGHT, |resource| {
            let (ecs, asg, cloudwatch, minutes) = (&ecs, &asg, &cloudwatch, &minutes);
            async move {
                match &resource.target {
                    Target::Service { cluster, service } => {
                        fleet::steady_ecs_service(ecs, cluster, service, START).await;
                    }
                    Target::Group { name } => {
                        fleet::autoscaling_group(asg, name, 1, 10, START).await;
                    }
                }
                let cpu = if resource.breaching { 90.0 } else { 40.0 };
                let points: Vec<_> = minutes.iter().map(|at| (*at, cpu)).collect();
                fleet::put_metric(cloudwatch, &resource.cpu(), &points).await;
            }
        })
        .await;
}

/// Every resource's desired capacity, in the fleet's order, read straight from the emulator.
async fn capacities(config: &aws_config::SdkConfig, fleet: &[Resource]) -> Vec<i32> {
    let ecs = aws_sdk_ecs::Client::new(config);
    let asg = aws_sdk_autoscaling::Client::new(config);
    let mut found: HashMap<String, i32> = HashMap::new();
    let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut groups = Vec::new();
    for resource in fleet {
        match &resource.target {
            Target::Service { cluster, service } => {
                services.entry(cluster).or_default().push(service);
            }
            Target::Group { name } => groups.push(name.clone()),
        }
    }
    for (cluster, names) in services {
        for chunk in names.chunks(SERVICES_PER_DESCRIBE) {
            let answer = ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.iter().map(|name| (*name).to_owned()).collect()))
                .send()
                .await
                .expect("DescribeServices");
            for service in answer.services() {
                found.insert(
                    service.service_name().unwrap_or_default().to_owned(),
                    service.desired_count(),
                );
            }
        }
    }
    for chunk in groups.chunks(GROUPS_PER_DESCRIBE) {
        let answer = asg
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(chunk.to_vec()))
            .max_records(100)
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        for group in answer.auto_scaling_groups() {
            found.insert(
                group
                    .auto_scaling_group_name()
                    .unwrap_or_default()
                    .to_owned(),
                group.desired_capacity().unwrap_or_default(),
            );
        }
    }
    fleet
        .iter()
        .map(|resource| found.get(resource.name()).copied().unwrap_or(-1))
        .collect()
}

/// The changes still to make, among services and among groups, given the `current` capacities.
fn changes_needed(fleet: &[Resource], current: &[i32]) -> (usize, usize) {
    let mut needed = (0, 0);
    for (resource, current) in fleet.iter().zip(current) {
        if *current != resource.wanted() {
            match resource.target {
                Target::Service { .. } => needed.0 += 1,
                Target::Group { .. } => needed.1 += 1,
            }
        }
    }
    needed
}

/// How many entries of each resource's decision log record a change applied, by partition key.
fn applied_by_resource(items: &[HashMap<String, AttributeValue>]) -> BTreeMap<String, usize> {
    let mut applied = BTreeMap::new();
    for item in items {
        let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
        let is_decision = text("sk").is_some_and(|sk| sk.starts_with("decision#"));
        let status = text("outcome")
            .and_then(|outcome| serde_json::from_str::<Value>(outcome).ok())
            .and_then(|outcome| outcome["result"]["status"].as_str().map(str::to_owned));
        if is_decision
            && matches!(status.as_deref(), Some("applied" | "applied_not_recorded"))
            && let Some(pk) = text("pk")
        {
            *applied.entry(pk.clone()).or_default() += 1;
        }
    }
    applied
}

/// What one tick's answer says of its outcomes.
#[derive(Debug, Default)]
struct Outcomes {
    /// By status (`applied`, `unchanged`, ...).
    statuses: BTreeMap<String, usize>,
    /// By what the first rule of the decision found (`fired`, `missing_data`, ...): why a
    /// resource is unchanged.
    first_rules: BTreeMap<String, usize>,
    /// The first few failures' details.
    failures: Vec<String>,
    /// How many outcomes each policy has.
    evaluated: HashMap<String, usize>,
}

/// The outcomes of one tick's answers (the tick's own, then its shards'), or why an invocation
/// failed.
fn outcomes(answers: &[Result<Value, String>]) -> Outcomes {
    let mut found = Outcomes::default();
    let mut all = Vec::new();
    for answer in answers {
        match answer {
            Ok(answer) => all.extend(answer["outcomes"].as_array().into_iter().flatten()),
            Err(error) => found
                .failures
                .push(format!("the invocation failed: {error}")),
        }
    }
    for outcome in all {
        *found
            .evaluated
            .entry(outcome["policy"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
        let status = outcome["result"]["status"].as_str().unwrap_or("unknown");
        *found.statuses.entry(status.to_owned()).or_default() += 1;
        // A unit variant is a string, one with fields an object of one key (`{"fired": ..}`).
        let rule = &outcome["decision"]["explanation"]["rules"][0]["outcome"];
        let rule = rule.as_str().map(str::to_owned).or_else(|| {
            rule.as_object()
                .and_then(|fields| fields.keys().next().cloned())
        });
        if let Some(rule) = rule {
            *found.first_rules.entry(rule).or_default() += 1;
        }
        let failures = &mut found.failures;
        if status == "failed" && failures.len() < 3 {
            failures.push(format!(
                "{}: {}",
                outcome["policy"].as_str().unwrap_or_default(),
                outcome["result"]["detail"]
            ));
        }
    }
    found
}

/// `counts` as `name=n` pairs.
fn pairs<V: std::fmt::Display>(counts: impl IntoIterator<Item = (impl AsRef<str>, V)>) -> String {
    counts
        .into_iter()
        .map(|(name, count)| format!("{}={count}", name.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One shard of a fanned-out tick, as delivered.
struct ShardRun {
    /// The names of its policies.
    policies: Vec<String>,
    wall: Duration,
    /// The AWS calls of its invocation.
    calls: u64,
    outcomes: Outcomes,
}

/// The fewest calls of a fanned-out tick: each shard's [`minimum`] as a pass of its own (its
/// claim included), and the tick's claim and its `SendMessageBatch` calls.
fn fanned_out_minimum(
    fleet: &[Resource],
    current: &[i32],
    shards: &[ShardRun],
) -> BTreeMap<&'static str, usize> {
    let at: HashMap<&str, usize> = fleet
        .iter()
        .enumerate()
        .map(|(index, resource)| (resource.name(), index))
        .collect();
    let mut total = BTreeMap::from([
        ("PutItem", 1),
        ("UpdateItem", 1),
        (
            "SendMessageBatch",
            shards.len().div_ceil(MESSAGES_PER_SEND_BATCH),
        ),
    ]);
    for shard in shards {
        let members: Vec<usize> = shard
            .policies
            .iter()
            .filter_map(|name| at.get(name.as_str()).copied())
            .collect();
        let resources: Vec<Resource> = members.iter().map(|&i| fleet[i].clone()).collect();
        let capacities: Vec<i32> = members.iter().map(|&i| current[i]).collect();
        for (operation, calls) in minimum(&resources, changes_needed(&resources, &capacities)) {
            *total.entry(operation).or_default() += calls;
        }
    }
    total
}

/// What one tick did, for the totals.
struct Tick {
    wall: Duration,
    stats: Stats,
    minimum: usize,
    deferred: usize,
}

/// Runs the pass benchmark.
async fn pass_bench(settings: &Settings) -> Result<(), String> {
    let config = capstan_tests::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = capstan_tests::unique("bench-state");
    capstan_aws::state::create_table(&dynamodb, &table)
        .await
        .map_err(|e| format!("creating the state table: {e}"))?;
    let cluster = format!("bench{}", Utc::now().timestamp_millis());
    let fleet = fleet(
        &cluster,
        settings.resources,
        settings.services,
        settings.changing,
    );
    let policies = tempfile::tempdir().expect("tempdir");
    write_policies(policies.path(), &fleet);
    let first_tick = Utc::now();
    let tick_at = |index: usize| first_tick + TimeDelta::seconds(index as i64);
    let setup = Instant::now();
    create_fleet(&config, &fleet, first_tick, tick_at(settings.ticks)).await;
    println!(
        "setup: {} resources ({} ECS services in one cluster, {} Auto Scaling groups), {} breaching, in {:.1} s (straight to the emulator, not measured)",
        fleet.len(),
        settings.services,
        fleet.len() - settings.services,
        settings.changing,
        setup.elapsed().as_secs_f64()
    );

    let proxy = Proxy::start(&capstan_tests::endpoint());
    let proxy_url = proxy.url();
    let max_in_flight = settings.max_in_flight.to_string();
    let concurrency = settings.concurrency.to_string();
    let queue = match settings.shard_size {
        Some(_) => {
            Some(ObservedQueue::create(&config, &capstan_tests::unique("bench-shards")).await)
        }
        None => None,
    };
    let shard_size = settings.shard_size.map(|size| size.to_string());
    let fan_out = queue
        .as_ref()
        .zip(shard_size.as_deref())
        .map(|(queue, size)| {
            [
                ("CAPSTAN_SHARD_QUEUE", queue.url.as_str()),
                ("CAPSTAN_MAX_RESOURCES_PER_INVOCATION", size),
            ]
        });
    let evaluator = LambdaEvaluator::start_with(
        &[
            (
                "CAPSTAN_POLICY_DIR",
                policies.path().to_str().expect("UTF-8 path"),
            ),
            ("CAPSTAN_STATE_TABLE", &table),
            // Each tick is evaluated as of its own time, laid out a second apart.
            ("CAPSTAN_REPLAY", "true"),
            ("CAPSTAN_AWS_ENDPOINT", &proxy_url),
            ("CAPSTAN_MAX_IN_FLIGHT", &max_in_flight),
            ("CAPSTAN_CONCURRENCY", &concurrency),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .chain(fan_out.into_iter().flatten())
        .collect::<Vec<_>>(),
        settings.profile,
    );
    // An alarm no policy uses: the function is started, unmeasured.
    let warm = Instant::now();
    evaluator
        .invoke(&sample("eventbridge-alarm.json"))
        .map_err(|e| format!("the warm-up invocation failed: {e}"))?;
    println!(
        "warm-up: the evaluator ({:?} build) started and answered in {:.1} s (not measured)",
        settings.profile,
        warm.elapsed().as_secs_f64()
    );
    proxy.configure(settings.faults);

    let faults = settings.faults;
    let mut ticks = Vec::new();
    for index in 0..settings.ticks {
        let current = capacities(&config, &fleet).await;
        let needed = changes_needed(&fleet, &current);
        proxy.reset();
        let started = Instant::now();
        let mut answers = vec![evaluator.invoke(&tick(tick_at(index)))];
        let mut shards = Vec::new();
        if let Some(queue) = &queue {
            // Received straight from the emulator, as the event source mapping would: not
            // capstan's calls.
            for message in queue.take_all().await {
                let before = proxy.stats().total();
                let shard_started = Instant::now();
                let answer = evaluator.invoke(&events::sqs(std::slice::from_ref(&message)));
                let shard = ShardRun {
                    policies: serde_json::from_str::<Value>(&message.1)
                        .ok()
                        .and_then(|shard| serde_json::from_value(shard["policies"].clone()).ok())
                        .unwrap_or_default(),
                    wall: shard_started.elapsed(),
                    calls: proxy.stats().total() - before,
                    outcomes: outcomes(std::slice::from_ref(&answer)),
                };
                shards.push(shard);
                answers.push(answer);
            }
        }
        let wall = started.elapsed();
        let stats = proxy.stats();
        let found = outcomes(&answers);
        let minimum = if queue.is_some() {
            fanned_out_minimum(&fleet, &current, &shards)
        } else {
            minimum(&fleet, needed)
        };
        for (number, shard) in shards.iter().enumerate() {
            println!(
                "  shard {}/{}: policies={} wall_s={:.2} calls={} outcomes: {}",
                number + 1,
                shards.len(),
                shard.policies.len(),
                shard.wall.as_secs_f64(),
                shard.calls,
                pairs(&shard.outcomes.statuses),
            );
        }
        let deferred = found.statuses.get("deferred").copied().unwrap_or(0);
        let leases = leases_held(&scan(&dynamodb, &table).await, Utc::now());
        let minimum_total: usize = minimum.values().sum();
        let total = stats.total();
        println!(
            "tick {}/{}: resources={} latency_ms={} fail_before={} fail_after={} wall_s={:.2} max_in_flight={} (allowed changes at once: {}) emulator_s={:.2}",
            index + 1,
            settings.ticks,
            fleet.len(),
            faults.latency_ms,
            faults.fail_before,
            faults.fail_after,
            wall.as_secs_f64(),
            stats.max_in_flight,
            settings.max_in_flight,
            stats.upstream_total().as_secs_f64(),
        );
        println!(
            "  calls (operation=made/minimum): {}",
            pairs(
                stats
                    .calls
                    .keys()
                    .map(String::as_str)
                    .chain(minimum.keys().copied())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .map(|operation| (
                        operation,
                        format!(
                            "{}/{}",
                            stats.of(operation),
                            minimum.get(operation).copied().unwrap_or(0)
                        )
                    ))
            )
        );
        println!(
            "  total={total} minimum={minimum_total} calls_per_resource={:.3} ratio_to_minimum={:.2} faults: before=[{}] after=[{}]",
            total as f64 / fleet.len() as f64,
            total as f64 / minimum_total as f64,
            pairs(&stats.failed_before),
            pairs(&stats.failed_after),
        );
        let mut slowest: Vec<(&String, &Duration)> = stats.upstream.iter().collect();
        slowest.sort_by(|a, b| b.1.cmp(a.1));
        println!(
            "  emulator_s by operation (summed over overlapping calls): {}",
            pairs(
                slowest
                    .into_iter()
                    .map(|(operation, time)| (operation, format!("{:.2}", time.as_secs_f64())))
            )
        );
        let more_than_once = found.evaluated.values().filter(|n| **n > 1).count();
        let never = fleet
            .iter()
            .filter(|resource| !found.evaluated.contains_key(resource.name()))
            .count();
        println!(
            "  evaluated: policies={} more than once={more_than_once} never={never}",
            found.evaluated.len(),
        );
        println!(
            "  changes needed: services={} groups={}; outcomes: {}; first rules: {}; deferred={deferred}; leases held after the invocation ended: {leases}",
            needed.0,
            needed.1,
            pairs(&found.statuses),
            pairs(&found.first_rules),
        );
        for failure in found.failures {
            println!("  failed: {failure}");
        }
        ticks.push(Tick {
            wall,
            stats,
            minimum: minimum_total,
            deferred,
        });
    }

    let finals = capacities(&config, &fleet).await;
    let wrong: Vec<String> = fleet
        .iter()
        .zip(&finals)
        .filter(|(resource, current)| **current != resource.wanted())
        .map(|(resource, current)| {
            format!(
                "{} at {current}, wants {}",
                resource.name(),
                resource.wanted()
            )
        })
        .collect();
    let items = scan(&dynamodb, &table).await;
    let applied = applied_by_resource(&items);
    let twice: Vec<&String> = applied
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(pk, _)| pk)
        .collect();
    let actuation_calls: u64 = ticks
        .iter()
        .map(|tick| tick.stats.of("UpdateService") + tick.stats.of("SetDesiredCapacity"))
        .sum();
    let logged: usize = fleet
        .iter()
        .map(|resource| applied.get(&resource.state_key()).copied().unwrap_or(0))
        .sum();
    println!(
        "final: wrong={} of {}{}; changes wanted={} actuation requests={actuation_calls} (retries of lost answers included) decision log applied={logged} resources changed more than once={}{}; leases held after the run: {}",
        wrong.len(),
        fleet.len(),
        if wrong.is_empty() {
            String::new()
        } else {
            format!(
                " (e.g. {})",
                wrong.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            )
        },
        settings.changing,
        twice.len(),
        if twice.is_empty() {
            String::new()
        } else {
            format!(" (e.g. {})", twice[0])
        },
        leases_held(&items, Utc::now()),
    );
    let calls: u64 = ticks.iter().map(|tick| tick.stats.total()).sum();
    let minimum: usize = ticks.iter().map(|tick| tick.minimum).sum();
    let longest = ticks.iter().map(|tick| tick.wall).max().unwrap_or_default();
    println!(
        "pass-bench: resources={} latency_ms={} fault_rate={} wall_s={:.2} calls_per_resource={:.3} ratio_to_minimum={:.2} deferred={} wrong_final={}",
        fleet.len(),
        faults.latency_ms,
        // Rounded, so that 0.2 + 0.1 reads 0.3.
        ((faults.fail_before + faults.fail_after) * 1e6).round() / 1e6,
        longest.as_secs_f64(),
        calls as f64 / (fleet.len() * ticks.len()) as f64,
        calls as f64 / minimum as f64,
        ticks.iter().map(|tick| tick.deferred).sum::<usize>(),
        wrong.len(),
    );
    Ok(())
}

/// The median of `values`.
fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The policy set of the cold start: `policies` valid policies.
fn cold_start_set(policies: usize) -> Vec<Resource> {
    fleet("cold", policies, policies / 2, policies / 2)
}

/// Measures the cold start of the release evaluator, which holds packaged the
/// [`cold_start_set`] of `policies` written to `dir` (`scripts/bench-pass.sh` builds it so),
/// then of the same evaluator reading and validating that set from `dir` at start, and of the
/// hello function, `runs` times each, alternately; prints the medians.
fn cold_start(policies: usize, runs: usize, dir: &Path) -> Result<(), String> {
    let evaluator = built_binary("evaluator", Profile::Release);
    let hello = built_binary("capstan-hello-lambda", Profile::Release);
    let dir = dir.to_str().expect("UTF-8 path");
    // An alarm no policy uses, in dry run: the invocation makes no AWS call, and the endpoint
    // (the discard port) would refuse one.
    let env = [
        ("CAPSTAN_STATE_TABLE", "cold-start"),
        ("DRY_RUN", "true"),
        ("CAPSTAN_AWS_ENDPOINT", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let reading: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("CAPSTAN_POLICY_DIR", dir)])
        .collect();
    let event = sample("eventbridge-alarm.json");
    let mut starts: [Vec<ColdStart>; 3] = Default::default();
    for _ in 0..runs {
        starts[0].push(runtime_api::measure(&evaluator, &env, &event));
        starts[1].push(runtime_api::measure(&evaluator, &reading, &event));
        starts[2].push(runtime_api::measure(&hello, &env, &event));
    }
    let names = [
        "evaluator (packaged)",
        "evaluator (reading the files)",
        "hello",
    ];
    for (name, starts) in names.iter().zip(&starts) {
        println!(
            "  {name}: init_ms=[{}] peak_rss_kib=[{}]",
            starts
                .iter()
                .map(|start| format!("{:.1}", start.init.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(" "),
            starts
                .iter()
                .map(|start| start.peak_rss_kib.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let init_ms = |starts: &[ColdStart]| {
        median(starts.iter().map(|start| start.init).collect()).as_secs_f64() * 1000.0
    };
    let rss_mb = |starts: &[ColdStart]| {
        median(starts.iter().map(|start| start.peak_rss_kib).collect()) as f64 / 1024.0
    };
    let [packaged, reading, hello] = &starts;
    let (evaluator_ms, reading_ms, hello_ms) =
        (init_ms(packaged), init_ms(reading), init_ms(hello));
    let (evaluator_mb, reading_mb, hello_mb) = (rss_mb(packaged), rss_mb(reading), rss_mb(hello));
    println!(
        "  reading the files instead: evaluator_ms={reading_ms:.1} time_ratio={:.2} evaluator_rss_mb={reading_mb:.1}",
        reading_ms / hello_ms,
    );
    println!(
        "cold-start: policies={policies} evaluator_ms={evaluator_ms:.1} hello_ms={hello_ms:.1} time_ratio={:.2} evaluator_rss_mb={evaluator_mb:.1} hello_rss_mb={hello_mb:.1} rss_ratio={:.2}",
        evaluator_ms / hello_ms,
        evaluator_mb / hello_mb,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::parse(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("capstan-bench-pass: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ran = match (settings.cold_start, &settings.policy_dir) {
        (Some((policies, _)), Some(dir)) if settings.write_policies => {
            write_policies(dir, &cold_start_set(policies));
            Ok(())
        }
        (Some((policies, runs)), Some(dir)) => cold_start(policies, runs, dir),
        _ => pass_bench(&settings).await,
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("capstan-bench-pass: {problem}");
            ExitCode::FAILURE
        }
    }
}
